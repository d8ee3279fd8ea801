"""Commands between specs and PyTorch code: import (a model -> a spec) and export (a spec -> code)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from archcalc import render
from archcalc.cli.common import JsonOpt, SetOpt, SpecArg, app, load_analysis, reports_errors, writable_path
from archcalc.errors import UsageError


@app.command("import")
@reports_errors
def import_(
    target: Annotated[str, typer.Argument(
        help="package.module:callable or path/to/file.py:callable, returning an nn.Module.", show_default=False)],
    input_shape: Annotated[str, typer.Option(
        "--input-shape", help="The per-sample input shape, batch axis left out: 3,224,224.", show_default=False)],
    kwarg: Annotated[list[str] | None, typer.Option(
        help="NAME=VALUE passed to the callable; VALUE is a TOML value (num_classes=10, aux_logits=false).",
        metavar="NAME=VALUE")] = None,
    symbol: Annotated[list[str] | None, typer.Option(
        help="Write this input axis as a symbol: H or W (C, H, W; C, L; C, D, H, W), or NAME=AXIS (T=1).",
        metavar="NAME")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the spec here (default: standard output).")] = None,
    json_: JsonOpt = False,
) -> None:
    """A spec from a PyTorch model (torch.fx), verified against the model before it is written."""
    from archcalc.atomic import write_text
    from archcalc.pytorch.importer import load_and_import, parse_kwarg, parse_shape

    shape = parse_shape(input_shape)
    kwargs = dict(parse_kwarg(k) for k in kwarg or [])
    if out is not None:
        writable_path(out)
    imported = load_and_import(target, shape, kwargs, symbol or [])
    summary = (f"{len(imported.nodes)} nodes, {imported.params:,} parameters, output {list(imported.output_shape)}; "
               "verified against the model (every node's shape, the parameters of every module)")
    if json_:
        render.print_json({"target": target, "input_shape": list(shape), "nodes": len(imported.nodes),
                           "total_params": imported.params, "output_shape": list(imported.output_shape),
                           "verified": True, "spec": imported.text})
    elif out is None:
        sys.stdout.write(imported.text)
    if out is not None:
        write_text(out, imported.text)
        if not json_:
            render.make_console().print(f"wrote {out}: {summary}")


@app.command()
@reports_errors
def export(
    spec: SpecArg = None,
    format_: Annotated[str, typer.Option("--format", help="py (a torch module) or onnx (needs the onnx package).")]
    = "py",
    out: Annotated[Path | None, typer.Option(help="Write here (default: standard output for py).")] = None,
    set_: SetOpt = None,
) -> None:
    """The spec as standalone PyTorch code (a class; only torch imported), or as ONNX."""
    from archcalc.atomic import write_text
    from archcalc.pytorch.exporter import export_onnx, export_python

    if format_ not in ("py", "onnx"):
        raise UsageError(f"--format {format_!r}: use py or onnx")
    if format_ == "onnx" and out is None:
        raise UsageError("--format onnx writes a file: give --out FILE.onnx")
    if out is not None:
        writable_path(out)
    analysis = load_analysis(spec, set_)
    if not analysis.bound:
        raise UsageError("export needs numbers: give every symbol a value with --set or [symbols]")
    if format_ == "onnx":
        assert out is not None
        export_onnx(analysis, out)
        render.make_console().print(f"wrote {out}")
        return
    text = export_python(analysis)
    if out is None:
        sys.stdout.write(text)
        return
    write_text(out, text)
    render.make_console().print(f"wrote {out}")
