"""Blocks: ResNet-50 and MobileNetV2 written with blocks, against reference torch models written here.

The references follow torchvision's model code (torchvision itself must not be imported here):
same module tree, so parameter names agree. What is compared comes from torch: parameter and
buffer names and shapes, the state dict loading strictly, identical outputs with identical
weights, node shapes from forward hooks, and torchinfo's depth view (rows, output shapes,
parameters per row).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchinfo
from torch import nn

import archcalc
from archcalc.analysis.tree import summary

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "specs"
RESNET50 = EXAMPLES / "resnet50.toml"
MOBILENET = EXAMPLES / "mobilenet_v2.toml"
RESNET18 = EXAMPLES / "resnet18.toml"


# --------------------------------------------------------------------------- reference: ResNet-50

class Bottleneck(nn.Module):
    """torchvision's Bottleneck (v1.5: the stride on the 3x3 conv)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet50(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, stride=2)
        self.layer3 = self._make_layer(256, 6, stride=2)
        self.layer4 = self._make_layer(512, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2048, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --------------------------------------------------------------------------- reference: MobileNetV2

class ConvNormActivation(nn.Sequential):
    """torchvision's Conv2dNormActivation with BatchNorm2d and ReLU6."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(nn.Conv2d(cin, cout, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = inp * expand_ratio  # torchvision: int(round(inp * t)), t an integer here
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormActivation(inp, hidden, kernel_size=1))
        layers += [ConvNormActivation(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                   [6, 160, 3, 2], [6, 320, 1, 1]]
        cin = 32
        features: list[nn.Module] = [ConvNormActivation(3, cin, stride=2)]
        for t, c, n, s in setting:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, expand_ratio=t))
                cin = c
        features.append(ConvNormActivation(cin, 1280, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# nodes of the specs that torch code writes as function calls (the sum, torch.flatten, F's pool) or
# as a second call of one module (the bottleneck's relu, applied three times)
SPEC_ONLY = {"add", "flatten", "pool", "relu_2", "relu_3"}
REFERENCES = {RESNET50: (ResNet50, 25_557_032), MOBILENET: (MobileNetV2, 3_504_872)}


@pytest.fixture(scope="module")
def models() -> dict[Path, tuple[nn.Module, nn.Module]]:
    """(reference, archcalc's build) per spec."""
    torch.manual_seed(0)
    return {path: (make(), archcalc.build(archcalc.load_spec(path))) for path, (make, _) in REFERENCES.items()}


def shapes(named) -> dict[str, tuple[int, ...]]:
    return {n: tuple(t.shape) for n, t in named}


# --------------------------------------------------------------------------- the examples

@pytest.mark.parametrize("path", [RESNET50, MOBILENET, RESNET18], ids=lambda p: p.stem)
def test_examples_are_under_120_lines(path):
    assert len(path.read_text().splitlines()) < 120


@pytest.mark.parametrize("path", list(REFERENCES), ids=lambda p: p.stem)
def test_published_counts_from_the_reference_and_from_the_spec(models, path):
    reference, _ = models[path]
    published = REFERENCES[path][1]
    assert sum(p.numel() for p in reference.parameters()) == published
    analysis = archcalc.analyze(archcalc.load_spec(path))
    assert analysis.total_params == published
    assert analysis.output_shape == (1000,)


@pytest.mark.parametrize("path", list(REFERENCES), ids=lambda p: p.stem)
def test_parameter_and_buffer_names_and_shapes(models, path):
    reference, built = models[path]
    assert shapes(built.named_parameters()) == shapes(reference.named_parameters())
    assert shapes(built.named_buffers()) == shapes(reference.named_buffers())


@pytest.mark.parametrize("path", list(REFERENCES), ids=lambda p: p.stem)
def test_same_weights_give_the_same_outputs(models, path):
    """The strongest check of the wiring: the reference's state dict loads strictly, and both give the
    same logits (eval mode) on the same input."""
    reference, built = models[path]
    built.load_state_dict(reference.state_dict(), strict=True)
    reference.eval()
    built.eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(built(x), reference(x), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("path", list(REFERENCES), ids=lambda p: p.stem)
def test_every_node_with_a_module_has_the_reference_shape(models, path):
    reference, _ = models[path]
    recorded: dict[str, tuple[int, ...]] = {}
    modules = dict(reference.named_modules())
    def hook(name: str):
        def record(module: nn.Module, args: object, output: torch.Tensor) -> None:
            recorded.setdefault(name, tuple(output.shape[1:]))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items() if name]
    try:
        with torch.no_grad():
            reference.eval()(torch.zeros(1, 3, 224, 224))
    finally:
        for handle in handles:
            handle.remove()
    analysis = archcalc.analyze(archcalc.load_spec(path))
    in_reference = [node for node in analysis.layers if node.name in modules]
    spec_only = {node.name.rsplit(".", 1)[-1] for node in analysis.layers if node.name not in modules}
    assert spec_only <= SPEC_ONLY, spec_only  # what torch code writes as function calls
    for node in in_reference:
        if not node.shared_with and node.name in recorded:  # a shared ReLU's first call is another node's
            assert node.out_shape == recorded[node.name], node.name


def torchinfo_rows(model: nn.Module, depth: int) -> dict[str, tuple[tuple[int, ...], int]]:
    """torchinfo's depth view: dotted path -> (per-sample output shape, parameters), first call only."""
    info = torchinfo.summary(model, input_size=(1, 3, 224, 224), depth=depth, verbose=0)
    rows: dict[str, tuple[tuple[int, ...], int]] = {}
    for layer in info.summary_list:
        if layer.depth == 0 or layer.depth > depth:
            continue
        parts, parent = [layer.var_name], layer.parent_info
        while parent is not None and parent.depth > 0:
            parts.insert(0, parent.var_name)
            parent = parent.parent_info
        params = sum(p.numel() for p in layer.module.parameters())
        rows.setdefault(".".join(parts), (tuple(layer.output_size[1:]), params))
    return rows


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("path", list(REFERENCES), ids=lambda p: p.stem)
def test_depth_summary_matches_torchinfo(models, path, depth):
    reference, _ = models[path]
    theirs = torchinfo_rows(reference.eval(), depth)
    analysis = archcalc.analyze(archcalc.load_spec(path))
    ours = {row.name: (row.output.out_shape, row.params) for row in summary(analysis, depth)}
    spec_only = {name.rsplit(".", 1)[-1] for name in set(ours) - set(theirs)}
    assert spec_only <= SPEC_ONLY, spec_only
    assert set(theirs) <= set(ours)
    assert {n: ours[n] for n in theirs} == theirs
    order = [n for n in ours if n in theirs]
    assert order == list(theirs)  # the same rows in the same order


def test_check_compares_parameter_names_with_the_model():
    """check against a model whose module tree differs: the node and the names are reported."""
    from archcalc.pytorch.crosscheck import crosscheck

    analysis = archcalc.analyze(archcalc.load_spec(RESNET18))
    built = archcalc.build(archcalc.load_spec(RESNET18))
    report = crosscheck(analysis, built)
    assert not report.failed
    names = next(r for r in report.results if r.what == "parameter names and shapes")
    assert names.ok and names.actual == "62 tensors"
    built.fc = nn.Sequential(built.fc)  # the same tensors under other names: fc.0.weight, fc.0.bias
    report = crosscheck(analysis, built)
    failed = {(r.layer, r.what): r for r in report.failed}
    node = failed[("layer 69 'fc' (Linear)", "parameter names")]
    assert (node.expected, node.actual) == ("weight [1000, 512], bias [1000]", "0.weight [1000, 512], 0.bias [1000]")
    model = failed[("model", "parameter names and shapes")]
    assert model.actual == "62 tensors"  # as many tensors, under other names
    assert not any(r.what == "torch" for r in report.failed)  # shapes and counts alone would not see it


def test_json_carries_the_tree(cli):
    import json

    doc = json.loads(cli("params", str(RESNET50), "--json", "--depth", "1").stdout)
    node = next(n for n in doc["layers"] if n["name"] == "layer2.0.downsample.0")
    assert node["path"] == ["layer2", "layer2.0", "layer2.0.downsample"]
    uses = {b["name"]: b for b in doc["blocks"]}
    assert uses["layer2"] == {"name": "layer2", "block": "bottleneck", "repeat": 4, "output": "layer2.3.relu_3",
                              "args": {"planes": 128}, "first": {"inplanes": 256, "stride": 2}}
    assert uses["layer2.1"]["args"] == {"planes": 128, "inplanes": 512, "stride": 1, "project": False}
    rows = {r["name"]: r for r in doc["summary"]}
    assert list(rows) == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                          "avgpool", "flatten", "fc"]
    assert rows["layer3"] == {"name": "layer3", "depth": 1, "kind": "bottleneck x6", "leaf": False, "nodes": 62,
                              "output": "layer3.5.relu_3", "output_shape": [1024, 14, 14], "params": 7098368,
                              "trainable_params": 7098368}
    assert sum(r["params"] for r in rows.values()) == doc["total_params"] == 25_557_032


def test_depth_refuses_node_views(cli):
    result = cli("shapes", str(RESNET50), "--depth", "1", "--explain")
    assert result.exit_code == 2 and "--depth folds nodes into blocks" in result.stderr
