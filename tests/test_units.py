"""Amounts are shown as a user writes them."""

import pytest

from optuna_nachos._units import format_amount


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.7e6, "2.7M"),
        (3e6, "3M"),
        (950_000, "950K"),
        (1.2e9, "1.2G"),
        (2.7, "2.7"),
        (0.5, "0.5"),
        (1_234_567, "1.234567M"),
        (999, "999"),
    ],
)
def test_amounts_read_as_typed(value, text):
    assert format_amount(value) == text


def test_the_text_parses_back_to_the_amount():
    from optuna_nachos.cli._format import parse_macs

    for value in (2.7e6, 3e6, 123_456_789, 2.7, 1.5e3):
        assert parse_macs(format_amount(value)) == pytest.approx(value, rel=1e-12)
