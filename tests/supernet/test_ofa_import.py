"""Starting from OFA's checkpoint format: our extracted subnets equal OFA's own subnets."""

import pytest
import torch

from optuna_nachos.supernet import SupernetError, import_ofa_checkpoint, random_config
from optuna_nachos.supernet._network import config_choices, new_ofa_backbone


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A randomly initialized OFAMobileNetV3 saved as OFA saves its checkpoints."""
    torch.manual_seed(0)
    net = new_ofa_backbone(1000)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("ofa") / "ofa_mbv3_d234_e346_k357_w1.0"
    torch.save({"state_dict": net.state_dict()}, path)
    return path, net.eval()


def test_extracted_subnets_equal_ofa_subnets(checkpoint):
    path, ofa_net = checkpoint
    supernet = import_ofa_checkpoint(path, resolution=32).eval()
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(3, 3, 32, 32)
    for _ in range(3):
        config = random_config(generator, resolution=32)
        kernels, expands, depths = config_choices(config)
        ofa_net.set_active_subnet(ks=kernels, e=expands, d=depths)
        reference = ofa_net.get_active_subnet(preserve_weight=True).eval()
        model = supernet.extract(config).eval()
        with torch.no_grad():
            torch.testing.assert_close(
                model.forward_backbone(x), reference(x), atol=1e-4, rtol=1e-4
            )


def test_classifier_and_channels_are_adapted(checkpoint):
    path, ofa_net = checkpoint
    supernet = import_ofa_checkpoint(path, num_classes=10, in_channels=1, resolution=28)
    assert supernet.backbone.classifier.linear.out_features == 10
    first = supernet.backbone.first_conv.conv
    assert first.in_channels == 1
    torch.testing.assert_close(
        first.weight, ofa_net.first_conv.conv.weight.sum(dim=1, keepdim=True)
    )
    config = random_config(torch.Generator().manual_seed(0), resolution=28)
    out = supernet.extract(config).eval()(torch.randn(2, 1, 28, 28))
    assert out.logits[-1].shape == (2, 10)


def test_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(SupernetError, match="no OFA checkpoint"):
        import_ofa_checkpoint(tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"state_dict": {"conv.weight": torch.zeros(1)}}, wrong)
    with pytest.raises(SupernetError, match="not an OFA MobileNetV3 checkpoint"):
        import_ofa_checkpoint(wrong)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(SupernetError, match="not a readable PyTorch checkpoint"):
        import_ofa_checkpoint(garbage)
