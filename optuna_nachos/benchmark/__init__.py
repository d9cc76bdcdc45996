"""The reproducible benchmark suite: suites in TOML files, a resumable runner, results.

A suite (a TOML file; ``smoke``, ``cpu`` and ``paper`` ship with the package) lists
experiments (searches, retrainings of the found architectures with a variant, hand-designed
baselines), each run for every seed into a study of ``<out>/<part>.db``. :func:`run_parts`
runs or resumes parts; :func:`summarize_suite` writes ``results.json`` (with the environment),
``results.md`` and the figures; :func:`check_results` checks that output.
:func:`mean_confidence_interval`, :func:`paired_comparison` and :func:`hypervolume_at` are the
statistics the summary reports across seeds.
"""

from optuna_nachos.benchmark._check import check_results
from optuna_nachos.benchmark._efficiency import inference_speedup
from optuna_nachos.benchmark._environment import cpu_model, environment_record
from optuna_nachos.benchmark._markdown import results_markdown
from optuna_nachos.benchmark._runner import run_experiment, run_parts
from optuna_nachos.benchmark._statistics import (
    MeanInterval,
    PairedComparison,
    hypervolume_at,
    mean_confidence_interval,
    paired_comparison,
)
from optuna_nachos.benchmark._suite import (
    EXPERIMENT_KINDS,
    Experiment,
    Suite,
    SuiteError,
    load_suite,
)
from optuna_nachos.benchmark._summary import summarize_suite

__all__ = [
    "EXPERIMENT_KINDS",
    "Experiment",
    "MeanInterval",
    "PairedComparison",
    "Suite",
    "SuiteError",
    "check_results",
    "cpu_model",
    "environment_record",
    "hypervolume_at",
    "inference_speedup",
    "load_suite",
    "mean_confidence_interval",
    "paired_comparison",
    "results_markdown",
    "run_experiment",
    "run_parts",
    "summarize_suite",
]
