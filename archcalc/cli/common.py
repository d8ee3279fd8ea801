"""What every command shares: the app, common options, error reporting, spec and device helpers."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from archcalc import __version__, render
from archcalc.errors import ArchcalcError, UsageError

if TYPE_CHECKING:
    from archcalc.analysis import Analysis

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


# optional packages and the extra that installs each
EXTRAS = {"torch": "torch", "torchinfo": "torch", "numpy": "data", "scipy": "data", "matplotlib": "data",
          "espeakng_loader": "data"}


def reports_errors(func: F) -> F:
    """Turn archcalc's own errors, and a missing optional package, into one line and an exit code."""
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ArchcalcError as exc:
            render.error_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except ModuleNotFoundError as exc:
            package = (exc.name or "").split(".")[0]
            if package not in EXTRAS:
                raise
            render.error_line(f"this command needs {package}, which is not installed: "
                              f"pip install 'archcalc[{EXTRAS[package]}]'")
            raise typer.Exit(2) from None
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


def parse_assignments(items: list[str] | None) -> dict[str, int]:
    """``["T=200", ...]`` from ``--set`` into a dict; bad text is a UsageError."""
    values: dict[str, int] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise UsageError(f"--set {item!r}: write NAME=INTEGER, e.g. --set T=200")
        if not (text.isdigit() and int(text) >= 1):
            raise UsageError(f"--set {item!r}: the value must be a positive integer, got {text!r}")
        values[name] = int(text)
    return values


def load_analysis(path: Path | None, overrides: list[str] | None) -> Analysis:
    """Read the spec (or a bundled one) and analyze it at the ``--set`` values."""
    from archcalc.analysis import analyze
    from archcalc.spec import load_spec

    values = parse_assignments(overrides)
    spec = load_spec(resolve_spec(path))
    try:
        return analyze(spec, values)
    except UsageError as exc:
        raise UsageError(f"--set: {exc.message}") from None


def verified_marks(analysis: Any) -> dict[str, str]:
    from archcalc.pytorch.crosscheck import crosscheck

    report = crosscheck(analysis)
    report.raise_if_failed()
    return report.row_marks()



def writable_path(path: Path) -> Path:
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


def resolve_device(name: str) -> str:
    """``auto`` -> cuda when available; ``cuda`` without CUDA is a usage error."""
    if name not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device {name!r}: use auto, cpu or cuda")
    if name == "cpu":
        return name
    from archcalc.pytorch.build import import_torch

    torch = import_torch("bench", "")
    if torch.cuda.is_available():
        return "cuda"
    if name == "cuda":
        raise UsageError("--device cuda: CUDA is not available here (torch "
                         f"{torch.__version__}, built {'with' if torch.version.cuda else 'without'} CUDA)")
    return "cpu"


def load_data_or_default(path: Path | None, synth_n: int | None = None) -> Any:
    """A data file or folder, else the synthesized default set (made once, with a progress bar)."""
    from archcalc.data.arrays import load_data

    if path is not None:
        return load_data(path)
    from archcalc.data.synth import DEFAULT_N, DEFAULT_SEED, default_data
    from archcalc.render.console import info_line, progress_reporter

    n = synth_n or DEFAULT_N
    with progress_reporter(f"synthesizing {n:,} clips (once; then cached)") as progress:
        data, made = default_data(n=n, seed=DEFAULT_SEED, progress=progress)
    if made:
        info_line(f"made the synthesized data set: {data.source}")
    return data
