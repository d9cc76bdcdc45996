"""Counts with suffixes, search spaces from the registry, gRPC storage URLs."""

from __future__ import annotations

import argparse

import pytest

from optuna_nachos.cli import build_parser
from optuna_nachos.cli._format import parse_count

SEARCH = ["search", "--dataset", "digits", "--n-trials", "1", "--min-accuracy", "0.5"]


@pytest.mark.parametrize(
    ("text", "value"), [("1500000", 1_500_000), ("1.5M", 1_500_000), ("60k", 60_000), ("2G", 2e9)]
)
def test_counts_take_k_m_g(text, value):
    assert parse_count(text) == value and isinstance(parse_count(text), int)


@pytest.mark.parametrize("text", ["1.2345K", "0", "-3", "many", "inf", "1.5"])
def test_counts_must_be_positive_and_whole(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_count(text)


def test_every_count_flag_takes_a_suffix():
    args = build_parser().parse_args([*SEARCH, "--max-params", "1.5M", "--train-subset", "10K"])
    assert args.max_params == 1_500_000 and args.train_subset == 10_000
    supernet = build_parser().parse_args(
        ["supernet", "train", "--dataset", "digits", "--out", "x", "--train-subset", "2K"]
    )
    assert supernet.train_subset == 2_000


def test_space_choices_come_from_the_registry(monkeypatch, capsys):
    from optuna_nachos.space import MobileNetV3Space, _registry, register_space

    monkeypatch.setattr(_registry, "_SPACES", _registry._SPACES.copy())
    register_space("tiny", lambda **settings: MobileNetV3Space(depths=(2,), **settings))
    assert build_parser().parse_args([*SEARCH, "--space", "tiny"]).space == "tiny"
    with pytest.raises(SystemExit):
        build_parser().parse_args([*SEARCH, "--space", "nope"])
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err
    assert "edanas" in err and "mobilenetv3" in err and "tiny" in err


def test_storage_help_names_grpc():
    parsers = build_parser()._subparsers._group_actions[0].choices
    for command in ("search", "best", "export", "report", "dashboard"):
        assert "grpc://HOST:PORT" in " ".join(parsers[command].format_help().split())
