"""The benchmark protocol: every model x every optimizer, trained and timed, results on disk.

``results.json`` is written atomically before the first run (the protocol and an empty run list)
and after every finished run, so an interrupted bench keeps every finished run and ``--resume``
skips them; a resume with other data or other settings is refused, naming what differs.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archcalc import __version__
from archcalc.analysis import Analysis, analyze
from archcalc.bench.results import SCHEMA_VERSION, load_results, save_results
from archcalc.data.arrays import SpeechData
from archcalc.errors import DataError, ShapeError, UsageError
from archcalc.spec import ModelSpec
from archcalc.spec.settings import INT_KEYS, TRAIN_KEYS


@dataclass(frozen=True)
class ModelPlan:
    """A spec ready to train: its input shape bound to the data, its head decided."""

    spec: ModelSpec
    input_shape: tuple[int, ...]
    values: dict[str, int]
    analysis: Analysis
    drop_softmax: bool = False
    amp: str | None = None  # this model's autocast where it differs from the protocol's

    @property
    def sequence_model(self) -> bool:
        """It has recurrent or attention layers (bf16 autocast is not on for them unless asked)."""
        return sequence_layers(self.analysis)

    @property
    def label(self) -> str:
        return self.spec.name + (" (logits)" if self.drop_softmax else "")

    @property
    def ends_in_softmax(self) -> bool:
        return ends_in_softmax(self.analysis)

    @property
    def outputs(self) -> tuple[str, ...] | None:
        """The node to train on: the input of the final Softmax when it is dropped."""
        return (self.analysis.outputs[0].inputs[0],) if self.drop_softmax else None


def sequence_layers(analysis: Analysis) -> bool:
    """The model has recurrent or attention layers."""
    return any(row.kind.family in ("recurrent", "attention") for row in analysis.layers)


def resolve_amp(amp: str, device: str, plan: ModelPlan) -> str:
    """``auto``: bf16 on a CPU that supports it, except for models with recurrent or attention
    layers: bf16 rounding compounds over the time steps of a recurrence and in the softmax of
    attention, and archcalc has not validated those kernels in bf16, so they stay in float32."""
    from archcalc.bench.train import bf16_supported

    if amp == "auto":
        return "bf16" if device == "cpu" and bf16_supported(device) and not plan.sequence_model else "off"
    if amp == "bf16" and not bf16_supported(device):
        raise UsageError(f"amp bf16: this {device} does not support bfloat16")
    return amp


def ends_in_softmax(analysis: Analysis) -> bool:
    """The (single) output node is a Softmax (cross-entropy would apply softmax a second time)."""
    outputs = analysis.outputs
    return len(outputs) == 1 and outputs[0].type == "Softmax"


@dataclass
class BenchRun:
    """One run's identity and its training result."""

    id: str
    model: str
    spec: str
    head: str
    result: dict[str, Any]


@dataclass
class BenchState:
    """What results.json holds; updated and written after every run."""

    out_dir: Path
    doc: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def done_ids(self) -> set[str]:
        return {r["id"] for r in self.doc["runs"]}

    @property
    def path(self) -> Path:
        return self.out_dir / "results.json"

    def save(self) -> None:
        save_results(self.path, self.doc)


def plan_models(specs: list[ModelSpec], data: SpeechData, heads: list[str]) -> list[ModelPlan]:
    """Bind each spec's input to the data's feature shape and check its output against the classes."""
    plans = []
    for spec in specs:
        shape, values = bind_input(spec, data.feature_shape, data.source)
        analysis = analyze(spec, values)
        if len(analysis.outputs) != 1:
            raise ShapeError(f"{spec.name} has {len(analysis.outputs)} outputs; the bench trains a classifier "
                             "with one", source=spec.source)
        out = tuple(analysis.value(s) for s in analysis.output_shape)
        if out != (len(data.classes),):
            raise ShapeError(f"{spec.name} ends with output shape {list(out)}, but the data has "
                             f"{len(data.classes)} classes ({', '.join(data.classes)})", source=spec.source)
        for head in heads:
            drop = head == "logits"
            if drop and not ends_in_softmax(analysis):
                continue  # nothing to drop: one run is enough
            plans.append(ModelPlan(spec, shape, values, analysis, drop))
    return plans


def bind_input(spec: ModelSpec, feature_shape: tuple[int, ...], source: str) -> tuple[tuple[int, ...], dict[str, int]]:
    """Match ``[1, 101, 40]`` (or ``[1, "T", 40]``) to features of shape (101, 40)."""
    shape = list(spec.input_shape)
    if len(shape) == len(feature_shape) + 1 and shape[0] == 1:
        shape = shape[1:]
        lead: tuple[int, ...] = (1,)
    else:
        lead = ()
    if len(shape) != len(feature_shape):
        raise DataError(f"features of shape {list(feature_shape)} do not fit the input "
                        f"{list(spec.input_shape)} of {spec.source}", source=source)
    values: dict[str, int] = {}
    for want, have in zip(shape, feature_shape):
        if isinstance(want, str):
            if values.setdefault(want, have) != have:
                raise DataError(f"symbol {want} would be both {values[want]} and {have}", source=source)
        elif want != have:
            raise DataError(f"features of shape {list(feature_shape)} do not fit the input "
                            f"{list(spec.input_shape)} of {spec.source}", source=source)
    return lead + tuple(feature_shape), values


def train_settings(spec: ModelSpec) -> dict[str, Any]:
    """The spec's ``[train]`` table, validated."""
    from archcalc.layers.registry import suggest

    table = dict(spec.train)
    for key, value in table.items():
        if key not in TRAIN_KEYS:
            raise UsageError(f"[train] has no key {key!r}{suggest(key, list(TRAIN_KEYS))}", source=spec.source)
        kind = int if key in INT_KEYS else float
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise UsageError(f"[train] {key} must be {'an integer' if kind is int else 'a number'}, "
                             f"got {value!r}", source=spec.source)
        if key in ("epochs", "batch_size") and value < 1:
            raise UsageError(f"[train] {key} must be >= 1, got {value}", source=spec.source)
        if kind is float and not (math.isfinite(value) and value >= 0):
            raise UsageError(f"[train] {key} must be a number >= 0, got {value}", source=spec.source)
    return table


def config_for(base: Any, plan: ModelPlan, optimizer: str, overrides: dict[str, Any]) -> Any:
    """The run's TrainConfig: command-line flags over the spec's [train] over the defaults.

    ``overrides`` holds the flags under the ``[train]`` key names (``epochs``, ``sgd_lr``, ...; None:
    not given); ``sgd_*`` and ``adam_*`` settings apply to the runs of that optimizer only.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    for key, value in given.items():
        if key not in TRAIN_KEYS:
            raise UsageError(f"unknown bench setting {key!r}")
        if key not in INT_KEYS and not (math.isfinite(value) and value >= 0):
            raise UsageError(f"--{key.replace('_', '-')} {value}: must be a number >= 0")
    merged = {**train_settings(plan.spec), **given}
    settings: dict[str, Any] = {k: merged[k] for k in INT_KEYS if k in merged}
    for name in ("lr", "momentum", "weight_decay"):
        key = f"{optimizer}_{name}"
        if key in merged:
            settings[name] = float(merged[key])
    if plan.amp is not None:
        settings["amp"] = plan.amp
    return replace(base, optimizer=optimizer, **settings)


def environment(device: str) -> dict[str, Any]:
    import torch

    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(0)
    else:
        name = _cpu_name()
    return {"device": device, "device_name": name, "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "archcalc_version": __version__}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def new_document(data: SpeechData, data_time_s: float, device: str, protocol: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": False,
        "environment": environment(device),
        "data": {"source": data.source, "digest": data.digest(), "classes": list(data.classes),
                 "sizes": data.sizes(), "feature_shape": list(data.feature_shape),
                 "preparation_time_s": data_time_s, **({"meta": data.meta} if data.meta else {})},
        "protocol": protocol,
        "runs": [],
    }


def load_state(out_dir: Path, resume: bool, data: SpeechData, doc: dict[str, Any]) -> BenchState:
    """A fresh state, or the one in ``out_dir/results.json`` when resuming (same data and protocol)."""
    path = out_dir / "results.json"
    if resume and path.exists():
        old = load_results(path)
        if old["data"].get("digest") != data.digest():
            raise DataError(f"cannot resume: those runs used other data (digest "
                            f"{old['data'].get('digest')}, now {data.digest()})", source=str(path))
        check_same_protocol(old, doc, str(path))
        old["complete"] = False
        return BenchState(out_dir, old)
    return BenchState(out_dir, doc)


def check_same_protocol(old: dict[str, Any], new: dict[str, Any], source: str) -> None:
    """Refuse to add runs under other settings: the first setting that differs is named."""
    pairs = [("device", old["environment"].get("device"), new["environment"]["device"])]
    # a key the older file does not record (added since) cannot be compared
    pairs += [(key, value, new["protocol"].get(key)) for key, value in old["protocol"].items()
              if key in new["protocol"]]
    if "amp_off_for" not in old["protocol"] or "amp_off_for" not in new["protocol"]:  # none: every model alike
        pairs.append(("amp_off_for", old["protocol"].get("amp_off_for", []), new["protocol"].get("amp_off_for", [])))
    if "seeds" in new["protocol"] and "seeds" not in old["protocol"]:  # written before several seeds
        pairs.append(("seeds", [old["protocol"].get("seed")], new["protocol"]["seeds"]))
    pairs.sort(key=lambda pair: pair[0] != "seeds")  # the list of seeds says more than its first one
    for key, was, now in pairs:
        if was != now:
            raise UsageError(f"cannot resume: those runs used {key} {_show(was)}, this bench {_show(now)}; "
                             "resume with the same settings, or give a new --out folder", source=source)


def check_finished_runs(plans: list[ModelPlan], optimizers: list[str], base: Any, overrides: dict[str, Any],
                        state: BenchState, seeds: list[int] | None = None) -> None:
    """A finished run must have been trained with the settings it would get now (spec [train] included)."""
    done = {run["id"]: run["result"]["config"] for run in state.doc["runs"]}
    for plan in plans:
        for optimizer in optimizers:
            for seed in _each_seed(seeds):
                rid = run_id(plan, optimizer, seed)
                recorded = done.get(rid)
                if recorded is None:
                    continue
                now = config_for(base, plan, optimizer, with_seed(overrides, seed))
                check_recorded_config(rid, optimizer, recorded, now, str(state.path))


def check_recorded_config(rid: str, optimizer: str, recorded: dict[str, Any], now: Any, source: str) -> None:
    """The first setting in which a finished run's recorded config differs from ``now`` is an error."""
    for key in ("epochs", "batch_size", "seed", "amp"):
        if key in recorded and recorded[key] != getattr(now, key):
            raise UsageError(f"cannot resume: {rid} ran with {key} {recorded[key]}, "
                             f"this bench {getattr(now, key)}", source=source)
    for key, value in (("lr", now.resolved_lr), ("weight_decay", now.resolved_weight_decay),
                       ("momentum", now.momentum if optimizer == "sgd" else None)):
        if key in recorded and recorded[key] != value:
            raise UsageError(f"cannot resume: {rid} ran with {optimizer} {key} "
                             f"{_show(recorded[key])}, this bench {_show(value)}", source=source)


def _each_seed(seeds: list[int] | None) -> list[int | None]:
    """The seeds of a several-seed bench, or one None: each cell's own seed."""
    return list(seeds) if seeds else [None]


def with_seed(overrides: dict[str, Any], seed: int | None) -> dict[str, Any]:
    return overrides if seed is None else {**overrides, "seed": seed}


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def run_id(plan: ModelPlan, optimizer: str, seed: int | None = None) -> str:
    """``speech_cnn/sgd`` (``/logits`` for a dropped Softmax); ``/seed=N`` when a bench runs several seeds."""
    return (f"{plan.spec.name}/{optimizer}" + ("/logits" if plan.drop_softmax else "")
            + (f"/seed={seed}" if seed is not None else ""))


RunProgress = Callable[[str], Callable[[dict[str, Any]], None]]


def run_bench(plans: list[ModelPlan], optimizers: list[str], data: SpeechData, base: Any,
              overrides: dict[str, Any], state: BenchState,
              progress: RunProgress | None = None,
              on_run: Callable[[BenchRun, bool], None] | None = None,
              seeds: list[int] | None = None) -> BenchState:
    """Train every plan with every optimizer (and every seed of ``seeds``), saving results.json after each run.

    Without ``seeds`` each cell runs once with its resolved seed, under the id ``model/optimizer``;
    with them each cell runs once per seed, under ``model/optimizer/seed=N``.
    """
    import torch

    from archcalc.bench.runs import run_record, train_plan
    from archcalc.bench.train import to_device

    check_finished_runs(plans, optimizers, base, overrides, state, seeds)
    state.save()  # the protocol and the runs so far, before any training: an interrupt keeps a valid file
    device_data = {}
    for plan in plans:
        for optimizer in optimizers:
            for seed in _each_seed(seeds):
                rid = run_id(plan, optimizer, seed)
                if rid in state.done_ids:
                    if on_run:
                        on_run(BenchRun(rid, plan.label, plan.spec.source, "", {}), True)
                    continue
                config = config_for(base, plan, optimizer, with_seed(overrides, seed))
                key = (plan.input_shape, config.channels_last)
                if key not in device_data:
                    device_data[key] = to_device(data, plan.input_shape, config.device, config.channels_last)
                result, digest, load = train_plan(plan, config, device_data[key], progress(rid) if progress else None)
                record = run_record(rid, plan, result, digest, load, torch.get_num_threads())
                state.doc["normalization"] = {"mean": device_data[key].mean, "std": device_data[key].std}
                state.doc["runs"].append(record)
                state.save()
                if on_run:
                    on_run(BenchRun(rid, record["model"], record["spec"], record["head"], record["result"]), False)
    state.doc["complete"] = True
    state.save()
    return state


def softmax_warning(plans: list[ModelPlan]) -> str | None:
    names = sorted({p.spec.name for p in plans if p.ends_in_softmax and not p.drop_softmax})
    if not names:
        return None
    return (f"{', '.join(names)} end{'s' if len(names) == 1 else ''} in Softmax and "
            "cross-entropy applies softmax again, so the model trains through two softmaxes (as the "
            "course report did). Drop the final Softmax to train on logits: --drop-final-softmax, or "
            "--both-heads to compare.")


def fmt_hms(seconds: float) -> str:
    """``h:mm:ss.ffffff``, the course report's format (6 h 10 min -> 6:10:00.000000)."""
    whole = int(seconds)
    micro = round((seconds - whole) * 1_000_000)
    if micro == 1_000_000:
        whole, micro = whole + 1, 0
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{micro:06d}"

