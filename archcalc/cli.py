"""The ``archcalc`` command line: parse options, call the package, hand results to render."""

from __future__ import annotations

import glob
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

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

SpecArg = Annotated[Optional[Path], typer.Argument(
    help="Spec file, or the name of a bundled spec (default: speech_cnn).", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option(
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
           explain: ExplainOpt = False, verify: VerifyOpt = False) -> None:
    """Every layer's output shape, derived symbolically with the floor formula."""
    analysis = _load(spec, set_)
    verified = _verified(analysis) if verify else None
    if json_:
        render.print_json(render.analysis_document(analysis))
    else:
        render.print_shapes(analysis, explain, verified)


@app.command()
@reports_errors
def params(spec: SpecArg = None, set_: SetOpt = None, json_: JsonOpt = False,
           explain: ExplainOpt = False, verify: VerifyOpt = False) -> None:
    """Parameters per layer with their formulas, and the totals."""
    analysis = _load(spec, set_)
    verified = _verified(analysis) if verify else None
    if json_:
        render.print_json(render.analysis_document(analysis))
    else:
        render.print_params(analysis, explain, verified)


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
def check(specs: Annotated[Optional[list[str]], typer.Argument(
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
               out: Annotated[Optional[Path], typer.Option(
                   help="Write the .npz here (default: the cache, where bench looks).")] = None,
               workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes.")] = None,
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
def data_info(file: Annotated[Optional[Path], typer.Argument(
                  help=".npz file or folder of .npy files (default: the synthesized default set).",
                  show_default=False)] = None,
              png: Annotated[Optional[Path], typer.Option(help="Also draw log-mel examples per class.")]
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
