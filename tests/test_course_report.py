"""Every number of the course report, exactly, through the API and the CLI (golden files)."""

from __future__ import annotations

import json
import os

import pytest
import sympy as sp
from conftest import GOLDEN, SPECS

from archcalc import analyze, bundled_spec, load_spec, parse_spec
from archcalc.analysis.expectations import check_expectations
from archcalc.symbolic import symbol

REPORT_SHAPES = {"conv1": (32, 97, 36), "pool1": (32, 48, 18), "conv2": (16, 44, 14),
                 "pool2": (16, 22, 7), "flatten": (2464,), "fc1": (128,), "fc2": (128,),
                 "output": (3,), "softmax": (3,)}
REPORT_PARAMS = {"conv1": 832, "conv2": 12816, "fc1": 315520, "fc2": 16512, "output": 387}


def test_course_cnn_numbers():
    analysis = analyze(load_spec(SPECS / "speech_cnn.toml"))
    assert [r.type for r in analysis.layers] == [
        "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU",
        "Linear", "ReLU", "Linear", "Softmax"]
    for name, shape in REPORT_SHAPES.items():
        assert analysis.layer(name).out_shape == shape
    for row in analysis.layers:
        assert row.params == REPORT_PARAMS.get(row.name, 0)
    assert analysis.total_params == 346067 == sum(REPORT_PARAMS.values())
    formulas = {r.name: r.params_formula for r in analysis.layers}
    assert formulas["conv1"] == "5*5*1*32 + 32"
    assert formulas["conv2"] == "5*5*32*16 + 16"
    assert formulas["fc1"] == "2464*128 + 128"
    assert all(r.ok for r in check_expectations(analysis))


def test_ffnn_numbers():
    analysis = analyze(load_spec(SPECS / "speech_ffnn.toml"))
    assert analysis.layer("flatten").out_shape == (4040,)
    assert analysis.total_params == 534147 == (4040 + 1) * 128 + (128 + 1) * 128 + (128 + 1) * 3


def test_bundled_specs_are_the_repository_specs():
    for name in ("speech_cnn", "speech_ffnn"):
        assert bundled_spec(name).read_text() == (SPECS / f"{name}.toml").read_text()


def symbolic_cnn_text() -> str:
    return (SPECS / "speech_cnn.toml").read_text().replace("shape = [1, 101, 40]", 'shape = [1, "T", 40]')


def test_symbolic_course_cnn_needs_t_at_least_16():
    analysis = analyze(parse_spec(symbolic_cnn_text(), "cnn_T.toml"))
    T = symbol("T")
    assert analysis.ranges["T"].lo == 16 and analysis.ranges["T"].hi is None
    assert analysis.layer("pool2").out_shape == (16, sp.floor(T / 4) - 3, 7)
    assert analysis.layer("fc1").params == 128 * 112 * (sp.floor(T / 4) - 3) + 128
    # numbers after substitution are the report's
    bound = analyze(parse_spec(symbolic_cnn_text(), "cnn_T.toml"), {"T": 101})
    assert bound.value(bound.total_params) == 346067
    # the expectations (numbers) hold at T=101
    assert all(r.ok for r in check_expectations(bound))


def test_symbolic_cnn_with_stated_in_features_pins_t():
    text = symbolic_cnn_text().replace('type = "Linear"\nout_features = 128              #',
                                       'type = "Linear"\nin_features = 2464\nout_features = 128 #')
    analysis = analyze(parse_spec(text, "cnn_T.toml"))
    assert (analysis.ranges["T"].lo, analysis.ranges["T"].hi) == (100, 103)


def test_json_document(cli):
    result = cli("shapes", "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["model"] == "speech_cnn" and doc["input_shape"] == [1, 101, 40]
    assert doc["symbols"] == {} and doc["total_params"] == 346067 == doc["trainable_params"]
    first = doc["layers"][0]
    assert set(first) == {"index", "name", "type", "inputs", "path", "input_shape", "output_shape", "params",
                          "trainable_params", "params_formula"}
    assert first == {"index": 1, "name": "conv1", "type": "Conv2d", "inputs": ["input"], "path": [],
                     "input_shape": [1, 101, 40],
                     "output_shape": [32, 97, 36], "params": 832, "trainable_params": 832,
                     "params_formula": "5*5*1*32 + 32"}
    assert cli("params", "--json").stdout == result.stdout


def test_json_symbolic_and_set(cli, write_spec):
    path = write_spec(symbolic_cnn_text())
    doc = json.loads(cli("shapes", path, "--json").stdout)
    assert doc["symbols"] == {"T": None} and doc["valid"] == {"T": {"min": 16, "max": None}}
    assert doc["layers"][5]["output_shape"] == [16, "floor(T/4) - 3", 7]
    assert doc["total_params"] == "14336*floor(T/4) - 12333"
    doc = json.loads(cli("shapes", path, "--json", "--set", "T=101").stdout)
    assert doc["symbols"] == {"T": 101} and doc["layers"][5]["output_shape"] == [16, 22, 7]
    assert doc["total_params"] == 346067


def test_explain_shows_the_hand_derivation(cli):
    out = cli("shapes", "--explain").stdout
    assert "H: floor((101 + 2*0 - 1*(5-1) - 1)/1) + 1 = 97" in out
    assert "W: floor((36 + 2*0 - 1*(2-1) - 1)/2) + 1 = 18" in out
    assert "flatten: 16 x 22 x 7 = 2464" in out
    assert "params: 5*5*1*32 + 32 = 832" in out
    out = cli("params", "--explain").stdout
    assert "total: 832 + 12816 + 315520 + 16512 + 387 = 346067" in out
    assert "H: floor" not in out


def test_explain_symbolic_with_value(cli, write_spec):
    out = cli("shapes", write_spec(symbolic_cnn_text()), "--explain", "--set", "T=101").stdout
    assert "H: floor((T + 2*0 - 1*(5-1) - 1)/1) + 1 = T - 4 = 97 (T=101)" in out
    assert "Valid for: T >= 16" in out


@pytest.mark.parametrize("name,args", [
    ("shapes_cnn", ["shapes"]),
    ("params_cnn", ["params"]),
    ("shapes_ffnn", ["shapes", str(SPECS / "speech_ffnn.toml")]),
    ("check_no_torch", ["check", "--no-torch", "specs/speech_cnn.toml"]),
    ("explain_cnn", ["shapes", "--explain"]),
])
def test_golden_tables(cli, name, args, monkeypatch):
    monkeypatch.chdir(SPECS.parent)
    result = cli(*args)
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"{name}.txt"
    if os.environ.get("ARCHCALC_UPDATE_GOLDEN"):
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text()


def test_golden_symbolic_table(cli, write_spec, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    write_spec(symbolic_cnn_text(), "cnn_T.toml")
    result = cli("shapes", "cnn_T.toml", "--set", "T=200")
    golden = GOLDEN / "shapes_cnn_T200.txt"
    if os.environ.get("ARCHCALC_UPDATE_GOLDEN"):
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text()


def test_table_rows_add_up_to_the_total():
    analysis = analyze(load_spec(SPECS / "speech_cnn.toml"))
    assert sum(r.params for r in analysis.layers) == analysis.total_params


def test_no_color_and_narrow_terminals(cli):
    result = cli("shapes", env={"COLUMNS": "50"})
    assert result.exit_code == 0 and "\x1b[" not in result.stdout
    assert "346,067" in result.stdout
