"""Every figure of a study at once: as figure objects, or written as images and HTML pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import plotly.graph_objects as go
import plotly.io as pio
from optuna.trial import FrozenTrial

from optuna_nachos._logging import get_logger
from optuna_nachos.record import IN_CHANNELS_SETTING, NUM_CLASSES_SETTING, study_settings
from optuna_nachos.results import admissible_trials, high_tradeoff_trials
from optuna_nachos.visualization._architecture import plot_architecture
from optuna_nachos.visualization._common import check_study
from optuna_nachos.visualization._exits import plot_exit_metrics, plot_exit_ratios
from optuna_nachos.visualization._hypervolume import plot_hypervolume_history
from optuna_nachos.visualization._operating import plot_operating_curve
from optuna_nachos.visualization._pareto import plot_pareto_front

_logger = get_logger(__name__)

FIGURE_NAMES = (
    "pareto_front",
    "exit_ratios",
    "hypervolume_history",
    "exit_metrics",
    "operating_curve",
    "architecture",
)
"""Names of the figures of :func:`study_figures`, also the file names of :func:`save_figures`."""

IMAGE_FORMATS = ("png", "svg", "pdf", "jpeg", "webp")

_IMAGE_SIZES = {"architecture": (1300, 520), "exit_metrics": (900, 700)}
_DEFAULT_IMAGE_SIZE = (900, 600)


def _chosen_trial(study: optuna.Study, trial: FrozenTrial | int | None) -> FrozenTrial | None:
    if isinstance(trial, FrozenTrial):
        return trial
    trials = study.get_trials(deepcopy=False)
    if trial is not None:
        if not 0 <= trial < len(trials):
            raise ValueError(f"study {study.study_name!r} has no trial {trial}.")
        return trials[trial]
    front = admissible_trials(study)
    return high_tradeoff_trials(front, n=1)[0] if front else None


def _build(figures: dict[str, go.Figure], name: str, build: Callable[[], go.Figure]) -> None:
    try:
        figures[name] = build()
    except ValueError as error:
        _logger.info("Figure %s left out: %s", name, error)


def study_figures(
    study: optuna.Study, *, trial: FrozenTrial | int | None = None
) -> dict[str, go.Figure]:
    """Every figure of an EENN study, by name.

    Study-level figures: ``pareto_front``, ``exit_ratios`` (an explanatory figure when no
    trial is admissible; left out when the admissible trials lack the attributes
    ``NachosObjective`` writes) and ``hypervolume_history`` (left out when the study records no
    budget and floor). Trial-level figures, for ``trial`` or else the best trade-off trial
    of the admissible front (:func:`~optuna_nachos.results.high_tradeoff_trials` with
    ``n=1``): ``exit_metrics``, ``operating_curve`` and ``architecture``; they are left out
    when no trial is admissible, and each is left out when the trial lacks what it needs.

    Args:
        study: A study of :class:`~optuna_nachos.NachosObjective` trials.
        trial: The trial of the trial-level figures (a trial or its number).

    Returns:
        Figures in the order of :data:`FIGURE_NAMES`.

    Raises:
        ValueError: If ``trial`` is a number the study does not have.
    """
    check_study(study, figure="study_figures")
    figures = {"pareto_front": plot_pareto_front(study)}
    _build(figures, "exit_ratios", lambda: plot_exit_ratios(study))
    _build(figures, "hypervolume_history", lambda: plot_hypervolume_history(study))
    chosen = _chosen_trial(study, trial)
    if chosen is None:
        _logger.info("No admissible trial: the trial-level figures are left out.")
        return figures
    _build(figures, "exit_metrics", lambda: plot_exit_metrics(chosen))
    _build(figures, "operating_curve", lambda: plot_operating_curve(chosen, study=study))
    settings = study_settings(study)
    _build(
        figures,
        "architecture",
        lambda: plot_architecture(
            chosen,
            num_classes=settings.get(NUM_CLASSES_SETTING),
            in_channels=settings.get(IN_CHANNELS_SETTING),
        ),
    )
    return figures


_image_export_problem: str | None = None
"""Why image export failed in this process (it is not tried again), or ``None``."""


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def write_images(
    figures: dict[str, go.Figure],
    paths: dict[str, Path],
    *,
    sizes: dict[str, tuple[int, int]] | None = None,
    scale: float = 2.0,
) -> bool:
    """Write figures as static images through plotly's kaleido, which needs Chrome.

    When kaleido or Chrome is missing, one warning of one line says so the first time, and
    later calls in the same process write nothing without trying again (kaleido's own
    message runs over many lines).

    Args:
        figures: Figures by name.
        paths: Image path of every figure, by name; the suffix gives the format.
        sizes: ``(width, height)`` in pixels by name (default 900 x 600).
        scale: Pixel scale of raster images.

    Returns:
        Whether the images were written.
    """
    global _image_export_problem
    if _image_export_problem is not None:
        _logger.debug("Images not written: %s", _image_export_problem)
        return False
    chosen = [(sizes or {}).get(name, _DEFAULT_IMAGE_SIZE) for name in figures]
    try:
        if hasattr(pio, "write_images"):
            pio.write_images(
                list(figures.values()),
                [paths[name] for name in figures],
                width=[w for w, _ in chosen],
                height=[h for _, h in chosen],
                scale=scale,
            )
        else:
            for (name, fig), (width, height) in zip(figures.items(), chosen):
                fig.write_image(paths[name], width=width, height=height, scale=scale)
    except Exception as error:  # kaleido missing, Chrome missing or failing: HTML still works
        _image_export_problem = _first_line(error)
        _logger.warning(
            "Images not written (%s); HTML pages only. For images, install kaleido and a "
            "Chrome or Chromium browser (`plotly_get_chrome`).",
            _image_export_problem,
        )
        return False
    return True


def save_figures(
    study: optuna.Study,
    folder: str | Path,
    *,
    image_format: str | None = "png",
    include_html: bool = True,
    trial: FrozenTrial | int | None = None,
    scale: float = 2.0,
    include_plotlyjs: bool | str = True,
) -> dict[str, Path]:
    """Write every figure of :func:`study_figures` into a folder.

    Each figure ``name`` becomes ``folder/name.<image_format>`` (a static image, through
    plotly's kaleido and Chrome) and, with ``include_html``, ``folder/name.html`` (an
    interactive page). When images cannot be exported (kaleido or Chrome missing), a warning
    is logged and only the HTML pages are written.

    Args:
        study: A study of :class:`~optuna_nachos.NachosObjective` trials.
        folder: Output folder, created if needed.
        image_format: ``"png"``, ``"svg"``, ``"pdf"``, ``"jpeg"``, ``"webp"``, or ``None`` for
            no images.
        include_html: Also write standalone HTML pages.
        trial: The trial of the trial-level figures (default: the best trade-off trial).
        scale: Pixel scale of raster images (2 doubles the resolution).
        include_plotlyjs: Passed to :meth:`plotly.graph_objects.Figure.write_html`: ``True``
            embeds plotly.js (pages work offline, about 5 MB each), ``"cdn"`` links it.

    Returns:
        Figure name -> path of the image, or of the HTML page when no image was written.

    Raises:
        ValueError: If ``image_format`` is unknown, or nothing would be written.
    """
    if image_format is not None and image_format not in IMAGE_FORMATS:
        raise ValueError(
            f"image_format must be one of {IMAGE_FORMATS} or None, got {image_format!r}."
        )
    if image_format is None and not include_html:
        raise ValueError("nothing to write: pass an image_format or include_html=True.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures = study_figures(study, trial=trial)
    written: dict[str, Path] = {}
    if include_html:
        for name, fig in figures.items():
            path = folder / f"{name}.html"
            fig.write_html(path, include_plotlyjs=include_plotlyjs)
            written[name] = path
    if image_format is not None:
        paths = {name: folder / f"{name}.{image_format}" for name in figures}
        if write_images(figures, paths, sizes=_IMAGE_SIZES, scale=scale):
            written.update(paths)
    return written
