"""Commands on specs: shapes, params, solve, check, report, lint, draw."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Annotated, Any

import typer

from archcalc import render
from archcalc.cli.common import (
    DepthOpt,
    ExplainOpt,
    JsonOpt,
    SetOpt,
    SpecArg,
    VerifyOpt,
    app,
    cli_message,
    load_analysis,
    reports_errors,
    resolve_spec,
    verified_marks,
    writable_path,
)
from archcalc.errors import ArchcalcError, SpecError, TorchMissingError, UsageError


@app.command()
@reports_errors
def shapes(spec: SpecArg = None, set_: SetOpt = None, json_: JsonOpt = False,
           explain: ExplainOpt = False, verify: VerifyOpt = False,
           rf: Annotated[bool, typer.Option("--rf", help="Receptive field, jump and start per axis.")]
           = False, depth: DepthOpt = None) -> None:
    """Every layer's output shape, derived symbolically with the floor formula."""
    analysis = load_analysis(spec, set_)
    verified = verified_marks(analysis) if verify else None
    if json_:
        document = render.analysis_document(analysis)
        document.update(render.tree_document(analysis, depth))
        if rf:
            from archcalc.render.cost import rf_document

            document["receptive_field"] = rf_document(analysis)
        render.print_json(document)
        return
    if depth is not None:
        _refuse_with_depth(explain=explain, verify=verify, rf=rf)
        render.print_tree(analysis, depth, params=False)
        return
    render.print_shapes(analysis, explain, verified)
    if rf:
        from archcalc.render.cost import print_receptive_fields

        print_receptive_fields(analysis)


@app.command()
@reports_errors
def params(spec: SpecArg = None, set_: SetOpt = None, json_: JsonOpt = False,
           explain: ExplainOpt = False, verify: VerifyOpt = False,
           cost: Annotated[bool, typer.Option("--cost", help="MACs, FLOPs and activation memory.")] = False,
           batch: Annotated[int, typer.Option(min=1, help="Batch size for the activation memory.")] = 1,
           dtype: Annotated[str, typer.Option(help="float32, bfloat16, float16 or float64.")] = "float32",
           depth: DepthOpt = None) -> None:
    """Parameters per layer with their formulas, and the totals."""
    from archcalc.analysis.cost import DTYPE_BYTES

    if dtype not in DTYPE_BYTES:
        raise UsageError(f"--dtype {dtype!r}: use {', '.join(DTYPE_BYTES)}")
    analysis = load_analysis(spec, set_)
    verified = verified_marks(analysis) if verify else None
    report = None
    if cost:
        from archcalc.analysis.cost import cost as compute_cost

        report = compute_cost(analysis, batch, dtype)
    if json_:
        document = render.analysis_document(analysis)
        document.update(render.tree_document(analysis, depth))
        if report is not None:
            from archcalc.render.cost import cost_document

            document["cost"] = cost_document(analysis, report)
        render.print_json(document)
        return
    if depth is not None:
        _refuse_with_depth(explain=explain, verify=verify)
        render.print_tree(analysis, depth, params=True)
    else:
        render.print_params(analysis, explain, verified)
    if report is not None:
        from archcalc.render.cost import print_cost

        print_cost(analysis, report)


def _refuse_with_depth(**flags: bool) -> None:
    """--explain, --verify and --rf speak of single nodes: the folded view has none to show."""
    given = [f"--{name}" for name, on in flags.items() if on]
    if given:
        raise UsageError(f"--depth folds nodes into blocks; {given[0]} shows single nodes: use one or the other")


@app.command()
@reports_errors
def solve(spec: SpecArg = None,
          for_: Annotated[str | None, typer.Option("--for", help="The symbol to solve for.")] = None,
          target: Annotated[list[str] | None, typer.Option(
              help="LAYER=SIZE or LAYER:AXIS=SIZE, AXIS a name as the tables print it (C, H, W; L in 1-D, "
                   "D in 3-D) or a number (0 = C): the values of the symbol giving that size.",
              metavar="LAYER[:AXIS]=SIZE")] = None,
          max_macs: Annotated[str | None, typer.Option(
              help="The largest value of the symbol whose forward MACs stay within this budget (an integer: "
                   "20000000 or 2e7).", metavar="N")] = None,
          near: Annotated[int | None, typer.Option(
              help="The valid values of the symbol nearest this one (below and above).", min=1)] = None,
          set_: SetOpt = None, json_: JsonOpt = False) -> None:
    """Exact ranges of the input symbols, sizes reached, padding and rows lost, MAC budgets."""
    from archcalc.analysis.solve import free_symbol, parse_budget
    from archcalc.analysis.solve import solve as run_solve

    budget = None if max_macs is None else parse_budget(max_macs)
    analysis = load_analysis(spec, set_)
    symbol = free_symbol(analysis, for_)
    targets = [target_with_axis(analysis, t) for t in target or []]
    if (targets or max_macs is not None or near is not None) and symbol is None:
        raise UsageError(f"{analysis.spec.source} has no symbol to solve for: write one in [input] shape, "
                         'e.g. [1, "T", 40]')
    report = run_solve(analysis, symbol, targets, budget, near)
    from archcalc.render.cost import print_solve, solve_document

    if json_:
        render.print_json(solve_document(report))
    else:
        print_solve(report)


def target_with_axis(analysis: Any, text: str) -> Any:
    """``--target pool2:H=22``: an axis named as the tables name it (C, H, W; C, L; C, D, H, W) or a number."""
    from archcalc.analysis.solve import Target, parse_target, shown, whole_number
    from archcalc.layers.merge import AXIS_NAMES
    from archcalc.symbolic import shape_str

    left, sep, right = text.partition("=")
    name, colon, axis = (part.strip() for part in left.partition(":"))
    size = whole_number(right, "target", shown(text)) if colon and sep and axis.isalpha() and name else None
    if size is None:
        return parse_target(text)  # a number or no axis, or a malformed target (its message)
    row = analysis.layer(name)
    if row is None:
        return Target(name, 0, size)  # solve names the missing layer
    names = AXIS_NAMES.get(len(row.out_shape), ())
    if axis.upper() not in names:
        rank = len(row.out_shape)
        known = (f"name one of {', '.join(names)} (or 0..{rank - 1})" if names
                 else f"give its number ({'0' if rank == 1 else f'0..{rank - 1}'})")
        raise UsageError(f"{name}'s output {shape_str(row.out_shape)} has no axis named {axis!r}; {known}",
                         option="target", subject=shown(text))
    return Target(name, names.index(axis.upper()), size)


def expand_specs(items: list[str] | None) -> list[Path]:
    """Files, directories (their *.toml) and glob patterns, in a stable order."""
    if not items:
        return [resolve_spec(None)]
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                raise SpecError("no *.toml spec files in this directory", source=item)
            paths.extend(found)
        elif any(ch in item for ch in "*?[") and not path.exists():
            matched = sorted(Path(p) for p in glob.glob(item, recursive=True))
            if not matched:
                raise SpecError("no file matches this pattern", source=item)
            paths.extend(matched)
        else:
            paths.append(resolve_spec(path))
    return paths


@app.command()
@reports_errors
def check(specs: Annotated[list[str] | None, typer.Argument(
              help="Spec files, directories or glob patterns (default: the bundled speech_cnn).",
              show_default=False)] = None,
          no_torch: Annotated[bool, typer.Option(
              "--no-torch", help="Only the spec's own expectations; do not build the model.")] = False,
          set_: SetOpt = None, json_: JsonOpt = False) -> None:
    """Assert every expectation in the specs (and cross-check with torch); exit 1 on a mismatch."""
    from archcalc.analysis import analyze
    from archcalc.analysis.expectations import check_expectations
    from archcalc.cli.common import parse_assignments
    from archcalc.spec import load_spec

    values = parse_assignments(set_)
    groups: list[tuple[str, list[Any]]] = []
    errors: list[str] = []
    bad_input = False
    for path in expand_specs(specs):
        try:
            spec = load_spec(path)
            analysis = analyze(spec, {k: v for k, v in values.items() if k in spec.symbol_names})
            results = check_expectations(analysis)
            if not no_torch:
                from archcalc.pytorch.crosscheck import crosscheck

                results += crosscheck(analysis).results
        except ArchcalcError as exc:
            if exc.exit_code == 2:
                bad_input = True
            message = cli_message(exc)
            if isinstance(exc, TorchMissingError) and "--no-torch" not in message:
                message += " (or use --no-torch)"  # the library names no flag; here is the way around
            errors.append(message)
            continue
        groups.append((str(path), results))
    if json_:
        render.print_json(render.checks_document(groups, errors))
    else:
        render.print_checks(groups, errors)
    if bad_input:
        raise typer.Exit(2)
    if any(not r.ok for _, results in groups for r in results):
        raise typer.Exit(1)


# --------------------------------------------------------------------------- report, lint, draw

@app.command()
@reports_errors
def report(spec: SpecArg = None,
           format_: Annotated[str, typer.Option("--format", help="md (GitHub Markdown) or tex (LaTeX).")]
           = "md",
           bench_dir: Annotated[Path | None, typer.Option(
               "--bench", help="A bench results folder: adds the comparison table and the curves.")] = None,
           out: Annotated[Path | None, typer.Option(help="Write here (default: standard output).")] = None,
           set_: SetOpt = None) -> None:
    """A derivation report: layers in words, output sizes, tables, parameter counts, results."""
    from archcalc.atomic import write_text
    from archcalc.render.report import build_document, to_latex, to_markdown

    if format_ not in ("md", "tex"):
        raise UsageError(f"--format {format_!r}: use md or tex")
    if bench_dir is not None and not (bench_dir / "results.json").is_file():
        raise UsageError(f"--bench {bench_dir}: no results.json there (run archcalc bench --out {bench_dir})")
    if out is not None:
        writable_path(out)
    analysis = load_analysis(spec, set_)
    blocks = build_document(analysis, bench_dir, out)
    text = to_markdown(blocks) if format_ == "md" else to_latex(blocks)
    if out is None:
        import sys

        sys.stdout.write(text)
        return
    write_text(out, text)
    render.make_console().print(f"wrote {out}", markup=False)


@app.command()
@reports_errors
def lint(spec: SpecArg = None, set_: SetOpt = None, json_: JsonOpt = False,
         strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any warning is found.")] = False,
         ) -> None:
    """Architecture smells, each with an id, a reason and a fix (ids can be silenced in the spec)."""
    from archcalc.analysis.lint import lint as run_lint
    from archcalc.render.lint import lint_document, print_lint

    analysis = load_analysis(spec, set_)
    findings = run_lint(analysis)
    if json_:
        render.print_json(lint_document(analysis, findings))
    else:
        print_lint(analysis, findings)
    if strict and any(f.severity == "warning" for f in findings):
        raise typer.Exit(1)


@app.command()
@reports_errors
def draw(spec: SpecArg = None,
         out: Annotated[Path, typer.Option(help="FILE.svg or FILE.png.")] = Path("network.svg"),
         set_: SetOpt = None, depth: DepthOpt = None) -> None:
    """A diagram of the network: one box per layer, tensor sizes and parameters on log scales."""
    from archcalc.render.plot import plot_network

    if out.suffix.lower() not in (".svg", ".png"):
        raise UsageError(f"--out {out}: the file must end in .svg or .png")
    writable_path(out)
    analysis = load_analysis(spec, set_)
    if not analysis.bound:
        raise UsageError("the diagram needs numbers: give every symbol a value with --set or [symbols]")
    plot_network(analysis, out, depth)
    render.make_console().print(f"wrote {out}", markup=False)
