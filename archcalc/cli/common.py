"""What every command shares: the app, common options, error reporting, spec and device helpers."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from archcalc import __version__, render
from archcalc.errors import ArchcalcError, TorchMissingError, UsageError

try:  # recent typer carries its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on click
    from click import exceptions as click_exceptions  # type: ignore[no-redef, unused-ignore]

if TYPE_CHECKING:
    from archcalc.analysis import Analysis


def literal(text: str) -> str:
    """Help text shown as written: typer renders help as rich markup, where ``[train]`` would vanish."""
    import typer.core

    if not getattr(typer.core, "HAS_RICH", True):
        return text
    from rich.markup import escape

    return escape(text)


def usage_message(exc: Any, command: str | None = None) -> str:
    """A click usage error (bad or unknown flag, missing argument) as one line in archcalc's style."""
    possible = sorted(getattr(exc, "possibilities", None) or [])
    message = exc.message if possible else exc.format_message()  # click's "(Possible options: ...)"
    message = re.sub(r"\. Did you mean (.+)\?$", r" (did you mean \1?)", " ".join(message.split())).rstrip(".")
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    if possible:
        message += f" (did you mean {' or '.join(possible)}?)"
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else command
    return f"{command}: {message}; see {command} --help" if command else message


def one_line_usage_error(exc: Exception, command: str | None) -> NoReturn:
    """Report a click usage error as ``error: ...`` and exit 2; no arguments still shows the help."""
    if isinstance(exc, getattr(click_exceptions, "NoArgsIsHelpError", ())):
        raise exc
    render.error_line(usage_message(exc, command))
    raise typer.Exit(getattr(exc, "exit_code", 2)) from None


class ArchcalcGroup(TyperGroup):
    """A group whose commands report every usage error (bad or unknown flag) in one line."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click_exceptions.UsageError as exc:
            one_line_usage_error(exc, " ".join(filter(None, (parent.command_path if parent else None,
                                                             info_name))))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except click_exceptions.UsageError as exc:
            # the subcommand is resolved (and named in ctx) before its own flags are parsed
            sub = ctx.invoked_subcommand
            one_line_usage_error(exc, f"{ctx.command_path} {sub}" if sub else ctx.command_path)


app = typer.Typer(
    name="archcalc",
    cls=ArchcalcGroup,
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
DepthOpt = Annotated[int | None, typer.Option(
    "--depth", min=1, help="Fold the module tree to this depth (as torchinfo's depth): 1 shows the top level, "
                           "each block use one row with its output and its parameters.")]
ExplainOpt = Annotated[bool, typer.Option("--explain", help="Show the derivation step by step.")]
VerifyOpt = Annotated[bool, typer.Option(
    "--verify", help="Build the model in torch and confirm every row with torchinfo.")]


# optional packages and the extra that installs each
EXTRAS = {"torch": "torch", "torchinfo": "torch", "numpy": "data", "scipy": "data", "matplotlib": "data",
          "espeakng_loader": "data"}


# the flag that carries each input an archcalc error can name (UsageError.option, .fix)
FLAGS = {"target": "--target", "symbol": "--for", "max_macs": "--max-macs", "near": "--near", "values": "--set",
         "model": "TARGET", "kwarg": "--kwarg", "symbol_axis": "--symbol", "input_shape": "--input-shape"}


def cli_message(exc: ArchcalcError) -> str:
    """An archcalc error as the CLI says it: the input at fault named by its flag."""
    return exc.phrased(FLAGS) if isinstance(exc, UsageError) else str(exc)


def reports_errors(func: F) -> F:
    """Turn archcalc's own errors, and a missing optional package, into one line and an exit code."""
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ArchcalcError as exc:
            render.error_line(cli_message(exc))
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
    """``["T=200", ...]`` from ``--set`` into a dict; bad text (not ASCII digits, or too long) is a UsageError."""
    from archcalc.analysis.solve import shown, whole_number

    values: dict[str, int] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name:
            raise UsageError("write NAME=INTEGER, e.g. --set T=200", option="values", subject=shown(item))
        value = whole_number(text, "values", shown(item))
        if value is None or value < 1:
            raise UsageError(f"the value must be a positive integer, got {shown(text)}", option="values",
                             subject=shown(item))
        values[name] = value
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
        raise UsageError(exc.message, source=exc.source, option="values") from None


def verified_marks(analysis: Any) -> dict[str, str]:
    """The ``--verify`` column: torch (and torchinfo) confirm every row."""
    from archcalc.pytorch.build import import_torch
    from archcalc.pytorch.crosscheck import crosscheck

    import_torch("torch", " (or leave out --verify)")
    try:
        import torchinfo  # noqa: F401
    except ImportError as exc:
        raise TorchMissingError(f"torchinfo cannot be imported ({exc}); install it with "
                                "pip install 'archcalc[torch]' (or leave out --verify)") from None

    report = crosscheck(analysis)
    report.raise_if_failed()
    return report.row_marks()


def writable_path(path: Path, flag: str = "--out") -> Path:
    """Refuse an output path that cannot be written, before any work is done: a folder in the
    way, a file where a folder should be, a folder that cannot be created or written (``/proc``).
    Writing is tried for real (a probe file, removed at once): permissions alone do not tell."""
    import os
    import tempfile

    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; give a file name in it")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UsageError(f"{flag} {path}: {existing} is a file, not a folder")
    if not folder.exists():
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise UsageError(f"{flag} {path}: cannot create the folder {folder} ({exc.strerror})") from None
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".archcalc-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write in the folder {folder} ({exc.strerror})") from None
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
