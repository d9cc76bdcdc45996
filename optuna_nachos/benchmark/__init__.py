"""The reproducible benchmark suite: suites in TOML files, a resumable runner, results.

A suite (a TOML file; ``smoke``, ``cpu`` and ``paper`` ship with the package) lists
experiments (searches, retrainings of the found architectures with a variant, hand-designed
baselines), each run for every seed into a study of ``<out>/<part>.db``. :func:`run_parts`
runs or resumes parts; :func:`summarize` writes ``results.json`` (with the environment),
``results.md`` and the figures; :func:`check_results` checks that output.
"""

from optuna_nachos.benchmark._check import check_results
from optuna_nachos.benchmark._efficiency import inference_speedup
from optuna_nachos.benchmark._environment import cpu_model, environment_record
from optuna_nachos.benchmark._markdown import results_markdown
from optuna_nachos.benchmark._runner import run_experiment, run_parts
from optuna_nachos.benchmark._suite import (
    EXPERIMENT_KINDS,
    Experiment,
    Suite,
    SuiteError,
    load_suite,
)
from optuna_nachos.benchmark._summary import summarize

__all__ = [
    "EXPERIMENT_KINDS",
    "Experiment",
    "Suite",
    "SuiteError",
    "check_results",
    "cpu_model",
    "environment_record",
    "inference_speedup",
    "load_suite",
    "results_markdown",
    "run_experiment",
    "run_parts",
    "summarize",
]
