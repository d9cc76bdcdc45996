import pytest
import torch


@pytest.fixture(autouse=True)
def _single_torch_thread():
    """Run torch on one thread: the GP sampler and the tiny networks here gain nothing from
    more, and on a busy machine OpenMP threads waiting for each other are many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
