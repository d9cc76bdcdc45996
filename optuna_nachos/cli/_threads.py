"""The number of torch CPU threads a search uses by default.

PyTorch's default (one intra-op thread per physical core) is the fastest on an idle machine,
but on a small machine that other work shares it is several times slower than one thread: the
threads wait for each other at every operation while the other work holds the cores. The
``auto`` setting gives each search the cores that are idle when it starts: the usable cores
less the one-minute load average, rounded, at least one and at most torch's default.
"""

from __future__ import annotations

import argparse
import os

AUTO = "auto"


def parse_threads(text: str) -> int | str:
    """Parse ``--threads``: a positive integer, or ``auto``."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")
    return value


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def load_average() -> float | None:
    """The one-minute load average, or ``None`` where the system has none (Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def choose_threads(*, default: int, cpus: int, load: float | None) -> int:
    """The thread count of the ``auto`` setting.

    Args:
        default: Torch's default thread count (its upper bound).
        cpus: The usable CPUs.
        load: The one-minute load average before the search starts; ``None`` (unknown)
            keeps torch's default.

    Returns:
        The idle cores, rounded: ``round(cpus - load)``, clipped to ``[1, default]``.
    """
    if load is None:
        return max(1, default)
    idle = round(cpus - load)
    return max(1, min(default, idle))


def set_threads(setting: int | str) -> tuple[int, str]:
    """Apply ``--threads`` to torch.

    Args:
        setting: A thread count, or ``"auto"``.

    Returns:
        The thread count set, and a one-line reason for it.
    """
    import torch

    if setting != AUTO:
        torch.set_num_threads(int(setting))
        return int(setting), "--threads"
    default = torch.get_num_threads()
    cpus = usable_cpus()
    load = load_average()
    threads = choose_threads(default=default, cpus=cpus, load=load)
    torch.set_num_threads(threads)
    reason = "torch's default" if load is None else f"auto: load {load:.1f} on {cpus} CPUs"
    return threads, reason
