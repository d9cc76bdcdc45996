import argparse
import logging

import optuna
import pytest

from optuna_nachos.cli._format import (
    QuietTrialLog,
    format_front,
    format_stages,
    parse_fraction,
    parse_macs,
    positive_int,
    trial_summary,
)


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


def _finished_trial(**user_attrs) -> optuna.trial.FrozenTrial:
    """A finished trial of an EENN study with its constraints, as the objective leaves it."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    for key, value in user_attrs.items():
        trial.set_user_attr(key, value)
    trial.set_constraint("max_avg_macs", -1.0)
    trial.set_constraint("min_accuracy", 0.2 if user_attrs.get("low") else -0.1)
    return study.tell(trial, [0.9417, 1_204_000.0])


CONFIG = {
    "depths": [2, 2, 3, 2, 2],
    "exit_stages": [1, 2],
    "resolution": 16,
}


def test_front_table_writes_exits_as_stage_numbers_with_commas():
    trial = _finished_trial(config=CONFIG, exit_ratios=[0.7, 0.2, 0.1], thresholds=[0.5, 0.6])
    table = format_front([trial])
    lines = table.splitlines()
    assert lines[0].startswith("Chosen on the validation split")
    assert "exits  " in lines[1]
    assert " 1,2 " in lines[3]
    assert format_stages([1, 2]) == "1,2" and format_stages([]) == "-"


def test_trial_summary_is_one_line_about_the_candidate():
    trial = _finished_trial(config=CONFIG, exit_ratios=[0.71, 0.22, 0.07], train_seconds=14.2)
    line = trial_summary(trial)
    assert line == (
        f"Trial {trial.number}: accuracy 0.9417, avg MACs 1.204M, feasible; d22322 exits 1,2 r16; "
        "exit ratios 0.71,0.22,0.07; trained in 14 s"
    )
    low = trial_summary(_finished_trial(config=CONFIG, low=True))
    assert "infeasible: violates min_accuracy" in low
    skipped = trial_summary(
        _finished_trial(config=CONFIG, skipped_training="static guard: violates max_avg_macs")
    )
    assert "not trained (static guard: violates max_avg_macs); d22322 exits 1,2 r16" in skipped
    assert "\n" not in line + low + skipped
    in_ms = trial_summary(_finished_trial(config=CONFIG), latency=True)
    assert "accuracy 0.9417, avg latency 1204000.000 ms, feasible" in in_ms
    assert "MACs" not in in_ms


def test_optunas_parameter_dump_is_filtered():
    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("optuna.study.study", logging.INFO, "", 0, message, (), None)

    quiet = QuietTrialLog()
    dump = "Trial 3 finished with values: [0.9, 1.0] and parameters: {'depth_1': 2}."
    assert not quiet.filter(record(dump))
    assert quiet.filter(record("A new study created in RDB with name: nachos"))
    assert not quiet.filter(record("Trial 3 finished with values [0.9, 100.0]."))  # run_search
    assert quiet.filter(record("Trial 3: calibrating the exit thresholds, evaluating."))
