"""Derivation reports, architecture lint and the network diagram."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import GOLDEN, SPECS

from archcalc import analyze, parse_spec
from archcalc.analysis.lint import RULES, lint

CLEAN = """
[input]
shape = [3, 32, 32]
[[layers]]
type = "Conv2d"
out_channels = 16
kernel_size = 3
padding = 1
bias = false
[[layers]]
type = "BatchNorm2d"
[[layers]]
type = "ReLU"
[[layers]]
type = "MaxPool2d"
kernel_size = 2
[[layers]]
type = "Conv2d"
out_channels = 16
kernel_size = 3
padding = 1
bias = false
[[layers]]
type = "BatchNorm2d"
[[layers]]
type = "ReLU"
[[layers]]
type = "Conv2d"
out_channels = 16
kernel_size = 3
padding = 1
bias = false
[[layers]]
type = "BatchNorm2d"
[[layers]]
type = "ReLU"
[[layers]]
type = "AdaptiveAvgPool2d"
output_size = 1
[[layers]]
type = "Flatten"
[[layers]]
type = "Dropout"
p = 0.2
[[layers]]
type = "Linear"
out_features = 10
"""


# --------------------------------------------------------------------------- report

def test_markdown_report_holds_every_number_of_the_course_report(cli, monkeypatch):
    monkeypatch.chdir(SPECS.parent)
    result = cli("report")
    assert result.exit_code == 0
    text = result.stdout
    for number in ("97", "36", "48", "18", "44", "14", "22", "7", "2464", "832", "12816", "315520",
                   "16512", "387", "346067"):
        assert number in text
    assert r"101 \times 40 \rightarrow 97 \times 36 \rightarrow 48 \times 18 \rightarrow 44 \times 14 " \
           r"\rightarrow 22 \times 7" in text
    assert r"16 \times 22 \times 7 = 2464" in text
    assert "832 + 12816 + 315520 + 16512 + 387 = 346067" in text
    assert r"(2464 + 1) \cdot 128 = 315520" in text and r"5 \cdot 5 \cdot 1 \cdot 32 + 32 = 832" in text
    assert "| conv1 | Conv2d | 1 | 32 | 5×5 | 1×1 | 0×0 | 32 × 97 × 36 | 832 |" in text
    assert "| fc1 | 2464 | 128 | 315,520 |" in text
    golden = GOLDEN / "report_cnn.md"
    if os.environ.get("ARCHCALC_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_report_with_bench_results(cli, tmp_path):
    bench = tmp_path / "run"
    bench.mkdir()
    shutil.copy(GOLDEN / "bench_results.json", bench / "results.json")
    (bench / "curves.png").write_bytes(b"\x89PNG fake")
    out = tmp_path / "report.md"
    result = cli("report", "--bench", bench, "--out", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "| speech_cnn | SGD | 346,067 | 91.93% | 0:20:34.567891 |" in text
    assert "![Training and validation loss and accuracy against iteration.](run/curves.png)" in text
    result = cli("report", "--bench", tmp_path / "nothing")
    assert result.exit_code == 2 and "no results.json" in result.stderr


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("spec", ["speech_cnn", str(SPECS.parent / "examples/specs/speech_cnn_T.toml")])
def test_latex_report_compiles(cli, tmp_path, spec):
    bench = tmp_path / "run"
    bench.mkdir()
    shutil.copy(GOLDEN / "bench_results.json", bench / "results.json")
    from archcalc.render.plot import plot_curves

    plot_curves(json.loads((bench / "results.json").read_text()), bench / "curves.png")
    tex = tmp_path / "report.tex"
    assert cli("report", spec, "--format", "tex", "--bench", bench, "--out", tex).exit_code == 0
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")


def test_report_errors(cli):
    assert cli("report", "--format", "html").exit_code == 2


# --------------------------------------------------------------------------- lint

def findings_of(text: str) -> set[str]:
    return {f.id for f in lint(analyze(parse_spec(text, "lint.toml")))}


def test_clean_spec_has_no_findings(cli, write_spec):
    assert findings_of(CLEAN) == set()
    result = cli("lint", write_spec(CLEAN), "--strict")
    assert result.exit_code == 0 and "no findings" in result.stdout


@pytest.mark.parametrize("rule_id,change", [
    ("final-softmax", lambda t: t + '[[layers]]\ntype = "Softmax"\ndim = 1\n'),
    ("final-logsoftmax", lambda t: t + '[[layers]]\ntype = "LogSoftmax"\ndim = 1\n'),
    ("activation-after-output", lambda t: t + '[[layers]]\ntype = "ReLU"\n'),
    ("floor-drops-rows", lambda t: t.replace("shape = [3, 32, 32]", "shape = [3, 33, 32]")),
    ("dominant-layer", lambda t: t.replace("out_features = 10", "out_features = 1000")),
    ("bias-before-batchnorm", lambda t: t.replace("bias = false", "bias = true", 1)),
    ("dropout-before-conv", lambda t: t.replace('[[layers]]\ntype = "MaxPool2d"',
                                                '[[layers]]\ntype = "Dropout"\n[[layers]]\ntype = "MaxPool2d"')),
    ("kernel-exceeds-input", lambda t: t.replace("shape = [3, 32, 32]", 'shape = [3, "H", 32]')),
    ("unused-node", lambda t: t.replace("[[layers]]", '[[layers]]\nname = "dead"\ntype = "ReLU"\n'
                                                      '[[layers]]\nfrom = "input"\n', 1)),
    ("unused-block", lambda t: '[blocks.spare]\nlayers = [{ type = "ReLU" }]\n' + t),
])
def test_each_smell_is_found_and_can_be_silenced(rule_id, change):
    smelly = change(CLEAN)
    assert rule_id in findings_of(smelly)
    assert rule_id not in findings_of(smelly + f'[lint]\nignore = ["{rule_id}"]\n')


def test_every_rule_is_tested():
    assert set(RULES) == {"final-softmax", "final-logsoftmax", "activation-after-output", "floor-drops-rows",
                          "dominant-layer", "bias-before-batchnorm", "dropout-before-conv",
                          "kernel-exceeds-input", "unused-node", "unused-block"}


BLOCKS = """[input]
shape = [8, 16, 16]
[blocks.cb]
args = { c = 8 }
layers = [
  { name = "conv", type = "Conv2d", out_channels = "c", kernel_size = 3, padding = 1 },
  { name = "bn", type = "BatchNorm2d" },
]
[[layers]]
name = "stage"
block = "cb"
repeat = 4
[[layers]]
type = "AdaptiveAvgPool2d"
output_size = 1
"""


def test_a_smell_in_every_copy_of_a_block_is_one_finding_for_the_block(cli, write_spec):
    found = [f for f in lint(analyze(parse_spec(BLOCKS, "b.toml"))) if f.id == "bias-before-batchnorm"]
    assert len(found) == 1
    assert found[0].layer == "stage.0.conv (and 3 more copies of block 'cb', layer 'conv')"
    assert "in [blocks.cb], once for every copy" in found[0].fix
    result = cli("lint", write_spec(BLOCKS + '[blocks.spare]\nlayers = [{ type = "ReLU" }]\n'))
    assert "[blocks.spar" in result.stdout  # literal, not read as rich markup (the cell folds after it)


def test_course_cnn_lint_and_exit_codes(cli):
    result = cli("lint")
    assert result.exit_code == 0
    assert "final-softmax" in result.stdout and "fc1 holds 91% of the parameters" in result.stdout
    assert cli("lint", "--strict").exit_code == 1
    doc = json.loads(cli("lint", "--json").stdout)
    assert doc["warnings"] == 1 and {f["id"] for f in doc["findings"]} == {
        "final-softmax", "floor-drops-rows", "dominant-layer"}
    assert all(f["reason"] and f["fix"] for f in doc["findings"])


def test_lint_table_errors(cli, write_spec):
    result = cli("lint", write_spec(CLEAN + '[lint]\nignore = ["final-softmx"]\n'))
    assert result.exit_code == 2 and "did you mean 'final-softmax'" in result.stderr


# --------------------------------------------------------------------------- draw

def test_draw_svg_and_png(cli, tmp_path):
    svg = tmp_path / "net.svg"
    assert cli("draw", "--out", svg).exit_code == 0
    root = ET.parse(svg).getroot()  # well-formed XML
    assert root.tag.endswith("svg")
    text = svg.read_text()
    assert "315,520" in text and "32×97×36" in text
    png = tmp_path / "net.png"
    assert cli("draw", "--out", png).exit_code == 0
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 20_000
    assert cli("draw", "--out", tmp_path / "net.pdf").exit_code == 2


def test_draw_needs_bound_symbols(cli, write_spec, tmp_path):
    path = write_spec(CLEAN.replace("shape = [3, 32, 32]", 'shape = [3, "H", 32]'))
    result = cli("draw", path, "--out", tmp_path / "n.svg")
    assert result.exit_code == 2 and "--set" in result.stderr
    assert cli("draw", path, "--out", tmp_path / "n.svg", "--set", "H=32").exit_code == 0


RESNET50 = Path(__file__).resolve().parent.parent / "examples" / "specs" / "resnet50.toml"


def test_report_lists_block_uses_with_their_arguments(cli):
    result = cli("report", str(RESNET50))
    assert result.exit_code == 0
    assert "## Blocks" in result.stdout
    assert ("| layer2.0 | bottleneck | planes=128, inplanes=256, stride=2, project=true | 12 | 512 × 28 × 28 "
            "| 379,392 |") in result.stdout
    assert "| layer3 | bottleneck x6 | planes=256 | 62 | 1024 × 14 × 14 | 7,098,368 |" in result.stdout


def test_draw_folds_block_uses_into_boxes(cli, tmp_path):
    out = tmp_path / "r50.svg"
    assert cli("draw", str(RESNET50), "--depth", "1", "--out", str(out)).exit_code == 0
    svg = out.read_text()
    assert "bottleneck x6 (62 nodes)" in svg and "layer1.0" not in svg
    full = tmp_path / "full.svg"
    assert cli("draw", str(RESNET50), "--out", str(full)).exit_code == 0
    assert "layer1.0.conv1" in full.read_text()
