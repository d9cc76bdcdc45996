"""Cutting torchvision and timm models into stages (random weights, nothing downloaded)."""

import pytest
import torch
import torchvision
from torch import nn

from optuna_nachos.models import BackboneStages, ChainHead, attach_exits, cut_stages


def _chain(stages: BackboneStages, x: torch.Tensor) -> torch.Tensor:
    for segment in stages.segments:
        x = segment(x)
    return stages.final_head(x)


@pytest.mark.parametrize(
    ("factory", "shape", "names"),
    [
        (torchvision.models.resnet18, (3, 32, 32), ("layer1", "layer2", "layer3", "layer4")),
        (
            torchvision.models.mobilenet_v3_small,
            (3, 64, 64),
            ("features.1", "features.3", "features.8", "features.12"),
        ),
        (
            torchvision.models.efficientnet_b0,
            (3, 64, 64),
            ("features.2", "features.3", "features.5", "features.8"),
        ),
    ],
)
def test_torchvision_models_are_cut_at_their_stages(factory, shape, names):
    torch.manual_seed(0)
    model = factory(num_classes=5).eval()
    stages = cut_stages(model, input_shape=shape)
    assert stages.names == names
    assert stages.num_stages == len(names)
    x = torch.randn(3, *shape)
    with torch.no_grad():
        assert torch.allclose(_chain(stages, x), model(x), atol=1e-5)
    # the stages share the model's modules (and weights)
    model_params = {id(p) for p in model.parameters()}
    stage_params = {id(p) for s in stages.segments for p in s.parameters()}
    assert stage_params <= model_params
    shapes = stages.feature_shapes()
    assert [s[1] for s in shapes] == sorted((s[1] for s in shapes), reverse=True)


def test_timm_models_are_cut_through_feature_info():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    resnet = timm.create_model("resnet18", num_classes=4, pretrained=False).eval()
    stages = cut_stages(resnet, input_shape=(3, 32, 32))
    assert stages.names == ("layer1", "layer2", "layer3", "layer4")
    mobile = timm.create_model("mobilenetv3_small_050", num_classes=4, pretrained=False).eval()
    stages = cut_stages(mobile, input_shape=(3, 64, 64))
    expected = [f["module"] for f in mobile.feature_info][1:-1]
    assert list(stages.names[:-1]) == expected
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(_chain(stages, x), mobile(x), atol=1e-5)


def test_explicit_cuts_and_head_start():
    model = torchvision.models.resnet18(num_classes=3).eval()
    stages = cut_stages(model, input_shape=(3, 32, 32), cut_after=["layer2"], head_start="avgpool")
    assert stages.names == ("layer2", "layer4")
    assert isinstance(stages.final_head, ChainHead)
    assert stages.final_head.names == ("avgpool", "fc")
    opened = cut_stages(model, input_shape=(3, 32, 32), cut_after=["layer3.0"])
    assert opened.names == ("layer3.0", "layer4")


def test_cut_errors_say_what_to_pass():
    model = torchvision.models.resnet18(num_classes=3)
    with pytest.raises(ValueError, match="available"):
        cut_stages(model, input_shape=(3, 32, 32), cut_after=["layer9"])
    with pytest.raises(ValueError, match="head_start"):
        cut_stages(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), input_shape=(3, 8, 8))

    class NotAChain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
            self.b = nn.Conv2d(4, 4, 3, stride=2, padding=1)
            self.c = nn.Conv2d(4, 4, 3, stride=2, padding=1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            x = self.a(x)
            x = self.b(x) + torch.nn.functional.avg_pool2d(x, 2)  # a skip the chain misses
            return self.fc(self.c(x).mean((2, 3)))

    with pytest.raises(ValueError, match="not a chain"):
        cut_stages(NotAChain(), input_shape=(3, 16, 16), cut_after=["b"])


def test_attach_exits_takes_one_head_design_per_exit_and_pools():
    model = torchvision.models.resnet18(num_classes=3)
    stages = cut_stages(model, input_shape=(3, 32, 32))
    network = attach_exits(
        stages.segments,
        stages.final_head,
        exit_after=[0, 2],
        num_classes=3,
        input_shape=stages.input_shape,
        head=["mbconv", "nachos"],
        pools=[2, 1],
    )
    assert network.exit_head_names == ("mbconv", "nachos")
    assert network.exit_pools == (2, 1)
    assert network.input_shape == (3, 32, 32)
    with pytest.raises(ValueError, match="one design per exit"):
        attach_exits(
            stages.segments,
            stages.final_head,
            exit_after=[0, 2],
            num_classes=3,
            input_shape=(3, 32, 32),
            head=["mbconv"],
        )
