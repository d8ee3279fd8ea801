"""Graph specs: named inputs, merges, shared layers, outputs; exact merge conditions checked against torch."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import ROOT

from archcalc import analyze, build, crosscheck, load_spec, parse_spec
from archcalc.analysis.cost import receptive_fields
from archcalc.analysis.lint import lint
from archcalc.errors import ShapeError, SpecError

EXAMPLES = ROOT / "examples" / "specs"


def layer(name: str, type_: str, source: str | list[str] | None = None, **args: object) -> str:
    lines = ["[[layers]]", f'name = "{name}"', f'type = "{type_}"']
    if source is not None:
        lines.append(f"from = {json.dumps(source)}")
    lines += [f"{k} = {json.dumps(v)}" for k, v in args.items()]
    return "\n".join(lines) + "\n"


def tiny_unet(depth: int = 4, width: int = 2) -> str:
    """A U-Net of the given depth: conv, MaxPool2d down, ConvTranspose2d up, Cat skips."""
    text = '[model]\nname = "tiny_unet"\n[input]\nshape = [1, "H", "W"]\n'
    for d in range(depth):
        text += layer(f"enc{d}", "Conv2d", None, out_channels=width, kernel_size=3, padding=1)
        text += layer(f"down{d}", "MaxPool2d", None, kernel_size=2)
    text += layer("mid", "Conv2d", None, out_channels=width, kernel_size=3, padding=1)
    for d in reversed(range(depth)):
        text += layer(f"up{d}", "ConvTranspose2d", None, out_channels=width, kernel_size=2, stride=2)
        text += layer(f"cat{d}", "Cat", [f"enc{d}", f"up{d}"])
        text += layer(f"dec{d}", "Conv2d", None, out_channels=width, kernel_size=3, padding=1)
    return text


def test_unet_is_valid_exactly_for_multiples_of_16_as_torch_says():
    spec = parse_spec(tiny_unet(), "unet.toml")
    analysis = analyze(spec)
    rng = analysis.ranges["H"]
    assert rng.text("H") == "H >= 16, H ≡ 0 (mod 16)"
    model = build(spec, {"H": 16, "W": 16}).eval()  # the modules do not depend on H
    for h in range(1, 81):
        try:
            with torch.no_grad():
                out = model(torch.zeros(1, 1, h, 16))
            runs = True
        except RuntimeError:
            runs = False
        assert rng.contains(h) == runs, h
        if runs:
            assert tuple(out.shape[1:]) == analyze(spec, {"H": h, "W": 16}).shape_value(analysis.output_shape)


def test_a_size_that_breaks_a_merge_is_refused_naming_it(cli, write_spec):
    path = write_spec(tiny_unet(), "unet.toml")
    result = cli("shapes", path, "--set", "H=100", "--set", "W=32")
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = result.stderr.strip()
    assert "'cat2' (Cat)" in message and "dim 2 (H)" in message and "H=100" in message
    assert "H ≡ 0 (mod 16)" in message and message.count("\n") == 0
    shown = cli("shapes", path)
    assert "Valid for: H >= 16, H ≡ 0 (mod 16), W >= 16, W ≡ 0 (mod 16)" in shown.stdout


def test_solve_gives_the_nearest_valid_sizes(cli, write_spec):
    path = write_spec(tiny_unet(), "unet.toml")
    result = cli("solve", path, "--for", "H", "--near", "100", "--set", "W=16")
    assert result.exit_code == 0, result.output
    assert "valid H nearest 100: 96 below, 112 above" in result.stdout
    doc = json.loads(cli("solve", path, "--for", "H", "--near", "100", "--set", "W=16", "--json").stdout)
    assert doc["near"] == {"value": 100, "below": 96, "above": 112}
    assert doc["valid"]["H"] == {"min": 16, "max": None, "modulus": 16, "residues": [0]}


def test_residual_downsampling_is_valid_for_every_size_as_torch_says():
    """ResNet's 3x3/2 pad 1 main path and 1x1/2 shortcut agree for every H (same canonical form)."""
    text = "[input]\nshape = [2, \"H\", 5]\n"
    text += layer("c1", "Conv2d", None, out_channels=4, kernel_size=3, stride=2, padding=1)
    text += layer("c2", "Conv2d", None, out_channels=4, kernel_size=3, padding=1)
    text += layer("down", "Conv2d", "input", out_channels=4, kernel_size=1, stride=2)
    text += layer("add", "Add", ["c2", "down"])
    spec = parse_spec(text, "res.toml")
    analysis = analyze(spec)
    assert analysis.ranges["H"].text("H") == "H >= 1"
    assert not any(c.layer_name == "add" for c in analysis.conditions)  # the same canonical form
    model = build(spec, {"H": 8}).eval()
    for h in range(1, 40):
        with torch.no_grad():
            assert model(torch.zeros(1, 2, h, 5)).shape[2] == (h + 1) // 2


def test_avgpool_shortcut_needs_even_sizes():
    """A 2x2 average-pool shortcut against a 3x3/2 conv: floor(H/2) == floor((H+1)/2) only for even H.

    At H = 3 the pool's size is 1 and torch broadcasts it; archcalc never takes a symbolic size as a
    broadcastable 1, so it is stricter there (documented), and exact everywhere else.
    """
    text = "[input]\nshape = [2, \"H\", 4]\n"
    text += layer("c1", "Conv2d", None, out_channels=2, kernel_size=3, stride=2, padding=1)
    text += layer("pool", "AvgPool2d", "input", kernel_size=2)
    text += layer("add", "Add", ["c1", "pool"])
    spec = parse_spec(text, "even.toml")
    rng = analyze(spec).ranges["H"]
    assert rng.text("H") == "H >= 2, H ≡ 0 (mod 2)"
    model = build(spec, {"H": 8}).eval()
    for h in range(1, 30):
        try:
            model(torch.zeros(1, 2, h, 4))
            runs = True
        except RuntimeError:
            runs = False
        assert runs == rng.contains(h) or (h == 3 and runs), h


def test_broadcast_and_errors_name_both_inputs():
    text = "[input]\nshape = [4, 6, 6]\n"
    text += layer("gate", "AdaptiveAvgPool2d", None, output_size=1)
    text += layer("scale", "Mul", ["input", "gate"], expect_shape=[4, 6, 6])
    assert analyze(parse_spec(text)).node("scale").out_shape == (4, 6, 6)
    bad = "[input]\nshape = [4, 6, 6]\n" + layer("p", "MaxPool2d", None, kernel_size=2)
    bad += layer("sum", "Add", ["input", "p"])
    with pytest.raises(ShapeError, match=r"'sum' \(Add\): cannot add \[4, 6, 6\] and \[4, 3, 3\] \('p'\): "
                                         r"dim 2 \(H\) of 'input' and 'p' differ \(6 vs 3\)"):
        analyze(parse_spec(bad))
    cat = "[input]\nshape = [4, 6]\n" + layer("c", "Cat", ["input", "input"], dim=-1)
    assert analyze(parse_spec(cat)).node("c").out_shape == (4, 12)
    with pytest.raises(ShapeError, match="batch axis"):
        analyze(parse_spec("[input]\nshape = [4, 6]\n" + layer("c", "Cat", ["input", "input"], dim=0)))


@pytest.mark.parametrize(("body", "match"), [
    (layer("a", "ReLU", "nope"), r"model.toml:\d+: layer 1 'a' \(ReLU\): from 'nope' is not a layer above"),
    (layer("a", "ReLU", "inptu"), r"did you mean 'input'\?"),
    (layer("a", "ReLU", "b") + layer("b", "ReLU"), "from 'b' is written below this one"),
    (layer("a", "ReLU", "a"), "from 'a' is this layer itself"),
    (layer("a", "ReLU", ["input", "input"]), "takes one input, got 2"),
    (layer("a", "Add", "input"), "merges two or more inputs"),
    (layer("a", "ReLU", 3), "from must be a layer name or a list of them"),
    (layer("input", "ReLU"), "names the model input"),
    (layer("a..b", "ReLU"), "dots only between parts"),
    (layer("fc", "Linear", None, out_features=2) + layer("fc.0", "ReLU"), "'fc' would be both a layer and a group"),
    (layer("a", "ReLU") + '[output]\nfrom = "b"\n', r"\[output\] from 'b' is not a layer"),
    (layer("a", "ReLU") + '[output]\nfrm = "a"\n', r"unknown key 'frm' in \[output\]"),
])
def test_graph_spec_errors_are_one_line_with_file_and_line(write_spec, body, match):
    path = write_spec("[input]\nshape = [4]\n" + body)
    with pytest.raises(SpecError, match=match) as info:
        load_spec(path)
    assert "\n" not in str(info.value)


def test_shared_layers_count_once_and_must_fit():
    text = "[input]\nshape = [10]\n" + layer("fc", "Linear", None, out_features=10)
    text += "[[layers]]\nname = \"fc_again\"\nsame_as = \"fc\"\n"
    analysis = analyze(parse_spec(text))
    assert analysis.total_params == 110 and analysis.node("fc_again").params == 0
    assert analysis.node("fc_again").params_formula == "shared with fc"
    model = build(analysis.spec)
    assert isinstance(model, torch.fx.GraphModule) and sum(p.numel() for p in model.parameters()) == 110
    assert not crosscheck(analysis).failed
    wrong = "[input]\nshape = [10]\n" + layer("fc", "Linear", None, out_features=4)
    wrong += "[[layers]]\nname = \"again\"\nsame_as = \"fc\"\n"
    with pytest.raises(ShapeError, match="in_features of the module shared with 'fc': 4 vs 10"):
        analyze(parse_spec(wrong))
    for extra, match in (('type = "Conv2d"', "applies a Linear"), ("out_features = 3", "remove 'out_features'"),
                         ('same_as = "nope"', "same_as 'nope' is not a layer above")):
        body = "[input]\nshape = [10]\n" + layer("fc", "Linear", None, out_features=10)
        body += "[[layers]]\nname = \"b\"\n" + (extra if "same_as" in extra else f'same_as = "fc"\n{extra}') + "\n"
        with pytest.raises(SpecError, match=match):
            parse_spec(body)


def test_sequential_output_is_unchanged_and_graphs_gain_a_from_column(cli):
    seq = cli("shapes").stdout
    assert " from " not in seq.splitlines()[2]
    graph = cli("shapes", EXAMPLES / "se_block.toml")
    assert graph.exit_code == 0
    header = next(line for line in graph.stdout.splitlines() if " name " in line)
    assert " from " in header and "bn2, se.4" in graph.stdout
    doc = json.loads(cli("shapes", EXAMPLES / "se_block.toml", "--json").stdout)
    scale = next(row for row in doc["layers"] if row["name"] == "scale")
    assert scale["inputs"] == ["bn2", "se.4"] and scale["input_shapes"] == [[64, 32, 32], [64, 1, 1]]
    assert doc["outputs"] == ["relu2"]


def test_build_is_sequential_for_chains_and_fx_for_graphs():
    assert isinstance(build(load_spec(ROOT / "specs" / "speech_cnn.toml")), torch.nn.Sequential)
    model = build(load_spec(EXAMPLES / "se_block.toml"))
    assert isinstance(model, torch.fx.GraphModule)
    assert "self.scale(bn2, se_4)" in model.code.replace("getattr(self.se, \"4\")", "se_4") or "scale" in model.code
    assert [n for n, _ in model.named_children()][:3] == ["conv1", "bn1", "relu"]


def test_outputs_and_unused_nodes():
    text = "[input]\nshape = [8]\n" + layer("a", "Linear", None, out_features=4)
    text += layer("b", "Linear", "input", out_features=3) + layer("sm", "Softmax", "b", dim=1)
    text += '[output]\nfrom = ["sm"]\n'
    analysis = analyze(parse_spec(text))
    assert [r.name for r in analysis.outputs] == ["sm"] and not analysis.is_sequential
    assert analysis.successors("input") == ("a", "b") and analysis.predecessors("sm") == ("b",)
    ids = {(f.id, f.layer) for f in lint(analysis)}
    assert ("unused-node", "a") in ids and ("final-softmax", "sm") in ids
    model = build(analysis.spec)
    assert sum(p.numel() for p in model.parameters()) == analysis.total_params == 36 + 27
    assert not crosscheck(analysis).failed


def test_receptive_field_over_branches():
    text = "[input]\nshape = [1, 32]\n"
    text += layer("k3", "Conv1d", None, out_channels=1, kernel_size=3, padding=1)
    text += layer("k5", "Conv1d", "input", out_channels=1, kernel_size=5, padding=2)
    text += layer("sum", "Add", ["k3", "k5"])
    text += layer("s2", "Conv1d", "input", out_channels=1, kernel_size=1, stride=2)
    text += layer("up", "Conv1d", "sum", out_channels=1, kernel_size=2, stride=2)
    text += layer("mixed", "Add", ["s2", "up"])
    _, fields = receptive_fields(analyze(parse_spec(text)))
    by_name = dict(zip(["k3", "k5", "sum", "s2", "up", "mixed"], fields, strict=True))
    assert by_name["sum"][0].size == 5 and by_name["sum"][0].jump == 1  # the wider branch
    assert by_name["mixed"][0].jump == 2 and by_name["mixed"][0].size == 6


def test_graph_report_draw_and_lint_run(cli, tmp_path):
    spec = EXAMPLES / "resnet18.toml"
    md = cli("report", spec)
    assert md.exit_code == 0 and "layer1.0.add (from layer1.0.bn2, maxpool)" in md.stdout
    assert cli("draw", spec, "--out", tmp_path / "r.svg").exit_code == 0
    assert (tmp_path / "r.svg").read_text().count("<path") > 60
    out = cli("lint", spec)
    assert out.exit_code == 0 and "unused-node" not in out.stdout


def test_bench_trains_a_graph(cli, tmp_path):
    """A small residual CNN on the bench's data: built as an fx graph, trained, results written."""
    from test_bench import easy_data

    from archcalc.data.arrays import save_npz

    text = '[model]\nname = "tiny_res"\n[input]\nshape = [1, 101, 40]\n'
    text += layer("c1", "Conv2d", None, out_channels=4, kernel_size=3, padding=1)
    text += layer("relu", "ReLU") + layer("c2", "Conv2d", None, out_channels=4, kernel_size=3, padding=1)
    text += layer("skip", "Conv2d", "input", out_channels=4, kernel_size=1)
    text += layer("add", "Add", ["c2", "skip"]) + layer("pool", "AdaptiveAvgPool2d", None, output_size=[4, 4])
    text += layer("flat", "Flatten") + layer("fc", "Linear", None, out_features=3)
    text += layer("softmax", "Softmax", None, dim=1)
    spec = tmp_path / "tiny_res.toml"
    spec.write_text(text)
    data = save_npz(easy_data(48), tmp_path / "easy.npz")
    result = cli("bench", "--data", data, "--spec", spec, "--epochs", "1", "--batch-size", "16",
                 "--drop-final-softmax", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [r["id"] for r in doc["runs"]] == ["tiny_res/sgd/logits", "tiny_res/adam/logits"]
    assert doc["runs"][0]["result"]["params"] == analyze(load_spec(spec)).total_params == 40 + 148 + 8 + 195


def test_crosscheck_names_the_graph_node_torch_disagrees_with_and_the_first_it_refuses():
    analysis = analyze(load_spec(EXAMPLES / "se_block.toml"))
    model = build(analysis.spec)
    model.se.get_submodule("3").__init__(16, 32, 1)  # a gate of 32 channels: the Mul cannot broadcast it
    failed = crosscheck(analysis, model).failed
    assert [r.layer for r in failed[:3]] == ["layer 9 'se.3' (Conv2d)", "layer 10 'se.4' (Sigmoid)",
                                             "layer 11 'scale' (Mul)"]
    assert failed[0].actual == "[32, 1, 1], 544" and failed[2].what == "torch forward"
    assert "torch refused it: RuntimeError" in failed[2].actual


def test_a_merge_condition_that_cannot_be_solved_is_shown_and_checked_when_bound(cli, write_spec):
    text = '[input]\nshape = [1, "H", "H"]\n' + layer("a", "Flatten", "input")
    text += layer("pool", "AvgPool2d", "input", kernel_size=2, stride=1) + layer("b", "Flatten")
    text += layer("sum", "Add", ["a", "b"])
    path = write_spec(text)
    shown = cli("shapes", path)
    assert shown.exit_code == 0 and "  and H**2 == (H - 1)**2  (sum: dim 1 of 'a' and 'b' must agree)" in shown.stdout
    bound = cli("shapes", path, "--set", "H=5")
    assert bound.exit_code == 2 and "'sum' (Add)" in bound.stderr and "= 25 but" in bound.stderr


def test_conditions_not_folded_into_ranges_guide_check_and_solve(cli, write_spec):
    """H == W - 2 ties two symbols; a transposed conv after a pool is not a sum of floors of H."""
    tied = '[input]\nshape = ["H", "W"]\n' + layer("pa", "AdaptiveAvgPool1d", "input", output_size=1)
    tied += layer("fa", "Flatten", None, start_dim=1) + layer("cb", "Conv1d", "input", out_channels=1, kernel_size=3)
    tied += layer("fb", "Flatten", None, start_dim=1) + layer("add", "Add", ["fa", "fb"])
    assert cli("check", write_spec(tied, "tied.toml")).exit_code == 0  # checked where H == W - 2
    nest = '[input]\nshape = [1, "H"]\n' + layer("p", "MaxPool1d", None, kernel_size=2)
    nest += layer("t", "ConvTranspose1d", None, out_channels=1, kernel_size=3, stride=3)
    nest += layer("down", "MaxPool1d", None, kernel_size=2)
    nest += layer("p4", "MaxPool1d", "input", kernel_size=4)
    nest += layer("up", "ConvTranspose1d", None, out_channels=1, kernel_size=3, stride=3)
    nest += layer("add", "Add", ["down", "up"])
    path = write_spec(nest, "nest.toml")
    assert "  and floor(3*floor(H/2)/2) == 3*floor(H/4)" in cli("shapes", path).stdout
    assert "valid H nearest 6: 5 below, 8 above" in cli("solve", path, "--near", "6").stdout
    assert cli("check", path).exit_code == 0


def test_names_that_cannot_name_a_graph_module_are_refused(write_spec, cli):
    for bad in ("forward", "for", "self", "_hidden", "a.training"):
        text = "[input]\nshape = [4]\n" + layer(bad, "Linear", None, out_features=4) + layer("s", "Add", [bad, "input"])
        result = cli("check", write_spec(text))
        assert result.exit_code == 2 and f"the name part {bad.split('.')[-1]!r} cannot name a module" in result.output
    with pytest.raises(SpecError, match="is this layer itself"):
        parse_spec("[input]\nshape = [4]\n" + layer("a", "Add", ["input", "a"]))
