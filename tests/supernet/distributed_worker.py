"""One process of a supernet training on several processes, as ``torchrun`` starts it.

Run by ``tests/supernet/test_distributed.py`` (not a test itself). It trains a tiny supernet
on digits with ``train_supernet`` and records, in ``--record`` (outside the supernet's
folder), what this rank did: the subnet and a checksum of the images of every forward pass,
and its weights at the end. ``--hang-at-step K`` stops the process (sleeping) at the start of
its K-th step, after writing ``hanging-<rank>``, so that the test can kill it there.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from optuna_nachos.data import load_dataset
from optuna_nachos.supernet import Supernet, SupernetSettings, train_supernet
from optuna_nachos.supernet import _train as train_module


def _active(supernet: Supernet) -> list:
    net = supernet.backbone
    blocks = [
        [block.conv.active_kernel_size, block.conv.active_expand_ratio] for block in net.blocks[1:]
    ]
    return [list(net.runtime_depth), blocks]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--settings", required=True, help="SupernetSettings as JSON")
    parser.add_argument("--train-subset", type=int, default=64)
    parser.add_argument("--hang-at-step", type=int, default=None)
    parser.add_argument("--time-limit", type=float, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", "0"))
    record = Path(args.record)
    passes: list[dict] = []
    steps = {"n": 0}

    forward_stages = Supernet.forward_stages

    def recorded_forward(self, x):
        passes.append({"subnet": _active(self), "images": float(x.double().sum())})
        return forward_stages(self, x)

    Supernet.forward_stages = recorded_forward
    sandwich_step = train_module._sandwich_step

    def step(*step_args, **kwargs):
        steps["n"] += 1
        if args.hang_at_step is not None and steps["n"] == args.hang_at_step:
            (record / f"hanging-{rank}").write_text("")
            time.sleep(3600)
        return sandwich_step(*step_args, **kwargs)

    train_module._sandwich_step = step
    data = load_dataset("digits", resolution=16, seed=0, train_subset=args.train_subset)
    settings = SupernetSettings.from_dict(json.loads(args.settings))
    supernet = train_supernet(
        data, args.out, settings=settings, metadata={"data_seed": 0}, time_limit=args.time_limit
    )
    torch.save(
        {key: value.cpu() for key, value in supernet.state_dict().items()},
        record / f"weights-{rank}.pt",
    )
    (record / f"passes-{rank}.json").write_text(json.dumps(passes))
    (record / f"metadata-{rank}.json").write_text(json.dumps(supernet.metadata))


if __name__ == "__main__":
    main()
