"""The Fashion-MNIST supernet committed under ``benchmarks/results/weight_sharing/``: it loads
(half-precision weights, checked against their recorded hash) and serves candidates."""

from pathlib import Path

import pytest
import torch

from optuna_nachos.supernet import load_supernet, random_config

FOLDER = Path(__file__).resolve().parents[2] / "benchmarks/results/weight_sharing/supernet"


@pytest.mark.skipif(not FOLDER.is_dir(), reason="the committed supernet is not in this tree")
def test_the_committed_supernet_loads_and_serves_candidates():
    supernet = load_supernet(FOLDER)
    metadata = supernet.metadata
    assert metadata["complete"] and metadata["epochs_done"] == metadata["settings"]["epochs"]
    assert metadata["weights_dtype"] == "float16"
    assert supernet.weights_sha256 == metadata["weights_sha256"]
    assert (FOLDER / "supernet.pt").stat().st_size <= 16_000_000
    assert (metadata["dataset"], metadata["resolution"]) == ("fashion-mnist", 28)
    assert all(p.dtype == torch.float32 for p in supernet.parameters())
    config = random_config(torch.Generator().manual_seed(0), resolution=28)
    model = supernet.extract(config).eval()
    with torch.no_grad():
        output = model(torch.zeros(2, 1, 28, 28))
    assert len(output.logits) == 5 and output.logits[-1].shape == (2, 10)
    assert torch.isfinite(output.logits[-1]).all()
