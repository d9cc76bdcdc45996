"""The record of where a benchmark ran: versions, machine, device, commit."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

_PACKAGES = (
    "optuna-nachos",
    "optuna",
    "torch",
    "torchvision",
    "numpy",
    "scikit-learn",
    "plotly",
    "fvcore",
    "optuna-dashboard",
)


def cpu_model() -> str:
    """The CPU model name (from ``/proc/cpuinfo`` on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(folder: str | Path = ".") -> dict[str, Any]:
    """The checked-out commit of the repository holding ``folder`` and whether the tree has
    uncommitted changes to tracked files (``None`` values outside a repository)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def environment_record(*, seeds: Any = None, device: str | None = None) -> dict[str, Any]:
    """Package versions, Python, platform, CPU and GPU models, threads, commit and time.

    Args:
        seeds: The seeds of the run, recorded as given.
        device: The training device the run asked for.
    """
    cuda = torch.cuda.is_available()
    return {
        "packages": _versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "cuda_available": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "git": git_commit(),
        "seeds": seeds,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
