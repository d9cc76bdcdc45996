"""Surrogate models of the NACHOS sampler, chosen per round by a pooled cross-validated
Kendall tau, and told apart from noise."""

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


def _tau(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """Kendall tau and its one-sided p-value (alternative: positive association)."""
    from scipy.stats import kendalltau

    if len(y_true) < 2:
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = kendalltau(y_true, y_pred, alternative="greater")
    tau, p_value = result.statistic, result.pvalue
    if tau is None or math.isnan(tau):
        return 0.0, 1.0
    return float(tau), 1.0 if p_value is None or math.isnan(p_value) else float(p_value)


@dataclass
class Surrogate:
    """A fitted surrogate and how it was chosen.

    Attributes:
        name: Family (``"rbf"``, ``"trees"``, ``"mlp"``) or ``"constant"``.
        tau_mean: Pooled Kendall tau of the chosen family: between every target and its
            out-of-fold prediction averaged over the repeats (``None`` without
            cross-validation).
        tau_std: Standard deviation over the repeats of each repeat's pooled tau.
        scores: The pooled tau of every family tried.
        model: The model refitted on all data (``None`` for ``"constant"``).
        constant: Prediction of the ``"constant"`` surrogate.
        p_value: One-sided p-value of the chosen family's pooled tau against no association
            (``None`` without cross-validation).
        informative: Whether the surrogate ranks held-out trials better than chance: its
            pooled tau is positive and significant at the chosen level. A sampler should not
            trust an uninformative surrogate's ranking.
    """

    name: str
    tau_mean: float | None
    tau_std: float | None
    scores: dict[str, float]
    model: Any = None
    constant: float = 0.0
    p_value: float | None = None
    informative: bool = False

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
            "p_value": None if self.p_value is None else round(self.p_value, 4),
            "informative": self.informative,
        }


def fit_surrogate(
    x: np.ndarray,
    y: np.ndarray,
    *,
    candidates: Sequence[str] = SURROGATE_NAMES,
    n_folds: int = 5,
    n_repeats: int = 3,
    alpha: float = 0.05,
    seed: int = 0,
) -> Surrogate:
    """Choose the surrogate family by a pooled cross-validated Kendall tau; refit it on all data.

    Per-fold taus of a few held-out points are noise (two points give -1, 0 or +1). Instead,
    ``n_repeats`` shuffles of ``n_folds``-fold cross-validation give every row an out-of-fold
    prediction per repeat; the predictions are averaged over the repeats and one Kendall tau
    is computed over all ``n`` rows (the *pooled* tau). The family with the highest pooled tau
    is chosen and refitted on all rows. It is ``informative`` when that tau is positive with a
    one-sided p-value below ``alpha``: on pure noise no family should be, and a sampler then
    explores instead of trusting the ranking. With fewer than 4 rows, constant targets or no
    features there is no cross-validation and the surrogate is uninformative.

    Args:
        x: Feature rows, shape ``(n, d)``.
        y: Targets, shape ``(n,)``.
        candidates: Families to try.
        n_folds: Folds of each cross-validation (fewer when data are scarce).
        n_repeats: Shuffled repeats of the cross-validation.
        alpha: Significance level of "better than chance".
        seed: Seed of the folds and of the models.

    Returns:
        The fitted :class:`Surrogate`.

    Raises:
        ValueError: If ``n_repeats < 1`` or ``alpha`` is not in ``(0, 1)``.
    """
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}.")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(y) == 0:
        return Surrogate("constant", None, None, {}, constant=0.0)
    if len(y) == 1 or np.ptp(y) == 0.0 or x.shape[1] == 0:
        return Surrogate("constant", None, None, {}, constant=float(np.mean(y)))
    folds = min(n_folds, len(y) // 2)
    if folds < 2:
        best = candidates[0]
        return Surrogate(best, None, None, {}, model=_fit(_make(best, seed), x, y))
    from sklearn.model_selection import KFold

    splits = [
        list(KFold(n_splits=folds, shuffle=True, random_state=seed + r).split(x))
        for r in range(n_repeats)
    ]
    scores: dict[str, float] = {}
    details: dict[str, tuple[float, float, float]] = {}
    for name in candidates:
        predictions = np.zeros((n_repeats, len(y)))
        for r, repeat in enumerate(splits):
            for train, test in repeat:
                model = _fit(_make(name, seed), x[train], y[train])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    predictions[r, test] = np.asarray(model.predict(x[test]), dtype=float).ravel()
        tau, p_value = _tau(y, predictions.mean(axis=0))
        per_repeat = [_tau(y, predictions[r])[0] for r in range(n_repeats)]
        details[name] = (tau, float(np.std(per_repeat)), p_value)
        scores[name] = tau
    best = max(candidates, key=lambda name: scores[name])
    tau, std, p_value = details[best]
    model = _fit(_make(best, seed), x, y)
    return Surrogate(
        best,
        tau,
        std,
        scores,
        model=model,
        p_value=p_value,
        informative=bool(tau > 0.0 and p_value < alpha),
    )
