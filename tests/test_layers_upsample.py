"""ConvTranspose1d/2d/3d and Upsample against torch: shapes, parameters, refusals, MACs, symbols.

torch is the reference answer: each layer is built as a real ``torch.nn`` module from the spec's
written arguments and applied to a real tensor (batch 2); archcalc must refuse exactly where
torch does (at parse with SpecError, or at analyze with ShapeError).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode
from torch_reference import spec_text

from archcalc import analyze, build, parse_spec
from archcalc.errors import ShapeError, SpecError
from archcalc.layers import get_kind
from archcalc.layers.upsample import scale_rule
from archcalc.symbolic import evaluate

try:
    from archcalc.analysis.cost import cost
except ImportError:  # before the move into archcalc/analysis
    from archcalc.cost import cost  # type: ignore[no-redef]

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
# floats equal to their decimal, just above it, just below it, and ones torch rounds irregularly
SCALES = [2.0, 3, 0.5, 0.25, 1.5, 2.5, 0.3, 0.1, 0.3333333333333333, 0.6666666666666666, 1.1,
          0.57, 0.7, 1.4, 0.29, 1.75, 0.9]
MODES = ["nearest", "nearest-exact", "area", "linear", "bilinear", "bicubic", "trilinear"]
MODE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}  # the others take 1 to 3 axes


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny tensors run far faster on one thread than through torch's pool on busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torch_run(shape: tuple[int, ...], layer: dict[str, Any], flops: bool = False
              ) -> tuple[tuple[int, ...], int, int | None] | None:
    """Output shape (per sample), parameters and (with ``flops``) MACs per sample from torch.

    None when torch refuses. FlopCounterMode costs ~10 ms a run, so only the MAC tests ask for it.
    """
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in layer.items() if k != "type"}
    kwargs = {k: None if v == "none" else v for k, v in kwargs.items()}
    if layer["type"].startswith("Conv"):
        kwargs.setdefault("in_channels", shape[0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zero-element weights warn; refusals raise
            module = getattr(torch.nn, layer["type"])(**kwargs)
            counter = FlopCounterMode(display=False) if flops else contextlib.nullcontext()
            with torch.no_grad(), counter:
                y = module(torch.zeros((2, *shape)))
    except Exception:  # noqa: BLE001  any refusal by torch is the answer
        return None
    if y.numel() == 0:
        return None
    params = sum(p.numel() for p in module.parameters())
    macs = counter.get_total_flops() // 2 // 2 if flops else None  # MACs = FLOPs/2, batch 2
    return tuple(y.shape[1:]), params, macs


def archcalc_run(shape: list[Any], layers: list[dict[str, Any]], values: dict[str, int] | None = None
                 ) -> Any:
    """The analysis, or None when archcalc refuses (at parse or at analyze)."""
    try:
        return analyze(parse_spec(spec_text(shape, layers)), values)
    except (SpecError, ShapeError) as exc:
        assert "\n" not in str(exc), f"a refusal is one line: {exc}"
        return None


def per_axis(draw: Any, dims: int, lo: int, hi: int) -> Any:
    if draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return [draw(st.integers(lo, hi)) for _ in range(dims)]


@st.composite
def conv_transpose_cases(draw: Any) -> tuple[list[int], dict[str, Any]]:
    dims = draw(st.integers(1, 3))
    shape = [draw(st.integers(1, 4))] + [draw(st.integers(1, {1: 12, 2: 7, 3: 4}[dims])) for _ in range(dims)]
    layer: dict[str, Any] = {"type": f"ConvTranspose{dims}d", "out_channels": draw(st.integers(1, 6)),
                             "kernel_size": per_axis(draw, dims, 1, 4)}
    for key, lo, hi in (("stride", 1, 3), ("padding", 0, 3), ("dilation", 1, 3)):
        if draw(st.booleans()):
            layer[key] = per_axis(draw, dims, lo, hi)
    if draw(st.booleans()):  # mostly below stride or dilation (else torch refuses), sometimes not
        s, d = (layer.get(k, 1) for k in ("stride", "dilation"))
        s, d = (v if isinstance(v, list) else [v] * dims for v in (s, d))
        layer["output_padding"] = per_axis(draw, dims, 0, 2) if draw(st.integers(0, 3)) == 0 else \
            [draw(st.integers(0, max(a, b) - 1)) for a, b in zip(s, d)]
    if draw(st.integers(0, 3)) == 0:
        layer["groups"] = draw(st.integers(2, 3))  # often not dividing: torch refuses then
    if draw(st.booleans()):
        layer["bias"] = False
    if draw(st.integers(0, 5)) == 0:  # a written in_channels, sometimes wrong
        layer["in_channels"] = shape[0] + draw(st.sampled_from([0, 0, 1]))
    if draw(st.integers(0, 9)) == 0:
        layer["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "circular"]))
    return shape, layer


@SETTINGS
@given(conv_transpose_cases())
def test_conv_transpose_matches_torch(case: tuple[list[int], dict[str, Any]]) -> None:
    shape, layer = case
    expected = torch_run(tuple(shape), layer, flops=True)
    analysis = archcalc_run(shape, [layer])
    assert (analysis is None) == (expected is None), (shape, layer, expected)
    if analysis is not None:
        row = analysis.layers[0]
        assert (row.out_shape, row.params) == expected[:2]
        assert analysis.total_params == expected[1]
        assert cost(analysis).layers[0].macs == expected[2]  # FlopCounterMode's FLOPs / 2


def _list_or_scalar(draw: Any, dims: int, values: st.SearchStrategy[Any]) -> Any:
    """A scalar, a list per spatial axis, or (rarely) a list of the wrong length."""
    choice = draw(st.integers(0, 5))
    if choice < 3:
        return draw(values)
    n = dims if choice < 5 else draw(st.sampled_from([d for d in (1, 2, 3) if d != dims]))
    return [draw(values) for _ in range(n)]


@st.composite
def upsample_cases(draw: Any) -> tuple[list[int], dict[str, Any]]:
    dims = draw(st.integers(1, 3))
    hi = {1: 40, 2: 12, 3: 6}[dims]
    shape = [draw(st.integers(1, 3))] + [draw(st.integers(1, hi)) for _ in range(dims)]
    fitting = [m for m in MODES if MODE_DIMS.get(m, dims) == dims]
    mode = draw(st.sampled_from(MODES if draw(st.integers(0, 3)) == 0 else fitting))
    layer: dict[str, Any] = {"type": "Upsample", "mode": mode}
    how = draw(st.sampled_from(["size"] * 2 + ["scale"] * 5 + ["both", "neither"]))
    if how in ("size", "both"):
        layer["size"] = _list_or_scalar(draw, dims, st.integers(1, 9))
    if how in ("scale", "both"):
        scales = st.sampled_from(SCALES) | st.floats(0.05, 3.0).map(lambda x: round(x, 3))
        layer["scale_factor"] = _list_or_scalar(draw, dims, scales)
    if draw(st.integers(0, 3)) == 0:  # torch refuses it (even false) with the nearest modes
        layer["align_corners"] = draw(st.booleans())
    if draw(st.integers(0, 4)) == 0:
        layer["recompute_scale_factor"] = draw(st.booleans())
    return shape, layer


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upsample_cases())
def test_upsample_matches_torch(case: tuple[list[int], dict[str, Any]]) -> None:
    shape, layer = case
    expected = torch_run(tuple(shape), layer)
    analysis = archcalc_run(shape, [layer])
    assert (analysis is None) == (expected is None), (shape, layer, expected)
    if analysis is not None:
        assert (analysis.layers[0].out_shape, analysis.layers[0].params) == expected[:2]
        assert cost(analysis).total_macs == 0


@pytest.mark.parametrize("scale", SCALES)
def test_upsample_numeric_sizes_follow_torchs_float_product(scale: float) -> None:
    """L = 1..150 per scale: 0.57 gives floor(100*0.57) = 56, as torch does."""
    layers = [{"type": "Upsample", "scale_factor": scale}]
    for n in range(1, 151):
        expected = torch_run((1, n), layers[0])
        analysis = archcalc_run([1, n], layers)
        got = None if analysis is None else analysis.layers[0].out_shape
        assert got == (None if expected is None else expected[0]), (scale, n)


@pytest.mark.parametrize("scale", [s for s in SCALES if scale_rule(float(s)) is not None])
def test_upsample_symbolic_size_matches_torch_at_every_value(scale: float) -> None:
    analysis = archcalc_run([2, "L"], [{"type": "Upsample", "scale_factor": scale, "mode": "linear"}])
    assert analysis is not None
    out = analysis.layers[0].out_shape[1]
    lo = analysis.ranges["L"].lo
    for n in range(1, 250):
        expected = torch_run((2, n), {"type": "Upsample", "scale_factor": scale, "mode": "linear"})
        assert (expected is None) == (n < lo), (scale, n, lo)
        if expected is not None:
            assert evaluate(out, {"L": n}) == expected[0][1], (scale, n, out)


def test_scale_rule_is_exact_far_beyond_the_tested_sizes() -> None:
    """torch's floor(float(I)*s) is Python's (above); the closed form agrees up to I = 200000."""
    for scale in (0.3, 0.1, 0.3333333333333333, 0.6666666666666666, 1.1, 0.9, 2.5, 1.75):
        ratio = scale_rule(scale)
        assert ratio is not None
        p, q = ratio.numerator, ratio.denominator
        bad = [i for i in range(1, 200_000) if math.floor(i * scale) != i * p // q]
        assert not bad, (scale, bad[:3])
    assert str(scale_rule(0.3333333333333333)) == "1/3" and str(scale_rule(0.3)) == "3/10"


@pytest.mark.parametrize("scale", [0.57, 0.7, 1.4, 0.29])
def test_scales_torch_rounds_irregularly_are_refused_only_for_symbols(scale: float) -> None:
    # torch lands on the whole value at some multiples and just below it at others
    rounded_down = {math.floor(i * scale) < round(i * scale) for i in range(100, 100_000, 100)}
    assert rounded_down == {True, False}
    layer = {"type": "Upsample", "scale_factor": scale}
    with pytest.raises(ShapeError, match="write that input size as a number") as exc:
        analyze(parse_spec(spec_text([3, "H", "W"], [{**layer, "mode": "bilinear"}])))
    assert "\n" not in str(exc.value)
    assert archcalc_run([3, 100, 100], [layer]).layers[0].out_shape[1:] == (math.floor(100 * scale),) * 2


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_transpose_cases(), st.data())
def test_conv_transpose_symbolic_sizes_match_torch(case: tuple[list[int], dict[str, Any]], data: Any) -> None:
    shape, layer = case
    dims = len(shape) - 1
    names = list(AXES[dims])
    analysis = archcalc_run([shape[0], *names], [layer])
    if analysis is None:  # refused for every size: then torch refuses at the drawn one too
        assert torch_run(tuple(shape), layer) is None
        return
    row = analysis.layers[0]
    for i in range(6):
        values = {n: data.draw(st.integers(1, {1: 30, 2: 9, 3: 4}[dims])) for n in names}
        expected = torch_run((shape[0], *values.values()), layer, flops=i == 0)
        valid = all(analysis.ranges[n].contains(v) for n, v in values.items())
        assert valid == (expected is not None), (layer, values, expected)
        if not valid:  # binding the symbols to such values is refused too
            assert archcalc_run([shape[0], *names], [layer], values) is None
        if expected is not None:
            assert tuple(evaluate(s, values) for s in row.out_shape) == expected[0]
            assert evaluate(row.params, values) == expected[1]
            if i == 0:
                assert evaluate(cost(analysis).layers[0].macs, values) == expected[2]


def test_a_stack_with_symbols_matches_torch_at_many_sizes() -> None:
    """Conv2d (a floor), ConvTranspose2d and Upsample by 1.5 and 1/3 composed on [3, H, W]."""
    layers = [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "stride": 2},
              {"type": "ConvTranspose2d", "out_channels": 5, "kernel_size": 4, "stride": 3, "padding": 1,
               "output_padding": 2},
              {"type": "Upsample", "scale_factor": [1.5, 0.3333333333333333], "mode": "bicubic"}]
    spec = parse_spec(spec_text([3, "H", "W"], layers))
    analysis = analyze(spec)
    assert analysis.ranges["H"].lo == 3 and analysis.ranges["W"].lo == 3
    for h in range(3, 40, 4):
        for w in (3, 4, 11, 29):
            values = {"H": h, "W": w}
            x = torch.zeros((2, 3, h, w))
            model = build(spec, values)
            with torch.no_grad():
                y = model(x)
            assert tuple(evaluate(s, values) for s in analysis.layers[-1].out_shape) == tuple(y.shape[1:])


def test_conv_transpose_shape_derivation_and_parameter_formula() -> None:
    layer = {"type": "ConvTranspose2d", "out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1,
             "output_padding": 1, "groups": 2}
    row = archcalc_run([4, "H", 9], [layer]).layers[0]
    assert str(row.out_shape[1]) == "2*H" and row.out_shape[2] == 18
    assert row.derivation[1][0] == "H: (H - 1)*2 - 2*1 + 1*(3-1) + 1 + 1"
    assert row.params_formula == "3*3*4*3 + 6" and row.params == 114 == torch_run((4, 9, 9), layer)[1]
    assert row.description == "3x3 ->6 s2,2 p1,1 op1,1"


def test_macs_match_flop_counter_for_each_dimensionality() -> None:
    for dims, shape in ((1, (3, 17)), (2, (4, 6, 5)), (3, (2, 3, 4, 2))):
        layer = {"type": f"ConvTranspose{dims}d", "out_channels": 4, "kernel_size": 3, "stride": 2,
                 "groups": 2 if shape[0] % 2 == 0 else 1, "bias": dims != 2}
        analysis = archcalc_run(list(shape), [layer])
        assert cost(analysis).total_macs == torch_run(shape, layer, flops=True)[2] > 0
    upsample = {"type": "Upsample", "scale_factor": 2, "mode": "bilinear"}
    expected = torch_run((3, 5, 5), upsample, flops=True)
    assert cost(archcalc_run([3, 5, 5], [upsample])).total_macs == expected[2] == 0


def test_build_makes_modules_torch_accepts() -> None:
    layers = [{"type": "ConvTranspose1d", "out_channels": 3, "kernel_size": [5], "stride": [2],
               "dilation": 2, "output_padding": [1], "padding_mode": "zeros"},
              {"type": "Upsample", "scale_factor": [2.5], "mode": "linear", "align_corners": True,
               "recompute_scale_factor": "none"},
              {"type": "Upsample", "size": 7, "align_corners": "none"}]
    spec = parse_spec(spec_text([2, 10], layers))
    analysis = analyze(spec)
    assert [r.out_shape for r in analysis.layers] == [(3, 28), (3, 70), (3, 7)]
    with torch.no_grad():
        assert tuple(build(spec)(torch.zeros(2, 2, 10)).shape) == (2, 3, 7)


REFUSED = [
    ({"type": "ConvTranspose2d", "out_channels": 4, "kernel_size": 3, "padding": "same"}, "padding"),
    ({"type": "ConvTranspose2d", "out_channels": 4, "kernel_size": 3, "padding_mode": "reflect"}, "'zeros'"),
    ({"type": "ConvTranspose2d", "out_channels": 4, "kernel_size": 3, "stride": 2, "output_padding": 2},
     "output_padding 2 on H must be smaller than its stride 2 or dilation 1"),
    ({"type": "ConvTranspose2d", "out_channels": 4, "kernel_size": 3, "groups": 3}, "divisible by groups"),
    ({"type": "ConvTranspose2d", "out_channels": 6, "kernel_size": 3, "groups": 3}, "in_channels = 4"),
    ({"type": "ConvTranspose2d", "out_channels": 4, "kernel_size": 3, "padding": 9},
     "output H, after 2*padding = 18 is cut off: size -7"),
    ({"type": "ConvTranspose1d", "out_channels": 4, "kernel_size": 3}, "(C, L)"),
    ({"type": "Upsample"}, "exactly one of size or scale_factor"),
    ({"type": "Upsample", "size": 4, "scale_factor": 2}, "exactly one of size or scale_factor"),
    ({"type": "Upsample", "scale_factor": 2, "align_corners": False}, "align_corners"),
    ({"type": "Upsample", "size": 4, "recompute_scale_factor": True}, "recompute_scale_factor"),
    ({"type": "Upsample", "scale_factor": 2, "mode": "trilinear"}, "'trilinear' works on 3 spatial axes"),
    ({"type": "Upsample", "size": [4, 4, 4]}, "3 entries for 2 spatial axes"),
    ({"type": "Upsample", "scale_factor": 0}, "a number > 0"),
    ({"type": "Upsample", "scale_factor": 0.05}, "output H: size 0 is too small"),
    ({"type": "Upsample", "scale_factor": 2, "mode": "lanczos"}, "mode"),
]


@pytest.mark.parametrize(("layer", "message"), REFUSED)
def test_refusals_are_one_line_and_torch_refuses_too(layer: dict[str, Any], message: str) -> None:
    assert torch_run((4, 9, 9), layer) is None
    with pytest.raises((SpecError, ShapeError)) as exc:
        analyze(parse_spec(spec_text([4, 9, 9], [layer])))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_words_for_reports() -> None:
    spec = parse_spec(spec_text([4, 9, 9], [
        {"type": "ConvTranspose2d", "out_channels": 6, "kernel_size": 3, "stride": 2, "output_padding": 1},
        {"type": "Upsample", "scale_factor": 2, "mode": "bilinear"}]))
    analysis = analyze(spec)
    texts = [get_kind(layer.type).words(layer.args, (row.in_shape,), row.out_shape)
             for layer, row in zip(spec.layers, analysis.layers)]
    assert texts[0] == ("ConvTranspose2d: transposed convolution to 6 channels with 3×3 kernels over 4 "
                        "input channels, stride 2, padding 0, output_padding 1; output 6 × 20 × 20")
    assert texts[1] == "Upsample: bilinear resampling by a factor 2.0; output 6 × 40 × 40"
