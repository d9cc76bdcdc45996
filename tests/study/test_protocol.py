"""Choosing on validation and reporting on test, for new and for earlier studies."""

import optuna
import pytest
from optuna.distributions import FloatDistribution

import optuna_nachos as nachos
from optuna_nachos.record import reported_values, selection_feasible, selection_values
from optuna_nachos.results import front_rows
from optuna_nachos.study import study_protocol

BUDGET = 2.0e6
FLOOR = 0.5


def _new_trial(number, val, test, *, feasible=True):
    """A trial as the packaged objective writes it now: values = validation."""
    return optuna.trial.create_trial(
        values=list(val),
        params={"x": float(number)},
        distributions={"x": FloatDistribution(0, 100)},
        user_attrs={
            "objective_split": "validation",
            "val_accuracy": val[0],
            "val_avg_macs": val[1],
            "test_accuracy": test[0],
            "test_avg_macs": test[1],
        },
        constraints={
            "max_avg_macs": val[1] - BUDGET,
            "min_accuracy": FLOOR - val[0],
            "min_exits": 0.0 if feasible else 1.0,
        },
    )


def _legacy_trial(number, val, test):
    """A trial as earlier versions wrote it: values and constraints from the test split."""
    return optuna.trial.create_trial(
        values=list(test),
        params={"x": float(number)},
        distributions={"x": FloatDistribution(0, 100)},
        user_attrs={"val_accuracy": val[0], "val_avg_macs": val[1]},
        constraints={
            "max_avg_macs": test[1] - BUDGET,
            "min_accuracy": FLOOR - test[0],
            "min_exits": 0.0,
        },
    )


def _study(tmp_path, trials):
    study = nachos.create_study(
        storage=f"sqlite:///{tmp_path / 'p.db'}",
        study_name="p",
        settings={"max_avg_macs": BUDGET, "min_accuracy": FLOOR},
    )
    study.add_trials(trials)
    return optuna.load_study(study_name="p", storage=f"sqlite:///{tmp_path / 'p.db'}")


def test_front_is_chosen_on_validation_and_reports_test(tmp_path):
    # Trial 1 is the most accurate on test but not on validation: it must not win.
    study = _study(
        tmp_path,
        [
            _new_trial(0, (0.80, 1.0e6), (0.70, 1.0e6)),
            _new_trial(1, (0.70, 1.0e6), (0.90, 1.0e6)),
        ],
    )
    front = nachos.admissible_trials(study)
    assert [t.number for t in front] == [0]
    rows = front_rows(front)
    assert rows[0]["accuracy"] == 0.80
    assert rows[0]["test_accuracy"] == 0.70
    assert rows[0]["chosen_on"] == "validation"
    assert nachos.high_tradeoff_trials(study, n=1)[0].number == 0
    assert nachos.hypervolume(study) == pytest.approx(
        (0.80 - FLOOR) * (BUDGET - 1e6) / ((1 - FLOOR) * BUDGET)
    )
    assert study_protocol(study).selection == "validation"
    assert study_protocol(study).n_legacy == 0


def test_legacy_studies_open_are_chosen_on_their_validation_attributes(tmp_path):
    # Trial 0: feasible on validation, infeasible on test (accuracy below the floor there).
    # Trial 1: best on test, worse on validation. Trial 2: over the budget on validation only.
    study = _study(
        tmp_path,
        [
            _legacy_trial(0, (0.80, 1.0e6), (0.45, 1.0e6)),
            _legacy_trial(1, (0.70, 1.0e6), (0.90, 1.0e6)),
            _legacy_trial(2, (0.95, 2.5e6), (0.95, 1.5e6)),
        ],
    )
    trials = {t.number: t for t in study.trials}
    assert selection_values(trials[0]) == (0.80, 1.0e6)
    assert reported_values(trials[0]) == (0.45, 1.0e6)
    assert selection_feasible(trials[0])
    assert not selection_feasible(trials[2])
    assert [t.number for t in nachos.admissible_trials(study)] == [0]
    protocol = study_protocol(study)
    assert protocol.selection == "legacy"
    assert protocol.n_legacy == 3
    assert "earlier version" in protocol.note and "test" in protocol.note


def test_cli_best_labels_validation_and_test(tmp_path, capsys):
    from optuna_nachos.cli import main

    _study(tmp_path, [_new_trial(0, (0.80, 1.0e6), (0.70, 1.1e6))])
    assert main(["best", "--storage", f"sqlite:///{tmp_path / 'p.db'}"]) == 0
    out = capsys.readouterr().out
    assert "val acc" in out and "test acc" in out
    assert "0.8000" in out and "0.7000" in out and "1.100M" in out
