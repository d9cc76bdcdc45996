"""Benchmark suites described in TOML files: what to run, on which data, with which seeds."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, from the registry (a dependency on Python 3.10 only)
    import tomli as tomllib

from optuna_nachos._errors import UserError
from optuna_nachos.study import SAMPLER_NAMES
from optuna_nachos.supernet import SupernetSettings
from optuna_nachos.train import SEARCH_CALIBRATIONS, TrainConfig

EXPERIMENT_KINDS = ("search", "retrain", "single_exit", "fixed")
"""What an experiment does: a search; the found architectures retrained with another training
or calibration; the best single-exit networks of the space within the budget; or given
architectures trained as they are (hand-designed baselines)."""

KEEP_NETWORKS = ("all", "best", "timed")
"""What a suite keeps of the trained networks' weights (about 10 MB each) after the summary:
every one; the best network of every run (the rows of the per-run table); or only the network
timed for the efficiency table."""

SUPERNET_PART = "supernet"
"""The reserved part that trains a suite's supernet (suites with a ``[supernet]`` table)."""

_SUITE_SET_SUPERNET_KEYS = ("device", "progress")
"""Supernet settings the suite sets itself (its ``device``; no progress bars)."""

DEFAULT_SUITES_DIR = Path(__file__).resolve().parent / "suites"
"""The suites shipped with the package (``smoke``, ``cpu``, ``paper``): package data, so a suite
name works from any folder."""


class SuiteError(UserError, ValueError):
    """A suite file is missing or malformed."""


@dataclass(frozen=True)
class Experiment:
    """One experiment of a suite, run once per seed.

    Attributes:
        name: Unique name; its studies are named ``"<name>-seed<seed>"``.
        kind: One of :data:`EXPERIMENT_KINDS`.
        part: The part of the suite it belongs to (parts run separately).
        label: Row label of the result table.
        sampler: Sampler name (``search``).
        n_trials: Trials per seed (``search``).
        sampler_options: Extra sampler settings (``search``), e.g. ``n_startup_trials``.
        space: Overrides of the suite's search space (``{"threshold_genes": [...]}`` for EDANAS).
        train: Overrides of the suite's training settings.
        calibration: Threshold method (``"search"``, ``"nachos"``, ``"global"``).
        constrained: Whether training and calibration see the budget and the floor; the results
            are judged against the suite's constraints either way.
        source: The search experiment whose architectures a ``retrain`` experiment retrains.
        top: How many architectures to take (``retrain``: the most accurate admissible ones of
            the source; ``single_exit``: the costliest single-exit networks within the budget).
        architectures: Given architectures (``fixed``): mappings with ``depths``,
            ``kernel_sizes``, ``expand_ratios``, ``exit_stages`` (EENNConfig fields; a single
            number for the kernel or expand ratio applies to every layer).
        reference: The key of the reference result (DESIGN 2.7) this row compares with.
        note: What differs from the reference or the paper's set-up, printed beside the row.
    """

    name: str
    kind: str
    part: str
    label: str
    sampler: str = "nachos"
    n_trials: int = 0
    sampler_options: Mapping[str, Any] = field(default_factory=dict)
    space: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    calibration: str = "search"
    constrained: bool = True
    source: str | None = None
    top: int = 1
    architectures: Sequence[Mapping[str, Any]] = ()
    reference: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Suite:
    """A benchmark suite.

    Attributes:
        name: Suite name (the file stem).
        description: One paragraph on what the suite measures.
        dataset: Dataset name for :func:`~optuna_nachos.data.load_dataset`.
        resolution: Input resolution.
        train_subset: Train on this many images (``None``: all).
        seeds: Seeds of every experiment.
        max_avg_macs: Average-MAC budget.
        min_accuracy: Accuracy floor.
        space: :class:`~optuna_nachos.MobileNetV3Space` settings.
        train: :class:`~optuna_nachos.TrainConfig` settings.
        device: Training device (``"cpu"``, ``"cuda"``, ``"auto"``).
        threads: Torch CPU threads.
        experiments: The experiments, in run order.
        reference: Reference results: ``{"dataset": ..., "source": ..., "rows": {key: [acc %,
            MACs in millions]}}``.
        differences: What differs from the reference set-up, for every table.
        efficiency: Settings of the efficiency measurements (``experiment``: whose network
            is timed; ``batch_sizes``; ``repeats``).
        keep_networks: Which trained networks keep their weights in the output folder once
            the results are summarized (see :data:`KEEP_NETWORKS`); the studies keep every
            trial's record, configuration and metrics either way.
        hypervolume_checkpoints: Numbers of completed trials after which the summary reports
            every run's hypervolume (``()``: the default of :attr:`checkpoints`).
        compare_against: The experiment the others are compared with, seed by seed, at each
            checkpoint (``None``: no paired comparisons).
        supernet: :class:`~optuna_nachos.supernet.SupernetSettings` of a supernet the suite
            trains (part ``supernet``) and every experiment's candidates inherit their
            weights from; empty: candidates train from random weights.
        path: The file it was read from.
    """

    name: str
    description: str
    dataset: str
    resolution: int
    seeds: tuple[int, ...]
    max_avg_macs: float
    min_accuracy: float
    experiments: tuple[Experiment, ...]
    train_subset: int | None = None
    space: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    threads: int = 1
    reference: Mapping[str, Any] = field(default_factory=dict)
    differences: tuple[str, ...] = ()
    efficiency: Mapping[str, Any] = field(default_factory=dict)
    keep_networks: str = "all"
    hypervolume_checkpoints: tuple[int, ...] = ()
    compare_against: str | None = None
    supernet: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def checkpoints(self) -> tuple[int, ...]:
        """The numbers of completed trials at which hypervolumes are compared: the
        ``hypervolume_checkpoints`` given, else the distinct ``n_trials`` of the search
        experiments, so that any two searches can be compared at equal budgets."""
        if self.hypervolume_checkpoints:
            return self.hypervolume_checkpoints
        return tuple(sorted({e.n_trials for e in self.experiments if e.kind == "search"}))

    @property
    def main_experiment(self) -> str:
        """The experiment whose network is timed and whose study gets every figure: the
        ``experiment`` of ``[efficiency]``, else the first experiment."""
        return self.efficiency.get("experiment", self.experiments[0].name)

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts, in the order of their first experiment; ``supernet`` first when the
        suite trains one."""
        first = (SUPERNET_PART,) if self.supernet else ()
        return tuple(dict.fromkeys((*first, *(e.part for e in self.experiments))))

    def supernet_settings(self) -> SupernetSettings | None:
        """The settings of the suite's supernet (on the suite's device, without progress
        bars); ``None`` when the suite has no ``[supernet]`` table."""
        if not self.supernet:
            return None
        return _supernet_settings(self.supernet, self.device)

    def experiment(self, name: str) -> Experiment:
        """The experiment called ``name``."""
        for experiment in self.experiments:
            if experiment.name == name:
                return experiment
        raise SuiteError(f"suite {self.name!r} has no experiment {name!r}.")


def resolve_suite_path(suite: str | Path, *, suites_dir: str | Path | None = None) -> Path:
    """The file of a suite given by name (``smoke``: the packaged ``smoke.toml``, or
    ``<suites_dir>/smoke.toml``) or by path."""
    candidate = Path(suite)
    if candidate.suffix == ".toml" or candidate.is_file():
        if not candidate.is_file():
            raise SuiteError(f"suite file {candidate} does not exist.")
        return candidate
    folder = Path(suites_dir) if suites_dir is not None else DEFAULT_SUITES_DIR
    path = folder / f"{suite}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
        raise SuiteError(
            f"no suite {suite!r} in {folder}/ (suites there: {', '.join(known) or 'none'}); "
            "pass --suites-dir or the path of a .toml file."
        )
    return path


_EXPERIMENT_KEYS = {f for f in Experiment.__dataclass_fields__}
_SUITE_KEYS = {f for f in Suite.__dataclass_fields__} - {"experiments", "path", "name"}


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SuiteError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}."
        )


def _experiment(raw: Mapping[str, Any], index: int) -> Experiment:
    where = f"experiment #{index + 1}"
    _check_keys(raw, _EXPERIMENT_KEYS, where)
    for key in ("name", "kind", "part"):
        if key not in raw:
            raise SuiteError(f"{where} needs a {key!r}.")
    values = dict(raw)
    values.setdefault("label", raw["name"])
    experiment = Experiment(**values)
    where = f"experiment {experiment.name!r}"
    if experiment.kind not in EXPERIMENT_KINDS:
        raise SuiteError(
            f"{where}: kind must be one of {EXPERIMENT_KINDS}, got {experiment.kind!r}."
        )
    if experiment.kind == "search":
        if experiment.sampler not in SAMPLER_NAMES:
            raise SuiteError(
                f"{where}: unknown sampler {experiment.sampler!r}; "
                f"one of {', '.join(SAMPLER_NAMES)}."
            )
        if experiment.n_trials < 1:
            raise SuiteError(f"{where}: a search needs n_trials >= 1.")
    if experiment.kind == "retrain" and not experiment.source:
        raise SuiteError(f"{where}: a retrain experiment needs the 'source' search experiment.")
    if experiment.kind == "fixed" and not experiment.architectures:
        raise SuiteError(f"{where}: a fixed experiment needs 'architectures'.")
    if experiment.calibration not in SEARCH_CALIBRATIONS:
        raise SuiteError(
            f"{where}: calibration must be one of {', '.join(map(repr, SEARCH_CALIBRATIONS))}."
        )
    if experiment.top < 1:
        raise SuiteError(f"{where}: top must be at least 1.")
    try:
        TrainConfig(**experiment.train)
    except (TypeError, ValueError) as error:
        raise SuiteError(f"{where}: invalid train settings: {error}") from None
    return experiment


def _checkpoints(raw: Any, path: Path) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        raise SuiteError(
            f"{path}: hypervolume_checkpoints must be a non-empty list of trial counts, "
            f"e.g. [20, 60, 180]; got {raw!r}."
        )
    if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in raw):
        raise SuiteError(
            f"{path}: hypervolume_checkpoints must hold whole numbers of trials of at least 1, "
            f"got {raw!r}."
        )
    if len(set(raw)) != len(raw):
        raise SuiteError(f"{path}: hypervolume_checkpoints lists a count twice: {raw!r}.")
    return tuple(sorted(raw))


def _supernet_settings(table: Mapping[str, Any], device: str) -> SupernetSettings:
    """The settings of a ``[supernet]`` table on ``device``, without progress bars."""
    return SupernetSettings.from_dict({**table, "device": device, "progress": False})


def _supernet_table(raw: Any, path: Path, device: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or not raw:
        raise SuiteError(
            f"{path}: [supernet] must be a table of SupernetSettings, e.g. epochs = 10; "
            f"got {raw!r}."
        )
    fixed = sorted(set(raw) & set(_SUITE_SET_SUPERNET_KEYS))
    if fixed:
        raise SuiteError(
            f"{path}: [supernet] sets {', '.join(fixed)}, which the suite sets itself "
            "(its top-level 'device'; no progress bars); remove them."
        )
    allowed = set(SupernetSettings.__dataclass_fields__) - set(_SUITE_SET_SUPERNET_KEYS)
    _check_keys(raw, allowed, f"{path}: [supernet]")
    try:
        _supernet_settings(raw, device)
    except (TypeError, ValueError) as error:
        raise SuiteError(f"{path}: invalid [supernet] settings: {error}") from None
    return dict(raw)


def _check_supernet_parts(
    experiments: Sequence[Experiment], path: Path, *, resolution: int, has_supernet: bool
) -> None:
    for experiment in experiments:
        if experiment.part == SUPERNET_PART:
            raise SuiteError(
                f"{path}: experiment {experiment.name!r} uses the part name "
                f"{SUPERNET_PART!r}, which is reserved for training the suite's supernet; "
                "give it another part."
            )
        resolutions = experiment.space.get("resolutions", [resolution])
        if has_supernet and list(resolutions) != [resolution]:
            raise SuiteError(
                f"{path}: experiment {experiment.name!r} searches resolutions "
                f"{list(resolutions)}, but the suite's supernet serves only {resolution}; "
                "drop its 'resolutions' or the [supernet] table."
            )


def _apply_variant(raw: dict[str, Any], variant: str, path: Path) -> dict[str, Any]:
    variants = raw.get("variants", {})
    if variant not in variants:
        known = ", ".join(sorted(variants)) or "none"
        raise SuiteError(f"{path} has no variant {variant!r} (variants: {known}).")
    overrides = dict(variants[variant])
    per_experiment = overrides.pop("experiments", {})
    unknown = sorted(set(overrides) - _SUITE_KEYS)
    if unknown:
        raise SuiteError(f"{path}: variant {variant!r} sets unknown key(s) {', '.join(unknown)}.")
    names = [e.get("name") for e in raw.get("experiment", [])]
    missing = sorted(set(per_experiment) - set(names))
    if missing:
        raise SuiteError(
            f"{path}: variant {variant!r} changes unknown experiment(s) {', '.join(missing)}."
        )
    merged = {**raw, **overrides}
    merged["experiment"] = [
        {**e, **per_experiment.get(e.get("name"), {})} for e in raw.get("experiment", [])
    ]
    return merged


def load_suite(
    suite: str | Path,
    *,
    suites_dir: str | Path | None = None,
    variants: Sequence[str] = (),
) -> Suite:
    """Read and check a suite file.

    A suite may define named variants (``[variants.<name>]`` tables) that override top-level
    keys (for example the dataset and its budgets) and, under ``experiments``, settings of
    named experiments (for example fewer trials for a reduced run). Variants apply in order.

    Args:
        suite: A suite name (looked up as ``<suites_dir>/<name>.toml``) or a path.
        suites_dir: Folder of the suites; by default the suites shipped with the package
            (:data:`DEFAULT_SUITES_DIR`), whatever the current directory.
        variants: Names of the variants to apply.

    Raises:
        SuiteError: If the file is missing or malformed; the message says what to fix.
    """
    path = resolve_suite_path(suite, suites_dir=suites_dir)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"{path} is not valid TOML: {error}") from None
    raw = dict(raw)
    for variant in variants:
        raw = _apply_variant(raw, variant, path)
    raw.pop("variants", None)
    experiments = raw.pop("experiment", [])
    _check_keys(raw, _SUITE_KEYS, str(path))
    for key in ("description", "dataset", "resolution", "seeds", "max_avg_macs", "min_accuracy"):
        if key not in raw:
            raise SuiteError(f"{path} needs the top-level key {key!r}.")
    if not experiments:
        raise SuiteError(f"{path} has no [[experiment]] table.")
    parsed = tuple(_experiment(e, i) for i, e in enumerate(experiments))
    if "supernet" in raw:
        raw["supernet"] = _supernet_table(raw["supernet"], path, raw.get("device", "cpu"))
    _check_supernet_parts(
        parsed, path, resolution=raw["resolution"], has_supernet=bool(raw.get("supernet"))
    )
    names = [e.name for e in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SuiteError(f"{path}: duplicate experiment names {', '.join(duplicates)}.")
    for experiment in parsed:
        if experiment.source is not None:
            source = next((e for e in parsed if e.name == experiment.source), None)
            if source is None or source.kind != "search":
                raise SuiteError(
                    f"{path}: experiment {experiment.name!r} retrains from {experiment.source!r}, "
                    "which is not a search experiment of the suite."
                )
            if names.index(source.name) > names.index(experiment.name):
                raise SuiteError(
                    f"{path}: experiment {experiment.name!r} must come after its source "
                    f"{source.name!r}."
                )
    try:
        TrainConfig(**raw.get("train", {}))
    except (TypeError, ValueError) as error:
        raise SuiteError(f"{path}: invalid [train] settings: {error}") from None
    if raw.get("keep_networks", "all") not in KEEP_NETWORKS:
        raise SuiteError(
            f"{path}: keep_networks must be one of {', '.join(KEEP_NETWORKS)}, "
            f"got {raw['keep_networks']!r}."
        )
    baseline = raw.get("compare_against")
    if baseline is not None and baseline not in names:
        raise SuiteError(
            f"{path}: compare_against names {baseline!r}, which is not an experiment of the "
            f"suite; give one of {', '.join(names)}."
        )
    if "hypervolume_checkpoints" in raw:
        raw["hypervolume_checkpoints"] = _checkpoints(raw["hypervolume_checkpoints"], path)
    return Suite(
        name="+".join([path.stem, *variants]),
        experiments=parsed,
        path=path,
        seeds=tuple(int(s) for s in raw.pop("seeds")),
        max_avg_macs=float(raw.pop("max_avg_macs")),
        min_accuracy=float(raw.pop("min_accuracy")),
        differences=tuple(raw.pop("differences", ())),
        **raw,
    )
