"""Recurrent, attention, normalization, axis-move, activation, dropout, pooling and padding kinds:
the modules archcalc builds, their MACs against FlopCounterMode, symbolic sizes, formulas and the
one-line errors. The shapes and parameters of every kind against torch are in test_registry.py.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from collections.abc import Iterator

import pytest
import torch
from conftest import fails
from test_registry import ROWS, _spec
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from torch_reference import spec_text

from archcalc import analyze, build, parse_spec
from archcalc.analysis.cost import cost
from archcalc.errors import ShapeError
from archcalc.layers import REGISTRY
from archcalc.pytorch import ops
from archcalc.symbolic import evaluate, symbol

SEQUENCE = ["RNN", "LSTM", "GRU", "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer",
            "TransformerEncoder"]
NORMS = ["BatchNorm3d", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "RMSNorm",
         "LocalResponseNorm"]
AXIS = ["Permute", "Transpose", "Mean", "Sum", "Unflatten", "PixelShuffle", "PixelUnshuffle", "ChannelShuffle"]
ACTIVATIONS = ["PReLU", "Hardtanh", "Hardswish", "Hardsigmoid", "Mish", "Softplus", "Softsign", "Tanhshrink",
               "Threshold", "GLU", "Softmax2d", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"]
POOL_PAD = ["AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "LPPool1d", "LPPool2d", "FractionalMaxPool2d",
            *(f"{p}Pad{d}d" for p in ("Zero", "Constant", "Reflection", "Replication", "Circular") for d in (1, 2, 3))]
NEW = [k for k in SEQUENCE + NORMS + AXIS + ACTIVATIONS + POOL_PAD if k in REGISTRY]


def _analysis(text: str, values: dict[str, int] | None = None):
    return analyze(parse_spec(text, "t.toml"), values)


@contextlib.contextmanager
def _counted() -> Iterator[FlopCounterMode]:
    """FlopCounterMode on torch's composite paths: oneDNN's fused RNN and the fused attention
    kernels are invisible to it, so they are switched off (the maths is the same)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with FlopCounterMode(display=False) as counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH), \
                torch.backends.mkldnn.flags(enabled=False):
            yield counter


# --------------------------------------------------------------------------- the modules archcalc builds


@pytest.mark.parametrize("type_", NEW)
def test_built_module_has_the_analysed_output_and_parameters(type_):
    shape, args = ROWS[type_]
    shapes = shape if isinstance(shape[0], list) else [shape]
    analysis = _analysis(_spec(shapes, type_, args))
    node = analysis.node("node")
    model = build(analysis.spec)
    module = model.get_submodule("node")
    assert {n: tuple(p.shape) for n, p in module.named_parameters()} == \
        node.kind.param_shapes_all(node.in_shapes, node.args)
    with torch.no_grad():
        out = model(torch.randn(2, *shapes[0]))
    assert isinstance(out, torch.Tensor) and tuple(out.shape[1:]) == node.out_shape


@pytest.mark.parametrize("cls,ref", [(ops.RNN, nn.RNN), (ops.LSTM, nn.LSTM), (ops.GRU, nn.GRU)])
@pytest.mark.parametrize("batch_first", [False, True])
def test_recurrent_module_is_torch_on_the_model_layout(cls, ref, batch_first):
    """(N, T, F) in, whatever batch_first says: the same numbers as torch's module on its own layout."""
    torch.manual_seed(0)
    ours = cls(5, 4, num_layers=2, bidirectional=True, batch_first=batch_first)
    theirs = ref(5, 4, num_layers=2, bidirectional=True, batch_first=batch_first)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 7, 5)  # (N, T, F)
    expected = theirs(x)[0] if batch_first else theirs(x.transpose(0, 1))[0].transpose(0, 1)
    assert torch.allclose(ours(x), expected, atol=1e-6)


@pytest.mark.parametrize("batch_first", [False, True])
def test_attention_modules_are_torch_on_the_model_layout(batch_first):
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 7, 8), torch.randn(2, 5, 3), torch.randn(2, 5, 6)

    def time_first(*xs):
        return xs if batch_first else tuple(x.transpose(0, 1) for x in xs)

    def back(y):
        return y if batch_first else y.transpose(0, 1)

    ours = ops.MultiheadAttention(8, 2, kdim=3, vdim=6, batch_first=batch_first)
    theirs = nn.MultiheadAttention(8, 2, kdim=3, vdim=6, batch_first=batch_first)
    theirs.load_state_dict(ours.state_dict())
    assert torch.allclose(ours(q, k, v), back(theirs(*time_first(q, k, v))[0]), atol=1e-6)
    self_ours = ops.MultiheadAttention(8, 2, batch_first=batch_first)
    self_theirs = nn.MultiheadAttention(8, 2, batch_first=batch_first)
    self_theirs.load_state_dict(self_ours.state_dict())
    assert torch.allclose(self_ours(q), back(self_theirs(*time_first(q, q, q))[0]), atol=1e-6)

    kw = {"d_model": 8, "nhead": 2, "dim_feedforward": 12, "batch_first": batch_first}
    enc = ops.TransformerEncoderLayer(**kw).eval()
    enc_ref = nn.TransformerEncoderLayer(**kw).eval()
    enc_ref.load_state_dict(enc.state_dict())
    assert torch.allclose(enc(q), back(enc_ref(*time_first(q))), atol=1e-6)
    dec = ops.TransformerDecoderLayer(**kw).eval()
    dec_ref = nn.TransformerDecoderLayer(**kw).eval()
    dec_ref.load_state_dict(dec.state_dict())
    memory = torch.randn(2, 5, 8)
    assert torch.allclose(dec(q, memory), back(dec_ref(*time_first(q, memory))), atol=1e-6)
    stack = ops.TransformerEncoder(3, **kw).eval()
    stack_ref = nn.TransformerEncoder(nn.TransformerEncoderLayer(**kw), 3, enable_nested_tensor=False).eval()
    stack_ref.load_state_dict(stack.state_dict())
    assert torch.allclose(stack(q), back(stack_ref(*time_first(q))), atol=1e-5)


def test_three_input_attention_and_decoder_in_a_graph_match_torch():
    text = """
[input]
shape = [7, 8]
[[layers]]
name = "key"
type = "Linear"
out_features = 3
[[layers]]
name = "memory"
type = "Conv1d"
from = "input"
out_channels = 5
kernel_size = 1
[[layers]]
name = "attn"
type = "MultiheadAttention"
from = ["input", "key", "input"]
num_heads = 4
kdim = 3
[[layers]]
name = "dec"
type = "TransformerDecoderLayer"
from = ["attn", "memory"]
nhead = 2
dim_feedforward = 16
"""
    analysis = _analysis(text)
    attn, dec = analysis.node("attn"), analysis.node("dec")
    assert attn.out_shape == (7, 8) and dec.out_shape == (7, 8)
    model = build(analysis.spec)
    for node in (attn, dec):
        named = {n: tuple(p.shape) for n, p in model.get_submodule(node.name).named_parameters()}
        assert named == node.kind.param_shapes_all(node.in_shapes, node.args)
        assert node.params == sum(p.numel() for p in model.get_submodule(node.name).parameters())
    assert "k_proj_weight" in attn.kind.param_shapes_all(attn.in_shapes, attn.args)
    with torch.no_grad():
        assert tuple(model(torch.randn(2, 7, 8)).shape) == (2, 7, 8)


# --------------------------------------------------------------------------- MACs, symbolic sizes, formulas


RNN_STACK = [
    {"type": "LSTM", "hidden_size": 6, "num_layers": 2, "bidirectional": True, "proj_size": 3},
    {"type": "GRU", "hidden_size": 5, "batch_first": True},
    {"type": "RNN", "hidden_size": 4, "bias": False, "num_layers": 3},
    {"type": "LSTM", "hidden_size": 3},
]
ATTENTION_STACK = [
    {"type": "MultiheadAttention", "num_heads": 2, "add_bias_kv": True},
    {"type": "TransformerEncoderLayer", "nhead": 4, "dim_feedforward": 12},
    {"type": "TransformerEncoder", "nhead": 2, "dim_feedforward": 6, "num_layers": 2, "batch_first": True},
    {"type": "MultiheadAttention", "num_heads": 1, "add_zero_attn": True, "bias": False},
]


@pytest.mark.parametrize("layers,features", [(RNN_STACK, 5), (ATTENTION_STACK, 8)])
def test_macs_are_formulas_in_T_that_match_flop_counter(layers, features):
    analysis = _analysis(spec_text(["T", features], layers))
    report = cost(analysis)
    t = symbol("T")
    if layers is ATTENTION_STACK:
        assert report.total_macs.as_poly(t).degree() == 2  # the T^2 attention products
    else:
        assert report.total_macs.as_poly(t).degree() == 1
    for length in (1, 2, 9):
        model = build(analysis.spec, {"T": length}).train()  # train: torch's fused inference path is uncounted
        with _counted() as counter:
            model(torch.randn(2, length, features))
        per_layer = counter.get_flop_counts()
        for row, c in zip(analysis.layers, report.layers, strict=True):
            counted = sum(per_layer.get(f"Sequential.{row.name}", {}).values())
            assert evaluate(c.flops, {"T": length}) * 2 == counted, (row.name, length)


def test_cross_attention_macs_take_the_key_length():
    kind = REGISTRY["MultiheadAttention"]
    args = {**{k: a.default for k, a in kind.args.items()}, "num_heads": 2, "kdim": 3, "vdim": 6}
    module = ops.MultiheadAttention(8, 2, kdim=3, vdim=6, batch_first=False).train()
    with _counted() as counter:
        module(torch.randn(2, 7, 8), torch.randn(2, 5, 3), torch.randn(2, 5, 6))
    assert kind.macs_all(((7, 8), (5, 3), (5, 6)), (7, 8), args) * 4 == counter.get_total_flops()
    dec = REGISTRY["TransformerDecoderLayer"]
    args = {**{k: a.default for k, a in dec.args.items()}, "nhead": 2, "dim_feedforward": 12}
    module = ops.TransformerDecoderLayer(8, 2, 12).train()
    with _counted() as counter:
        module(torch.randn(2, 7, 8), torch.randn(2, 5, 8))
    assert dec.macs_all(((7, 8), (5, 8)), (7, 8), args) * 4 == counter.get_total_flops()


def test_recurrent_sizes_and_formulas():
    analysis = _analysis(spec_text(["T", 40], [
        {"type": "LSTM", "hidden_size": 128},
        {"type": "LSTM", "hidden_size": 128, "proj_size": 64, "num_layers": 2, "bidirectional": True},
        {"type": "GRU", "hidden_size": 32, "bias": False},
        {"type": "RNN", "hidden_size": 8},
    ]))
    lstm, proj, gru, rnn = analysis.layers
    t = symbol("T")
    assert lstm.out_shape == (t, 128) and proj.out_shape == (t, 128) and gru.out_shape == (t, 32)
    assert lstm.params_formula == "4*(128*(40 + 128) + 2*128)" and lstm.params == 87040
    # per direction: w_ih 4H x I, w_hh 4H x P, two biases 4H, w_hr P x H; the second layer reads 2*P
    assert proj.params_formula == ("2*(4*128*(128 + 64) + 8*128 + 64*128) + "
                                   "2*(4*128*(128 + 64) + 8*128 + 64*128)")
    assert proj.params == sum(p.numel() for p in nn.LSTM(128, 128, 2, bidirectional=True, proj_size=64).parameters())
    assert gru.params_formula == "3*32*(128 + 32)" and rnn.params_formula == "8*(32 + 8) + 2*8"
    assert cost(analysis).layers[0].macs == 4 * 128 * (40 + 128) * t


def test_attention_formulas_and_symbolic_embedding():
    analysis = _analysis(spec_text(["T", "E"], [{"type": "MultiheadAttention", "num_heads": 4}]))
    row = analysis.layers[0]
    assert row.params_formula == "3*E*E + 3*E + E*E + E"
    assert analysis.ranges["E"].text("E") == "E >= 4, E ≡ 0 (mod 4)"
    enc = _analysis(spec_text(["T", 512], [{"type": "TransformerEncoderLayer", "nhead": 8}])).layers[0]
    assert enc.params_formula == "4*(512*512 + 512) + 2*512*2048 + 2048 + 512 + 2*2*512"
    assert enc.params == sum(p.numel() for p in nn.TransformerEncoderLayer(512, 8).parameters())


def test_axis_moves_keep_symbols_and_conditions():
    analysis = _analysis(spec_text([8, "T", 12], [
        {"type": "PixelUnshuffle", "downscale_factor": 2},
        {"type": "Permute", "dims": [0, 2, 3, 1]},
        {"type": "Mean", "dim": 2},
        {"type": "Unflatten", "dim": -1, "unflattened_size": [4, -1]},
    ]))
    t = symbol("T")
    half = evaluate(analysis.layers[0].out_shape[1], {})
    assert analysis.layers[1].out_shape == (half, 6, 32)
    assert analysis.layers[2].out_shape == (half, 32)
    assert analysis.layers[3].out_shape == (half, 4, 8)
    assert analysis.ranges["T"].text("T") == "T >= 2, T ≡ 0 (mod 2)"
    assert evaluate(half, {"T": 10}) == 5 and t in half.free_symbols


def test_glu_halves_a_symbolic_axis():
    analysis = _analysis(spec_text(["T", 6], [{"type": "GLU", "dim": 1}]))
    assert analysis.ranges["T"].text("T") == "T >= 2, T ≡ 0 (mod 2)"
    assert evaluate(analysis.layers[0].out_shape[0], {"T": 8}) == 4


def test_padding_limits_are_conditions_on_symbols():
    analysis = _analysis(spec_text([2, "T"], [{"type": "ReflectionPad1d", "padding": [3, 1]},
                                              {"type": "ZeroPad1d", "padding": [-2, 0]}]))
    t = symbol("T")
    assert analysis.layers[0].out_shape == (2, t + 4) and analysis.layers[1].out_shape == (2, t + 2)
    assert analysis.ranges["T"].text("T") == "T >= 4"
    ranges = _analysis(spec_text([1, "H", 8], [{"type": "CircularPad2d", "padding": [1, 1, 5, 0]}])).ranges
    assert ranges["H"].text("H") == "H >= 5"
    ranges = _analysis(spec_text([1, 8, "W"], [{"type": "ReplicationPad2d", "padding": [-4, -3, 0, 0]}])).ranges
    assert ranges["W"].text("W") == "W >= 8"
    ranges = _analysis(spec_text([1, "H", 9], [{"type": "FractionalMaxPool2d", "kernel_size": 3,
                                                "output_size": [6, 4]}])).ranges
    assert ranges["H"].text("H") == "H >= 8"


@pytest.mark.parametrize("prefix", ["Zero", "Constant", "Reflection", "Replication", "Circular"])
def test_padding_refuses_exactly_where_torch_does(prefix):
    """Every pair of paddings -4..4 on inputs 1..7: the same size as torch, or a refusal where torch
    refuses (or gives an empty axis). One exception: a circular padding that crops more than the
    input on one side and pads the other, which torch sometimes runs on wrapped slices."""
    for before, after in itertools.product(range(-4, 5), repeat=2):
        for n in range(1, 8):
            layer = {"type": f"{prefix}Pad1d", "padding": [before, after]}
            kwargs = {"padding": (before, after)}
            if prefix == "Constant":
                layer["value"] = kwargs["value"] = 0.5
            try:
                ours = _analysis(spec_text([1, n], [layer])).layers[0].out_shape
            except ShapeError:
                ours = None
            try:
                out = getattr(nn, f"{prefix}Pad1d")(**kwargs)(torch.randn(2, 1, n))
                theirs = tuple(out.shape[1:]) if out.numel() else None
            except Exception:  # noqa: BLE001  torch's refusal
                theirs = None
            if prefix == "Circular" and n < -min(before, 0) - min(after, 0):
                assert ours is None
                continue
            assert ours == theirs, (before, after, n)


def test_lppool_has_the_size_of_average_pooling():
    for ceil_mode in (False, True):
        args = {"kernel_size": 3, "stride": 2, "ceil_mode": ceil_mode}
        lp = _analysis(spec_text([2, "T"], [{"type": "LPPool1d", "norm_type": 2, **args}]))
        avg = _analysis(spec_text([2, "T"], [{"type": "AvgPool1d", **args}]))
        assert lp.layers[0].out_shape == avg.layers[0].out_shape
        assert lp.ranges["T"] == avg.ranges["T"]


def test_adaptive_pool_3d_keeps_none_axes():
    row = _analysis(spec_text([2, "D", 6, 7], [{"type": "AdaptiveMaxPool3d", "output_size": ["none", 2, 3]}])).layers[0]
    assert row.out_shape == (2, symbol("D"), 2, 3)


def test_group_and_instance_norm_conditions():
    ranges = _analysis(spec_text(["C", 5], [{"type": "GroupNorm", "num_groups": 3}])).ranges
    assert ranges["C"].text("C") == "C >= 3, C ≡ 0 (mod 3)"
    ranges = _analysis(spec_text([2, "L"], [{"type": "InstanceNorm1d"}])).ranges
    assert ranges["L"].text("L") == "L >= 2"


# --------------------------------------------------------------------------- errors: one line, file and line


ERRORS = [
    ([5, 4], {"type": "LSTM", "hidden_size": 4, "proj_size": 4}, "proj_size = 4 must be smaller than hidden_size"),
    ([5, 4], {"type": "GRU", "hidden_size": 4, "dropout": 1.5}, "dropout must be >= 0.0 and <= 1.0"),
    ([5, 4], {"type": "RNN", "hidden_size": 4, "nonlinearity": "sigmoid"}, "nonlinearity must be one of"),
    ([2, 5, 4], {"type": "LSTM", "hidden_size": 4}, "takes a per-sample input [T, features]"),
    ([5, 4], {"type": "LSTM", "hidden_size": 4, "input_size": 3}, "input_size = 3 disagrees with the incoming size 4"),
    ([5, 6], {"type": "MultiheadAttention", "num_heads": 4, "embed_dim": 6}, "embed_dim = 6 is not divisible by"),
    ([5, 6], {"type": "MultiheadAttention", "num_heads": 4}, "embed_dim (num_heads = 4): 6 is not a multiple of 4"),
    ([5, 6], {"type": "MultiheadAttention", "num_heads": 2, "kdim": 3}, "kdim = 3 must equal embed_dim"),
    ([5, 6], {"type": "TransformerEncoderLayer", "nhead": 4}, "d_model (nhead = 4): 6 is not a multiple of 4"),
    ([5, 6], {"type": "TransformerEncoderLayer", "nhead": 2, "activation": "tanh"}, "activation must be one of"),
    ([5, 6], {"type": "TransformerEncoder", "nhead": 2}, "missing required argument 'num_layers'"),
    ([5, 6], {"type": "GroupNorm", "num_groups": 4, "num_channels": 6}, "num_channels = 6 is not divisible"),
    ([6, 5], {"type": "GroupNorm", "num_groups": 4}, "num_channels (num_groups = 4): 6 is not a multiple of 4"),
    ([4, 1], {"type": "InstanceNorm1d"}, "needs more than one value per channel"),
    ([4, 1, 1], {"type": "InstanceNorm2d"}, "needs more than one value per channel"),
    ([4], {"type": "LocalResponseNorm", "size": 2}, "takes a per-sample input (C, ...)"),
    ([3, 4], {"type": "Permute", "dims": [1, 0, 2]}, "moves the batch axis: dims[0] must be 0"),
    ([3, 4], {"type": "Permute", "dims": [0, 1]}, "dims has 2 entries but the input has 3 axes"),
    ([3, 4], {"type": "Permute", "dims": [0, 1, 1]}, "is not a permutation of 0..2"),
    ([3, 4], {"type": "Permute", "dims": 1}, "dims must be a non-empty list of integer axes"),
    ([3, 4], {"type": "Transpose", "dim0": 0, "dim1": 1}, "dim0 = 0 is the batch axis"),
    ([3, 4], {"type": "Transpose", "dim0": 1, "dim1": 3}, "dim1 = 3 is out of range for a 3-d input"),
    ([3, 4], {"type": "Mean", "dim": [1, 2]}, "reduces every per-sample axis"),
    ([3, 4], {"type": "Sum", "dim": [1, -2]}, "names an axis twice"),
    ([3, 4], {"type": "Mean", "dim": "time"}, "dim must be an integer axis or a non-empty list of them"),
    ([6, 4], {"type": "Unflatten", "dim": 1, "unflattened_size": [4, -1]}, "[4, -1]): 6 is not a multiple of 4"),
    ([6, 4], {"type": "Unflatten", "dim": 1, "unflattened_size": [2, 2]}, "multiplies to 4, but dim 1 has size 6"),
    ([6, 4], {"type": "Unflatten", "dim": 1, "unflattened_size": [-1, -1]}, "may hold one -1 only"),
    ([6, 4], {"type": "Unflatten", "dim": 0, "unflattened_size": [2, 3]}, "dim = 0 is the batch axis"),
    ([6, 4, 4], {"type": "PixelShuffle", "upscale_factor": 2}, "C (upscale_factor**2 = 4): 6 is not a multiple of 4"),
    ([6, 5, 4], {"type": "PixelUnshuffle", "downscale_factor": 2}, "H (downscale_factor = 2): 5 is not a multiple"),
    ([6, 4], {"type": "PixelShuffle", "upscale_factor": 2}, "takes a per-sample input (..., C, H, W)"),
    ([6, 4], {"type": "ChannelShuffle", "groups": 4}, "C (groups = 4): 6 is not a multiple of 4"),
    ([6], {"type": "ChannelShuffle", "groups": 2}, "takes a per-sample input (C, ...)"),
    ([4, 5], {"type": "PReLU", "num_parameters": 3}, "num_parameters = 3 must be 1 or the channels (dim 1): 4 vs 3"),
    ([5], {"type": "Hardtanh", "min_val": 1, "max_val": 1}, "max_val = 1 must be greater than min_val = 1"),
    ([5], {"type": "Threshold", "threshold": 0.5}, "missing required argument 'value'"),
    ([5, 3], {"type": "GLU"}, "dim 2 (halved): 3 is not a multiple of 2"),
    ([5, 3], {"type": "GLU", "dim": 0}, "dim = 0 is the batch axis"),
    ([4, 5], {"type": "Softmax2d"}, "takes a per-sample input (C, H, W)"),
    ([4, 5, 5], {"type": "Dropout1d"}, "takes a per-sample input (C, L)"),
    ([4, 5], {"type": "Dropout2d", "p": 1.5}, "p must be >= 0.0 and <= 1.0"),
    ([2, 9], {"type": "AdaptiveAvgPool1d", "output_size": "none"}, "torch's 1-d adaptive pooling refuses None"),
    ([2, 9], {"type": "AdaptiveMaxPool1d", "output_size": ["none"]}, "torch's 1-d adaptive pooling refuses None"),
    ([2, 5], {"type": "LPPool1d", "kernel_size": 3}, "missing required argument 'norm_type'"),
    ([2, 5], {"type": "LPPool1d", "norm_type": 2, "kernel_size": [3]}, "kernel_size must be an integer >= 1"),
    ([2, 2], {"type": "LPPool1d", "norm_type": 2, "kernel_size": 3}, "output L would be 0"),
    ([2, 8, 9], {"type": "FractionalMaxPool2d", "kernel_size": 3, "output_size": [7, 4]},
     "H (input, at least output_size 7 + kernel_size 3 - 1): size 8 is too small (needs >= 9)"),
    ([2, 8, 9], {"type": "FractionalMaxPool2d", "kernel_size": 3, "output_size": 2, "output_ratio": 0.5},
     "output_ratio is not supported"),
    ([2, 8, 9], {"type": "FractionalMaxPool2d", "kernel_size": 3, "output_size": 2, "return_indices": True},
     "return_indices = true returns a tuple"),
    ([2, 5], {"type": "ReflectionPad1d", "padding": [5, 0]},
     "dim 2 (L) (input, larger than the reflection padding 5): size 5 is too small (needs >= 6)"),
    ([2, 5, 4], {"type": "CircularPad2d", "padding": [0, 5, 1, 1]}, "at least the circular padding 5"),
    ([2, 5], {"type": "ZeroPad1d", "padding": [-3, -3]}, "dim 2 (L) after padding (-3, -3): size -1 is too small"),
    ([2, 5], {"type": "ReplicationPad1d", "padding": [-3, -2]}, "after padding (-3, -2): size 0 is too small"),
    ([2, 5, 6], {"type": "ZeroPad2d", "padding": [1, 2, 3]}, "padding must be an integer or a list of 4 integers"),
    ([2, 5], {"type": "ConstantPad1d", "padding": 1}, "missing required argument 'value'"),
    ([5], {"type": "ZeroPad2d", "padding": 1}, "takes a per-sample input at least 2 axes"),
    ([2, 3, 5], {"type": "ReflectionPad1d", "padding": 1}, "takes a per-sample input (C, L) or (L)"),
]


@pytest.mark.parametrize("shape,layer,message", ERRORS)
def test_bad_arguments_are_one_line_errors(cli, write_spec, shape, layer, message):
    err = fails(cli, write_spec(spec_text(shape, [layer])))
    assert message in err, err
    assert "model.toml:" in err  # the file and the line


# archcalc's own rules: torch runs these, but the batch axis would move or vanish, or an RNN would
# read [N, C, T] as one unbatched sequence of C time steps
OWN_RULES = ("per-sample input", "moves the batch axis", "is the batch axis", "reduces every per-sample axis",
             "returns a tuple", "is not supported")


@pytest.mark.parametrize("shape,layer,message", ERRORS)
def test_torch_refuses_them_too(shape, layer, message):
    if any(rule in message for rule in OWN_RULES):
        return
    with pytest.raises(Exception):  # noqa: B017  whatever torch raises
        _torch_run(shape, layer)


def _torch_run(shape: list[int], layer: dict) -> None:
    """Torch's own module (or tensor method) from the written arguments, on a batch of 2."""
    x = torch.randn(2, *shape)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in layer.items() if k != "type"}
    if kwargs.get("output_size") in ("none", ("none",)):
        kwargs["output_size"] = None
    type_ = layer["type"]
    methods = {"Permute": lambda: x.permute(*kwargs["dims"]), "Transpose": lambda: x.transpose(kwargs["dim0"],
               kwargs["dim1"]), "Mean": lambda: x.mean(kwargs["dim"]), "Sum": lambda: x.sum(kwargs["dim"])}
    if type_ in methods:
        methods[type_]()
        return
    inferred = {"input_size": -1, "embed_dim": -1, "d_model": -1, "num_channels": 0, "num_features": 0}
    for key, axis in inferred.items():
        if key in REGISTRY[type_].args and key not in kwargs:
            kwargs[key] = shape[axis]
    if type_ == "TransformerEncoder":
        module = nn.TransformerEncoder(nn.TransformerEncoderLayer(**kwargs), kwargs.pop("num_layers"))
    else:
        module = getattr(nn, type_)(**kwargs)
    module.train()
    module(x, x, x) if type_ == "MultiheadAttention" else module(x)
