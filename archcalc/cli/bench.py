"""The bench command: train and time every model with every optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from archcalc import render
from archcalc.cli.common import (
    JsonOpt,
    app,
    literal,
    load_data_or_default,
    reports_errors,
    resolve_device,
    resolve_spec,
)
from archcalc.errors import UsageError

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
    epochs: Annotated[int | None, typer.Option(
        min=1, help=literal("Epochs (default: the spec's [train] epochs, else 50)."))] = None,
    batch_size: Annotated[int | None, typer.Option(
        min=1, help=literal("Mini-batch size (default: [train] batch_size, else 1024)."))] = None,
    seed: Annotated[str | None, typer.Option(
        help=literal("Seed of the weights and the shuffling (default: [train] seed, else 0); several, "
                     "comma-separated (0,1,2,3,4), run every cell once per seed."))] = None,
    seeds: Annotated[int | None, typer.Option(
        min=1, help="Run every cell with N seeds (--seed, else 0, and the N-1 after it): the table shows "
                    "mean ± standard deviation, 95% intervals and Welch differences.")] = None,
    sgd_lr: Annotated[float | None, typer.Option(
        min=0.0, help=literal("SGD learning rate (default: [train] sgd_lr, else 0.01)."))] = None,
    sgd_momentum: Annotated[float | None, typer.Option(
        min=0.0, help=literal("SGD momentum (default: [train] sgd_momentum, else 0.9)."))] = None,
    sgd_weight_decay: Annotated[float | None, typer.Option(
        min=0.0, help=literal("SGD weight decay (default: [train] sgd_weight_decay, else 1e-5)."))] = None,
    adam_lr: Annotated[float | None, typer.Option(
        min=0.0, help=literal("Adam learning rate (default: [train] adam_lr, else 0.001)."))] = None,
    adam_weight_decay: Annotated[float | None, typer.Option(
        min=0.0, help=literal("Adam weight decay (default: [train] adam_weight_decay, else 0)."))] = None,
    device: Annotated[str, typer.Option(help="auto (cuda when available), cpu or cuda.")] = "auto",
    amp: Annotated[str, typer.Option(
        help="auto (bf16 on a CPU that supports it, except for models with recurrent or attention layers), "
             "bf16 or off.")] = "auto",
    channels_last: Annotated[bool, typer.Option(
        "--channels-last/--no-channels-last", help="NHWC memory layout for conv models.")] = True,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model (timed apart).")]
    = False,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads.")] = None,
    micro_batch: Annotated[int, typer.Option(
        min=-1, help="Accumulate each batch over slices of N samples (-1: auto, on a CPU for models "
                     "without BatchNorm: 32 for conv, 64 for attention models; 0: off). Same gradient, "
                     "cache-sized activations.")] = -1,
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
    import math
    import time

    from archcalc.pytorch.build import import_torch

    import_torch("bench", "")  # torch is needed whatever the device: say so before anything else
    optimizers = [o.lower() for o in (optimizer or ["sgd", "adam"])]
    for name in optimizers:
        if name not in ("sgd", "adam"):
            raise UsageError(f"--optimizer {name!r}: use sgd or adam")
    if amp not in ("auto", "bf16", "off"):
        raise UsageError(f"--amp {amp!r}: use auto, bf16 or off")
    if drop_final_softmax and both_heads:
        raise UsageError("--drop-final-softmax and --both-heads exclude each other")
    for flag, value in (("--sgd-lr", sgd_lr), ("--sgd-momentum", sgd_momentum),
                        ("--sgd-weight-decay", sgd_weight_decay), ("--adam-lr", adam_lr),
                        ("--adam-weight-decay", adam_weight_decay)):
        if value is not None and not math.isfinite(value):
            raise UsageError(f"{flag} {value}: must be a finite number >= 0")
    seed_list = _seed_list(seed, seeds)
    run_device = resolve_device(device)
    out_dir = _out_dir(out, resume)
    from archcalc.bench.lock import folder_lock
    from archcalc.spec import load_spec

    with folder_lock(out_dir):  # one bench per folder: a second one is refused, naming this one's pid
        if resume is None and (out_dir / "results.json").exists():
            raise UsageError(f"--out {out_dir}: holds results.json of an earlier bench; finish it with "
                             f"--resume {out_dir}, or give another folder")
        specs = [load_spec(resolve_spec(p)) for p in (spec or [Path("speech_cnn"), Path("speech_ffnn")])]
        start = time.perf_counter()
        dataset = load_data_or_default(data, 600 if quick and synth_n is None else synth_n or 9000)
        data_s = time.perf_counter() - start
        _run_bench(specs, dataset, data_s, optimizers, run_device, amp, channels_last, compile_, threads,
                   val_every, micro_batch, "logits" if drop_final_softmax else "both" if both_heads else "spec",
                   {"epochs": epochs if epochs is not None else (2 if quick else None), "batch_size": batch_size,
                    "seed": seed_list[0] if seed_list else None, "sgd_lr": sgd_lr, "sgd_momentum": sgd_momentum,
                    "sgd_weight_decay": sgd_weight_decay, "adam_lr": adam_lr,
                    "adam_weight_decay": adam_weight_decay},
                   out_dir, resume is not None, json_, seed_list if seed_list and len(seed_list) > 1 else None)


def _seed_list(seed: str | None, seeds: int | None) -> list[int] | None:
    """``--seed 0,1,2`` or ``--seed S --seeds N`` as a list of seeds; None: the spec's or the default seed."""
    from archcalc.spec.settings import MAX_INT

    if seed is None:
        return list(range(seeds)) if seeds else None
    parts = [p.strip() for p in seed.split(",")]
    if not all(p.isascii() and p.isdigit() and len(p) <= 10 and int(p) <= MAX_INT for p in parts):
        raise UsageError(f"--seed {seed!r}: write a seed from 0 to {MAX_INT:,}, or several separated by "
                         "commas (0,1,2)")
    values = [int(p) for p in parts]
    if len(set(values)) != len(values):
        raise UsageError(f"--seed {seed!r}: a seed is repeated (a repeat would train the same run twice)")
    if seeds is not None:
        if len(values) > 1:
            raise UsageError("--seed with several seeds and --seeds exclude each other: give one of them")
        if values[0] + seeds - 1 > MAX_INT:
            raise UsageError(f"--seeds {seeds}: the seeds would pass {MAX_INT:,}")
        values = list(range(values[0], values[0] + seeds))
    return values


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


def _run_bench(specs: list[Any], dataset: Any, data_s: float, optimizers: list[str], device: str, amp: str,
               channels_last: bool, compile_: bool, threads: int | None, val_every: int, micro_batch: int,
               heads: str,
               overrides: dict[str, Any], out_dir: Path, resume: bool, json_: bool,
               seeds: list[int] | None = None) -> None:
    import json
    from dataclasses import replace

    import torch

    from archcalc.bench import protocol
    from archcalc.bench.train import LAST_BATCH, TrainConfig, bf16_supported
    from archcalc.render.bench import markdown_table, print_comparison, run_progress
    from archcalc.render.console import info_line
    from archcalc.render.plot import plot_curves

    if threads:
        torch.set_num_threads(threads)
    plans = protocol.plan_models(specs, dataset, {"spec": ["spec"], "logits": ["logits"],
                                                  "both": ["spec", "logits"]}[heads])
    if amp == "bf16" and not bf16_supported(device):
        raise UsageError(f"--amp bf16: this {device} does not support bfloat16")
    use_amp = "bf16" if amp == "bf16" or (amp == "auto" and device == "cpu" and bf16_supported(device)) else "off"
    amp_note, kept = "", []
    if use_amp == "bf16" and amp == "auto":
        plans = [replace(p, amp=protocol.resolve_amp(amp, device, p)) for p in plans]
        kept = sorted({p.spec.name for p in plans if p.amp == "off"})
        if kept:
            amp_note = (f"bf16 autocast off for {', '.join(kept)}: recurrent or attention layers, not validated "
                        "in bf16 (--amp bf16 turns it on)")
            info_line(amp_note)
        if all(p.amp == "off" for p in plans):
            use_amp = "off"
        plans = [replace(p, amp=None if p.amp == use_amp else p.amp) for p in plans]
    base = TrainConfig(device=device, amp=use_amp, channels_last=channels_last, compile=compile_,
                       val_every=val_every, micro_batch=micro_batch)
    # the first model's settings describe the protocol; every run resolves its own from `base`
    first = protocol.config_for(base, plans[0], "sgd", overrides) if plans else base
    described = {"epochs": first.epochs, "batch_size": first.batch_size, "seed": first.seed,
                 "seeds": seeds or [first.seed], "amp": use_amp,
                 **({"amp_note": amp_note, "amp_off_for": kept} if amp_note else {}),
                 "channels_last": channels_last, "compile": compile_, "val_every": val_every,
                 "micro_batch": "auto" if micro_batch < 0 else micro_batch,
                 "optimizers": optimizers, "loss": "cross-entropy", "heads": heads, "last_batch": LAST_BATCH,
                 "normalization": "training set global mean and standard deviation"}
    state = protocol.load_state(out_dir, resume, dataset,
                                protocol.new_document(dataset, data_s, device, described))
    protocol.check_finished_runs(plans, optimizers, base, overrides, state, seeds)  # before any output
    warning = protocol.softmax_warning(plans)
    if warning:
        render.warning_line(warning)

    def on_run(run: Any, skipped: bool) -> None:
        if skipped:
            info_line(f"{run.id}: finished earlier, skipped")

    try:
        with run_progress() as progress:
            protocol.run_bench(plans, optimizers, dataset, base, overrides, state, progress, on_run, seeds)
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
                                f"{out_dir / 'curves.png'}", soft_wrap=True, markup=False)


def _write_outputs(state: Any, plot_curves: Any, markdown_table: Any) -> None:
    from archcalc.atomic import write_text

    if not state.doc["runs"]:
        return
    from archcalc.render.bench import several_seeds
    from archcalc.render.plot import plot_curve_bands

    write_text(state.out_dir / "table.md", markdown_table(state.doc))
    (plot_curve_bands if several_seeds(state.doc) else plot_curves)(state.doc, state.out_dir / "curves.png")


