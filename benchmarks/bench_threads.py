"""Training-step time with one torch thread against torch's default, interleaved.

Builds one digits candidate of the default space (32x32, one input channel), then times SGD
steps of its backbone on a batch of 64, alternating one thread and torch's default thread
count round by round, so that both see the same load from other work on the machine. The
record keeps the one-minute load average of every round.

Usage: ``python benchmarks/bench_threads.py [--rounds 3] [--steps 3] [--out FILE.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import optuna
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both settings")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per setting and round")
    parser.add_argument("--seed", type=int, default=3, help="seed of the sampled candidate")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "threads.json"))
    args = parser.parse_args()

    import optuna_nachos as nachos

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    default_threads = torch.get_num_threads()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    config = nachos.suggest_eenn(study.ask())
    model = nachos.build_eenn(config, num_classes=10, in_channels=1).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(64, 1, 32, 32)
    labels = torch.randint(0, 10, (64,))

    def step() -> None:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model.forward_backbone(images), labels)
        loss.backward()
        optimizer.step()

    settings = sorted({1, default_threads})
    seconds: dict[int, list[float]] = {n: [] for n in settings}
    loads = []
    for _ in range(args.rounds):
        for threads in settings:
            torch.set_num_threads(threads)
            step()  # warm-up after the change
            started = time.perf_counter()
            for _ in range(args.steps):
                step()
            seconds[threads].append((time.perf_counter() - started) / args.steps)
            loads.append(os.getloadavg()[0])
            print(f"{threads} thread(s): {seconds[threads][-1]:.2f} s/step, load {loads[-1]:.1f}")
    result = {
        "candidate": config.short_name(),
        "batch_size": 64,
        "default_threads": default_threads,
        "seconds_per_step": {str(n): statistics.median(v) for n, v in seconds.items()},
        "rounds": {str(n): v for n, v in seconds.items()},
        "load_average": loads,
        "machine": {
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["seconds_per_step"]))


if __name__ == "__main__":
    main()
