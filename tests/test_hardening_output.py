"""User text (names, descriptions, class names, paths) is shown literally in every output: LaTeX,
Markdown, the terminal (no control characters, no rich markup) and matplotlib figures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import GOLDEN, ROOT, SPECS

from archcalc.render.escape import mathjax_text_safe, md_text, tex_text, visible

WRITE18 = r"}\immediate\write18{touch PWNED}\text{"
MARKUP = "[bold red]x[/bold red]"
CLOSE = "[/]"
ESCAPES = "\x1b]0;title\x07\x1b[2J"
MATHTEXT = r"$\frac{$"
MARKDOWN = "<img src=x onerror=alert(1)>|*em*_u_`c`"
TEX_SPECIALS = "a_b^c~d%e#f&g{h}\\\\i"
UNICODE = "λé中🙂–“q” \u202ertl"
LIGATURES = "-- --- '' `` !` ?` <<"
MODEL = "# m [bold]b[/] \x1b]0;t\x07 $\\frac{$ %#&_^~\\input{x}"
# (name, type, arguments) of every layer; None: the default name (relu_6, maxpool2d_7)
LAYERS = [
    (WRITE18, "Conv2d", {"out_channels": 4, "kernel_size": 3, "expect_shape": [4, 26, 26]}),
    (MARKUP, "ReLU", {}),
    ("[i]p[/i]", "MaxPool2d", {"kernel_size": 2}),  # after \\ in a table row: not an optional argument
    (MATHTEXT, "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1, "expect_shape": [4, 13, 13]}),
    (CLOSE, "ReLU", {}),
    (None, "ReLU", {}),
    (None, "MaxPool2d", {"kernel_size": 2}),
    (MARKDOWN, "Flatten", {}),
    (ESCAPES, "Linear", {"out_features": 8}),
    (UNICODE, "ReLU", {}),
    ("*x", "Linear", {"out_features": 4}),  # after \\ in a table row: not \\*
    (LIGATURES, "ReLU", {}),
    (TEX_SPECIALS, "Linear", {"out_features": 3}),
]
NAMES = [name for name, _, _ in LAYERS if name is not None]
WIDE = {"COLUMNS": "250"}


def toml_str(text: str) -> str:
    """A TOML basic string holding ``text`` exactly (controls as \\u escapes)."""
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif unicodedata.category(ch) == "Cc":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def hostile_spec(folder: Path, description: str = "", filename: str = "hostile.toml") -> Path:
    lines = ["[model]", f"name = {toml_str(MODEL)}", f"description = {toml_str(description)}", "",
             "[input]", "shape = [1, 28, 28]"]
    for name, kind, args in LAYERS:
        lines += ["", "[[layers]]", f'type = "{kind}"']
        if name is not None:
            lines.append(f"name = {toml_str(name)}")
        lines += [f"{key} = {json.dumps(value)}" for key, value in args.items()]
    path = folder / filename
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def raw_controls(text: str) -> list[str]:
    """Control, format or separator characters that reached the output unescaped."""
    return [ch for ch in text if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]


# --------------------------------------------------------------------------- LaTeX

# every control word archcalc's own LaTeX uses; none may come from a spec
TEX_WORDS = {
    "documentclass", "usepackage", "begin", "end", "section", "subsection", "item", "text", "textbackslash",
    "textasciicircum", "textasciitilde", "textless", "textgreater", "textbar", "texttt", "char", "ensuremath",
    "times", "rightarrow", "leftarrow", "left", "right", "lfloor", "rfloor", "lceil", "rceil", "frac", "cdot",
    "hline", "small", "includegraphics", "linewidth", "caption", "centering", "ldots", "lambda", "leq", "geq",
    "equiv", "pm", "div", "mu", "circ", "ss", "ae", "AE", "oe", "OE", "o", "O", "aa", "AA", "l", "L", "i",
    "textexclamdown", "textquestiondown", "pounds", "S", "P", "copyright", "c", "v", "u", "r", "H",
}
TEX_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "nu", "xi",
             "pi", "rho", "varsigma", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "Gamma", "Delta",
             "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}


def control_words(tex: str) -> set[str]:
    return set(re.findall(r"\\([A-Za-z]+)", tex.replace("\\\\", " ")))


def test_latex_report_lets_no_control_sequence_of_the_spec_through(cli, tmp_path):
    spec = hostile_spec(tmp_path, description=r"\input /etc/hostname \relax \def\x{} ^^5c")
    result = cli("report", spec, "--format", "tex", env=WIDE)
    assert result.exit_code == 0, result.stderr
    tex = result.stdout
    assert control_words(tex) <= TEX_WORDS | TEX_GREEK, control_words(tex) - TEX_WORDS - TEX_GREEK
    for injected in (r"\immediate", r"\write18", r"\input", r"\relax", r"\def", "^^5c", "\x1b"):
        assert injected not in tex
    # default names keep their underscore, escaped; the labels of the equations are text
    assert r"\text{maxpool2d\_7, H: }" in tex and r"\item{} relu\_6" in tex
    assert r"\text{\}\textbackslash{}immediate\textbackslash{}write18\{touch PWNED\}\textbackslash{}text\{, H: }" in tex


@pytest.mark.parametrize("text", [
    WRITE18, MODEL, MARKDOWN, TEX_SPECIALS, UNICODE, LIGATURES, ESCAPES, "[x]", "*", "\\", "{", "}", "%",
    "}" * 3 + "{", "a\nb\tc", "\\\\[2pt]", "\u0000\u009b\ufeff\U000e0001", "éèêëïœßÅØłŁı ñ ç ŵ ǅ ℵ",
])
def test_tex_text_leaves_no_active_character(text):
    escaped = tex_text(text)
    assert control_words(escaped) <= TEX_WORDS | TEX_GREEK
    plain = re.sub(r"\\[A-Za-z]+|\\.", "", escaped)  # what is left once every control sequence is gone
    assert not set(plain) & set("\\$%#&^_~")
    depth = 0
    for ch in plain:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    # no ligature joins two characters of the text (a dash or curly quote of the text is one, in braces)
    assert not re.search(r"--|''|``|!`|\?`|<<|>>", re.sub(r"\{(-+|`+|'+)\}", "", plain))
    assert all(ord(ch) < 128 for ch in escaped)  # non-ASCII by command, or named by code


def _bench_with(folder: Path, model: str) -> Path:
    """A bench folder whose runs carry ``model`` as their model name, with its curves figure."""
    from archcalc.render.plot import plot_curves

    folder.mkdir()
    doc = json.loads((GOLDEN / "bench_results.json").read_text())
    for run in doc["runs"]:
        run["model"] = model
    (folder / "results.json").write_text(json.dumps(doc))
    plot_curves(doc, folder / "curves.png")
    return folder


def _pdflatex(tex: Path) -> subprocess.CompletedProcess[str]:
    # shell escape on: a \write18 that got through would run; -recorder lists every file read
    return subprocess.run(["pdflatex", "-shell-escape", "-recorder", "-interaction=nonstopmode", "-halt-on-error",
                           tex.name], cwd=tex.parent, capture_output=True, text=True, errors="replace",
                          timeout=180, check=False)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("spec", ["speech_cnn", "speech_ffnn", "resnet50", "hostile"])
def test_latex_report_compiles_and_runs_nothing(cli, tmp_path, spec):
    marker = tmp_path / "marker.tex"
    marker.write_text("\\immediate\\write18{touch PWNED-BY-INPUT}\n")
    args: list[object] = ["--format", "tex"]
    if spec == "hostile":
        path: object = hostile_spec(tmp_path, description=f"\\input{{{marker}}} \\input {marker} \\relax")
        args += ["--bench", _bench_with(tmp_path / "run $#%{x}", MODEL)]  # a path LaTeX cannot read
    elif spec == "resnet50":
        path = ROOT / "examples" / "specs" / "resnet50.toml"
    else:
        path = SPECS / f"{spec}.toml"
        args += ["--bench", _bench_with(tmp_path / "run", spec)]
    tex = tmp_path / "report.tex"
    result = cli("report", path, *args, "--out", tex)
    assert result.exit_code == 0, result.stderr
    run = _pdflatex(tex)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    assert not list(tmp_path.glob("PWNED*"))  # no \write18 ran
    read = (tmp_path / "report.fls").read_text(errors="replace")
    assert "marker.tex" not in read and "hostname" not in read  # no \input took effect
    if spec != "hostile":
        assert "curves.png" in read or spec == "resnet50"


# --------------------------------------------------------------------------- Markdown

def _markdown_tokens(text: str) -> list:
    markdown_it = pytest.importorskip("markdown_it")
    parser = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return parser.parse(text)


def _inline_texts(tokens: list) -> list[str]:
    """The text of every inline run, as a Markdown renderer shows it; fails on any markup in it."""
    texts = []
    for token in tokens:
        assert not token.type.startswith("html"), token
        if token.type != "inline" or token.content.startswith("$$"):
            continue
        kinds = {child.type for child in token.children or []}
        assert kinds <= {"text", "softbreak"}, (token.content, kinds)  # no emphasis, code, link, image, HTML
        texts.append("".join(child.content for child in token.children or []))
    return texts


def test_markdown_report_shows_names_literally(cli, tmp_path):
    description = "- item <b>bold</b> *em* _u_ `code` [link](http://x) $x$ | ~~s~~ &amp;\n\n# not a heading"
    result = cli("report", hostile_spec(tmp_path, description=description), env=WIDE)
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "<img" not in text and "<b>" not in text and not raw_controls(text)
    tokens = _markdown_tokens(text)
    assert sum(t.type == "heading_open" for t in tokens) == 1 + text.count("\n## ")
    texts = _inline_texts(tokens)
    assert f"{visible(MODEL)}: architecture and derivations" in texts
    assert " ".join(description.split()) + "." in texts
    items = [t for t in texts if " — " in t]
    for name in NAMES:
        assert any(item.startswith(f"{visible(name)} — ") for item in items), name
    # tables: every name is one cell as written (a | of a name would split it in two)
    cell_texts = _inline_texts([t for t in tokens if t.type == "inline" and t.level > 3])
    for name in (WRITE18, "[i]p[/i]", MATHTEXT, ESCAPES, "*x", TEX_SPECIALS):
        assert visible(name) in cell_texts, name
    # equations: a label goes inside \text{} only when MathJax shows it as written
    for block in re.findall(r"^\$\$\n(.*?)\n\$\$$", text, re.MULTILINE | re.DOTALL):
        for label in re.findall(r"\\text\{([^}]*)\}", block):
            assert mathjax_text_safe(label), label
        assert "immediate" not in block and "frac{$" not in block
    assert r"\text{maxpool2d_7, H: }" in text
    assert f"{visible(WRITE18)}, H:" in texts


@pytest.mark.parametrize("text", [MARKDOWN, "a|b", "x_y", "_x_", "__init__", "1. no list", "2) no list", "# h",
                                  "- no list", "> no quote", "  code", "<!-- c -->", "&copy;", "[a]: http://x",
                                  "~~s~~", "a\\", "\\*", "http://x.org <http://x.org>"])
def test_md_text_is_one_literal_run(text):
    """In a table cell (which strips its spaces) and at the start of a paragraph: text as written."""
    tokens = _markdown_tokens(f"| c |\n| --- |\n| {md_text(text)} |\n\n{md_text(text, start=True)}\n")
    assert _inline_texts(tokens)[-2:] == [text.strip(), text]


def test_bench_markdown_table_escapes_model_names():
    from archcalc.render.bench import markdown_table

    doc = json.loads((GOLDEN / "bench_results.json").read_text())
    for run in doc["runs"]:
        run["model"] = MARKDOWN
    text = markdown_table(doc)
    tokens = _markdown_tokens(text)
    cell_texts = _inline_texts([t for t in tokens if t.type == "inline" and t.level > 3])
    assert cell_texts.count(MARKDOWN) == len(doc["runs"])
    assert sum(t.type == "th_open" for t in tokens) == text.splitlines()[0].count(" | ") + 1


# --------------------------------------------------------------------------- terminal

ALL_NAMES = [*NAMES, "relu_6", "maxpool2d_7"]
WINDOWS = [WRITE18, "[i]p[/i]", MATHTEXT, "maxpool2d_7"]  # the conv and pool layers
# each command, and the names it shows
TERMINAL_COMMANDS = {
    "shapes": ALL_NAMES, "shapes --explain": ALL_NAMES, "shapes --rf": ALL_NAMES, "shapes --depth 1": ALL_NAMES,
    "params --explain": ALL_NAMES, "params --cost": ALL_NAMES, "check --no-torch": [WRITE18, MATHTEXT],
    "lint": [], "solve": WINDOWS,
}


@pytest.mark.parametrize("command", TERMINAL_COMMANDS)
def test_terminal_output_is_literal(cli, tmp_path, command):
    """No ESC/OSC byte reaches the terminal, and rich markup in a name is shown, not applied."""
    spec = hostile_spec(tmp_path)
    name, *flags = command.split()
    result = cli(name, spec, *flags, env=WIDE)
    assert result.exit_code == 0, result.stderr
    out = result.stdout + result.stderr
    assert not raw_controls(out), raw_controls(out)
    flat = " ".join(out.split())
    for shown in TERMINAL_COMMANDS[command]:
        assert visible(shown) in flat, (shown, out)
    if name in ("shapes", "params"):
        assert visible(MODEL) in flat


def test_check_table_shows_the_name_as_written(cli, tmp_path):
    result = cli("check", hostile_spec(tmp_path), "--no-torch", env=WIDE)
    assert result.exit_code == 0
    assert f"1 {WRITE18}" in result.stdout and f"4 {MATHTEXT}" in result.stdout  # not its repr (\\write18)


def test_check_label_is_read_back_from_its_repr():
    from archcalc.render.spec import _short_label

    for name in ("conv1", "a'b", "a\"b'c", WRITE18, ESCAPES + "\n\t\\x1b", UNICODE, "x'y\\"):
        assert _short_label(f"layer 3 {name!r} (Conv2d)") == f"3 {name}"
    assert _short_label(f"block {CLOSE!r} (bottleneck)") == f"{CLOSE} (bottleneck)"


@pytest.mark.filterwarnings("ignore:Glyph")  # no CJK or emoji in matplotlib's font
def test_written_paths_and_errors_are_literal(cli, tmp_path):
    spec = hostile_spec(tmp_path)
    for command, out in (("report", tmp_path / f"{ESCAPES}{CLOSE}.md"), ("draw", tmp_path / f"{MARKUP}{ESCAPES}.svg")):
        result = cli(command, spec, "--out", out, env=WIDE)
        assert result.exit_code == 0, result.stderr
        assert not raw_controls(result.stdout)
        assert f"wrote {visible(str(out))}" in result.stdout
    # an error names the spec file: its name is shown escaped, its markup as written
    bad = hostile_spec(tmp_path, filename=f"{ESCAPES}[bold]x.toml")
    bad.write_text(bad.read_text().replace('kernel_size = 3\nexpect_shape = [4, 26, 26]', "kernel_size = 99"))
    result = cli("shapes", bad, env=WIDE)
    assert result.exit_code == 2
    assert not raw_controls(result.stderr) and visible(str(bad)) in result.stderr
    result = cli("shapes", tmp_path / f"missing{ESCAPES}{MARKUP}.toml", env=WIDE)
    assert result.exit_code == 2 and visible(f"missing{ESCAPES}{MARKUP}.toml") in result.stderr


def test_console_helpers_escape_controls(capsys):
    from archcalc.render.console import error_line, info_line, make_console, warning_line

    for line in (error_line, warning_line, info_line):
        line(f"{ESCAPES} {CLOSE} {MARKUP}")
    make_console().print(f"{ESCAPES} {CLOSE} {MARKUP} :smile:")
    captured = capsys.readouterr()
    for out in (captured.out, captured.err):
        assert not raw_controls(out)
        assert f"{visible(ESCAPES)} {CLOSE} {MARKUP}" in out
    assert ":smile:" in captured.out


# --------------------------------------------------------------------------- data and bench

CLASSES = (MARKUP, ESCAPES, MATHTEXT, CLOSE)


@pytest.fixture
def hostile_classes(tmp_path):
    np = pytest.importorskip("numpy")
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"X_{split}"] = np.random.default_rng(0).normal(size=(8, 6, 5)).astype(np.float32)
        arrays[f"y_{split}"] = np.array([0, 1, 2, 3] * 2)
    arrays["classes"] = np.array(CLASSES)
    path = tmp_path / f"[bold]data{ESCAPES}.npz"
    np.savez(path, **arrays)
    return path


def test_data_info_shows_class_names_literally(cli, tmp_path, hostile_classes):
    pytest.importorskip("matplotlib")
    png = tmp_path / f"{MARKUP}.png"
    result = cli("data", "info", hostile_classes, "--png", png, env=WIDE)
    assert result.exit_code == 0, result.stderr
    assert png.read_bytes().startswith(b"\x89PNG")  # mathtext in a class name is drawn as text
    out = result.stdout
    assert not raw_controls(out)
    flat = "".join(out.split())  # the title wraps where it likes
    for name in (*CLASSES, str(hostile_classes), f"wrote {png}"):
        assert "".join(visible(name).split()) in flat, name


@pytest.mark.filterwarnings("ignore:Glyph")
def test_figures_draw_user_text_without_mathtext(cli, tmp_path):
    pytest.importorskip("matplotlib")
    from archcalc.render.plot import plot_curves

    spec = hostile_spec(tmp_path)
    svg = tmp_path / "net.svg"
    result = cli("draw", spec, "--out", svg)
    assert result.exit_code == 0, result.stderr
    ET.parse(svg)  # well-formed: no control character in the XML
    assert cli("draw", spec, "--out", tmp_path / "net.png").exit_code == 0
    doc = json.loads((GOLDEN / "bench_results.json").read_text())
    for run in doc["runs"]:
        run["model"] = MATHTEXT + ESCAPES
        run["result"]["optimizer"] = r"$\sqrt{$"
    assert plot_curves(doc, tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_bench_table_and_progress_show_model_names_literally(monkeypatch):
    from archcalc.render.bench import print_comparison, run_progress
    from archcalc.render.console import make_console

    doc = json.loads((GOLDEN / "bench_results.json").read_text())
    for run in doc["runs"]:
        run["model"] = CLOSE + ESCAPES
    monkeypatch.setenv("COLUMNS", "200")
    console = make_console()
    monkeypatch.setattr("archcalc.render.bench.make_console", lambda stderr=False: console)
    with console.capture() as captured:
        print_comparison(doc)
        with run_progress() as progress:
            progress(f"{CLOSE}{ESCAPES}/sgd")({"epoch": 1, "epochs": 2, "train_loss": 0.5, "train_acc": 0.5,
                                                "val_acc": 0.5, "samples_per_s": 10.0})
    out = captured.get()
    assert not raw_controls(out)
    assert f"{CLOSE}{visible(ESCAPES)}" in out and f"{CLOSE}{visible(ESCAPES)}/sgd: epoch 1/2" in out
