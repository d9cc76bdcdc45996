"""Surrogate models of the NACHOS sampler, chosen per round by cross-validated Kendall tau."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SURROGATE_NAMES = ("rbf", "trees", "mlp")
"""Surrogate families: kernel ridge regression with an RBF kernel, a random forest, an MLP."""


def _make(name: str, seed: int) -> Any:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "rbf":
        # Kernel ridge regression with an RBF kernel on standardized features and targets;
        # gamma = 1 / n_features is the usual scale for unit-variance features.
        return TransformedTargetRegressor(
            regressor=make_pipeline(StandardScaler(), KernelRidge(kernel="rbf", alpha=0.1)),
            transformer=StandardScaler(),
        )
    if name == "trees":
        return RandomForestRegressor(
            n_estimators=50, max_features=0.5, min_samples_leaf=1, random_state=seed, n_jobs=1
        )
    if name == "mlp":
        model = MLPRegressor(
            hidden_layer_sizes=(64, 32),
            alpha=1e-2,
            learning_rate_init=5e-3,
            max_iter=300,
            random_state=seed,
        )
        return TransformedTargetRegressor(
            regressor=make_pipeline(StandardScaler(), model), transformer=StandardScaler()
        )
    raise ValueError(f"unknown surrogate {name!r}; choose among {SURROGATE_NAMES}.")


def _fit(model: Any, x: np.ndarray, y: np.ndarray) -> Any:
    from threadpoolctl import threadpool_limits

    # Tiny matrices: one BLAS thread is faster than many, and leaves the cores to the trials.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # Small data sets make MLPs stop before converging; expected here, and the
        # cross-validation judges the result.
        warnings.simplefilter("ignore")
        model.fit(x, y)
    return model


def _tau(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from scipy.stats import kendalltau

    if len(y_true) < 2:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = kendalltau(y_true, y_pred).statistic
    return 0.0 if tau is None or math.isnan(tau) else float(tau)


@dataclass
class Surrogate:
    """A fitted surrogate and how it was chosen.

    Attributes:
        name: Family (``"rbf"``, ``"trees"``, ``"mlp"``) or ``"constant"``.
        tau_mean: Mean Kendall tau over the folds (``None`` without cross-validation).
        tau_std: Standard deviation of the tau over the folds.
        scores: ``mean - std`` of every family tried.
        model: The model refitted on all data (``None`` for ``"constant"``).
        constant: Prediction of the ``"constant"`` surrogate.
    """

    name: str
    tau_mean: float | None
    tau_std: float | None
    scores: dict[str, float]
    model: Any = None
    constant: float = 0.0

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for the feature rows ``x``."""
        if self.model is None:
            return np.full(len(x), self.constant)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.model.predict(x), dtype=float).ravel()

    def summary(self) -> dict[str, Any]:
        """Plain JSON values describing the choice."""
        return {
            "surrogate": self.name,
            "kendall_tau": None if self.tau_mean is None else round(self.tau_mean, 4),
            "kendall_tau_std": None if self.tau_std is None else round(self.tau_std, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
        }


def fit_surrogate(
    x: np.ndarray,
    y: np.ndarray,
    *,
    candidates: Sequence[str] = SURROGATE_NAMES,
    n_folds: int = 5,
    seed: int = 0,
) -> Surrogate:
    """Choose the surrogate family by cross-validated Kendall tau and refit it on all data.

    Each family is scored by ``mean - std`` of the Kendall tau between held-out targets and
    predictions over ``n_folds`` shuffled folds (as the NACHOS reference does); the best family
    is refitted on all rows. With fewer than ``2 * 2`` rows, or a single family, there is no
    cross-validation and the first family is used.

    Args:
        x: Feature rows, shape ``(n, d)``.
        y: Targets, shape ``(n,)``.
        candidates: Families to try.
        n_folds: Folds of the cross-validation (fewer when data are scarce).
        seed: Seed of the folds and of the models.

    Returns:
        The fitted :class:`Surrogate`.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(y) == 0:
        return Surrogate("constant", None, None, {}, constant=0.0)
    if len(y) == 1 or np.ptp(y) == 0.0 or x.shape[1] == 0:
        return Surrogate("constant", None, None, {}, constant=float(np.mean(y)))
    folds = min(n_folds, len(y) // 2)
    scores: dict[str, float] = {}
    taus: dict[str, tuple[float, float]] = {}
    if len(candidates) > 1 and folds >= 2:
        from sklearn.model_selection import KFold

        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(x))
        for name in candidates:
            fold_taus = []
            for train, test in splits:
                model = _fit(_make(name, seed), x[train], y[train])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fold_taus.append(_tau(y[test], model.predict(x[test])))
            mean, std = float(np.mean(fold_taus)), float(np.std(fold_taus))
            taus[name] = (mean, std)
            scores[name] = mean - std
        best = max(candidates, key=lambda name: scores[name])
        mean, std = taus[best]
    else:
        best, mean, std = candidates[0], None, None
    model = _fit(_make(best, seed), x, y)
    return Surrogate(best, mean, std, scores, model=model)
