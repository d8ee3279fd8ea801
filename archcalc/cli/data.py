"""The data command group: synth, prepare, info."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from archcalc import render
from archcalc.cli.common import (
    ArchcalcGroup,
    JsonOpt,
    app,
    load_data_or_default,
    reports_errors,
    resolve_device,
    writable_path,
)
from archcalc.errors import UsageError

# --------------------------------------------------------------------------- data

data_app = typer.Typer(help="Speech data: synthesize, prepare from WAV folders, inspect.",
                       no_args_is_help=True, cls=ArchcalcGroup)
app.add_typer(data_app, name="data")


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

    target = writable_path(out) if out else cached_path(n, seed)
    start = time.perf_counter()
    with progress_reporter(f"synthesizing {n:,} clips") as progress:
        data = synthesize(n, seed, workers, progress)
    save_npz(data, target)
    render.make_console().print(f"wrote {target} in {time.perf_counter() - start:.1f} s", markup=False)
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
    from archcalc.data.wav import check_words, prepare
    from archcalc.render.console import progress_reporter
    from archcalc.render.data import print_prepare_report

    word_list = [w.strip() for w in words.split(",") if w.strip()]
    if len(word_list) < 2:
        raise UsageError(f"--words {words!r}: give at least two words, e.g. --words yes,no,up")
    check_words(word_list)  # before anything is created: a word must not lead out of the folder
    writable_path(out)
    with progress_reporter("reading WAV files") as progress:
        data, report = prepare(directory, word_list, seed, resolve_device(device), progress)
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
    from archcalc.render.data import data_document, home_relative, print_data_info

    if png is not None:
        writable_path(png, "--png")
    data = load_data_or_default(file)
    if png is not None:
        from archcalc.render.plot import plot_examples

        plot_examples(data, png)
    if json_:
        render.print_json(data_document(data))
    else:
        # the default set is named as the README names its folder (~/.cache/archcalc); a path given
        # on the command line is shown as it was typed
        print_data_info(data, home_relative(data.source) if file is None else None)
        if png is not None:
            render.make_console().print(f"wrote {png}", markup=False)


