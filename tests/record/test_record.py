"""The typed record of an EENN trial: its names, reader and writer, on SQLite storage."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from optuna_nachos import record
from optuna_nachos.record import (
    ACCURACY_INDEX,
    CONSTRAINT_NAMES,
    COST_INDEX,
    DIRECTIONS,
    METRIC_NAMES,
    EENNTrial,
    record_evaluation,
)


def _sqlite_study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'record.db'}",
        directions=list(DIRECTIONS),
    )


def test_names_are_distinct_and_the_objective_order_is_consistent() -> None:
    attrs = {name: getattr(record, name) for name in record.__all__ if name.endswith("_ATTR")}
    assert len(set(attrs.values())) == len(attrs), attrs
    assert len(set(CONSTRAINT_NAMES)) == len(CONSTRAINT_NAMES)
    assert DIRECTIONS[ACCURACY_INDEX] == "maximize" and DIRECTIONS[COST_INDEX] == "minimize"
    assert METRIC_NAMES[ACCURACY_INDEX] == "accuracy"
    assert set(record.COST_KINDS) == {"macs", "latency"}


def test_the_writer_and_the_reader_round_trip_through_sqlite(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr(record.EXIT_RATIOS_ATTR, [0.25, 0.75])
        trial.set_user_attr(record.THRESHOLDS_ATTR, [0.5])
        trial.set_user_attr(record.EXIT_MACS_ATTR, [100, 400])
        trial.set_user_attr(record.PARAMS_ATTR, 1234)
        trial.set_user_attr(record.CONFIG_ATTR, {"exit_stages": [2]})
        return record_evaluation(
            trial,
            val_accuracy=0.8,
            val_avg_macs=325.0,
            test_accuracy=0.7,
            test_avg_macs=330.0,
            max_avg_macs=300.0,
            min_accuracy=0.5,
            static={record.MIN_EXITS: 0.0, record.MAX_AVG_MACS: -1.0},
        )

    study.optimize(objective, n_trials=1)
    trial = EENNTrial.from_trial(study.trials[0])
    assert trial.state == TrialState.COMPLETE and trial.trained and not trial.legacy
    assert (trial.accuracy, trial.cost) == (0.8, 325.0)
    assert (trial.test_accuracy, trial.test_avg_macs) == (0.7, 330.0)
    # The measured average replaces the static lower bound of max_avg_macs.
    assert trial.constraints == pytest.approx(
        {record.MAX_AVG_MACS: 25.0, record.MIN_ACCURACY: -0.3, record.MIN_EXITS: 0.0}
    )
    assert not trial.feasible
    assert trial.exit_ratios == (0.25, 0.75) and trial.thresholds == (0.5,)
    assert trial.exit_macs == (100.0, 400.0) and trial.params == 1234
    assert trial.config == {"exit_stages": [2]}
    assert trial.operating_curve is None and trial.skip_reason is None


def test_old_and_partial_trials_read_with_none(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path)
    distributions = {"x": FloatDistribution(0, 1)}
    # An earlier version: objective values are test figures, validation ones are attributes.
    study.add_trial(
        optuna.trial.create_trial(
            values=[0.6, 500.0],
            params={"x": 0.1},
            distributions=distributions,
            user_attrs={record.VAL_ACCURACY_ATTR: 0.65, record.VAL_AVG_MACS_ATTR: 450.0},
            constraints={record.MAX_AVG_MACS: 500.0 - 1000.0, record.MIN_ACCURACY: 0.5 - 0.6},
        )
    )
    # Skipped by the static guard: no training attributes at all.
    study.add_trial(
        optuna.trial.create_trial(
            values=[0.0, 2000.0],
            params={"x": 0.2},
            distributions=distributions,
            user_attrs={record.SKIP_REASON_ATTR: "static guard: violates max_avg_macs"},
            constraints={record.MAX_AVG_MACS: 1000.0, record.MIN_ACCURACY: 0.5},
        )
    )
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.FAIL,
            params={"x": 0.3},
            distributions=distributions,
            user_attrs={record.FAIL_REASON_ATTR: "training diverged"},
        )
    )
    legacy, skipped, failed = (EENNTrial.from_trial(t) for t in study.trials)

    assert legacy.legacy and (legacy.accuracy, legacy.cost) == (0.65, 450.0)
    assert (legacy.test_accuracy, legacy.test_avg_macs) == (0.6, 500.0)
    # Constraints re-derived on validation: budget 1000, floor 0.5.
    assert legacy.constraints == pytest.approx(
        {record.MAX_AVG_MACS: -550.0, record.MIN_ACCURACY: -0.15}
    )
    assert legacy.feasible and legacy.exit_ratios is None and legacy.timings is None

    assert not skipped.trained and skipped.skip_reason.startswith("static guard")
    assert skipped.test_accuracy is None and not skipped.feasible

    assert failed.accuracy is None and failed.cost is None
    assert failed.fail_reason == "training diverged" and not failed.feasible


def test_a_trial_without_test_figures_says_why(tmp_path: Path) -> None:
    study = _sqlite_study(tmp_path)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        return record_evaluation(
            trial,
            val_accuracy=0.4,
            val_avg_macs=280.0,
            test_accuracy=None,
            test_avg_macs=None,
            max_avg_macs=300.0,
            min_accuracy=0.5,
            test_skipped="not admissible on validation (violates min_accuracy)",
        )

    study.optimize(objective, n_trials=1)
    frozen = study.trials[0]
    assert frozen.constraints == record.evaluation_constraints(
        val_accuracy=0.4, val_avg_macs=280.0, max_avg_macs=300.0, min_accuracy=0.5
    )
    assert frozen.constraints == pytest.approx({"max_avg_macs": -20.0, "min_accuracy": 0.1})
    trial = EENNTrial.from_trial(frozen)
    assert trial.trained and trial.test_accuracy is None and trial.test_avg_macs is None
    assert trial.test_skipped == "not admissible on validation (violates min_accuracy)"


@pytest.mark.parametrize(
    "test",
    [
        {"test_accuracy": None, "test_avg_macs": None},
        {"test_accuracy": 0.5, "test_avg_macs": None},
        {"test_accuracy": 0.5, "test_avg_macs": 10.0, "test_skipped": ""},
    ],
)
def test_test_figures_come_together_or_with_a_reason(test: dict) -> None:
    study = optuna.create_study(directions=list(DIRECTIONS))
    trial = study.ask()
    figures = {k: v for k, v in test.items() if k != "test_skipped"}
    if figures["test_accuracy"] is not None and figures["test_avg_macs"] is not None:
        # Figures given: an empty reason is no reason, and no error.
        record_evaluation(
            trial, val_accuracy=0.5, val_avg_macs=1.0, max_avg_macs=2.0, min_accuracy=0.1, **test
        )
        return
    with pytest.raises(ValueError, match="together, or neither with the reason"):
        record_evaluation(
            trial, val_accuracy=0.5, val_avg_macs=1.0, max_avg_macs=2.0, min_accuracy=0.1, **test
        )
