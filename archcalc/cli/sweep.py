"""The sweep command: a grid of specs, optimizers, settings and seeds, here, in worker processes or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperOption

from archcalc import render
from archcalc.cli.common import JsonOpt, app, literal, reports_errors, resolve_device
from archcalc.errors import ArchcalcError, UsageError


def ray_address_shorthand(args: list[str], takes_value: set[str]) -> list[str]:
    """``--ray ADDRESS`` and ``--ray=ADDRESS`` as ``--ray-address ADDRESS``; ``--ray`` alone stays a flag.

    ``sweep`` has exactly one positional argument, the sweep file, so the word after ``--ray`` is an
    address exactly when another positional word is left for the file: ``--ray head:6379 grid.toml``
    and ``grid.toml --ray head:6379`` name an address, ``--ray grid.toml`` does not."""
    def positionals(words: list[str]) -> int:
        count, skip = 0, False
        for i, word in enumerate(words):
            if skip:
                skip = False
            elif word == "--":
                return count + len(words) - i - 1
            elif word.startswith("-") and word != "-":
                skip = word in takes_value
            else:
                count += 1
        return count

    out: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            return out + args[i:]
        if word.startswith("--ray="):
            out += ["--ray-address", word.split("=", 1)[1]]
        elif word == "--ray" and i + 1 < len(args) and not args[i + 1].startswith("-") \
                and positionals(out) + positionals(args[i + 2:]) >= 1:
            out += ["--ray-address", args[i + 1]]
            i += 1
        else:
            out.append(word)
            if word in takes_value and i + 1 < len(args):
                out.append(args[i + 1])
                i += 1
        i += 1
    return out


class SweepCommand(TyperCommand):
    """The sweep command, reading ``--ray [ADDRESS]``: an option whose value may be left out."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        takes_value = {opt for param in self.params if isinstance(param, TyperOption) and not param.is_flag
                       for opt in param.opts}
        return super().parse_args(ctx, ray_address_shorthand(list(args), takes_value))


@app.command(cls=SweepCommand)
@reports_errors
def sweep(
    file: Annotated[Path, typer.Argument(help=literal("The sweep file (TOML): [grid], [train] and [data]."),
                                         show_default=False)],
    jobs: Annotated[int, typer.Option(
        min=1, help="Runs at once on this machine, each in its own worker process with the cores split "
                    "between them (max(1, cores // N) torch threads).")] = 1,
    ray: Annotated[bool, typer.Option(
        "--ray", help="Run every run as a Ray task: on a local Ray cluster started for the sweep (this "
                      "machine's cores, bound to this machine, no dashboard, token authentication on), or, "
                      "as --ray ADDRESS, on a running cluster.")] = False,
    ray_address: Annotated[str | None, typer.Option(
        help="The head of a running Ray cluster (host:port, or auto), the same as --ray ADDRESS.")] = None,
    threads: Annotated[int | None, typer.Option(
        min=1, help="Torch threads per run (default: cores // --jobs; 1 per Ray task, its CPU request). "
                    "Runs are bit-identical across executors at the same thread count.")] = None,
    device: Annotated[str, typer.Option(help="auto (cuda when available), cpu or cuda.")] = "auto",
    out: Annotated[Path | None, typer.Option(help="Results folder (default runs/sweep-<timestamp>).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Finish an interrupted sweep in this folder.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Train a grid of specs, optimizers, training settings and seeds: mean accuracy with 95% intervals per point."""
    import datetime

    from archcalc.bench.executors import default_threads, import_ray
    from archcalc.bench.lock import folder_lock
    from archcalc.bench.sweep import read_sweep
    from archcalc.cli.bench import _out_dir
    from archcalc.pytorch.build import import_torch

    import_torch("sweep", "")
    if ray_address is not None and not ray_address.strip():
        raise UsageError("--ray-address: empty; give host:port or auto, or --ray alone for a local cluster")
    ray = ray or ray_address is not None
    if ray and jobs != 1:
        raise UsageError("--jobs and --ray exclude each other: a Ray cluster runs as many runs at once as its "
                         "CPUs allow, each asking for --threads of them")
    if ray:
        import_ray(local=ray_address is None)  # say what to install before any work
    run_device = resolve_device(device)
    sweep_file = read_sweep(file)
    out_dir = _out_dir(out or (None if resume else
                               Path("runs") / f"sweep-{datetime.datetime.now():%Y%m%d-%H%M%S}"), resume)
    threads = threads or (1 if ray else default_threads(jobs))
    with folder_lock(out_dir):
        if resume is None and (out_dir / "results.json").exists():
            raise UsageError(f"--out {out_dir}: holds results.json of an earlier run; finish it with "
                             f"--resume {out_dir}, or give another folder")
        state, plan, data, location = _prepare(sweep_file, run_device, threads, out_dir, resume is not None)
        executor = {"executor": "ray" if ray else "jobs" if jobs > 1 else "here", "jobs": jobs, "threads": threads}
        _execute(state, plan, data, location, executor, ray_address, json_)


def _prepare(sweep_file: Any, device: str, threads: int, out_dir: Path, resume: bool) -> tuple[Any, Any, Any, str]:
    """Data, specs and runs planned; results.json written (or checked, when resuming) before any run."""
    import time

    from archcalc.bench import protocol
    from archcalc.bench.results import load_results
    from archcalc.bench.sweep import load_specs, plan_sweep
    from archcalc.bench.sweep_state import check_resume, described_protocol
    from archcalc.bench.train import TrainConfig
    from archcalc.cli.common import resolve_spec

    start = time.perf_counter()
    data, location = _load_data(sweep_file)
    data_s = time.perf_counter() - start
    plan = plan_sweep(sweep_file, load_specs(sweep_file, resolve_spec), data, TrainConfig(device=device), threads)
    doc = protocol.new_document(data, data_s, device, described_protocol(plan))
    if resume:
        path = out_dir / "results.json"
        old = load_results(path)
        check_resume(old, doc, plan, str(path))
        old["complete"] = False
        doc = old
    train = data.X["train"]
    doc["normalization"] = {"mean": float(train.mean(dtype="float64")), "std": float(train.std(dtype="float64"))}
    doc.setdefault("sweep", {"file": sweep_file.source, "sessions": []})
    state = protocol.BenchState(out_dir, doc)
    state.save()
    return state, plan, data, location


def _load_data(sweep_file: Any) -> tuple[Any, str]:
    """The data set and where a worker process reads it: the [data] path, or the cached synthesized set."""
    from archcalc.cli.common import load_data_or_default
    from archcalc.data.synth import DEFAULT_N, DEFAULT_SEED, cached_path

    if sweep_file.data_path is not None:
        return load_data_or_default(sweep_file.data_path), str(sweep_file.data_path)
    n = sweep_file.synth_n or DEFAULT_N
    return load_data_or_default(None, n), str(cached_path(n, DEFAULT_SEED))


def _execute(state: Any, plan: Any, data: Any, location: str, executor: dict[str, Any], address: str | None,
             json_: bool) -> None:
    import os
    import time
    from datetime import UTC, datetime

    from archcalc.bench import executors
    from archcalc.render.bench import run_progress
    from archcalc.render.console import info_line

    todo = [t for t in plan.tasks if t.id not in state.done_ids]
    if len(todo) < len(plan.tasks):
        info_line(f"{len(plan.tasks) - len(todo)} of {len(plan.tasks)} runs finished earlier, skipped")
    session = {**executor, "started": datetime.now(UTC).isoformat(timespec="seconds"), "runs": 0,
               "wall_time_s": 0.0, "runs_per_hour": None, "cpu_count": os.cpu_count()}
    state.doc["sweep"]["sessions"].append(session)
    start = time.perf_counter()

    def on_done(record: dict[str, Any]) -> None:
        state.doc["runs"].append(record)
        session["runs"] += 1
        _clock(session, start)
        state.save()
        if executor["executor"] != "here":
            info_line(_finished_line(record, session["runs"], len(todo)))

    try:
        if executor["executor"] == "ray":
            gpus = 1.0 if plan.tasks and plan.tasks[0].config.device.startswith("cuda") else 0.0
            session["cluster"] = executors.run_ray(todo, data, executor["threads"], gpus, on_done, address)
        elif executor["executor"] == "jobs":
            executors.run_pool(todo, location, data.digest(), executor["jobs"], on_done)
        else:
            with run_progress() as progress:
                executors.run_here(todo, data, on_done, progress)
    except KeyboardInterrupt:
        _finish(state, plan, session, start)
        render.error_line(f"interrupted: {len(state.doc['runs'])} finished run(s) kept in "
                          f"{state.path}; finish with --resume {state.out_dir}")
        raise typer.Exit(130) from None
    except ArchcalcError:
        _finish(state, plan, session, start)
        raise
    _finish(state, plan, session, start)
    if json_:
        render.print_json(state.doc)
        return
    from archcalc.render.sweep import print_sweep

    print_sweep(state.doc)
    render.make_console().print(f"wrote {state.path}, {state.out_dir / 'table.md'}, "
                                f"{state.out_dir / 'accuracy.png'}", soft_wrap=True, markup=False)


def _clock(session: dict[str, Any], start: float) -> None:
    import time

    session["wall_time_s"] = time.perf_counter() - start
    session["runs_per_hour"] = session["runs"] * 3600 / session["wall_time_s"] if session["runs"] else None


def _finished_line(record: dict[str, Any], count: int, total: int) -> str:
    from archcalc.bench.protocol import fmt_hms

    result = record["result"]
    where = record.get("worker") or {}
    return (f"[{count}/{total}] {record['id']}: test accuracy {100 * result['test_accuracy']:.2f}%, training "
            f"{fmt_hms(result['train_time_s'])[:-4]} ({where.get('host', '?')}, pid {where.get('pid', '?')})")


def _finish(state: Any, plan: Any, session: dict[str, Any], start: float) -> None:
    """Runs in grid order, the session's clock stopped, results.json saved, table and figure written."""
    from archcalc.atomic import write_text
    from archcalc.render.sweep import markdown_table, plot_accuracy

    _clock(session, start)
    order = {task.id: i for i, task in enumerate(plan.tasks)}
    state.doc["runs"].sort(key=lambda run: order.get(run["id"], len(order)))
    state.doc["complete"] = all(task.id in state.done_ids for task in plan.tasks)
    state.save()
    if state.doc["runs"]:
        write_text(state.out_dir / "table.md", markdown_table(state.doc))
        plot_accuracy(state.doc, state.out_dir / "accuracy.png")
