"""Parsing and printing helpers shared by the commands."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import re
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from optuna_nachos._errors import UserError
from optuna_nachos._logging import LOGGER_NAME, OPTUNA_LOGGER

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

_SUFFIXES = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}


class CommandError(UserError):
    """A wrong command line: printed as one line, exit status 2."""


@contextlib.contextmanager
def settings_errors() -> Iterator[None]:
    """Turn the ``ValueError`` of a call whose documented ``ValueError`` is a check of the
    settings that the flags gave into a one-line :class:`CommandError`; the original stays
    attached (``--verbose`` shows it). Wrap only such calls: elsewhere a ``ValueError`` is a
    bug and keeps its traceback."""
    try:
        yield
    except UserError:
        raise
    except ValueError as error:
        raise CommandError(str(error).rstrip(".")) from error


_DATA_WORDS: tuple[tuple[str, str], ...] = (
    (r"pass root=<folder> to load_dataset", "pass --data-root <folder>"),
    (r"pass the folder as root or as", "pass the folder as --data-root or as"),
    (r"name='([^']*)'", r"--dataset \1"),
    (r"\broot\b(?=[/)]|$)", "DATA_ROOT"),
)


def data_error_in_flags(message: str, *, download_flag: bool) -> str:
    """A data-layer error reworded for the command line: the data layer speaks of its
    arguments (``root=<folder>``, ``download=True``, ``name=...``), the command of its flags
    (``--data-root``, ``--download``, ``--dataset``).

    Args:
        message: The data layer's message.
        download_flag: Whether the command that ran has ``--download``; without it the
            download hint names the command that has it.
    """
    download = "--download" if download_flag else "'optuna-nachos search --download'"
    message = re.sub(r"(?m)^(\s*- )download=True", r"\1pass download=True", message)
    message = message.replace("download=True", download)
    for pattern, replacement in _DATA_WORDS:
        message = re.sub(pattern, replacement, message, flags=re.MULTILINE)
    return message


class LazyChoices:
    """The choices of a flag, read from a module when first needed: the module imports PyTorch
    or Optuna, which ``--help`` does not. Give the flag a ``metavar`` (argparse lists the
    choices of a flag without one as it adds the flag); :class:`HelpFormatter` lists them in
    the flag's help.

    Args:
        module: The module that holds the choices.
        name: A sequence of names in ``module``, or a function that returns one (a registry's
            ``list_spaces``).
    """

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def _names(self) -> list[str]:
        import importlib

        names = getattr(importlib.import_module(self.module), self.name)
        return list(names() if callable(names) else names)

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


@contextlib.contextmanager
def logger_level(name: str, level: int) -> Iterator[None]:
    """Set the level of the logger ``name`` while a block runs, then restore it."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows every option's default: ``(default: X)`` after the help text, unless
    the text already names the default (options whose default is "none" or is computed say so
    in words)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if isinstance(action.choices, LazyChoices):  # the metavar cannot list them
            text = f"{text}; one of: {', '.join(action.choices)}"
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


def _parse_amount(text: str, what: str, example: str) -> float:
    """A positive finite number with an optional K, M or G suffix (``2.7M``, ``950K``)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid {what} {text!r}: use a number with an optional K, M or G suffix, e.g. 2.7M"
        )
    value = float(match.group(1)) * _SUFFIXES[match.group(2).upper()]
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{_article(what)} must be finite, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{_article(what)} must be positive, got {text!r}")
    return value


def _article(what: str) -> str:
    return f"{'an' if what[0] in 'aeiou' else 'a'} {what}"


def parse_macs(text: str) -> float:
    """Parse a MAC amount such as ``2700000``, ``2.7M``, ``950K`` or ``1.2G``."""
    return _parse_amount(text, "MAC amount", "2.7M")


def parse_count(text: str) -> int:
    """Parse a positive whole count such as ``1500000``, ``1.5M`` or ``60K``."""
    value = _parse_amount(text, "count", "1.5M")
    if value != int(value):
        raise argparse.ArgumentTypeError(f"a count must be a whole number, got {text!r}")
    return int(value)


def parse_seconds(text: str) -> float:
    """Parse a duration in seconds: a finite number ``>= 0``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def parse_fraction(text: str) -> float:
    """Parse an accuracy in ``[0, 1)``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid accuracy {text!r}: use e.g. 0.65") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(
            f"accuracy must be a fraction in [0, 1), got {text!r} (write 65 % as 0.65)"
        )
    return value


def _int_at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = what.replace(" ", "_")
    return parse


positive_int = _int_at_least(1, "a positive integer")
"""Parse a positive integer."""

non_negative_int = _int_at_least(0, "an integer >= 0")
"""Parse an integer >= 0."""


def _numbers(values: Sequence[float] | None, fmt: str) -> str:
    return "-" if values is None else " ".join(format(v, fmt) for v in values)


def format_stages(stages: Sequence[int] | None) -> str:
    """Exit stages as stage numbers separated by commas (``"1,2"``); ``"-"`` for none."""
    return ",".join(str(s) for s in stages) if stages else "-"


def format_front(trials: Sequence[FrozenTrial], *, as_json: bool = False) -> str:
    """The admissible front as a text table, or JSON.

    The trials are chosen on the validation split; the table shows those figures
    (``val acc``, ``val MACs``) and, beside them, the test figures to report (``test acc``,
    ``test MACs``) with the test exit ratios.
    """
    from optuna_nachos.results import front_rows  # imports torch: only when printing

    rows = front_rows(trials)
    if as_json:
        return json.dumps(rows, indent=2)
    if not rows:
        return "No admissible trial yet (none is feasible)."
    header = (
        f"{'trial':>5}  {'val acc':>8}  {'val MACs':>9}  {'test acc':>8}  {'test MACs':>9}  "
        f"{'peak MACs':>9}  {'exits':<7}  {'thresholds':<22}  test exit ratios"
    )
    lines = [
        "Chosen on the validation split (val); test figures reported for the chosen trials.",
        header,
        "-" * len(header),
    ]
    for row in rows:
        peak = "-" if row["peak_macs"] is None else f"{row['peak_macs'] / 1e6:8.3f}M"
        test_acc = "-" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        test_macs = "-" if row["test_avg_macs"] is None else f"{row['test_avg_macs'] / 1e6:.3f}M"
        lines.append(
            f"{row['trial']:>5}  {row['accuracy']:>8.4f}  {row['avg_macs'] / 1e6:>8.3f}M  "
            f"{test_acc:>8}  {test_macs:>9}  "
            f"{peak:>9}  {format_stages(row['exit_stages']):<7}  "
            f"{_numbers(row['thresholds'], '.2f'):<22}  {_numbers(row['exit_ratios'], '.2f')}"
        )
    return "\n".join(lines)


def _megamacs(value: float) -> str:
    return f"{value / 1e6:.3f}M"


class QuietTrialLog(logging.Filter):
    """Drops the log lines of a finished trial that :func:`print_trial_summary` replaces:
    Optuna's "Trial N finished with values ... and parameters: {...}" and the search's own
    "Trial N finished with values [...]"."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Trial ") and " finished with values" in message)


#: The logger of Optuna's per-trial "finished" line.
OPTUNA_TRIAL_LOGGER = "optuna.study.study"

#: The loggers whose "Trial N finished" lines :class:`QuietTrialLog` drops.
TRIAL_LOGGERS = (OPTUNA_TRIAL_LOGGER, f"{LOGGER_NAME}.study._search")


@contextlib.contextmanager
def search_output() -> Iterator[None]:
    """How a search speaks while it runs: the package's and Optuna's messages (each trial's
    phases and training epochs) above the progress bars instead of through them, and one
    summary line per finished trial (:func:`print_trial_summary`) instead of the per-trial log
    lines."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    quiet = QuietTrialLog()
    loggers = [logging.getLogger(name) for name in TRIAL_LOGGERS]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        with logging_redirect_tqdm(loggers=[logging.getLogger(OPTUNA_LOGGER)]):
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


def print_trial_summary(study: object, trial: FrozenTrial) -> None:
    """A search callback: print :func:`trial_summary` above the progress bar."""
    from tqdm.auto import tqdm

    from optuna_nachos.record import is_latency_study, study_settings

    latency = is_latency_study(study_settings(study))
    tqdm.write(trial_summary(trial, latency=latency), file=sys.stderr)


def trial_summary(trial: FrozenTrial, *, latency: bool = False) -> str:
    """One line on a finished trial of the packaged objective: its candidate and its outcome.

    It replaces Optuna's per-trial log line, which lists every trial parameter (49 for the
    default space). Example::

        Trial 3: accuracy 0.9417, avg MACs 1.204M, feasible; d2232 exits 1,2 r16;
        exit ratios 0.71,0.22,0.07; trained in 14 s

    With ``latency`` (a study searched with the latency objective) the second value is the
    average latency in ms.
    """
    from optuna.trial import TrialState

    from optuna_nachos.record import ACCURACY_INDEX, COST_INDEX, EENNTrial

    record = EENNTrial.from_trial(trial)
    config = record.config or {}
    depths = "".join(str(d) for d in config.get("depths", []))
    candidate = (
        f"d{depths} exits {format_stages(config.get('exit_stages'))} r{config.get('resolution')}"
        if config
        else "no candidate"
    )
    if trial.state == TrialState.FAIL:
        reason = record.fail_reason or "see the traceback above"
        return f"Trial {trial.number} failed ({reason}); {candidate}"
    if trial.state != TrialState.COMPLETE or trial.values is None:
        return f"Trial {trial.number} {trial.state.name.lower()}; {candidate}"
    accuracy, cost = trial.values[ACCURACY_INDEX], trial.values[COST_INDEX]
    if record.skip_reason is not None:
        floor = f"{cost:.3f} ms average latency" if latency else f"{_megamacs(cost)} average MACs"
        return (
            f"Trial {trial.number} not trained ({record.skip_reason}); "
            f"{candidate}, at least {floor}"
        )
    violated = [name for name, value in (trial.constraints or {}).items() if value > 0]
    verdict = "infeasible: violates " + ", ".join(violated) if violated else "feasible"
    parts = [
        f"Trial {trial.number}: accuracy {accuracy:.4f}, "
        + (f"avg latency {cost:.3f} ms, " if latency else f"avg MACs {_megamacs(cost)}, ")
        + f"{verdict}; {candidate}"
    ]
    # The split of the accuracy and cost above: validation (test for a legacy trial).
    ratios = record.val_exit_ratios or record.exit_ratios
    if ratios:
        parts.append("exit ratios " + ",".join(f"{r:.2f}" for r in ratios))
    if record.train_seconds is not None:
        parts.append(f"trained in {record.train_seconds:.0f} s")
    return "; ".join(parts)
