"""What a user reads is true: the README's examples run as written, every --help shows its text,
usage errors are one line, and the bench flags and messages of issue 16 behave as documented."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SPECS, invoke

README = (ROOT / "README.md").read_text()
BOX = re.compile(r"[│╭╮╰╯─]")


def readme_blocks(language: str) -> list[tuple[str, str]]:
    """(heading above the block, block text) for every fenced block of that language."""
    blocks, heading = [], ""
    for match in re.finditer(r"^(#+ [^\n]*)$|^```(\w*)\n(.*?)^```$", README, re.MULTILINE | re.DOTALL):
        if match.group(1):
            heading = match.group(1)
        elif match.group(2) == language:
            blocks.append((heading, match.group(3)))
    return blocks


# --------------------------------------------------------------------------- the Python API block

def python_api_block() -> str:
    blocks = [text for heading, text in readme_blocks("python") if heading == "## Python API"]
    assert len(blocks) == 1, "README.md has one ```python block under ## Python API"
    return blocks[0]


def test_readme_python_api_block_runs_as_written(monkeypatch):
    """The block is run as a user pastes it, from the repository root (its paths are relative to it)."""
    monkeypatch.chdir(ROOT)
    block = python_api_block()
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md (Python API)", "exec"), namespace)  # noqa: S102
    # every value the block states in a comment (`expr  # 704467: ...`, `# [] when ...`) is the real one
    claims = 0
    for line in block.splitlines():
        code, _, comment = line.partition("  # ")
        literal = re.match(r"(\[\]|-?\d[\d_]*)(?=[:\s]|$)", comment.strip())
        if not literal:
            continue
        ast.parse(code.strip(), mode="eval")  # the commented part is one expression
        assert eval(code.strip(), namespace) == ast.literal_eval(literal.group(1)), line
        claims += 1
    assert claims >= 2
    formula = re.search(r"the formula (.+?) at T=(\d+)", block)
    assert formula is not None
    analysis = namespace["analysis"]
    assert str(analysis.total_params) == formula.group(1)  # type: ignore[attr-defined]


def test_api_errors_name_no_flag_and_the_cli_adds_it(monkeypatch):
    import archcalc
    from archcalc.errors import UsageError

    monkeypatch.chdir(ROOT)
    with pytest.raises(UsageError) as caught:
        archcalc.analyze(archcalc.load_spec("specs/speech_cnn.toml"), {"T": 200})
    assert "--" not in str(caught.value) and "has no symbol 'T'" in str(caught.value)
    result = invoke("shapes", "--set", "T=200")
    assert result.exit_code == 2 and result.stderr.startswith("error: --set: ")


# --------------------------------------------------------------------------- README outputs

def readme_commands() -> list[tuple[str, list[str]]]:
    """Every ``$ archcalc ...`` line of a ```text block with the output shown under it."""
    found = []
    for _, text in readme_blocks("text"):
        command, lines = None, []
        for line in text.splitlines() + ["$ end"]:
            if line.startswith("$ "):
                if command:
                    found.append((command, lines))
                command, lines = line[2:], []
            else:
                lines.append(line)
    return found


def gaps_match(shown: list[str], actual: list[str]) -> bool:
    """The shown lines are the real ones in order; a line ``...`` stands for lines left out."""
    def trim(lines: list[str]) -> list[str]:
        lines = [line.rstrip() for line in lines]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    shown, actual = trim(shown), trim(actual)
    pieces: list[list[str]] = [[]]
    for line in shown:
        if line.strip() == "...":
            pieces.append([])
        else:
            pieces[-1].append(line)
    at = 0
    for i, piece in enumerate(pieces):
        if not piece:
            continue
        starts = [s for s in range(at, len(actual) - len(piece) + 1) if actual[s:s + len(piece)] == piece]
        if i == 0:
            starts = starts[:1] if starts and starts[0] == 0 else []  # no gap before: the output starts here
        if not starts:
            return False
        at = starts[0] + len(piece)
    return at == len(actual) or not pieces[-1]  # no gap after: the output ends here


NOT_RUN = {
    "archcalc shapes bad.toml": "the misspelt spec is only shown",
}


@pytest.mark.parametrize("command,shown", readme_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_readme_outputs_are_real(command, shown, monkeypatch):
    if command in NOT_RUN:
        pytest.skip(NOT_RUN[command])
    if command == "archcalc data info":
        from archcalc.data.synth import DEFAULT_N, DEFAULT_SEED, cached_path

        path = cached_path(DEFAULT_N, DEFAULT_SEED)
        if not path.exists() or path.parent != Path.home() / ".cache" / "archcalc":
            pytest.skip("the default data set is not made in the default cache (archcalc data synth)")
    monkeypatch.chdir(ROOT)
    from typer.testing import CliRunner

    from archcalc.cli import app

    args = command.split()[1:]
    result = CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"}).invoke(app, args, catch_exceptions=False)
    actual = result.output.splitlines()
    if command == "archcalc data info":  # the digest depends on the CPU (see the README); the rest does not
        shown, actual = ([re.sub(r"digest [0-9a-f]{16}", "digest D", line) for line in lines]
                         for lines in (shown, actual))
    assert gaps_match(shown, actual), f"$ {command}\n" + result.output


def test_gaps_match():
    assert gaps_match(["a", "b"], ["a", "b", ""])
    assert not gaps_match(["a"], ["a", "b"])
    assert gaps_match(["a", "   ...", "c"], ["a", "b", "c"])
    assert gaps_match(["   ...", "c"], ["a", "b", "c"])
    assert not gaps_match(["b", "c"], ["a", "b", "c"])
    assert gaps_match(["a", "..."], ["a", "b"])


def test_readme_has_no_temporary_paths():
    assert not re.search(r"/tmp/|/var/folders/|pytest-of-", README)


# --------------------------------------------------------------------------- --help

def all_commands() -> list[tuple[list[str], object]]:
    from typer.main import get_command

    from archcalc.cli import app

    found = []

    def walk(command: object, path: list[str]) -> None:
        found.append((path, command))
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return found


def shown_as_written(text: str) -> str:
    """What help text must show: the source text, with rich's escape ``\\[`` meaning ``[``."""
    return " ".join(text.replace("\\[", "[").split())


def test_every_command_is_walked():
    paths = {" ".join(p) for p, _ in all_commands()}
    assert {"", "shapes", "params", "solve", "check", "report", "lint", "draw", "bench", "data",
            "data synth", "data prepare", "data info"} <= paths


@pytest.mark.parametrize("path", [p for p, _ in all_commands()], ids=lambda p: " ".join(p) or "archcalc")
def test_help_shows_every_text_as_written(path):
    """A ``[train]`` in a help string would vanish as rich markup; every word must be on screen."""
    command = {tuple(p): c for p, c in all_commands()}[tuple(path)]
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    screen = " ".join(BOX.sub(" ", result.stdout).split())
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]  # type: ignore[attr-defined]
    assert command.help  # type: ignore[attr-defined]
    for text in filter(None, texts):
        assert shown_as_written(text) in screen, f"archcalc {' '.join(path)} --help lost text of: {text!r}"


def test_help_check_catches_vanished_markup():
    """The comparison above fails for the problem it guards against."""
    from rich.text import Text

    eaten = Text.from_markup("Epochs (default 50, or [train]).").plain
    assert eaten == "Epochs (default 50, or )."
    assert shown_as_written("Epochs (default 50, or [train]).") not in eaten
    assert shown_as_written("Epochs (\\[train]).") == "Epochs ([train])."


# --------------------------------------------------------------------------- usage errors

@pytest.mark.parametrize("args,expected", [
    (["bench", "--epochs", "x"], "error: archcalc bench: invalid value for '--epochs'"),
    (["bench", "--sgd-lr", "-1"], "error: archcalc bench: invalid value for '--sgd-lr'"),
    (["shapes", "--bogus"], "error: archcalc shapes: no such option: --bogus"),
    (["--bogus"], "error: archcalc: no such option: --bogus"),
    (["nosuch"], "error: archcalc: no such command 'nosuch'"),
    (["data", "info", "--bogus"], "error: archcalc data info: no such option: --bogus"),
    (["data", "prepare"], "error: archcalc data prepare: missing argument"),
    (["shapes", "--set"], "error: archcalc shapes: option '--set' requires an argument"),
    (["params", "--batch", "0"], "error: archcalc params: invalid value for '--batch'"),
])
def test_flag_errors_are_one_line(args, expected):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(expected), result.stderr
    assert "Usage:" not in result.stderr and "╭" not in result.stderr


def test_no_arguments_still_show_the_help():
    for args in ([], ["data"]):
        result = invoke(*args)
        assert "Usage: archcalc" in result.output and "Commands" in result.output


# --------------------------------------------------------------------------- bench flags

def tiny_npz(tmp_path: Path) -> Path:
    from archcalc.data.arrays import SpeechData, save_npz

    rng = np.random.default_rng(0)
    X, y = {}, {}
    for split, n in (("train", 24), ("val", 12), ("test", 12)):
        X[split] = rng.normal(0, 1, (n, 101, 40)).astype(np.float32)
        y[split] = np.arange(n) % 3
    return save_npz(SpeechData(X, y, ("yes", "no", "up"), "tiny"), tmp_path / "tiny.npz")


def bench_configs(tmp_path: Path, name: str, spec: Path, *flags: str) -> dict[str, dict[str, object]]:
    result = invoke("bench", "--data", tiny_npz(tmp_path), "--spec", spec, "--epochs", "1",
                    "--batch-size", "24", "--out", tmp_path / name, "--json", *flags)
    assert result.exit_code == 0, result.output
    return {r["result"]["optimizer"]: r["result"]["config"] for r in json.loads(result.stdout)["runs"]}


TRAIN = {"sgd_lr": 0.02, "sgd_momentum": 0.5, "sgd_weight_decay": 0.001, "adam_lr": 0.003,
         "adam_weight_decay": 0.01}


def test_optimizer_flags_set_what_train_keys_set(tmp_path, write_spec):
    plain = write_spec((SPECS / "speech_ffnn.toml").read_text(), "plain.toml")
    table = write_spec((SPECS / "speech_ffnn.toml").read_text() + "\n[train]\n"
                       + "".join(f"{k} = {v}\n" for k, v in TRAIN.items()), "table.toml")
    by_table = bench_configs(tmp_path, "t", table)
    by_flags = bench_configs(tmp_path, "f", plain,
                             *(a for k, v in TRAIN.items() for a in (f"--{k.replace('_', '-')}", str(v))))
    assert by_flags == by_table  # results.json records a flag exactly as the [train] key
    assert (by_flags["sgd"]["lr"], by_flags["sgd"]["momentum"], by_flags["sgd"]["weight_decay"]) == (0.02, 0.5, 0.001)
    assert (by_flags["adam"]["lr"], by_flags["adam"]["weight_decay"]) == (0.003, 0.01)
    assert by_flags["adam"]["momentum"] is None  # Adam has no momentum: nothing recorded


def test_optimizer_flags_override_train_keys_for_their_optimizer_only(tmp_path, write_spec):
    spec = write_spec((SPECS / "speech_ffnn.toml").read_text() + "\n[train]\nsgd_lr = 0.05\nadam_weight_decay = 0.02\n")
    configs = bench_configs(tmp_path, "o", spec, "--adam-lr", "0.004", "--sgd-momentum", "0.7")
    assert (configs["sgd"]["lr"], configs["sgd"]["momentum"], configs["sgd"]["weight_decay"]) == (0.05, 0.7, 1e-5)
    assert (configs["adam"]["lr"], configs["adam"]["weight_decay"], configs["adam"]["momentum"]) == (0.004, 0.02, None)
    configs = bench_configs(tmp_path, "p", spec, "--sgd-lr", "0.1")
    assert configs["sgd"]["lr"] == 0.1 and configs["adam"]["lr"] == 0.001


def test_default_adam_run_records_no_momentum(tmp_path):
    configs = bench_configs(tmp_path, "d", SPECS / "speech_ffnn.toml")
    assert configs["sgd"]["momentum"] == 0.9 and configs["adam"]["momentum"] is None
    assert configs["adam"]["lr"] == 0.001 and configs["adam"]["weight_decay"] == 0.0


def test_golden_results_record_no_adam_momentum():
    from conftest import GOLDEN

    doc = json.loads((GOLDEN / "bench_results.json").read_text())
    for run in doc["runs"]:
        config = run["result"]["config"]
        assert config["momentum"] == (0.9 if config["optimizer"] == "sgd" else None)


@pytest.mark.parametrize("args,message", [
    (["--adam-lr", "nan"], "archcalc bench: invalid value for '--adam-lr': Input should be greater than or equal to 0"),
    (["--adam-lr", "-0.1"], "archcalc bench: invalid value for '--adam-lr': Input should be greater than or equal to 0"),
    (["--sgd-momentum", "inf"], "--sgd-momentum inf: must be a finite number >= 0"),
])
def test_bad_optimizer_flags(tmp_path, args, message):
    out = tmp_path / "r"
    result = invoke("bench", "--data", tiny_npz(tmp_path), "--out", out, *args)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {message}")
    assert result.stderr.count("\n") == 1 and not out.exists()


def test_negative_train_values_are_refused(tmp_path, write_spec):
    spec = write_spec((SPECS / "speech_ffnn.toml").read_text() + "\n[train]\nsgd_lr = -0.1\n")
    result = invoke("bench", "--data", tiny_npz(tmp_path), "--spec", spec, "--out", tmp_path / "r")
    assert result.exit_code == 2 and "[train] sgd_lr must be a finite number >= 0, got -0.1" in result.stderr


# --------------------------------------------------------------------------- messages

def big_analysis(write_spec, shape: str, layer: str, values: dict[str, int] | None = None):
    from archcalc import analyze, load_spec

    return analyze(load_spec(write_spec(f"[input]\nshape = {shape}\n\n[[layers]]\n{layer}\n")), values or {})


def test_not_built_names_the_limit_exceeded_and_no_empty_point(write_spec):
    from archcalc import crosscheck

    notes = [r.note for r in crosscheck(big_analysis(write_spec, "[20000]", 'type = "Linear"\nout_features = 20000')).results]
    assert notes == ["not built: 400,020,000 parameters exceed the cross-check limit of 200,000,000"]
    notes = [r.note for r in crosscheck(big_analysis(
        write_spec, "[1, 8000, 8000]", 'type = "Conv2d"\nout_channels = 1\nkernel_size = 1')).results]
    assert notes == [("not built: 128,000,000 values in the largest activation at batch 2 exceed the "
                      "cross-check limit of 100,000,000")]
    notes = [r.note for r in crosscheck(big_analysis(
        write_spec, '["T"]', 'type = "Linear"\nout_features = 20000', {"T": 20000})).results]
    assert notes == ["not built at T=20000: 400,020,000 parameters exceed the cross-check limit of 200,000,000"]


def test_verify_without_torch_suggests_leaving_out_verify(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails as if it were not installed
    for command in ("shapes", "params"):
        result = invoke(command, "--verify")
        assert result.exit_code == 2
        assert "torch is not installed" in result.stderr and "leave out --verify" in result.stderr
        assert "--no-torch" not in result.stderr


@pytest.mark.parametrize("content,message", [
    (b"X_train,y_train\n1,2\n", "not a readable .npz file: it is not a zip archive"),
    (b"", "is empty"),
    (b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94.", "holds pickled Python objects"),
    (b"PK\x03\x04 truncated", "not a readable .npz file"),
])
def test_data_info_says_what_a_file_is(tmp_path, content, message):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    result = invoke("data", "info", path)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr
    if not content.startswith(b"\x80"):
        assert "pickle" not in result.stderr


def test_data_info_names_the_default_set_from_home(tmp_path, monkeypatch):
    import archcalc.cli.data as data_cli
    from archcalc.data.arrays import load_data

    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    cached = home / ".cache" / "archcalc" / "speech-synth.npz"
    cached.parent.mkdir(parents=True)
    tiny = load_data(tiny_npz(tmp_path))
    monkeypatch.setattr(data_cli, "load_data_or_default",
                        lambda file: load_data(file) if file else type(tiny)(tiny.X, tiny.y, tiny.classes, str(cached)))
    result = invoke("data", "info")
    assert result.exit_code == 0 and result.stdout.startswith("~/.cache/archcalc/speech-synth.npz  (features")
    tiny_npz(tmp_path).rename(tmp_path / "[bold]x.npz")
    monkeypatch.chdir(tmp_path)
    result = invoke("data", "info", "[bold]x.npz")  # a path given is shown as typed, markup included
    assert result.exit_code == 0 and result.stdout.startswith("[bold]x.npz  (features"), result.stdout


def test_solve_target_takes_axis_names(monkeypatch):
    monkeypatch.chdir(ROOT)
    spec = "examples/specs/speech_cnn_T.toml"
    by_number = invoke("solve", spec, "--target", "pool2:1=22", "--json")
    assert by_number.exit_code == 0
    for axis in ("H", "h"):
        assert invoke("solve", spec, "--target", f"pool2:{axis}=22", "--json").stdout == by_number.stdout
    assert json.loads(by_number.stdout)["targets"][0]["axis"] == 1
    result = invoke("solve", spec, "--target", "pool2:X=22")
    assert result.exit_code == 2 and "has no axis named 'X'; name one of C, H, W (or 0..2)" in result.stderr
    result = invoke("solve", spec, "--target", "nosuch:H=2")
    assert result.exit_code == 2 and "no such layer" in result.stderr


def test_written_paths_are_shown_literally(tmp_path):
    out = tmp_path / "[bold]report.md"
    result = invoke("report", "--out", out)
    assert result.exit_code == 0 and f"wrote {out}" in " ".join(result.stdout.split())
