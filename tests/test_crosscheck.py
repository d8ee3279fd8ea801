"""The torch builder and the torchinfo cross-check."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, SPECS
from hypothesis import HealthCheck, given, settings
from torch_reference import architectures, spec_text

import archcalc
from archcalc import analyze, build, crosscheck, load_spec, parse_spec

ALL_SPECS = sorted(SPECS.glob("*.toml")) + sorted((ROOT / "examples").rglob("*.toml"))


def test_build_is_a_named_sequential_in_spec_order():
    model = build(load_spec(SPECS / "speech_cnn.toml"))
    assert isinstance(model, torch.nn.Sequential)
    assert [n for n, _ in model.named_children()][:4] == ["conv1", "relu1", "pool1", "conv2"]
    assert model.fc1.in_features == 2464 and model.conv2.in_channels == 32
    assert sum(p.numel() for p in model.parameters()) == 346067
    assert model(torch.zeros(2, 1, 101, 40)).shape == (2, 3)


def test_build_with_symbols_needs_values(write_spec):
    text = (SPECS / "speech_cnn.toml").read_text().replace("[1, 101, 40]", '[1, "T", 40]')
    spec = parse_spec(text, "cnn_T.toml")
    with pytest.raises(archcalc.ShapeError, match="fc1.*in_features is 112\\*floor\\(T/4\\) - 336"):
        build(spec)
    assert build(spec, {"T": 200}).fc1.in_features == 112 * 47


def test_frozen_layers_are_not_trainable(write_spec):
    text = (SPECS / "speech_ffnn.toml").read_text().replace(
        'name = "fc1"\ntype = "Linear"', 'name = "fc1"\ntype = "Linear"\ntrainable = false')
    spec = parse_spec(text, "frozen.toml")
    analysis = analyze(spec)
    assert analysis.trainable_params == 534147 - 517248
    assert not any(p.requires_grad for p in build(spec).fc1.parameters())
    assert not crosscheck(analysis).failed


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_passes_check(cli, path):
    result = cli("check", path)
    assert result.exit_code == 0, result.stdout
    assert ", 0 failed" in result.stdout


def test_wrong_expectation_fails_with_exit_1(cli, write_spec):
    text = (SPECS / "speech_cnn.toml").read_text().replace("expect_params = 12816", "expect_params = 12800")
    result = cli("check", write_spec(text))
    assert result.exit_code == 1
    assert "4 conv2" in result.stdout and "12,800" in result.stdout and "12,816" in result.stdout
    assert "1 spec, 30 checks, 1 failed" in result.stdout  # 29 + the parameter names and shapes


def test_several_specs_report_every_failure(cli, write_spec, tmp_path):
    bad1 = write_spec((SPECS / "speech_cnn.toml").read_text().replace("total_params = 346067",
                                                                     "total_params = 1"), "a.toml")
    bad2 = write_spec((SPECS / "speech_ffnn.toml").read_text().replace("expect_shape = [4040]",
                                                                      "expect_shape = [4041]"), "b.toml")
    write_spec("[input]\nshape = [1]\n", "c.toml")
    result = cli("check", tmp_path)
    assert result.exit_code == 2  # c.toml is bad input: the worst outcome sets the code
    assert "a.toml" in result.stdout and "b.toml" in result.stdout
    assert "at least one [[layers]]" in result.stdout
    result = cli("check", str(bad1), str(bad2), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["failed"] == 2 and [s["failed"] for s in doc["specs"]] == [1, 1]
    result = cli("check", str(tmp_path / "[ab].toml"))
    assert result.exit_code == 1 and "2 specs" in result.stdout


def test_tied_weights_are_counted_once():
    text = """
[input]
shape = [16]
[[layers]]
name = "enc"
type = "Linear"
out_features = 16
bias = false
[[layers]]
name = "dec"
type = "Linear"
out_features = 16
bias = false
"""
    analysis = analyze(parse_spec(text, "tied.toml"))
    model = build(analysis.spec)
    model.dec.weight = model.enc.weight  # tied through the Python API
    report = crosscheck(analysis, model)
    total = next(r for r in report.results if r.what == "torch total params")
    assert total.actual == "256" and total.expected == "512" and not total.ok
    assert "enc.weight = dec.weight" in total.note


def test_torch_refusal_is_a_failed_check_naming_the_layer():
    analysis = analyze(load_spec(SPECS / "speech_cnn.toml"))
    model = build(analysis.spec)
    model.fc1 = torch.nn.Linear(2000, 128)  # a model that disagrees with the spec
    report = crosscheck(analysis, model)
    failed = report.failed
    assert failed and "'fc1'" in failed[0].layer
    assert "torch refused it" in failed[0].actual and "mat1 and mat2" in failed[0].actual


def test_mismatch_shows_both_values():
    analysis = analyze(load_spec(SPECS / "speech_cnn.toml"))
    model = build(analysis.spec)
    model.conv2 = torch.nn.Conv2d(32, 16, 5, padding=2)
    model.fc1 = torch.nn.Linear(16 * 24 * 9, 128)
    report = crosscheck(analysis, model)
    conv2 = next(r for r in report.failed if "conv2" in r.layer)
    assert conv2.expected == "[16, 44, 14], 12,816" and conv2.actual.startswith("[16, 48, 18], 12,816")


def test_symbolic_spec_is_checked_at_several_values():
    text = (SPECS / "speech_cnn.toml").read_text().replace("[1, 101, 40]", '[1, "T", 40]')
    report = crosscheck(analyze(parse_spec(text, "cnn_T.toml")))
    assert not report.failed
    assert [p["T"] for p in report.points] == [16, 17, 23, 45]


def test_assert_spec(write_spec):
    archcalc.assert_spec(SPECS / "speech_cnn.toml")
    bad = write_spec((SPECS / "speech_cnn.toml").read_text().replace("total_params = 346067",
                                                                    "total_params = 346000"))
    with pytest.raises(AssertionError, match="total params: expected 346,000, got 346,067"):
        archcalc.assert_spec(bad)


def test_verify_marks_every_row(cli):
    result = cli("shapes", "--verify")
    assert result.exit_code == 0
    assert result.stdout.count(" ok") >= 13 and "torch" in result.stdout


def test_missing_torch_says_how_to_install(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    result = cli("check")
    assert result.exit_code == 2
    assert "pip install 'archcalc[torch]'" in result.stdout + result.stderr


def test_shapes_params_and_no_torch_check_do_not_import_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from archcalc.cli import app\n"
        "for args in (['shapes'], ['params', '--explain'], ['check', '--no-torch'], ['shapes', '--json']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_random_specs_cross_check_clean(arch):
    shape, layers = arch
    try:
        analysis = analyze(parse_spec(spec_text(shape, layers), "random.toml"))
    except archcalc.ShapeError:
        return
    report = crosscheck(analysis)
    assert not report.failed, report.failed


def test_examples_run():
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    str(ROOT / "examples" / "test_model_specs.py")], check=True, cwd=ROOT)
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "api.py")], check=True,
                         capture_output=True, text=True).stdout
    assert "total 346067" in out and "cross-check failures: 0" in out


@pytest.mark.parametrize("args,extra", [(["data", "info"], "data"), (["draw", "--out", "x.svg"], "data")])
def test_missing_optional_packages_say_which_extra(tmp_path, args, extra):
    code = (
        "import sys\n"
        "sys.modules['numpy'] = None\n"  # as if archcalc were installed without its data extra
        "from typer.testing import CliRunner\n"
        "from archcalc.cli import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "print(result.exit_code)\n"
        "print(result.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         check=True).stdout
    assert out.startswith("2\n") and f"pip install 'archcalc[{extra}]'" in out and "Traceback" not in out


def test_a_layer_torch_refuses_to_build_is_named(monkeypatch):
    from archcalc.pytorch import build as torchbuild

    real = torchbuild.torch_kwargs

    def broken(layer, in_shape):  # as if archcalc passed fc1 an argument torch does not take
        kwargs = real(layer, in_shape)
        return {**kwargs, "in_feature": 1} if layer.name == "fc1" else kwargs

    monkeypatch.setattr(torchbuild, "torch_kwargs", broken)
    analysis = analyze(load_spec(SPECS / "speech_cnn.toml"))
    failed = crosscheck(analysis).failed
    assert failed and "'fc1'" in failed[0].layer and failed[0].what == "torch build"
    assert "torch refused it: TypeError" in failed[0].actual
    with pytest.raises(archcalc.errors.TorchRefusedError, match="layer 8 'fc1' .*torch refused it"):
        build(analysis.spec)


MULTI = """[input]
shape = ["C", "H", "W"]
[[layers]]
type = "Conv2d"
out_channels = 4
kernel_size = 3
[[layers]]
type = "Flatten"
[[layers]]
type = "Linear"
in_features = IN
out_features = 2
"""


def test_cross_check_points_meet_every_condition(write_spec):
    """(4*H - 8)*(W - 2) == 100 ties H and W: every point checked must satisfy it."""
    from archcalc.pytorch.crosscheck import check_points

    analysis = analyze(load_spec(write_spec(MULTI.replace("IN", "100"))))
    points = check_points(analysis)
    assert points and all((4 * p["H"] - 8) * (p["W"] - 2) == 100 for p in points)


def test_no_point_meeting_the_conditions_is_said_not_failed(cli, write_spec):
    """(4*H - 8)*(W - 2) == 97 has no solution (97 is odd): not cross-checked, and said so."""
    result = cli("check", write_spec(MULTI.replace("IN", "97")))
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())
    assert "not cross-checked" in flat and "FAILED" not in flat
