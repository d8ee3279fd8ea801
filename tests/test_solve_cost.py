"""solve, receptive fields and cost: exact answers, checked by brute force and by torch."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import ROOT, SPECS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode
from torch_reference import architectures, spec_text, torch_reference

from archcalc import analyze, load_spec, parse_spec
from archcalc.analysis.cost import cost, receptive_fields
from archcalc.analysis.solve import Target, free_symbol, parse_target, solve
from archcalc.errors import ShapeError, UsageError
from archcalc.symbolic import evaluate

CNN_T = ROOT / "examples" / "specs" / "speech_cnn_T.toml"


def test_course_cnn_answers(cli):
    doc = json.loads(cli("solve", CNN_T, "--target", "flatten=2464", "--json").stdout)
    assert doc["valid"] == {"T": {"min": 16, "max": None}}
    assert doc["targets"][0]["values"] == {"min": 100, "max": 103}
    assert doc["targets"][0]["expression"] == "112*floor(T/4) - 336"
    rows = {(w["layer"], w["axis"]): w for w in doc["windows"]}
    assert rows[("pool1", "H")]["rows_lost"] == "when T mod 2 in {1}"  # 97 -> 48 drops a row at T=101
    assert rows[("pool2", "H")]["rows_lost"] == "when T mod 4 in {2, 3}"
    assert rows[("conv1", "H")]["keep_padding"] == "padding=2"
    out = cli("solve", CNN_T, "--target", "flatten=2464").stdout
    assert "T in {100, 101, 102, 103}" in out and "T: valid for T >= 16" in out


def test_numeric_spec_floor_facts():
    analysis = analyze(load_spec(SPECS / "speech_cnn.toml"))
    report = solve(analysis, None, [])
    facts = {(w.layer, w.axis): w.dropped for w in report.windows}
    assert facts[("pool1", "H")] == "1 row at n=97"  # 97 -> 48 loses the last row
    assert facts[("pool1", "W")] == "none at n=36"


def test_mac_budget(cli):
    doc = json.loads(cli("solve", CNN_T, "--max-macs", "2e7", "--json").stdout)
    largest = doc["budget"]["largest"]
    analysis = analyze(load_spec(CNN_T))
    macs = cost(analysis).total_macs
    assert evaluate(macs, {"T": largest}) <= 2 * 10**7 < evaluate(macs, {"T": largest + 1})
    assert largest == 173


@pytest.mark.parametrize("args,message", [
    (["--target", "flaten=2464"], "did you mean 'flatten'"),
    (["--target", "flatten"], "write LAYER=SIZE"),
    (["--for", "X"], "has no symbol 'X'"),
    (["--target", "conv1:5=3"], "the output has axes 0..2"),
    (["--max-macs", "-1"], "non-negative"),
])
def test_solve_errors(cli, args, message):
    result = cli("solve", CNN_T, *args)
    assert result.exit_code == 2 and message in result.stderr


def test_solve_without_symbols(cli):
    result = cli("solve", "--target", "flatten=2464")
    assert result.exit_code == 2 and "no symbol to solve for" in result.stderr
    result = cli("solve")
    assert result.exit_code == 0 and "1 row at n=97" in result.stdout


TWO_SYMBOLS = ('[input]\nshape = [1, "H", "W"]\n\n[[layers]]\nname = "conv1"\ntype = "Conv2d"\n'
               'out_channels = 4\nkernel_size = 3\n')


def api_error(call):
    """The UsageError the Python API raises, with the argument it names."""
    with pytest.raises(UsageError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("call,args,api,flagged", [
    (lambda a: parse_target("flatten"), ["--target", "flatten"],
     "target 'flatten': write LAYER=SIZE", "--target 'flatten': write LAYER=SIZE"),
    (lambda a: solve(a, "T", [Target("fc", None, 3)]), ["--target", "fc=3"],
     "target fc: no such layer", "--target fc: no such layer"),
    (lambda a: solve(a, "T", [Target("conv1", 5, 3)]), ["--target", "conv1:5=3"],
     "target conv1:5: the output has axes 0..2", "--target conv1:5: the output has axes 0..2"),
    (lambda a: free_symbol(a, "Q"), ["--for", "Q"], "symbol 'Q': ", "--for 'Q': "),
    (lambda a: solve(a, "T", [], max_macs=-1), ["--max-macs", "-1"], "max_macs -1: must be a non-negative",
     "--max-macs '-1': must be a non-negative"),
])
def test_api_errors_name_arguments_and_the_cli_names_flags(cli, call, args, api, flagged):
    error = api_error(lambda: call(analyze(load_spec(CNN_T))))
    assert str(error).startswith(api) and "--" not in str(error)
    result = cli("solve", CNN_T, *args)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {flagged}")


def test_two_symbols_api_and_cli_messages(cli, write_spec):
    path = write_spec(TWO_SYMBOLS)
    analysis = analyze(load_spec(path))
    error = api_error(lambda: free_symbol(analysis, None))
    assert error.option == "symbol" and "--" not in str(error) and "has symbols H, W" in str(error)
    result = cli("solve", path)
    assert result.exit_code == 2 and result.stderr.startswith("error: --for: ")
    error = api_error(lambda: solve(analysis, "H", [], max_macs=10**6))
    assert str(error) == "max_macs: the MACs depend on H, W; bind the symbols other than H"
    result = cli("solve", path, "--for", "H", "--max-macs", "1e6")
    assert result.exit_code == 2
    assert result.stderr == "error: --max-macs: the MACs depend on H, W; bind the symbols other than H with --set\n"


def test_build_and_torch_messages_name_no_flag(cli, write_spec, monkeypatch):
    import sys

    import archcalc
    from archcalc.errors import TorchMissingError
    from archcalc.pytorch.build import import_torch

    path = write_spec('[input]\nshape = [1, "T", 40]\n\n[[layers]]\ntype = "Flatten"\n\n'
                      '[[layers]]\ntype = "Linear"\nout_features = 3\n')
    with pytest.raises(ShapeError) as caught:
        archcalc.build(load_spec(path))
    assert "not a number" in str(caught.value) and "--" not in str(caught.value)
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails as if it were not installed
    with pytest.raises(TorchMissingError) as missing:
        import_torch()
    assert "torch is not installed" in str(missing.value) and "--" not in str(missing.value)
    result = cli("check", CNN_T)
    assert result.exit_code == 2 and "torch is not installed" in result.output
    assert "(or use --no-torch)" in result.output

@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures(), st.data())
def test_target_answers_match_brute_force(arch, data):
    shape, layers = arch
    axis = data.draw(st.integers(1, len(shape) - 1))
    sym_shape = list(shape)
    sym_shape[axis] = "T"
    try:
        analysis = analyze(parse_spec(spec_text(sym_shape, layers), "s.toml"))
    except ShapeError:
        return
    last = analysis.layers[-1]
    size_axis = next((i for i, s in enumerate(last.out_shape) if not isinstance(s, int)), None)
    if size_axis is None:
        return
    expr = last.out_shape[size_axis]
    lo = analysis.ranges["T"].lo
    # the goal is reached at a valid T: kinds such as GroupNorm make only some T valid (T even)
    valid = [t for t in range(lo, lo + 41) if analysis.satisfies({"T": t})]
    if not valid:
        return
    goal = evaluate(expr, {"T": data.draw(st.sampled_from(valid))})
    answer = solve(analysis, "T", [Target(last.name, size_axis, goal)]).targets[0]
    brute = [t for t in range(lo, lo + 400) if analysis.satisfies({"T": t}) and evaluate(expr, {"T": t}) == goal]
    assert answer.values is not None
    a, b = answer.values
    assert brute[0] == a and (b is None or brute[-1] == min(b, lo + 399))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_macs_match_torch_flop_counter(arch):
    shape, layers = arch
    if torch_reference(shape, layers)[2] is not None:
        return
    analysis = analyze(parse_spec(spec_text(shape, layers), "r.toml"))
    from archcalc import build

    model = build(analysis.spec).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(2, *shape))
    report = cost(analysis)
    assert 2 * report.total_flops == counter.get_total_flops()  # batch of 2
    per_layer = counter.get_flop_counts()
    for row, c in zip(analysis.layers, report.layers):
        counted = sum(per_layer.get(f"Sequential.{row.name}", {}).values())
        assert 2 * c.flops == counted, row.name


def test_receptive_field_of_two_3x3_convs_is_5x5():
    text = '[input]\nshape = [1, 32, 32]\n' + '[[layers]]\ntype = "Conv2d"\nout_channels = 4\nkernel_size = 3\n' * 2
    names, fields = receptive_fields(analyze(parse_spec(text, "rf.toml")))
    assert names == ("H", "W") and [f.size for f in fields[-1]] == [5, 5] and fields[-1][0].jump == 1


def test_course_cnn_receptive_field():
    _, fields = receptive_fields(analyze(load_spec(SPECS / "speech_cnn.toml")))
    assert [(f[0].size, f[0].jump) for f in fields[:6]] == [(5, 1), (5, 1), (6, 2), (14, 2), (14, 2), (16, 4)]
    assert fields[6] is None  # after Flatten every unit sees the whole input


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["conv", "avg"]), st.integers(1, 4), st.integers(1, 2),
                          st.integers(0, 1), st.integers(1, 2)), min_size=1, max_size=4))
def test_receptive_field_matches_gradients(stack):
    """The input pixels that reach an interior output unit span exactly [centre - (r-1)/2, centre + (r-1)/2]."""
    layers = []
    for kind, k, s, p, d in stack:
        p = min(p, k // 2)
        if kind == "conv":
            layers.append({"type": "Conv1d", "out_channels": 1, "kernel_size": k, "stride": s, "padding": p,
                           "dilation": d, "bias": False})
        else:
            layers.append({"type": "AvgPool1d", "kernel_size": k, "stride": s, "padding": p})
    n = 200
    analysis = analyze(parse_spec(spec_text([1, n], layers), "g.toml"))
    _, fields = receptive_fields(analysis)
    field = fields[-1][0]
    from archcalc import build

    model = build(analysis.spec)
    for module in model:
        if isinstance(module, torch.nn.Conv1d):
            torch.nn.init.ones_(module.weight)
    x = torch.zeros(1, 1, n, requires_grad=True)
    out = model(x)
    unit = out.shape[-1] // 2
    out[0, 0, unit].backward()
    touched = torch.nonzero(x.grad[0, 0]).flatten()
    centre = field.start + unit * field.jump
    lo, hi = centre - (field.size - 1) / 2, centre + (field.size - 1) / 2
    if lo >= 0 and hi <= n - 1:  # away from the borders
        assert (int(touched.min()), int(touched.max())) == (lo, hi)


def test_cost_cli_and_json(cli):
    out = cli("params", "--cost", "--batch", "1024").stdout
    assert "Total MACs: 11,010,560" in out and "1,148,248,064 bytes" in out
    doc = json.loads(cli("params", "--cost", "--json", "--dtype", "bfloat16").stdout)
    assert doc["cost"]["total_macs"] == 11010560 and doc["cost"]["layers"][0]["macs"] == 2793600
    assert doc["cost"]["activation_bytes"] == 2 * (4040 + sum(
        l_["activations"] for l_ in doc["cost"]["layers"]))
    doc = json.loads(cli("params", CNN_T, "--cost", "--json", "--set", "T=200").stdout)
    assert isinstance(doc["cost"]["total_macs"], int)
    doc = json.loads(cli("shapes", "--rf", "--json").stdout)
    assert doc["receptive_field"][5]["axes"]["H"] == {"size": 16, "jump": 4, "start": 7.5}
    assert cli("params", "--cost", "--dtype", "int8").exit_code == 2


@settings(max_examples=200)
@given(st.integers(1, 200), st.integers(1, 7), st.integers(1, 4), st.integers(1, 3))
def test_keep_padding_gives_ceil_n_over_s(n, k, s, d):
    from archcalc.analysis.solve import keep_total
    from archcalc.symbolic import floor_out

    total = keep_total(n, k, s, d)
    # padding `total` rows in all (split left/right) gives exactly ceil(n / s) windows
    assert floor_out(n + total, k, s, 0, d) == -(-n // s)
    assert total == 0 or floor_out(n + total - 1, k, s, 0, d) < -(-n // s)  # and it is the least
    assert keep_total(n, k, s, d) == keep_total(n + s * 7, k, s, d)  # depends only on n mod s (n >= 1)
