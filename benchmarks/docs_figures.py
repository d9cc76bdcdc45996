"""Regenerate the figures of the visualization guide (docs/guide/visualization.md).

Runs a small real search on the bundled digits (16x16 images, a reduced MobileNetV3 space,
short training) in a temporary SQLite study, with a MAC budget and an accuracy floor that
leave some trials admissible and others not. The first trial is enqueued with an expensive
first exit, so the static guard rejects it without training. Then
``optuna_nachos.visualization.save_figures`` writes every figure as a PNG image into the
output folder (``docs/images/visualization/`` of this repository by default).

Usage: ``python benchmarks/docs_figures.py [--n-trials 16] [--seed 0] [--out DIR]``.
Needs kaleido and Chrome for the PNG export (``plotly_get_chrome`` installs Chrome).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna
import torch

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "visualization"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=16, help="trials of the search (16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random sampler (0)")
    parser.add_argument("--max-avg-macs", type=float, default=0.9e6, help="MAC budget (0.9e6)")
    parser.add_argument("--min-accuracy", type=float, default=0.3, help="accuracy floor (0.3)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: docs/images/visualization of this repository)",
    )
    args = parser.parse_args()

    import optuna_nachos as nachos
    from optuna_nachos.visualization import save_figures

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = nachos.MobileNetV3Space(resolutions=(16,), depths=(2,), expand_ratios=(3, 4))
    objective = nachos.NachosObjective(
        dataset="digits",
        space=space,
        max_avg_macs=args.max_avg_macs,
        min_accuracy=args.min_accuracy,
        train_config=nachos.TrainConfig(
            backbone_epochs=6, warmup_epochs=2, exit_epochs=2, progress=False, batch_size=64
        ),
    )
    expensive_first_exit = nachos.EENNConfig(
        depths=(2,) * 5,
        kernel_sizes=((7, 7),) * 5,
        expand_ratios=((4, 4),) * 5,
        exit_stages=(4,),
        resolution=16,
    )
    with tempfile.TemporaryDirectory() as tmp:
        study = nachos.create_study(
            storage=f"sqlite:///{Path(tmp) / 'study.db'}",
            study_name="digits",
            sampler=nachos.create_sampler("random", seed=args.seed),
            settings=objective.settings(),
        )
        study.enqueue_trial(space.params_from_config(expensive_first_exit))
        started = time.perf_counter()
        nachos.run_search(study, objective, n_trials=args.n_trials)
        print(f"search: {args.n_trials} trials in {time.perf_counter() - started:.0f} s")
        front = nachos.admissible_trials(study)
        print("admissible trials:", [t.number for t in front])
        paths = save_figures(study, args.out or DEFAULT_OUT, include_html=False)
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
