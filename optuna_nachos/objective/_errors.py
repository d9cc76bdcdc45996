"""Typed errors of the packaged objectives."""

from __future__ import annotations

from optuna_nachos._errors import UserError


class BudgetBelowSpaceError(UserError, ValueError):
    """Raised when the budget of average MACs is below the cheapest network of the space.

    The message shows the budget as it was passed (``max_avg_macs=2.7``, not rounded);
    the command line rewords it with its own flag and the ``K``/``M``/``G`` suffixes.

    Attributes:
        budget: The budget as it was passed.
        cheapest: The MACs of the cheapest network of the space at its first exit.
    """

    def __init__(self, budget: float, cheapest: float) -> None:
        self.budget = budget
        self.cheapest = cheapest
        super().__init__(
            f"max_avg_macs={budget!r} is below the cheapest network of the space "
            f"({cheapest:,.0f} MACs at its first exit); raise the budget."
        )
