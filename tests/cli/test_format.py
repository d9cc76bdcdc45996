import argparse

import pytest

from optuna_nachos.cli._format import parse_fraction, parse_macs, positive_int


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2700000", 2.7e6),
        ("2.7M", 2.7e6),
        ("2.7m", 2.7e6),
        ("950K", 9.5e5),
        ("1.2G", 1.2e9),
        ("3e6", 3e6),
    ],
)
def test_parse_macs_suffixes(text, value):
    assert parse_macs(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "M", "2.7X", "-1M", "0", "abc"])
def test_parse_macs_rejects_bad_amounts(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_macs(text)


def test_parse_fraction():
    assert parse_fraction("0.65") == 0.65
    with pytest.raises(argparse.ArgumentTypeError, match="0.65"):
        parse_fraction("65")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_fraction("x")


def test_positive_int():
    assert positive_int("3") == 3
    for bad in ("0", "-2", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)
