"""archcalc import / export: models written here (torchvision cannot be imported in this environment),
traced with torch.fx, verified, checked, exported to Python and imported back to the same spec."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from torch import nn
from torch.nn import functional as F

import archcalc
from archcalc.errors import CheckError, UsageError
from archcalc.pytorch.exporter import export_python
from archcalc.pytorch.importer import import_model, parse_kwarg, parse_shape, symbol_axes

sys.path.insert(0, str(Path(__file__).parent))
from test_blocks import MobileNetV2, ResNet50

# --------------------------------------------------------------------------- models of the import tests


class Residual(nn.Module):
    """A ResNet basic block with a projection shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNetish(nn.Module):
    def __init__(self, num_classes: int = 10, widths: tuple[int, ...] = (8, 16)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            layers.append(nn.Sequential(Residual(cin, w, 1 if i == 0 else 2), Residual(w, w)))
            cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.layers(self.conv1(x)))
        return self.fc(torch.flatten(x, 1))


class DenseBlock(nn.Module):
    """DenseNet: each layer sees the concatenation of everything before it."""

    def __init__(self, cin: int = 8, growth: int = 4, n: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(cin + i * growth), nn.ReLU(), nn.Conv2d(cin + i * growth, growth, 3, padding=1))
            for i in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class SE(nn.Module):
    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // 4, 1)
        self.fc2 = nn.Conv2d(c // 4, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(self.squeeze(y)))))
        return x + y * gate


class InvertedResidual(nn.Module):
    def __init__(self, c: int = 8, t: int = 4) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(c, c * t, 1, bias=False), nn.BatchNorm2d(c * t), nn.ReLU6(inplace=True),
            nn.Conv2d(c * t, c * t, 3, padding=1, groups=c * t, bias=False), nn.BatchNorm2d(c * t), nn.ReLU6(inplace=True),
            nn.Conv2d(c * t, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class ViewHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(4 * 12 * 12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return F.log_softmax(self.fc(x), dim=1)


class FourBranch(nn.Module):
    """GoogLeNet's inception: four branches joined by torch.cat."""

    def __init__(self, cin: int = 16) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(cin, 8, 1)
        self.b2 = nn.Sequential(nn.Conv2d(cin, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(cin, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        x = F.dropout(F.gelu(x), p=0.1, training=self.training)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return F.softmax(self.fc(x), dim=1)


class CRNN(nn.Module):
    """A speech CRNN: conv front end, frequency folded into channels, a bidirectional GRU, mean over time."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.gru = nn.GRU(8 * 20, 16, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, T, 40)
        x = F.max_pool2d(F.hardswish(self.conv(x)), (1, 2))
        x = x.permute(0, 2, 1, 3).flatten(2)  # (N, T, 160)
        out, _ = self.gru(x)
        return self.fc(out.mean(dim=1))


class KeywordTransformer(nn.Module):
    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.embed = nn.Linear(40, d)
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(d, 4, 32, batch_first=True, activation="gelu")
                                    for _ in range(2))
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.head = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, 40)
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        x, _ = self.attn(x, x, x)
        return self.head(x.mean(1))


class Reshapes(nn.Module):
    """view/reshape that merge adjacent axes (Flatten) or split one (Unflatten), the batch kept."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 4, 6, 6)
        y = self.c(x).view(x.size(0), 8, 36).transpose(1, 2)  # (N, 36, 8)
        y = y.reshape(-1, 6, 6, 8)
        return self.fc(y.flatten(1, 2))


MODELS = {
    "reshapes": (Reshapes, (4, 6, 6)),
    "crnn": (CRNN, (1, 20, 40)), "transformer": (KeywordTransformer, (12, 40)),
    "resnet": (ResNetish, (3, 32, 32)), "dense": (DenseBlock, (8, 16, 16)), "se": (SE, (16, 8, 8)),
    "inverted": (InvertedResidual, (8, 16, 16)), "view": (ViewHead, (1, 28, 28)),
    "inception": (FourBranch, (16, 12, 12)), "functional": (Functional, (3, 20, 20)),
}


def without_header(text: str) -> str:
    """The spec without its comment and description (they name where it was imported from)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith(("#", "description")))


@pytest.mark.parametrize("key", list(MODELS))
def test_import_verify_check_export_and_import_again(key, tmp_path):
    make, shape = MODELS[key]
    torch.manual_seed(0)
    model = make().eval()
    imported = import_model(model, shape, name="m")
    spec = archcalc.parse_spec(imported.text, f"{key}.toml")
    analysis = archcalc.analyze(spec)
    # archcalc's own numbers against the model, computed by torch
    assert analysis.total_params == sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    assert tuple(analysis.output_shape) == tuple(out.shape[1:])
    # check passes: every node against the model archcalc builds, names and shapes of every tensor
    report = archcalc.crosscheck(analysis)
    assert not report.failed, report.failed[:3]
    # the built model holds the same tensors under the same names, and computes the same function
    built = archcalc.build(spec).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.allclose(built(x), model(x), atol=1e-5)
    # export to Python, import that file, import its model again: the same spec
    path = tmp_path / f"exported_{key}.py"
    path.write_text(export_python(analysis))
    module = _load(path)
    again = import_model(module.M(), shape, name="m")
    assert without_header(again.text) == without_header(imported.text)


def _load(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_imported_resnet50_is_the_handwritten_spec_node_for_node():
    """torchvision-style ResNet-50 imports to exactly the graph of examples/specs/resnet50.toml."""
    imported = import_model(ResNet50(), (3, 224, 224), name="resnet50")
    ours = archcalc.parse_spec(imported.text, "imported.toml")
    written = archcalc.load_spec(ROOT / "examples" / "specs" / "resnet50.toml")

    def graph(spec):
        return [(n.name, n.type, n.inputs, n.same_as, dict(n.args))
                for n in spec.layers]

    assert len(ours.layers) == len(written.layers) == 175
    assert graph(ours) == graph(written)
    assert imported.params == 25_557_032
    # identical bottlenecks are written once: the copies after each stage's first (which projects)
    assert [line for line in imported.text.splitlines() if line.startswith("[blocks.")] == [
        "[blocks.bottleneck]", "[blocks.bottleneck_2]", "[blocks.bottleneck_3]", "[blocks.bottleneck_4]"]
    assert 'name = "layer3"\nblock = "bottleneck_3"\nrepeat = 5\nfirst_index = 1' in imported.text


def test_imported_mobilenet_v2_parameter_names():
    model = MobileNetV2()
    imported = import_model(model, (3, 224, 224), name="mobilenet_v2")
    assert imported.params == 3_504_872
    built = archcalc.build(archcalc.parse_spec(imported.text, "m.toml"))
    assert {n: p.shape for n, p in built.named_parameters()} == {n: p.shape for n, p in model.named_parameters()}


def test_repeated_identical_submodules_become_one_block():
    imported = import_model(ResNetish(), (3, 32, 32), name="r")
    blocks = [line for line in imported.text.splitlines() if line.startswith("[blocks.")]
    assert blocks == ["[blocks.residual]"]  # layers.0.0 and layers.0.1 are the same Residual
    assert 'name = "layers.0"\nblock = "residual"\nrepeat = 2\n' in imported.text
    flat = import_model(ResNetish(), (3, 32, 32), name="r", blocks=False)
    assert "[blocks." not in flat.text
    assert [n.name for n in archcalc.parse_spec(flat.text, "f.toml").layers] == [
        n.name for n in archcalc.parse_spec(imported.text, "b.toml").layers]


def test_symbols_make_the_sizes_formulas():
    imported = import_model(ResNetish(), (3, 32, 32), symbols=["H", "W"])
    assert 'shape = [3, "H", "W"]' in imported.text and "[symbols]\nH = 32\nW = 32" in imported.text
    analysis = archcalc.analyze(archcalc.parse_spec(imported.text, "r.toml"))
    conv = analysis.node("layers.1.0.conv1").out_shape[1]  # stride 2, padding 1, kernel 3: ceil(H/2)
    assert not isinstance(conv, int) and all(archcalc.symbolic.evaluate(conv, {"H": h}) == -(-h // 2)
                                             for h in range(1, 40))
    assert symbol_axes((1, 101, 40), ["T=1"]) == {1: "T"}


# --------------------------------------------------------------------------- refusals: one line, named

class Constant(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + torch.ones(4)


class LooseParameter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.scale


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) if x.sum() > 0 else x


class PlusOne(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + 1


class Unknown(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bil = nn.Bilinear(4, 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bil(x, x)


@pytest.mark.parametrize(("model", "expected"), [
    (Constant, "node 'add' (constant _tensor_constant0): creates a tensor inside forward"),
    (LooseParameter, "node 'scale' (attribute scale, used by mul): a parameter or buffer used outside"),
    (Branchy, "torch.fx cannot trace Branchy"),
    (PlusOne, "adds or multiplies a number, not two tensors"),
    (Unknown, "node 'bil' (module bil: torch.nn.modules.linear.Bilinear): Bilinear is not a layer kind"),
])
def test_what_cannot_be_a_spec_is_refused_naming_the_node(model, expected):
    with pytest.raises(UsageError) as info:
        import_model(model(), (4,))
    assert expected in str(info.value) and "\n" not in str(info.value)


MODULE_FILE = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, width=8, act="relu", sizes=(3, 4)):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3)
        self.fc = nn.Linear(width, sizes[-1])

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1)
        return self.fc(torch.flatten(x, 1))

def make(**kwargs):
    return Net(**kwargs)

def not_a_model():
    return 3

class Constant(nn.Module):
    def forward(self, x):
        return x + torch.ones(1)
'''


def test_cli_import_export_round_trip(cli, tmp_path):
    source = tmp_path / "net.py"
    source.write_text(textwrap.dedent(MODULE_FILE))
    spec = tmp_path / "net.toml"
    result = cli("import", f"{source}:make", "--input-shape", "1,12,12", "--kwarg", "width=6",
                 "--kwarg", "sizes=[2, 5]", "--out", spec)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "verified against the model" in " ".join(result.stdout.split())
    assert "out_channels = 6" in spec.read_text() and "out_features = 5" in spec.read_text()
    assert cli("check", spec).exit_code == 0
    exported = tmp_path / "net_export.py"
    assert cli("export", spec, "--out", exported).exit_code == 0
    assert "import torch" in exported.read_text() and "archcalc" not in exported.read_text().split('"""')[2]
    again = tmp_path / "again.toml"
    result = cli("import", f"{exported}:Make", "--input-shape", "1,12,12", "--out", again)
    assert result.exit_code == 0, result.output
    assert without_header(again.read_text()).replace('"make"', '"m"') == without_header(
        spec.read_text()).replace('"make"', '"m"')
    doc = json.loads(cli("import", f"{source}:make", "--input-shape", "1,12,12", "--json").stdout)
    assert doc["total_params"] == 1 * 8 * 9 + 8 + 8 * 4 + 4 and doc["verified"] is True


@pytest.mark.parametrize(("args", "expected"), [
    (["{f}:nope", "--input-shape", "1,12,12"], "TARGET '{f}:nope': "),
    (["{f}:not_a_model", "--input-shape", "1,12,12"], "returned int, not a torch.nn.Module"),
    (["{f}:Constant", "--input-shape", "1,12,12"], "creates a tensor inside forward"),
    (["{f}:make", "--input-shape", "1,x,12"], "--input-shape '1,x,12': write positive integers"),
    (["{f}:make", "--input-shape", "1,12,12", "--kwarg", "width=eight"], "--kwarg 'width=eight': 'eight' is not a TOML value"),
    (["{f}:make", "--input-shape", "1,12,12", "--kwarg", "colour=1"], "calling make(colour=1) failed"),
    (["{f}:make", "--input-shape", "1,12,12", "--symbol", "Q"], "--symbol 'Q': name an axis (C, H, W)"),
    (["{f}:make", "--input-shape", "2,12,12"], "does not run on an input of shape [2, 12, 12]"),
    (["missing.py:make", "--input-shape", "1,12,12"], "no such file missing.py"),
    (["no_such_package_xyz:make", "--input-shape", "1,12,12"], "importing no_such_package_xyz failed"),
])
def test_cli_import_errors_are_one_line(cli, tmp_path, args, expected):
    source = tmp_path / "net.py"
    source.write_text(textwrap.dedent(MODULE_FILE))
    out = tmp_path / "never.toml"
    result = cli("import", *[a.format(f=source) for a in args], "--out", out)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and expected.format(f=source) in err, err
    assert not out.exists()  # no partial spec


def test_verification_failure_is_exit_1(monkeypatch):
    """Import checks its own work: a spec that disagrees with the model is a failed check."""
    from archcalc.pytorch import importer

    real = importer.spec_text
    monkeypatch.setattr(importer, "spec_text", lambda *a: real(*a).replace("out_channels = 4", "out_channels = 5"))
    with pytest.raises(CheckError, match="node 'features.0'"):
        import_model(ViewHead(), (1, 28, 28))


def test_parsers():
    assert parse_kwarg("aux_logits=false") == ("aux_logits", False)
    assert parse_kwarg("widths=[32, 64]") == ("widths", [32, 64])
    assert parse_kwarg('mode="fast"') == ("mode", "fast")
    assert parse_shape("3, 224,224") == (3, 224, 224)
    for bad in ("3,0,1", "3,²", "", "1" * 12):
        with pytest.raises(UsageError):
            parse_shape(bad)


def test_export_onnx_needs_onnx_or_says_so(cli, tmp_path):
    try:
        import onnx
    except ImportError:
        result = cli("export", "--format", "onnx", "--out", tmp_path / "m.onnx")
        assert result.exit_code == 2 and "pip install 'archcalc[onnx]'" in result.stderr
    else:
        assert cli("export", "--format", "onnx", "--out", tmp_path / "m.onnx").exit_code == 0
        model = onnx.load(str(tmp_path / "m.onnx"))
        onnx.checker.check_model(model)
        dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
        assert dims == [1, 3] and [i.name for i in model.graph.input] == ["input"]
        names = {t.name for t in model.graph.initializer}
        assert any("conv1" in n for n in names) and len(model.graph.initializer) >= 8


class FixedBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(x).reshape(2, -1)  # right only at the traced batch size


class CatBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c(x)
        return torch.cat([y, y])  # dim 0: the batch axis


class Underscore(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self._c = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._c(x)


class AddAlpha(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.add(self.c(x), x, alpha=2)


class Keywords(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 2, 1)
        self.b = nn.Conv2d(3, 2, 1)
        self.pool = nn.AdaptiveAvgPool2d((None, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.cat(tensors=[self.a(x), self.b(x)], dim=1))


@pytest.mark.parametrize(("model", "expected"), [
    (FixedBatch, "reshapes with the batch size written as 2"),
    (CatBatch, "the model cannot be written as a spec"),
    (Underscore, "the model cannot be written as a spec"),
    (AddAlpha, "scales by alpha"),
])
def test_what_only_looks_right_at_the_traced_batch_is_refused(model, expected):
    with pytest.raises(UsageError, match=expected):
        import_model(model(), (3, 8, 8))


def test_keyword_tensors_and_none_sizes_import():
    imported = import_model(Keywords(), (3, 8, 6))
    assert 'output_size = ["none", 1]' in imported.text and 'from = ["a", "b"]' in imported.text
    assert imported.output_shape == (4, 8, 1)


EVIL = '''
import sys
import torch
from torch import nn
print("HELLO at import")

class M(nn.Module):
    def __init__(self):
        super().__init__()
        print("HELLO in init")
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        print("HELLO in forward")
        return self.fc(x)

def exits():
    sys.exit(0)
'''


def test_the_models_own_output_and_exit_never_reach_the_spec(cli, tmp_path):
    source = tmp_path / "evil.py"
    source.write_text(EVIL)
    result = cli("import", f"{source}:M", "--input-shape", "8")
    assert result.exit_code == 0
    assert "HELLO" not in result.stdout and result.stdout.startswith("# imported from")
    archcalc.parse_spec(result.stdout, "printed.toml")  # standard output is the spec alone
    out = tmp_path / "never.toml"
    result = cli("import", f"{source}:exits", "--input-shape", "8", "--out", out)
    assert result.exit_code == 2 and "called sys.exit(0)" in result.stderr and not out.exists()


def test_limits_of_the_traced_input(cli):
    result = cli("import", "x.py:m", "--input-shape", "3,100000,100000")
    assert result.exit_code == 2 and "at most 50,000,000" in result.stderr
    with pytest.raises(UsageError, match="not a valid symbol name"):
        symbol_axes((3, 8, 8), ["ß=1"])
    with pytest.raises(UsageError, match="the axis must be"):
        symbol_axes((3, 8, 8), ["T=\uff11"])


def test_export_names_never_clash(tmp_path):
    text = ('[model]\nname = "add"\n[input]\nshape = [3, 4, 4]\n[blocks._put]\nlayers = [{ type = "ReLU" }]\n'
            '[[layers]]\nname = "c"\ntype = "Conv2d"\nout_channels = 3\nkernel_size = 1\n'
            '[[layers]]\nname = "s"\ntype = "Add"\nfrom = ["c", "input"]\n[[layers]]\nname = "p"\nblock = "_put"\n')
    path = tmp_path / "clash.py"
    path.write_text(export_python(archcalc.analyze(archcalc.parse_spec(text, "clash.toml"))))
    module = _load(path)
    assert module.AddModel()(torch.zeros(1, 3, 4, 4)).shape == (1, 3, 4, 4)
