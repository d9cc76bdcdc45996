"""Training, threshold calibration and evaluation of early-exit networks (no Optuna here).

The NACHOS recipe (DESIGN 2.4): :func:`fit` trains the backbone (phase A), then the exits
with :class:`NachosLoss` (phase B); :func:`collect_exit_outputs` runs every exit once per
split; :func:`calibrate_thresholds` chooses the exit thresholds on cached outputs and
:func:`evaluate` reports accuracy, exit ratios and MACs. :func:`calibrate_and_evaluate`
chooses on the validation split and reports on the test split.
"""

from optuna_nachos.train._cached import CachedFeatureHeads, cache_backbone_outputs, fit_exits
from optuna_nachos.train._calibration import (
    CALIBRATION_METHODS,
    NACHOS_GRID,
    SEARCH_CALIBRATIONS,
    Calibration,
    OperatingPoint,
    calibrate_thresholds,
    check_search_calibration,
    operating_curve,
)
from optuna_nachos.train._config import CLS_WEIGHTINGS, TrainConfig
from optuna_nachos.train._datasets import resolve_device
from optuna_nachos.train._errors import TrainingDivergedError
from optuna_nachos.train._evaluation import (
    EvaluationResult,
    evaluate,
    expected_calibration_error,
)
from optuna_nachos.train._inference import ExitOutputs, collect_exit_outputs
from optuna_nachos.train._losses import (
    LossTerms,
    NachosLoss,
    classification_loss,
    confidence_loss,
    exit_correctness,
    expected_macs,
    macs_loss,
    support_loss,
)
from optuna_nachos.train._pipeline import (
    CalibratedEvaluation,
    calibrate_and_evaluate,
    evaluate_on_test,
)
from optuna_nachos.train._progress import show_progress
from optuna_nachos.train._support import balanced_support_indices, class_exit_accuracy
from optuna_nachos.train._trainer import PHASES, EpochRecord, FitResult, fit

__all__ = [
    "CachedFeatureHeads",
    "cache_backbone_outputs",
    "fit_exits",
    "CALIBRATION_METHODS",
    "SEARCH_CALIBRATIONS",
    "CLS_WEIGHTINGS",
    "NACHOS_GRID",
    "PHASES",
    "CalibratedEvaluation",
    "Calibration",
    "EpochRecord",
    "EvaluationResult",
    "ExitOutputs",
    "FitResult",
    "LossTerms",
    "NachosLoss",
    "OperatingPoint",
    "TrainConfig",
    "TrainingDivergedError",
    "balanced_support_indices",
    "calibrate_and_evaluate",
    "evaluate_on_test",
    "calibrate_thresholds",
    "check_search_calibration",
    "class_exit_accuracy",
    "classification_loss",
    "collect_exit_outputs",
    "confidence_loss",
    "evaluate",
    "exit_correctness",
    "expected_calibration_error",
    "expected_macs",
    "fit",
    "macs_loss",
    "operating_curve",
    "resolve_device",
    "show_progress",
    "support_loss",
]
