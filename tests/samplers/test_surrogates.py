"""Surrogate selection at small n: pooled Kendall tau, and noise told apart from signal."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pytest

from optuna_nachos.samplers import NachosSampler, round_diagnostics
from optuna_nachos.samplers._surrogates import fit_surrogate


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pure_noise_is_not_informative(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(24, 6))
    y = rng.normal(size=24)
    surrogate = fit_surrogate(x, y, n_folds=5, seed=seed)
    assert not surrogate.informative
    assert surrogate.tau_mean is not None and surrogate.tau_mean < 0.3
    assert surrogate.summary()["informative"] is False


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_monotone_function_is_informative(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(24, 6))
    y = np.exp(x[:, 0] + 0.5 * x[:, 1])  # monotone in two of the features
    surrogate = fit_surrogate(x, y, n_folds=5, seed=seed)
    assert surrogate.informative
    assert surrogate.tau_mean > 0.5
    assert surrogate.p_value is not None and surrogate.p_value < 0.05


def test_pooled_tau_is_not_a_mean_of_two_point_folds() -> None:
    # 10 rows and 5 folds: 2 held-out points per fold, whose per-fold taus could only be
    # -1, 0 or +1. The pooled tau ranks all 10 rows at once: a multiple of 1/45.
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(10, 3))
    y = rng.normal(size=10)
    surrogate = fit_surrogate(x, y, n_folds=5, n_repeats=1, candidates=("trees",), seed=0)
    assert surrogate.tau_mean is not None
    assert surrogate.tau_mean * 45 == pytest.approx(round(surrogate.tau_mean * 45), abs=1e-9)
    assert surrogate.tau_mean not in (-1.0, 1.0)


def test_invalid_settings() -> None:
    x = np.zeros((8, 2))
    with pytest.raises(ValueError, match="n_repeats"):
        fit_surrogate(x, np.arange(8.0), n_repeats=0)
    with pytest.raises(ValueError, match="alpha"):
        fit_surrogate(x, np.arange(8.0), alpha=1.5)


def _rounds(objective, *, seed: int = 0) -> list[dict]:
    sampler = NachosSampler(
        n_startup_trials=20,
        batch_size=4,
        population_size=16,
        n_generations=3,
        n_folds=5,
        surrogates=("rbf", "trees"),
        exploration=0.0,
        seed=seed,
    )
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["accuracy", "avg_macs"])
    study.optimize(objective, n_trials=24)
    return round_diagnostics(study)


def _params(trial: optuna.Trial) -> np.ndarray:
    return np.array([trial.suggest_int(f"x{i}", 0, 9) for i in range(4)], dtype=float)


def test_sampler_falls_back_to_exploration_on_noise() -> None:
    rng = np.random.default_rng(0)

    def noise(trial: optuna.Trial) -> tuple[float, float]:
        _params(trial)
        return float(rng.uniform()), float(rng.uniform())

    rounds = _rounds(noise)
    assert rounds
    assert rounds[0]["fallback"] == "exploration"
    assert "better than chance" in rounds[0]["fallback_reason"]
    assert all(not s["informative"] for s in rounds[0]["surrogates"].values())


def test_sampler_trusts_surrogates_of_a_monotone_function() -> None:
    def monotone(trial: optuna.Trial) -> tuple[float, float]:
        x = _params(trial)
        return float(x[0] + 0.5 * x[1]), float(x[2] + 0.3 * x[3])

    rounds = _rounds(monotone)
    assert rounds
    assert "fallback" not in rounds[0]
    assert all(s["informative"] for s in rounds[0]["surrogates"].values())
