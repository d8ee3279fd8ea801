"""Derivation reports in Markdown and LaTeX: the calculation sections of a course report.

One document model (a list of blocks), two writers, so both formats always hold the same numbers.
The blocks hold user text (names, descriptions) raw; each writer escapes it for its own format, and
math holds it apart (a ``MathLine``'s label), never inside LaTeX that archcalc wrote.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archcalc.analysis import Analysis, LayerResult
from archcalc.layers.conv import AXES
from archcalc.layers.registry import shape_words
from archcalc.render.escape import mathjax_text_safe, md_text, tex_path_safe, tex_text, visible
from archcalc.symbolic import Size, is_number, sp


@dataclass
class Block:
    kind: str  # heading, subheading, text, list, table, math, math_lines, figure
    content: Any


@dataclass(frozen=True)
class MathLine:
    """One displayed equation: a label in words (user text: a layer's name) and archcalc's LaTeX."""

    label: str
    body: str


def _latex(size: Size) -> str:
    return str(size) if is_number(size) else sp.latex(size)


def _times(shape: tuple[Size, ...]) -> str:
    return r" \times ".join(_latex(s) for s in shape)


def layer_words(row: LayerResult) -> str:
    """The node in a sentence, as a report lists it (the kind says it)."""
    text = row.kind.words(row.args, row.in_shapes, row.out_shape)
    return text + (f" (the module of {row.shared_with}, applied again)" if row.shared_with else "")


def _window(row: LayerResult) -> tuple[tuple[int, ...], ...] | None:
    return None if row.shared_with else row.kind.window(row.args)


def size_steps(analysis: Analysis) -> list[MathLine]:
    """One LaTeX equation per conv/pool axis: the floor formula with the layer's numbers."""
    steps = []
    for row in analysis.layers:
        window = _window(row)
        if window is None:
            continue
        k, s, p, d = window
        ceil_mode = bool(row.args.get("ceil_mode", False))
        same = row.args.get("padding") == "same"
        for axis, name in enumerate(AXES[len(k)]):
            n, out = row.in_shape[1 + axis], row.out_shape[1 + axis]
            if same:
                body = rf"{_latex(n)} \;(\text{{padding='same'}})"
            else:
                inner = rf"\frac{{{_latex(n)} + 2 \cdot {p[axis]} - {d[axis]} \cdot ({k[axis]} - 1) - 1}}{{{s[axis]}}}"
                body = (rf"\left\lceil {inner} \right\rceil + 1" if ceil_mode
                        else rf"\left\lfloor {inner} \right\rfloor + 1")
            value = analysis.value(out)
            tail = f" = {value}" if not is_number(out) and is_number(value) else ""
            steps.append(MathLine(f"{row.name}, {name}: ", rf"{body} = {_latex(out)}{tail}"))
    return steps


# a formula and the words after it, "2*32 (weight and bias)": the words are set as text, not math
_FORMULA_WORDS = re.compile(r"(.*?)(?:\s+\(([A-Za-z][A-Za-z ,]*)\))?")


def param_terms(analysis: Analysis) -> list[tuple[str, str, Size]]:
    """(layer, formula in the report's form, value) for every layer with parameters."""
    terms = []
    for row in analysis.layers:
        if row.params == 0:
            continue
        if row.kind.family == "linear" and row.args["bias"]:
            m, n = row.in_shape[-1], row.args["out_features"]
            formula = rf"({_latex(m)} + 1) \cdot {n}"
        else:
            formula, words = _FORMULA_WORDS.fullmatch(row.params_formula).groups()  # type: ignore[union-attr]
            formula = formula.replace("*", r" \cdot ") + (rf" \;\text{{({words})}}" if words else "")
        terms.append((row.name, formula, row.params))
    return terms


def build_document(analysis: Analysis, bench_dir: Path | None, out_path: Path | None) -> list[Block]:
    spec = analysis.spec
    blocks = [Block("heading", f"{spec.name}: architecture and derivations")]
    if spec.description:
        blocks.append(Block("text", " ".join(spec.description.split()) + "."))  # prose: one paragraph
    blocks.append(Block("text", f"Input: {shape_words(analysis.input_shape)} per sample (batch axis not shown)."))
    blocks.append(Block("subheading", "Layers"))
    if analysis.is_sequential:
        items = [f"{row.name} — {layer_words(row)}" for row in analysis.layers]
    else:
        items = [f"{row.name} (from {', '.join(row.inputs)}) — {layer_words(row)}" for row in analysis.layers]
    blocks.append(Block("list", items))
    if not analysis.is_sequential:
        outputs = ", ".join(row.name for row in analysis.outputs)
        blocks.append(Block("text", f"Output: {outputs}."))
    steps = size_steps(analysis)
    if steps:
        blocks.append(Block("subheading", "Output sizes"))
        blocks.append(Block("text", "Every convolution and pooling layer gives, on each axis,"))
        blocks.append(Block("math", r"O = \left\lfloor \frac{I + 2P - D(K - 1) - 1}{S} \right\rfloor + 1"))
        blocks.append(Block("math_lines", steps))
        chain = [row for row in analysis.layers if _window(row) is not None]
        if chain and analysis.is_sequential:  # a chain of sizes is only a chain in a chain
            sizes = [_times(chain[0].in_shape[1:])] + [_times(r.out_shape[1:]) for r in chain]
            blocks.append(Block("math", r" \rightarrow ".join(sizes)))
        flats = [r for r in analysis.layers if r.type == "Flatten"]
        for flat in flats:
            blocks.append(Block("text", "Flattened size:" if len(flats) == 1 else f"Flattened size ({flat.name}):"))
            blocks.append(Block("math", f"{_times(flat.in_shape)} = {_latex(flat.out_shape[0])}"))
    blocks += _blocks(analysis)
    blocks += _tables(analysis)
    blocks += _params(analysis)
    if bench_dir is not None:
        blocks += _bench(bench_dir, out_path)
    return blocks


def _blocks(analysis: Analysis) -> list[Block]:
    """The block uses: each stamped-out sub-network with its arguments, output and parameters."""
    from archcalc.analysis.tree import module_tree

    groups = [row for row in module_tree(analysis) if not row.is_leaf and row.group is not None]
    if not groups:
        return []
    defined = sorted({row.group.block for row in groups if row.group is not None})
    text = (f"The model repeats {len(defined)} block{'s' if len(defined) != 1 else ''} defined once "
            f"({', '.join(defined)}); each use below is one row, a repeated use first with its copies after it.")
    rows = []
    for row in groups:
        group = row.group
        assert group is not None
        args = ", ".join(f"{k}={_arg_text(v)}" for k, v in group.args.items())
        rows.append([row.name, row.kind, args, str(len(row.nodes)), shape_words(row.output.out_shape),
                     f"{row.params:,}" if is_number(row.params) else str(row.params)])
    return [Block("subheading", "Blocks"), Block("text", text),
            Block("table", (["use", "block", "arguments", "nodes", "output", "parameters"], rows))]


def _arg_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _tables(analysis: Analysis) -> list[Block]:
    blocks = []
    conv_rows = []
    for row in analysis.layers:
        window = _window(row)
        if window is None:
            continue
        k, s, p, _ = window
        pad = row.args["padding"] if row.args.get("padding") == "same" else "×".join(map(str, p))
        conv_rows.append([row.name, row.type, str(row.in_shape[0]), str(row.out_shape[0]),
                          "×".join(map(str, k)), "×".join(map(str, s)), str(pad), shape_words(row.out_shape),
                          f"{row.params:,}" if is_number(row.params) else str(row.params)])
    if conv_rows:
        blocks.append(Block("subheading", "Convolutional and pooling layers"))
        blocks.append(Block("table", (["layer", "type", "in channels", "out channels", "kernel", "stride",
                                       "padding", "output", "parameters"], conv_rows)))
    lin_rows = [[row.name, str(row.in_shape[-1]), str(row.args["out_features"]),
                 f"{row.params:,}" if is_number(row.params) else str(row.params)]
                for row in analysis.layers if row.kind.family == "linear" and not row.shared_with]
    if lin_rows:
        blocks.append(Block("subheading", "Linear layers"))
        blocks.append(Block("table", (["layer", "in features", "out features", "parameters"], lin_rows)))
    return blocks


def _params(analysis: Analysis) -> list[Block]:
    terms = param_terms(analysis)
    blocks = [Block("subheading", "Parameters"),
              Block("text", "A convolution with a K_x × K_y kernel has K_x K_y C_in C_out weights and C_out "
                            "biases; a linear layer from m to n features has (m + 1) n parameters.")]
    blocks.append(Block("math_lines", [MathLine(f"{name}: ", f"{formula} = {_latex(value)}")
                                       for name, formula, value in terms]))
    total = analysis.value(analysis.total_params)
    sum_text = " + ".join(_latex(analysis.value(v)) for _, _, v in terms)
    blocks.append(Block("text", "Total:"))
    blocks.append(Block("math", f"{sum_text} = {_latex(total)}"))
    return blocks


def _bench(bench_dir: Path, out_path: Path | None) -> list[Block]:
    from archcalc.bench.results import load_results
    from archcalc.render.bench import _columns, caption, table_rows

    doc = load_results(bench_dir / "results.json")
    blocks = [Block("subheading", "Results"),
              Block("table", (list(_columns(doc)), table_rows(doc))), Block("text", caption(doc))]
    figure = bench_dir / "curves.png"
    if figure.exists():
        base = out_path.parent if out_path is not None else Path.cwd()
        blocks.append(Block("figure", (os.path.relpath(figure, base),
                                       "Training and validation loss and accuracy against iteration.")))
    return blocks


# --------------------------------------------------------------------------- writers

def _md_math(line: MathLine) -> str:
    """A labelled equation for GitHub: MathJax's ``\\text{}`` has no escapes, so a label that is not
    plain words goes before the equation, as Markdown text."""
    if mathjax_text_safe(line.label):
        return f"$$\n\\text{{{line.label}}} {line.body}\n$$"
    return f"{md_text(line.label.strip(), start=True)}\n\n$$\n{line.body}\n$$"


def _md_link(path: str) -> str:
    from urllib.parse import quote

    return quote(visible(path).replace(os.sep, "/"), safe="/._-~")


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if block.kind == "heading":
            out.append(f"# {md_text(block.content)}\n")
        elif block.kind == "subheading":
            out.append(f"## {md_text(block.content)}\n")
        elif block.kind == "text":
            out.append(f"{md_text(block.content, start=True)}\n")
        elif block.kind == "list":
            out.append("\n".join(f"{i}. {md_text(item, start=True)}" for i, item in enumerate(block.content, 1))
                       + "\n")
        elif block.kind == "math":
            out.append(f"$$\n{block.content}\n$$\n")
        elif block.kind == "math_lines":
            out.append("\n\n".join(_md_math(line) for line in block.content) + "\n")  # GitHub needs blank lines
        elif block.kind == "table":
            header, rows = block.content
            lines = ["| " + " | ".join(md_text(h) for h in header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
            lines += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in rows]
            out.append("\n".join(lines) + "\n")
        elif block.kind == "figure":
            path, text = block.content
            out.append(f"![{md_text(text)}]({_md_link(path)})\n\n*Figure: {md_text(text)}*\n")
    return "\n".join(out)


def to_latex(blocks: list[Block]) -> str:
    out = [r"\documentclass{article}", r"\usepackage[utf8]{inputenc}", r"\usepackage{amsmath}",
           r"\usepackage{graphicx}", r"\usepackage[margin=2cm]{geometry}", r"\begin{document}"]
    for block in blocks:
        if block.kind == "heading":
            out.append(rf"\section*{{{tex_text(block.content)}}}")
        elif block.kind == "subheading":
            out.append(rf"\subsection*{{{tex_text(block.content)}}}")
        elif block.kind == "text":
            out.append(tex_text(block.content) + "\n")
        elif block.kind == "list":  # \item{} so that a leading [ is text, not an optional label
            out.append(r"\begin{enumerate}" + "".join(rf" \item{{}} {tex_text(i)}" for i in block.content)
                       + r" \end{enumerate}")
        elif block.kind == "math":
            out.append(rf"\[ {block.content} \]")
        elif block.kind == "math_lines":
            lines = [rf"\text{{{tex_text(line.label)}}} {line.body}" for line in block.content]
            out.append(r"\begin{gather*}" + r" \\ ".join(lines) + r"\end{gather*}")
        elif block.kind == "table":
            header, rows = block.content
            spec = "l" * len(header)
            body = [" & ".join(tex_text(h) for h in header) + r" \\ \hline"]
            body += [" & ".join(tex_text(c) for c in row) + r" \\" for row in rows]
            out.append(rf"\begin{{center}}\small\begin{{tabular}}{{{spec}}}\hline " + "\n".join(body)
                       + r" \hline\end{tabular}\end{center}")
        elif block.kind == "figure":
            path, text = block.content
            out.append(_tex_figure(path, text))
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


def _tex_figure(path: str, text: str) -> str:
    """The figure, or where it is when its path holds characters ``\\includegraphics`` would misread."""
    if tex_path_safe(path.replace(os.sep, "/")):
        return (r"\begin{figure}[h]\centering" + rf"\includegraphics[width=\linewidth]{{{path.replace(os.sep, '/')}}}"
                + rf"\caption{{{tex_text(text)}}}\end{{figure}}")
    return tex_text(f"Figure: {text} See {path} (not included: LaTeX cannot read this path as written).") + "\n"
