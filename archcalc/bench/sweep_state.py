"""A sweep's results.json: its protocol (the grid, the fixed settings, the specs) and the checks of a
--resume against it."""

from __future__ import annotations

from typing import Any

from archcalc.bench.sweep import OPTIMIZERS, SweepPlan, shown_literal
from archcalc.errors import UsageError


def described_protocol(plan: SweepPlan) -> dict[str, Any]:
    """The protocol block of results.json: each setting's value, or its list when swept."""
    from archcalc.bench.train import LAST_BATCH

    first = plan.tasks[0].config if plan.tasks else None

    def setting(key: str, attribute: str | None = None) -> Any:
        if key in plan.sweep.grid:
            return list(plan.sweep.grid[key])
        return getattr(first, attribute or key) if first is not None else plan.sweep.train.get(key)

    return {"epochs": setting("epochs"), "batch_size": setting("batch_size"), "seed": plan.sweep.seeds[0],
            "seeds": plan.sweep.seeds, "amp": setting("amp"), "channels_last": setting("channels_last"),
            "compile": False, "val_every": setting("val_every"), "micro_batch": setting("micro_batch"),
            "optimizers": list(plan.sweep.grid.get("optimizer", OPTIMIZERS)), "loss": "cross-entropy",
            "heads": "spec", "last_batch": LAST_BATCH,
            "normalization": "training set global mean and standard deviation",
            "grid": {k: list(v) for k, v in plan.sweep.grid.items()}, "train": dict(plan.sweep.train),
            "data_file": dict(plan.sweep.data_written), "specs": dict(plan.spec_digests)}


def check_resume(old: dict[str, Any], new: dict[str, Any], plan: SweepPlan, source: str) -> None:
    """Refuse to resume a sweep with another grid, other fixed settings, other specs or other data,
    naming the first difference; then every finished run must have the settings it would get now."""
    from archcalc.bench.protocol import check_recorded_config, check_same_protocol

    if old["data"].get("digest") != new["data"]["digest"]:
        raise UsageError(f"cannot resume: those runs used other data (digest {old['data'].get('digest')}, "
                         f"now {new['data']['digest']})", source=source)
    was, now = old["protocol"], new["protocol"]
    if "grid" not in was:
        raise UsageError("cannot resume: those are a bench's results, not a sweep's", source=source)
    for table in ("grid", "train"):
        for key in list(dict.fromkeys([*was.get(table, {}), *now[table]])):
            a, b = was.get(table, {}).get(key), now[table].get(key)
            if a != b:
                raise UsageError(f"cannot resume: [{table}] {key} was {_listed(a)} there, is {_listed(b)} in "
                                 f"{plan.sweep.source}; resume with the same sweep file, or give a new --out "
                                 "folder", source=source)
    for name, digest in now["specs"].items():
        if was.get("specs", {}).get(name, digest) != digest:
            raise UsageError(f"cannot resume: the spec {name!r} changed since those runs (digest "
                             f"{was['specs'][name]}, now {digest})", source=source)
    check_same_protocol(old, new, source)
    configs = {task.id: task.config for task in plan.tasks}
    for run in old["runs"]:
        if run["id"] not in configs:
            raise UsageError(f"cannot resume: {run['id']} is not a run of this sweep", source=source)
        check_recorded_config(run["id"], run["result"]["optimizer"], run["result"]["config"], configs[run["id"]],
                              source)


def _listed(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, list):
        return "[" + ", ".join(shown_literal(v) for v in value) + "]"
    return shown_literal(value)
