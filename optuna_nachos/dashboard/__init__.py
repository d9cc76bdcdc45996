"""optuna-dashboard integration: attached figures, a summary note, constraint-aware serving.

optuna-dashboard is an optional dependency (``pip install "optuna-nachos[dashboard]"``); it is
imported only when a function here needs it.
"""

from optuna_nachos.dashboard._attach import (
    GRAPH_ID_PREFIX,
    Attachments,
    DashboardCallback,
    attach,
    attached_graph_ids,
    graph_id,
    import_dashboard,
)
from optuna_nachos.dashboard._server import dashboard_app, run_dashboard
from optuna_nachos.dashboard._storage import ConstraintView, with_legacy_constraints

__all__ = [
    "GRAPH_ID_PREFIX",
    "Attachments",
    "ConstraintView",
    "DashboardCallback",
    "attach",
    "attached_graph_ids",
    "dashboard_app",
    "graph_id",
    "import_dashboard",
    "run_dashboard",
    "with_legacy_constraints",
]
