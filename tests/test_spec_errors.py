"""Every error a user can cause: one line naming file, layer and value; exit 2; no traceback."""

from __future__ import annotations

import pytest

HEAD = '[input]\nshape = [1, 101, 40]\n'
CONV = '[[layers]]\nname = "conv1"\ntype = "Conv2d"\nout_channels = 8\nkernel_size = 5\n'


def fails(cli, path, *args, code=2):
    result = cli("shapes", path, *args)
    assert result.exit_code == code, result.output
    err = result.stderr.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err and "Traceback" not in result.output
    return err


def test_toml_syntax_error_names_the_line(cli, write_spec):
    err = fails(cli, write_spec(HEAD + "[[layers]]\ntype = \n"))
    assert "model.toml:4" in err and "invalid TOML" in err


def test_unknown_layer_type_suggests_the_nearest(cli, write_spec):
    err = fails(cli, write_spec(HEAD + '[[layers]]\ntype = "Conv2D"\n'))
    assert "unknown layer type 'Conv2D'" in err and "did you mean 'Conv2d'" in err
    err = fails(cli, write_spec(HEAD + '[[layers]]\ntype = "Maxpool2d"\nkernel_size = 2\n'))
    assert "did you mean 'MaxPool2d'" in err


def test_unknown_argument_suggests_the_nearest(cli, write_spec):
    err = fails(cli, write_spec(HEAD + CONV + "kernal_size = 3\n"))
    assert "model.toml:8" in err and "layer 1 'conv1' (Conv2d)" in err
    assert "unknown argument 'kernal_size'" in err and "did you mean 'kernel_size'" in err


def test_missing_argument(cli, write_spec):
    err = fails(cli, write_spec(HEAD + '[[layers]]\ntype = "Conv2d"\nkernel_size = 3\n'))
    assert "missing required argument 'out_channels'" in err and "layer 1" in err


@pytest.mark.parametrize("line,expected", [
    ("kernel_size = 0", "kernel_size entries must be integers >= 1, got 0"),
    ("kernel_size = -3", "got -3"),
    ("kernel_size = 2.5", "got 2.5"),
    ("kernel_size = true", "got True"),
    ("kernel_size = [3, 3, 3]", "list of 2 integers"),
    ("stride = 0", "stride entries must be integers >= 1"),
    ("padding = -1", "padding entries must be integers >= 0"),
    ('padding = "full"', "'same' or 'valid'"),
    ("groups = 3", "out_channels = 8 is not divisible by groups = 3"),
    ('padding = "same"\nstride = 2', "padding='same' needs stride 1"),
    ('padding_mode = "mirror"', "padding_mode must be one of"),
])
def test_bad_argument_values(cli, write_spec, line, expected):
    text = HEAD + CONV.replace("kernel_size = 5\n", "") + line + "\n"
    if not line.startswith("kernel_size"):
        text += "kernel_size = 5\n"
    err = fails(cli, write_spec(text))
    assert expected in err and "conv1" in err


def test_size_that_becomes_non_positive_names_the_layer(cli, write_spec):
    text = HEAD + CONV + '[[layers]]\nname = "big"\ntype = "Conv2d"\nout_channels = 4\nkernel_size = 99\n'
    err = fails(cli, write_spec(text))
    assert "model.toml:8" in err and "layer 2 'big' (Conv2d)" in err
    assert "output H would be -1" in err


def test_stated_in_features_must_agree(cli, write_spec):
    text = HEAD + '[[layers]]\ntype = "Flatten"\n[[layers]]\nname = "fc"\ntype = "Linear"\n' \
        'in_features = 4000\nout_features = 3\n'
    err = fails(cli, write_spec(text))
    assert "layer 2 'fc' (Linear)" in err and "in_features = 4000 disagrees with the incoming size 4040" in err


def test_wrong_rank_is_explained(cli, write_spec):
    text = '[input]\nshape = [40]\n' + CONV
    err = fails(cli, write_spec(text))
    assert "takes a per-sample input (C, H, W), got [40] (1 axes)" in err


def test_bad_set_values(cli, write_spec):
    path = write_spec('[input]\nshape = [1, "T", 40]\n' + CONV)
    assert "write NAME=INTEGER" in fails(cli, path, "--set", "T")
    assert "positive integer" in fails(cli, path, "--set", "T=abc")
    assert "positive integer" in fails(cli, path, "--set", "T=0")
    assert "has no symbol 'X'" in fails(cli, path, "--set", "X=3")
    err = fails(cli, path, "--set", "T=3")
    assert "layer 1 'conv1'" in err and "T=3" in err and "valid: T >= 5" in err


def test_impossible_symbol_condition(cli, write_spec):
    text = '[input]\nshape = [1, "T", 40]\n' + CONV + \
        '[[layers]]\ntype = "Flatten"\n[[layers]]\nname = "fc"\ntype = "Linear"\nin_features = 1001\n' \
        'out_features = 3\n'
    err = fails(cli, write_spec(text))
    assert "no value of T" in err and "'fc'" in err


def test_missing_file_and_directory(cli, tmp_path):
    assert "no such file" in fails(cli, tmp_path / "nope.toml")
    assert "is a directory" in fails(cli, tmp_path)


def test_structure_errors(cli, write_spec):
    assert "at least one [[layers]]" in fails(cli, write_spec(HEAD))
    assert "unknown table [layer]" in fails(cli, write_spec(HEAD + "[layer]\nx = 1\n"))
    assert "unknown table [inputs] (did you mean 'input'?)" in fails(cli, write_spec("[inputs]\nshape = [1]\n"))
    assert "duplicate layer name 'conv1'" in fails(cli, write_spec(HEAD + CONV + CONV))
    assert "[input] shape" in fails(cli, write_spec('[input]\nshape = [1, 0]\n' + CONV))
    assert "not a valid symbol name" in fails(cli, write_spec('[input]\nshape = [1, "2T"]\n' + CONV))
    assert "not a symbol of the input shape" in fails(
        cli, write_spec(HEAD + "[symbols]\nT = 3\n" + CONV))
    assert "unknown key 'total_param'" in fails(
        cli, write_spec(HEAD + CONV + "[expect]\ntotal_param = 3\n"))
    assert "expect_shape" in fails(cli, write_spec(HEAD + CONV + 'expect_shape = ["T + 1"]\n'))


def test_flatten_and_softmax_axes(cli, write_spec):
    err = fails(cli, write_spec(HEAD + '[[layers]]\ntype = "Flatten"\nstart_dim = 0\n'))
    assert "merge the batch axis" in err
    err = fails(cli, write_spec(HEAD + '[[layers]]\ntype = "Softmax"\ndim = 4\n'))
    assert "dim = 4 is out of range for a 4-d input" in err


def test_absurdly_large_numbers_do_not_hang(cli, write_spec):
    big = 10**30
    text = f'[input]\nshape = [1, {big}, 40]\n' + CONV + \
        f'[[layers]]\ntype = "Flatten"\n[[layers]]\ntype = "Linear"\nout_features = {big}\n'
    result = cli("params", write_spec(text), "--json")
    assert result.exit_code == 0
    assert "8*(10**30 - 4)*36" not in result.stdout
    import json
    doc = json.loads(result.stdout)
    assert doc["total_params"] == 208 + (8 * (big - 4) * 36 + 1) * big
    path = write_spec('[input]\nshape = [1, "T", 40]\n' + CONV)
    result = cli("shapes", path, "--set", f"T={10**40}", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["layers"][0]["output_shape"][1] == 10**40 - 4
    err = fails(cli, write_spec(HEAD + CONV.replace("kernel_size = 5", f"kernel_size = {10**20}")))
    assert "output H would be" in err
