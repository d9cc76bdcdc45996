"""The --threads default: the cores idle when the search starts."""

import argparse

import pytest
import torch

from optuna_nachos.cli import _threads
from optuna_nachos.cli._threads import AUTO, choose_threads, parse_threads, set_threads


@pytest.mark.parametrize(
    ("default", "cpus", "load", "expected"),
    [
        (2, 2, 0.1, 2),  # idle 2-core machine: torch's default
        (2, 2, 1.6, 1),  # one core busy with other work
        (2, 2, 5.5, 1),  # overloaded: one thread, never zero
        (2, 2, None, 2),  # no load average (Windows): torch's default
        (8, 16, 4.0, 8),  # never more than torch's default
        (16, 16, 4.0, 12),
    ],
)
def test_choose_threads(default, cpus, load, expected):
    assert choose_threads(default=default, cpus=cpus, load=load) == expected


def test_parse_threads():
    assert parse_threads("auto") == AUTO
    assert parse_threads("AUTO") == AUTO
    assert parse_threads("3") == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integer or 'auto'"):
            parse_threads(bad)


def test_set_threads_auto_on_a_busy_machine(monkeypatch):
    monkeypatch.setattr(_threads, "usable_cpus", lambda: 2)
    monkeypatch.setattr(_threads, "load_average", lambda: 3.2)
    torch.set_num_threads(2)
    threads, reason = set_threads(AUTO)
    assert threads == 1 == torch.get_num_threads()
    assert reason == "auto: load 3.2 on 2 CPUs"


def test_set_threads_explicit():
    threads, reason = set_threads(2)
    assert threads == 2 == torch.get_num_threads()
    assert reason == "--threads"
