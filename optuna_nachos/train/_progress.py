"""Whether training shows progress bars."""

from __future__ import annotations

import sys


def show_progress(progress: bool | None) -> bool:
    """Whether to show progress bars: ``progress`` when set, else whether stderr is a terminal.

    Args:
        progress: ``True`` or ``False`` to decide, ``None`` to follow the terminal.
    """
    if progress is not None:
        return progress
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
