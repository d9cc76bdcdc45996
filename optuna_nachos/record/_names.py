"""Every name an EENN trial and study carry in Optuna's storage, and the objective order."""

from __future__ import annotations

# ------------------------------------------------------------------------ objective order
ACCURACY_INDEX = 0
"""Index of the accuracy (maximized) in a trial's objective values."""

COST_INDEX = 1
"""Index of the cost (minimized: average MACs, or average latency in ms) in the values."""

DIRECTIONS = ("maximize", "minimize")
"""Directions of the two objectives, in order."""

METRIC_NAMES = ("accuracy", "avg_macs")
"""Metric names of a study that minimizes average MACs."""

LATENCY_METRIC_NAMES = ("accuracy", "avg_latency_ms")
"""Metric names of a study that minimizes average latency instead of MACs."""

COST_KINDS: tuple[str, ...] = ("macs", "latency")
"""What the cost objective measures: average MACs, or average latency (ms) from a table."""

# --------------------------------------------------------------------------- constraints
MAX_AVG_MACS = "max_avg_macs"
MIN_ACCURACY = "min_accuracy"
MIN_EXITS = "min_exits"
MAX_PEAK_MACS = "max_peak_macs"
MAX_PARAMS = "max_params"
MAX_AVG_LATENCY = "max_avg_latency_ms"
MAX_PEAK_LATENCY = "max_peak_latency_ms"

CONSTRAINT_NAMES: tuple[str, ...] = (
    MAX_AVG_MACS,
    MIN_ACCURACY,
    MIN_EXITS,
    MAX_PEAK_MACS,
    MAX_PARAMS,
    MAX_AVG_LATENCY,
    MAX_PEAK_LATENCY,
)
"""Every constraint the objectives may set, in a fixed order."""

# ------------------------------------------------------------- trial user attributes
CONFIG_ATTR = "config"
"""The configuration (``EENNConfig.to_dict()``) of a packaged-objective trial."""
EXITS_CONFIG_ATTR = "exits_config"
"""The exits configuration (``ExitsConfig.to_dict()``) of an own-backbone trial."""
EXIT_MACS_ATTR = "exit_macs"
"""MACs of a sample leaving at each exit (the last one is the peak)."""
EXIT_PARAMS_ATTR = "exit_params"
PARAMS_ATTR = "params"
"""Parameters of the whole network."""
PEAK_MACS_ATTR = "peak_macs"
EXIT_DEFICIT_ATTR = "exit_deficit"
"""Early exits a trial lacks to reach ``min_exits``."""
ACCURACY_ATTR = "accuracy"
"""Accuracy (own-backbone objective, read by ``constraints_from_user_attrs``)."""
AVG_MACS_ATTR = "avg_macs"
"""Average MACs on the test split (own-backbone objective: the objective value)."""
EXIT_LATENCY_ATTR = "exit_latency_ms"
PEAK_LATENCY_ATTR = "peak_latency_ms"
AVG_LATENCY_ATTR = "avg_latency_ms"
VAL_AVG_LATENCY_ATTR = "val_avg_latency_ms"

OBJECTIVE_SPLIT_ATTR = "objective_split"
"""The split of the objective values (``"validation"``)."""
VAL_ACCURACY_ATTR = "val_accuracy"
VAL_AVG_MACS_ATTR = "val_avg_macs"
TEST_ACCURACY_ATTR = "test_accuracy"
"""Accuracy on the test split at the chosen thresholds."""
TEST_AVG_MACS_ATTR = "test_avg_macs"
"""Average MACs on the test split at the chosen thresholds."""
TEST_SKIPPED_ATTR = "test_skipped"
"""Why a trained trial's test split was not evaluated: it cannot be on the admissible front
(not admissible on validation, or dominated there by a finished admissible trial)."""

EXIT_RATIOS_ATTR = "exit_ratios"
"""Fraction of the test samples leaving at each exit (own-backbone: validation)."""
VAL_EXIT_RATIOS_ATTR = "val_exit_ratios"
TEST_EXIT_RATIOS_ATTR = "test_exit_ratios"
THRESHOLDS_ATTR = "thresholds"
ACCURACY_PER_EXIT_ATTR = "accuracy_per_exit"
BACKBONE_ACCURACY_ATTR = "backbone_accuracy"
ECE_PER_EXIT_ATTR = "ece_per_exit"
CALIBRATION_FEASIBLE_ATTR = "calibration_feasible"
OPERATING_CURVE_ATTR = "operating_curve"
OPERATING_CURVE_COST_ATTR = "operating_curve_cost"
"""Unit of the operating curve's cost when it is not MACs (``"latency_ms"``)."""

TIMINGS_ATTR = "timings"
TRAIN_SECONDS_ATTR = "train_seconds"
TRIAL_SECONDS_ATTR = "trial_seconds"

FAIL_REASON_ATTR = "fail_reason"
SKIP_REASON_ATTR = "skipped_training"
"""Why a candidate was not trained (the static guard); its presence marks the trial."""

ARTIFACT_ATTR = "nachos_artifact_id"
"""The Optuna artifact id of a trial's trained network."""
EXPORT_ATTR = "export_path"
"""The folder a trained trial's network was exported to."""

WORKER_ATTR = "nachos_worker"
"""The record of the worker that runs a trial."""
RETRY_ATTR = "nachos_retry_of"
"""The numbers of the stale trials a retried trial replaces."""
RETRY_REASON_ATTR = "nachos_retry_reason"
"""Why the trial a retried trial replaces failed."""

# ------------------------------------------------------------------- study attributes
WORKERS_ATTR = "nachos_worker_count"
"""Study user attribute: how many workers have started on the study."""


SETTINGS_KEY = "nachos_settings"
"""Study user attribute: the search settings."""
SETTINGS_VERSION_KEY = "nachos_settings_version"
SETTINGS_HISTORY_KEY = "nachos_settings_history"

COST_SETTING = "objective"
"""Settings key naming the cost kind (one of :data:`COST_KINDS`) of a packaged study."""

NUM_CLASSES_SETTING = "num_classes"
IN_CHANNELS_SETTING = "in_channels"
"""Settings keys of the dataset's classes and image channels (the budgets and the floor are
stored under their constraint names)."""

LATENCY_MS = "latency_ms"
"""Value of ``operating_curve_cost`` when the curve's cost is latency in ms."""

SELECTION_SPLIT = "validation"
"""The split whose figures are a trial's objective values and constraints."""
LEGACY = "legacy"
"""Protocol name of trials whose objective values are test figures (earlier versions)."""
