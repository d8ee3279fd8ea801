"""The ``archcalc`` command line: parse options, call the package, hand results to render."""

from __future__ import annotations

import glob
import math
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from archcalc import __version__, render
from archcalc.errors import ArchcalcError, SpecError, UsageError

app = typer.Typer(
    name="archcalc",
    help="Derive, check and benchmark neural-network architectures written as TOML specs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])

SpecArg = Annotated[Path | None, typer.Argument(
    help="Spec file, or the name of a bundled spec (default: speech_cnn).", show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Give a symbol a value, e.g. --set T=200 (repeatable).", metavar="NAME=INT")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
ExplainOpt = Annotated[bool, typer.Option("--explain", help="Show the derivation step by step.")]
VerifyOpt = Annotated[bool, typer.Option(
    "--verify", help="Build the model in torch and confirm every row with torchinfo.")]


def reports_errors(func: F) -> F:
    """Turn archcalc's own errors into one line on stderr and the error's exit code."""
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ArchcalcError as exc:
            render.error_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"archcalc {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
         ) -> None:
    """archcalc: exact shapes, parameters and benchmarks for neural-network specs."""


def resolve_spec(path: Path | None) -> Path:
    """A spec path, or a bundled spec by name; the bundled speech_cnn when none is given."""
    from archcalc.spec import BUNDLED, bundled_spec

    if path is None:
        return bundled_spec("speech_cnn")
    if not path.exists() and path.suffix == "" and str(path) in BUNDLED:
        return bundled_spec(str(path))
    return path


def _load(path: Path | None, overrides: list[str] | None):  # type: ignore[no-untyped-def]
    from archcalc.analysis import analyze, parse_assignments
    from archcalc.spec import load_spec

    values = parse_assignments(overrides)
    return analyze(load_spec(resolve_spec(path)), values)


def _verified(analysis: Any) -> dict[str, str]:
    from archcalc.torchcheck import crosscheck

    report = crosscheck(analysis)
    report.raise_if_failed()
    return report.row_marks()


@app.command()
@reports_errors
def shapes(spec: SpecArg = None, set_: SetOpt = None, json_: JsonOpt = False,
           explain: ExplainOpt = False, verify: VerifyOpt = False,
           rf: Annotated[bool, typer.Option("--rf", help="Receptive field, jump and start per axis.")]
           = False) -> None:
    """Every layer's output shape, derived symbolically with the floor formula."""
    analysis = _load(spec, set_)
    verified = _verified(analysis) if verify else None
    if json_:
        document = render.analysis_document(analysis)
        if rf:
            from archcalc.render.cost import rf_document

            document["receptive_field"] = rf_document(analysis)
        render.print_json(document)
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
           ) -> None:
    """Parameters per layer with their formulas, and the totals."""
    from archcalc.cost import DTYPE_BYTES

    if dtype not in DTYPE_BYTES:
        raise UsageError(f"--dtype {dtype!r}: use {', '.join(DTYPE_BYTES)}")
    analysis = _load(spec, set_)
    verified = _verified(analysis) if verify else None
    report = None
    if cost:
        from archcalc.cost import cost as compute_cost

        report = compute_cost(analysis, batch, dtype)
    if json_:
        document = render.analysis_document(analysis)
        if report is not None:
            from archcalc.render.cost import cost_document

            document["cost"] = cost_document(analysis, report)
        render.print_json(document)
        return
    render.print_params(analysis, explain, verified)
    if report is not None:
        from archcalc.render.cost import print_cost

        print_cost(analysis, report)


@app.command()
@reports_errors
def solve(spec: SpecArg = None,
          for_: Annotated[str | None, typer.Option("--for", help="The symbol to solve for.")] = None,
          target: Annotated[list[str] | None, typer.Option(
              help="LAYER=SIZE (or LAYER:AXIS=SIZE): the values of the symbol giving that size.")] = None,
          max_macs: Annotated[float | None, typer.Option(
              help="The largest value of the symbol whose forward MACs stay within this budget.")] = None,
          set_: SetOpt = None, json_: JsonOpt = False) -> None:
    """Exact ranges of the input symbols, sizes reached, padding and rows lost, MAC budgets."""
    from archcalc.solve import free_symbol, parse_target
    from archcalc.solve import solve as run_solve

    analysis = _load(spec, set_)
    symbol = free_symbol(analysis, for_)
    targets = [parse_target(t) for t in target or []]
    if (targets or max_macs is not None) and symbol is None:
        raise UsageError(f"{analysis.spec.source} has no symbol to solve for: write one in [input] shape, "
                         'e.g. [1, "T", 40]')
    if max_macs is not None and (max_macs < 0 or math.isnan(max_macs)):
        raise UsageError(f"--max-macs {max_macs}: must be a non-negative number")
    report = run_solve(analysis, symbol, targets, None if max_macs is None else int(max_macs))
    from archcalc.render.cost import print_solve, solve_document

    if json_:
        render.print_json(solve_document(report))
    else:
        print_solve(report)


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
    from archcalc.analysis import analyze, parse_assignments
    from archcalc.checks import check_expectations
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
                from archcalc.torchcheck import crosscheck

                results += crosscheck(analysis).results
        except ArchcalcError as exc:
            if exc.exit_code == 2:
                bad_input = True
            errors.append(str(exc))
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


# --------------------------------------------------------------------------- data

data_app = typer.Typer(help="Speech data: synthesize, prepare from WAV folders, inspect.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


def _writable(path: Path) -> Path:
    """Refuse an output path whose folder cannot be written, before any work is done."""
    import os

    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"--out {path}: is a directory; give a file name such as {path / 'data.npz'}")
    if folder.exists() and not os.access(folder, os.W_OK):
        raise UsageError(f"--out {path}: the folder {folder} is not writable")
    if not folder.exists():
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise UsageError(f"--out {path}: cannot create the folder {folder} ({exc.strerror})") from None
    return path


@data_app.command("synth")
@reports_errors
def data_synth(n: Annotated[int, typer.Option("--n", min=6, help="Samples over the three splits "
                                                                  "(2/3 train, 1/6 val, 1/6 test).")] = 9000,
               seed: Annotated[int, typer.Option(help="Seed: the same seed gives identical arrays.")] = 0,
               out: Annotated[Path | None, typer.Option(
                   help="Write the .npz here (default: the cache, where bench looks).")] = None,
               workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
               ) -> None:
    """Synthesize the yes/no/up data set with eSpeak NG (deterministic from the seed)."""
    import time

    from archcalc.data.arrays import save_npz
    from archcalc.data.synth import cached_path, synthesize
    from archcalc.render.console import progress_reporter
    from archcalc.render.data import print_data_info

    target = _writable(out) if out else cached_path(n, seed)
    start = time.perf_counter()
    with progress_reporter(f"synthesizing {n:,} clips") as progress:
        data = synthesize(n, seed, workers, progress)
    save_npz(data, target)
    render.make_console().print(f"wrote {target} in {time.perf_counter() - start:.1f} s")
    print_data_info(data)


@data_app.command("prepare")
@reports_errors
def data_prepare(directory: Annotated[Path, typer.Argument(help="Speech Commands-style folder.")],
                 out: Annotated[Path, typer.Option(help="The .npz to write.")],
                 words: Annotated[str, typer.Option(help="Comma-separated words (class order).")]
                 = "yes,no,up",
                 seed: Annotated[int, typer.Option(help="Seed of the speaker split (without list files).")]
                 = 0,
                 device: Annotated[str, typer.Option(help="cpu or cuda, for the features.")] = "cpu",
                 ) -> None:
    """WAV folders -> log-mel features (101 x 40) in one .npz."""
    from archcalc.data.arrays import save_npz
    from archcalc.data.wav import prepare
    from archcalc.render.console import progress_reporter
    from archcalc.render.data import print_prepare_report

    word_list = [w.strip() for w in words.split(",") if w.strip()]
    if len(word_list) < 2:
        raise UsageError(f"--words {words!r}: give at least two words, e.g. --words yes,no,up")
    _writable(out)
    with progress_reporter("reading WAV files") as progress:
        data, report = prepare(directory, word_list, seed, _device(device), progress)
    save_npz(data, out)
    print_prepare_report(report, str(out))


@data_app.command("info")
@reports_errors
def data_info(file: Annotated[Path | None, typer.Argument(
                  help=".npz file or folder of .npy files (default: the synthesized default set).",
                  show_default=False)] = None,
              png: Annotated[Path | None, typer.Option(help="Also draw log-mel examples per class.")]
              = None,
              json_: JsonOpt = False) -> None:
    """Split sizes, class balance and feature statistics of a data set."""
    from archcalc.render.data import data_document, print_data_info

    data = _load_data(file)
    if png is not None:
        from archcalc.plot import plot_examples

        plot_examples(data, _writable(png))
    if json_:
        render.print_json(data_document(data))
    else:
        print_data_info(data)
        if png is not None:
            render.make_console().print(f"wrote {png}")


def _load_data(file: Path | None) -> Any:
    from archcalc.data.arrays import load_data

    if file is not None:
        return load_data(file)
    from archcalc.data.synth import default_data
    from archcalc.render.console import info_line, progress_reporter

    with progress_reporter("synthesizing the default data set") as progress:
        data, made = default_data(progress=progress)
    if made:
        info_line(f"made the default data set once: {data.source}")
    return data


def _device(name: str) -> str:
    """``auto`` -> cuda when available; ``cuda`` without CUDA is a usage error."""
    if name not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device {name!r}: use auto, cpu or cuda")
    if name == "cpu":
        return name
    from archcalc.torchbuild import import_torch

    torch = import_torch()
    if torch.cuda.is_available():
        return "cuda"
    if name == "cuda":
        raise UsageError("--device cuda: CUDA is not available here (torch "
                         f"{torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA)")
    return "cpu"


# --------------------------------------------------------------------------- bench

@app.command()
@reports_errors
def bench(
    spec: Annotated[list[Path] | None, typer.Option(
        "--spec", help="A model spec (repeatable; default: the bundled speech_cnn and speech_ffnn).")] = None,
    data: Annotated[Path | None, typer.Option(
        help=".npz or folder of .npy arrays (default: the synthesized set, made once and cached).")] = None,
    optimizer: Annotated[list[str] | None, typer.Option(
        "--optimizer", help="sgd and/or adam (repeatable; default: both).")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs (default 50, or [train]).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Mini-batch size (default 1024).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the weights and the shuffling (default 0).")]
    = None,
    device: Annotated[str, typer.Option(help="auto (cuda when available), cpu or cuda.")] = "auto",
    amp: Annotated[str, typer.Option(help="auto (bf16 on a CPU that supports it), bf16 or off.")] = "auto",
    channels_last: Annotated[bool, typer.Option(
        "--channels-last/--no-channels-last", help="NHWC memory layout for conv models.")] = True,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model (timed apart).")]
    = False,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads.")] = None,
    micro_batch: Annotated[int, typer.Option(
        min=-1, help="Accumulate each batch over slices of N samples (-1: auto, 32 for conv models "
                     "without BatchNorm on a CPU; 0: off). Same gradient, cache-sized activations.")] = -1,
    val_every: Annotated[int, typer.Option(min=0, help="Validate every N iterations (0: once per epoch).")]
    = 1,
    drop_final_softmax: Annotated[bool, typer.Option(
        "--drop-final-softmax", help="Train on logits: leave out a final Softmax.")] = False,
    both_heads: Annotated[bool, typer.Option(
        "--both-heads", help="Train with and without the final Softmax, side by side.")] = False,
    quick: Annotated[bool, typer.Option(
        "--quick", help="A smoke run: 2 epochs on 600 synthesized samples.")] = False,
    synth_n: Annotated[int | None, typer.Option(
        min=6, help="Size of the synthesized set when no --data is given (default 9000).")] = None,
    out: Annotated[Path | None, typer.Option(help="Results folder (default runs/<timestamp>).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Finish an interrupted bench in this folder.")]
    = None,
    json_: JsonOpt = False,
) -> None:
    """Train and time the CNN and the FFNN with SGD and Adam: the course report's Table 1 and Figure 1."""
    import time

    optimizers = [o.lower() for o in (optimizer or ["sgd", "adam"])]
    for name in optimizers:
        if name not in ("sgd", "adam"):
            raise UsageError(f"--optimizer {name!r}: use sgd or adam")
    if amp not in ("auto", "bf16", "off"):
        raise UsageError(f"--amp {amp!r}: use auto, bf16 or off")
    if drop_final_softmax and both_heads:
        raise UsageError("--drop-final-softmax and --both-heads exclude each other")
    run_device = _device(device)
    out_dir = _out_dir(out, resume)
    from archcalc.spec import load_spec

    specs = [load_spec(resolve_spec(p)) for p in (spec or [Path("speech_cnn"), Path("speech_ffnn")])]
    start = time.perf_counter()
    dataset = _bench_data(data, 600 if quick and synth_n is None else synth_n or 9000)
    data_s = time.perf_counter() - start
    _run_bench(specs, dataset, data_s, optimizers, run_device, amp, channels_last, compile_, threads,
               val_every, micro_batch, "logits" if drop_final_softmax else "both" if both_heads else "spec",
               {"epochs": epochs if epochs is not None else (2 if quick else None), "batch_size": batch_size,
                "seed": seed}, out_dir, resume is not None, json_)


def _out_dir(out: Path | None, resume: Path | None) -> Path:
    """The results folder, created and checked for writing before any work is done."""
    import datetime
    import os

    if resume is not None:
        if out is not None and out != resume:
            raise UsageError("--resume DIR already names the results folder; leave out --out")
        if not (resume / "results.json").exists():
            raise UsageError(f"--resume {resume}: no results.json there to resume")
        target = resume
    else:
        target = out or Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {target}: cannot create it ({exc.strerror})") from None
    if not os.access(target, os.W_OK):
        raise UsageError(f"--out {target}: not writable")
    return target


def _bench_data(path: Path | None, synth_n: int) -> Any:
    from archcalc.data.arrays import load_data

    if path is not None:
        return load_data(path)
    from archcalc.data.synth import DEFAULT_SEED, default_data
    from archcalc.render.console import info_line, progress_reporter

    with progress_reporter(f"synthesizing {synth_n:,} clips (once; then cached)") as progress:
        dataset, made = default_data(n=synth_n, seed=DEFAULT_SEED, progress=progress)
    if made:
        info_line(f"made the synthesized data set: {dataset.source}")
    return dataset


def _run_bench(specs: list[Any], dataset: Any, data_s: float, optimizers: list[str], device: str, amp: str,
               channels_last: bool, compile_: bool, threads: int | None, val_every: int, micro_batch: int,
               heads: str,
               overrides: dict[str, Any], out_dir: Path, resume: bool, json_: bool) -> None:
    import json

    import torch

    from archcalc import bench as protocol
    from archcalc.plot import plot_curves
    from archcalc.render.bench import markdown_table, print_comparison, run_progress
    from archcalc.render.console import info_line
    from archcalc.train import TrainConfig, bf16_supported

    if threads:
        torch.set_num_threads(threads)
    plans = protocol.plan_models(specs, dataset, {"spec": ["spec"], "logits": ["logits"],
                                                  "both": ["spec", "logits"]}[heads])
    warning = protocol.softmax_warning(plans)
    if warning:
        render.warning_line(warning)
    use_amp = "bf16" if amp == "bf16" or (amp == "auto" and device == "cpu" and bf16_supported(device)) else "off"
    if use_amp == "bf16" and not bf16_supported(device):
        raise UsageError(f"--amp bf16: this {device} does not support bfloat16")
    base = TrainConfig(device=device, amp=use_amp, channels_last=channels_last, compile=compile_,
                       val_every=val_every, micro_batch=micro_batch)
    base = protocol.config_for(base, plans[0], "sgd", overrides) if plans else base
    described = {"epochs": base.epochs, "batch_size": base.batch_size, "seed": base.seed, "amp": use_amp,
                 "channels_last": channels_last, "compile": compile_, "val_every": val_every,
                 "micro_batch": "auto" if micro_batch < 0 else micro_batch,
                 "optimizers": optimizers, "loss": "cross-entropy", "heads": heads,
                 "normalization": "training set global mean and standard deviation"}
    state = protocol.load_state(out_dir, resume, dataset,
                                protocol.new_document(dataset, data_s, device, described))

    def on_run(run: Any, skipped: bool) -> None:
        if skipped:
            info_line(f"{run.id}: finished earlier, skipped")

    try:
        with run_progress() as progress:
            protocol.run_bench(plans, optimizers, dataset, base, overrides, state, progress, on_run)
    except KeyboardInterrupt:
        _write_outputs(state, plot_curves, markdown_table)
        render.error_line(f"interrupted: {len(state.doc['runs'])} finished run(s) kept in "
                          f"{out_dir / 'results.json'}; finish with --resume {out_dir}")
        raise typer.Exit(130) from None
    _write_outputs(state, plot_curves, markdown_table)
    if json_:
        render.print_json(json.loads((out_dir / "results.json").read_text()))
        return
    print_comparison(state.doc)
    render.make_console().print(f"wrote {out_dir / 'results.json'}, {out_dir / 'table.md'}, "
                                f"{out_dir / 'curves.png'}", soft_wrap=True)


def _write_outputs(state: Any, plot_curves: Any, markdown_table: Any) -> None:
    from archcalc.atomic import write_text

    if not state.doc["runs"]:
        return
    write_text(state.out_dir / "table.md", markdown_table(state.doc))
    plot_curves(state.doc, state.out_dir / "curves.png")


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
    analysis = _load(spec, set_)
    blocks = build_document(analysis, bench_dir, out)
    text = to_markdown(blocks) if format_ == "md" else to_latex(blocks)
    if out is None:
        import sys

        sys.stdout.write(text)
        return
    write_text(_writable(out), text)
    render.make_console().print(f"wrote {out}")


@app.command()
@reports_errors
def lint(spec: SpecArg = None, set_: SetOpt = None, json_: JsonOpt = False,
         strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any warning is found.")] = False,
         ) -> None:
    """Architecture smells, each with an id, a reason and a fix (silence ids with [lint] ignore)."""
    from archcalc.lint import lint as run_lint
    from archcalc.render.lint import lint_document, print_lint

    analysis = _load(spec, set_)
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
         set_: SetOpt = None) -> None:
    """A diagram of the network: one box per layer, tensor sizes and parameters on log scales."""
    from archcalc.plot import plot_network

    if out.suffix.lower() not in (".svg", ".png"):
        raise UsageError(f"--out {out}: the file must end in .svg or .png")
    analysis = _load(spec, set_)
    if not analysis.bound:
        raise UsageError("the diagram needs numbers: give every symbol a value with --set or [symbols]")
    plot_network(analysis, _writable(out))
    render.make_console().print(f"wrote {out}")
