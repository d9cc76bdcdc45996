"""Plotly figures of EENN studies and trials: the admissible front, exits, operating curves,
hypervolume, architectures; and writing them all as images and HTML pages."""

from optuna_nachos.visualization._architecture import plot_architecture
from optuna_nachos.visualization._exits import plot_exit_metrics, plot_exit_ratios
from optuna_nachos.visualization._hypervolume import hypervolume_history, plot_hypervolume_history
from optuna_nachos.visualization._operating import plot_operating_curve
from optuna_nachos.visualization._pareto import plot_pareto_front
from optuna_nachos.visualization._save import (
    FIGURE_NAMES,
    save_figures,
    study_figures,
    write_images,
)

__all__ = [
    "FIGURE_NAMES",
    "hypervolume_history",
    "plot_architecture",
    "plot_exit_metrics",
    "plot_exit_ratios",
    "plot_hypervolume_history",
    "plot_operating_curve",
    "plot_pareto_front",
    "save_figures",
    "study_figures",
    "write_images",
]
