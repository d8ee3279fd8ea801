"""The new kinds in the rest of archcalc: costs with several inputs, receptive fields after axis moves,
the reader's input count for attention."""

from __future__ import annotations

from conftest import fails

from archcalc import analyze, parse_spec
from archcalc.analysis.cost import cost, receptive_fields


def test_cross_attention_macs_use_the_key_length():
    text = """[input]
shape = [12, 16]
[[layers]]
name = "turned"
type = "Transpose"
from = "input"
dim0 = 1
dim1 = 2
[[layers]]
name = "memory"
type = "AdaptiveAvgPool1d"
output_size = 16
[[layers]]
name = "attn"
type = "MultiheadAttention"
num_heads = 2
batch_first = true
from = ["input", "memory", "memory"]
"""
    analysis = analyze(parse_spec(text, "x.toml"))
    node = analysis.node("attn")
    assert node.in_shapes[0] == (12, 16) and node.in_shapes[1] == (16, 16)
    row = next(r for r in cost(analysis).layers if r.name == "attn")
    assert row.macs == node.kind.macs_all(node.in_shapes, node.out_shape, node.args)
    assert row.macs != node.kind.macs(node.in_shape, node.out_shape, node.args)  # the key is longer


def test_receptive_fields_stop_after_axes_move():
    text = """[input]
shape = [1, 16, 16]
[[layers]]
type = "Conv2d"
out_channels = 2
kernel_size = 3
[[layers]]
type = "Permute"
dims = [0, 1, 3, 2]
[[layers]]
type = "Conv2d"
out_channels = 2
kernel_size = 3
"""
    _, fields = receptive_fields(analyze(parse_spec(text, "x.toml")))
    assert isinstance(fields[0], tuple) and fields[1] == fields[2] == "not tracked (axes moved)"


def test_attention_takes_one_input_or_three(cli, write_spec):
    text = """[input]
shape = [8, 16]
[[layers]]
name = "a"
type = "Identity"
[[layers]]
type = "MultiheadAttention"
num_heads = 2
from = ["input", "a"]
"""
    err = fails(cli, write_spec(text))
    assert "takes one input or 3, got 2" in err and "model.toml:" in err


TEXT_CLASSIFIER = """[input]
shape = ["T"]
dtype = "long"
[symbols]
T = 12
[[layers]]
name = "embed"
type = "Embedding"
num_embeddings = 100
embedding_dim = 16
padding_idx = 0
[[layers]]
name = "lstm"
type = "LSTM"
hidden_size = 8
batch_first = true
bidirectional = true
[[layers]]
name = "pool"
type = "Mean"
dim = 1
[[layers]]
name = "fc"
type = "Linear"
out_features = 2
"""


def test_an_embedding_model_checks_against_torch(cli, write_spec):
    analysis = analyze(parse_spec(TEXT_CLASSIFIER, "text.toml"))
    lstm = 2 * 4 * (8 * (16 + 8) + 2 * 8)
    assert analysis.total_params == 100 * 16 + lstm + (16 * 2 + 2)
    assert analysis.node("embed").out_shape[1] == 16
    result = cli("check", write_spec(TEXT_CLASSIFIER))
    assert result.exit_code == 0, result.output
    assert "parameter names and shapes" in result.stdout


def test_embedding_takes_the_input_of_indices_only(cli, write_spec):
    float_input = TEXT_CLASSIFIER.replace('dtype = "long"\n', "")
    err = fails(cli, write_spec(float_input))
    assert "'embed' (Embedding) takes indices: its input must be the model input" in err
    err = fails(cli, write_spec(TEXT_CLASSIFIER.replace('padding_idx = 0', 'padding_idx = 100')))
    assert "padding_idx = 100 must be within the table" in err


def test_unflatten_needs_dim_as_torch_does(cli, write_spec):
    """nn.Unflatten has no default dim: a spec without one would not build."""
    err = fails(cli, write_spec('[input]\nshape = [12]\n[[layers]]\ntype = "Unflatten"\nunflattened_size = [3, 4]\n'))
    assert "missing required argument 'dim'" in err
