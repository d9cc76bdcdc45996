"""Settings shared by every test."""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread: the small networks of the tests gain nothing from
    more, and on a busy machine OpenMP threads waiting for each other are many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
