"""The graph example specs (ResNet-18, U-Net, Inception, SE block) against independent torch models.

Every reference below is a plain ``nn.Module`` written here from the published architecture
(ResNet-18 as in torchvision.models.resnet18, which must not be imported), with the same module
names as the spec's nodes. The numbers compared come from running these models, never from
archcalc: total parameters, parameter names and shapes, the output shape, and the output shape
of every node (forward hooks on the modules; merge nodes, which have no module, from the
reference forward itself).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

import archcalc
from archcalc.symbolic import evaluate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "specs"
RESNET18 = EXAMPLES / "resnet18.toml"
RESNET18_HW = EXAMPLES / "resnet18_hw.toml"
UNET = EXAMPLES / "unet.toml"
INCEPTION = EXAMPLES / "inception.toml"
SE_BLOCK = EXAMPLES / "se_block.toml"
GRAPH_SPECS = [RESNET18, RESNET18_HW, UNET, INCEPTION, SE_BLOCK]


# --------------------------------------------------------------------------- reference: ResNet-18

def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: one ``relu`` module, applied after bn1 and after the sum."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    """torchvision.models.resnet18(): BasicBlock, layers [2, 2, 2, 2], 1000 classes."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()  # torchvision calls torch.flatten(x, 1); no parameters
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))


def resnet_merge_shapes(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The spec's ``layerN.M.add`` and ``layerN.M.relu2`` nodes: the block's own output shape
    (the sum has the shape of both operands and the ReLU keeps it)."""
    out = {}
    for name, shape in shapes.items():
        if name.count(".") == 1 and name.startswith("layer"):  # a block, e.g. layer2.0
            out[f"{name}.add"] = out[f"{name}.relu2"] = shape
    return out


# --------------------------------------------------------------------------- reference: U-Net

def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
    )


class UNet(nn.Module):
    """Ronneberger et al. (2015) with padded convs and BatchNorm; depth 4, widths w..16w."""

    def __init__(self, in_channels: int = 1, classes: int = 2, width: int = 64) -> None:
        super().__init__()
        w = [width * 2**i for i in range(5)]
        self.enc1 = double_conv(in_channels, w[0])
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = double_conv(w[0], w[1])
        self.pool2 = nn.MaxPool2d(2)
        self.enc3 = double_conv(w[1], w[2])
        self.pool3 = nn.MaxPool2d(2)
        self.enc4 = double_conv(w[2], w[3])
        self.pool4 = nn.MaxPool2d(2)
        self.bottleneck = double_conv(w[3], w[4])
        self.up4 = nn.ConvTranspose2d(w[4], w[3], kernel_size=2, stride=2)
        self.dec4 = double_conv(2 * w[3], w[3])
        self.up3 = nn.ConvTranspose2d(w[3], w[2], kernel_size=2, stride=2)
        self.dec3 = double_conv(2 * w[2], w[2])
        self.up2 = nn.ConvTranspose2d(w[2], w[1], kernel_size=2, stride=2)
        self.dec2 = double_conv(2 * w[1], w[1])
        self.up1 = nn.ConvTranspose2d(w[1], w[0], kernel_size=2, stride=2)
        self.dec1 = double_conv(2 * w[0], w[0])
        self.head = nn.Conv2d(w[0], classes, kernel_size=1)
        self.merges: dict[str, tuple[int, ...]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool1(e1))
        e3 = self.enc3(self.pool2(e2))
        e4 = self.enc4(self.pool3(e3))
        x = self.bottleneck(self.pool4(e4))
        for level, skip in ((4, e4), (3, e3), (2, e2), (1, e1)):
            x = torch.cat([skip, getattr(self, f"up{level}")(x)], dim=1)  # the skip first
            self.merges[f"cat{level}"] = tuple(x.shape[1:])
            x = getattr(self, f"dec{level}")(x)
        return self.head(x)


# --------------------------------------------------------------------------- reference: Inception 3a

class Inception(nn.Module):
    """GoogLeNet's inception (3a) as in the paper: conv (with bias) + ReLU, a true 5x5 branch."""

    def __init__(self) -> None:
        super().__init__()
        self.branch1 = nn.Sequential(nn.Conv2d(192, 64, 1), nn.ReLU())
        self.branch2 = nn.Sequential(nn.Conv2d(192, 96, 1), nn.ReLU(),
                                     nn.Conv2d(96, 128, 3, padding=1), nn.ReLU())
        self.branch3 = nn.Sequential(nn.Conv2d(192, 16, 1), nn.ReLU(),
                                     nn.Conv2d(16, 32, 5, padding=2), nn.ReLU())
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     nn.Conv2d(192, 32, 1), nn.ReLU())
        self.merges: dict[str, tuple[int, ...]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)
        self.merges["cat"] = tuple(out.shape[1:])
        return out


# --------------------------------------------------------------------------- reference: SE block

class SEBlock(nn.Module):
    """A ResNet basic block (64 channels, stride 1) with squeeze-and-excitation, reduction 4."""

    def __init__(self, channels: int = 64, reduced: int = 16) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, reduced, 1), nn.ReLU(),
                                nn.Conv2d(reduced, channels, 1), nn.Sigmoid())
        self.relu2 = nn.ReLU()
        self.merges: dict[str, tuple[int, ...]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        gate = self.se(out)
        out = out * gate
        self.merges["scale"] = tuple(out.shape[1:])
        out = out + x
        self.merges["add"] = tuple(out.shape[1:])
        return self.relu2(out)


# --------------------------------------------------------------------------- helpers

REFERENCES: dict[Path, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    RESNET18: (ResNet18, (3, 224, 224)),
    UNET: (UNet, (1, 128, 128)),
    INCEPTION: (Inception, (192, 28, 28)),
    SE_BLOCK: (SEBlock, (64, 32, 32)),
}


def node_names(path: Path) -> list[str]:
    """The spec's node names (blocks expanded): each must name a module of the reference, whose
    output shape is the answer."""
    return [layer.name for layer in archcalc.load_spec(path).layers]


def reference_run(model: nn.Module, sample: tuple[int, ...],
                  batch: int = 1) -> tuple[tuple[int, ...], dict[str, tuple[int, ...]]]:
    """Output shape and every named module's output shape (first call; no batch axis)."""
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, module in model.named_modules():
        if name:
            def hook(_m: nn.Module, _i: object, out: torch.Tensor, name: str = name) -> None:
                shapes.setdefault(name, tuple(out.shape[1:]))
            handles.append(module.register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(batch, *sample))
    for h in handles:
        h.remove()
    shapes.update(getattr(model, "merges", {}))
    if isinstance(model, ResNet18):
        shapes.update(resnet_merge_shapes(shapes))
    return tuple(out.shape[1:]), shapes


def numbers(shape: tuple[object, ...], values: dict[str, int] | None = None) -> tuple[int, ...]:
    return tuple(int(evaluate(s, values or {})) for s in shape)  # type: ignore[arg-type]


def param_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in model.named_parameters()}


@pytest.fixture(scope="module")
def references() -> dict[Path, tuple[nn.Module, tuple[int, ...], dict[str, tuple[int, ...]]]]:
    torch.manual_seed(0)
    runs = {}
    for path, (make, sample) in REFERENCES.items():
        model = make()
        out, shapes = reference_run(model, sample)
        runs[path] = (model, out, shapes)
    return runs


# --------------------------------------------------------------------------- the specs parse

@pytest.mark.parametrize("path", GRAPH_SPECS, ids=lambda p: p.name)
def test_spec_is_valid_toml_with_named_nodes(path):
    with path.open("rb") as f:
        doc = tomllib.load(f)
    if "blocks" in doc:
        pytest.skip("written with blocks: the node names come from their expansion")
    names = [layer["name"] for layer in doc["layers"]]
    assert len(names) == len(set(names))
    seen = {"input"}
    for layer in doc["layers"]:
        sources = layer.get("from", [])
        for source in [sources] if isinstance(sources, str) else sources:
            assert source in seen, f"{layer['name']} reads {source}, not written above"
        seen.add(layer["name"])
    assert doc.get("output", {}).get("from", names[-1]) in names


# --------------------------------------------------------------------------- the reference facts

def test_reference_models_give_the_published_numbers(references):
    resnet, out, shapes = references[RESNET18]
    assert sum(p.numel() for p in resnet.parameters()) == 11_689_512
    assert out == (1000,) and shapes["layer4"] == (512, 7, 7)
    _, out, _ = references[INCEPTION]
    assert out == (256, 28, 28)


# --------------------------------------------------------------------------- archcalc against them

@pytest.mark.parametrize("path", list(REFERENCES), ids=lambda p: p.name)
def test_total_params_and_output_shape(references, path):
    model, out, _ = references[path]
    analysis = archcalc.analyze(archcalc.load_spec(path))
    assert analysis.value(analysis.total_params) == sum(p.numel() for p in model.parameters())
    assert numbers(analysis.output_shape, analysis.values) == out


@pytest.mark.parametrize("path", list(REFERENCES), ids=lambda p: p.name)
def test_parameter_names_mirror_the_module_tree(references, path):
    model = references[path][0]
    assert param_shapes(archcalc.build(archcalc.load_spec(path))) == param_shapes(model)


@pytest.mark.parametrize("path", list(REFERENCES), ids=lambda p: p.name)
def test_every_node_shape(references, path):
    _, _, shapes = references[path]
    analysis = archcalc.analyze(archcalc.load_spec(path))
    names = node_names(path)
    assert set(names) <= set(shapes), f"no reference shape for {sorted(set(names) - set(shapes))}"
    got = {n: numbers(analysis.node(n).out_shape, analysis.values) for n in names}
    assert got == {n: shapes[n] for n in names}


# --------------------------------------------------------------------------- ResNet-18 at any H x W

def test_resnet18_hw_at_224_matches_the_numeric_spec(references):
    model, out, shapes = references[RESNET18]
    analysis = archcalc.analyze(archcalc.load_spec(RESNET18_HW), {"H": 224, "W": 224})
    assert analysis.value(analysis.total_params) == 11_689_512
    assert numbers(analysis.output_shape, {"H": 224, "W": 224}) == out
    names = node_names(RESNET18_HW)
    assert names == node_names(RESNET18)
    assert {n: numbers(analysis.node(n).out_shape, {"H": 224, "W": 224}) for n in names} == {
        n: shapes[n] for n in names}
    assert param_shapes(archcalc.build(archcalc.load_spec(RESNET18_HW))) == param_shapes(model)


# What torch does at other sizes (recorded by running the reference, not from archcalc): every
# stage rounds up (conv1 and the stride-2 convs and the 1x1 downsample both give ceil(n/2)), so
# the residual sums always agree and ResNet-18 runs for every H, W >= 1.
RESNET_SIZES = [(1, 1), (32, 32), (33, 48), (64, 64), (100, 100)]


@pytest.mark.parametrize(("h", "w"), RESNET_SIZES)
def test_resnet18_reference_at_other_sizes(references, h, w):
    model = references[RESNET18][0]
    out, shapes = reference_run(model, (3, h, w))
    assert out == (1000,)
    assert shapes["layer4"] == (512, -(-h // 32), -(-w // 32))


def test_resnet18_hw_condition_is_exactly_where_torch_runs(references):
    """archcalc's derived range for H (and W) against the reference, value by value at the boundary."""
    analysis = archcalc.analyze(archcalc.load_spec(RESNET18_HW))
    model = references[RESNET18][0]
    for h in range(1, 41):
        try:
            out, _ = reference_run(model, (3, h, 5))
            runs = out == (1000,)
        except RuntimeError:
            runs = False
        assert analysis.ranges["H"].contains(h) == runs, h
    assert analysis.ranges["W"].text("W") == "W >= 1"


def test_resnet18_hw_node_shapes_at_an_odd_non_square_size(references):
    h, w = 33, 48
    out, shapes = reference_run(references[RESNET18][0], (3, h, w))
    values = {"H": h, "W": w}
    analysis = archcalc.analyze(archcalc.load_spec(RESNET18_HW), values)
    names = node_names(RESNET18_HW)
    assert {n: numbers(analysis.node(n).out_shape, values) for n in names} == {n: shapes[n] for n in names}
    assert numbers(analysis.output_shape, values) == out


# --------------------------------------------------------------------------- U-Net at H x W

@pytest.mark.parametrize("size", [16, 32, 48, 64, 128])
def test_unet_shapes_at_multiples_of_16(references, size):
    model, out, shapes = references[UNET]  # run at 128 x 128 by the fixture
    if size != 128:
        out, shapes = reference_run(model, (1, size, size))
    values = {"H": size, "W": size}
    analysis = archcalc.analyze(archcalc.load_spec(UNET), values)
    assert numbers(analysis.output_shape, values) == out == (2, size, size)
    names = node_names(UNET)
    assert {n: numbers(analysis.node(n).out_shape, values) for n in names} == {n: shapes[n] for n in names}


@pytest.mark.parametrize(("h", "w"), [(100, 100), (24, 16), (16, 40), (8, 8)])
def test_unet_reference_fails_off_multiples_of_16(references, h, w):
    """100 -> 50 -> 25 -> 12 -> 6: up-sampling 12 gives 24, which cannot join the 25 skip."""
    with pytest.raises(RuntimeError):
        reference_run(references[UNET][0], (1, h, w))


# --------------------------------------------------------------------------- the CLI

@pytest.mark.parametrize("path", GRAPH_SPECS, ids=lambda p: p.name)
def test_cli_check_passes(path):
    from typer.testing import CliRunner

    from archcalc.cli import app

    result = CliRunner(env={"COLUMNS": "110", "NO_COLOR": "1"}).invoke(app, ["check", str(path)])
    assert result.exit_code == 0, result.stdout
