"""A sweep file (TOML): a grid over specs, optimizers, training settings and seeds, with the fixed
protocol and the data in the same file; read and validated once, errors naming file and line.

```toml
[grid]                      # every combination of these lists is one grid point
spec = ["speech_cnn", "speech_ffnn"]   # bundled names or paths (relative to this file)
optimizer = ["sgd", "adam"]
lr = [0.01, 0.001]          # any training setting may be swept
seed = [0, 1, 2]            # the repeats of each point
[train]                     # fixed settings
epochs = 2
[data]
path = "small.npz"          # optional; default: the synthesized set (synth_n clips)
```
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from archcalc.errors import UsageError
from archcalc.layers.registry import suggest
from archcalc.spec.settings import MAX_INT

MAX_SWEEP_BYTES = 1_000_000
MAX_RUNS = 100_000
TABLES = ("grid", "train", "data")
DATA_KEYS = ("path", "synth_n")

# every setting a run takes: (kind, lowest value); kind "float" also takes integers
SETTINGS: dict[str, tuple[str, Any]] = {
    "epochs": ("int", 1), "batch_size": ("int", 1), "seed": ("int", 0), "val_every": ("int", 0),
    "micro_batch": ("int", -1), "lr": ("float", 0), "momentum": ("float", 0), "weight_decay": ("float", 0),
    "sgd_lr": ("float", 0), "sgd_momentum": ("float", 0), "sgd_weight_decay": ("float", 0),
    "adam_lr": ("float", 0), "adam_weight_decay": ("float", 0), "amp": ("choice", ("auto", "off", "bf16")),
    "channels_last": ("bool", None),
}
GRID_KEYS = ("spec", "optimizer", *SETTINGS)
OPTIMIZERS = ("sgd", "adam")
GENERIC = {"lr": ("sgd_lr", "adam_lr"), "momentum": ("sgd_momentum",),
           "weight_decay": ("sgd_weight_decay", "adam_weight_decay")}
# settings that act on the runs of one optimizer only
ONLY_FOR = {"momentum": "sgd", "sgd_lr": "sgd", "sgd_momentum": "sgd", "sgd_weight_decay": "sgd",
            "adam_lr": "adam", "adam_weight_decay": "adam"}


@dataclass(frozen=True)
class SweepFile:
    """A validated sweep: the grid (file order, seeds last) and the fixed settings."""

    source: str
    folder: Path
    grid: dict[str, list[Any]]
    train: dict[str, Any]
    data_path: Path | None
    data_written: dict[str, Any]
    synth_n: int | None

    @property
    def swept(self) -> list[str]:
        """The keys of a grid point: every grid key but the seed."""
        return [k for k in self.grid if k != "seed"]

    @property
    def seeds(self) -> list[int]:
        return list(self.grid.get("seed") or [self.train.get("seed", 0)])


@dataclass(frozen=True)
class RunTask:
    """One run, self-contained, so that any process (a --jobs worker, a Ray task) can execute it."""

    id: str
    spec_text: str
    spec_source: str
    spec_name: str
    config: Any  # TrainConfig
    point: dict[str, Any]
    threads: int
    data_digest: str


def read_sweep(path: Path) -> SweepFile:
    """Read and validate a sweep file; UsageError names ``file:line`` and the key."""
    source = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SWEEP_BYTES + 1)
    except FileNotFoundError:
        raise UsageError("no such file", source=source) from None
    except IsADirectoryError:
        raise UsageError("is a directory, not a sweep file", source=source) from None
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror or exc}", source=source) from None
    if len(raw) > MAX_SWEEP_BYTES:
        raise UsageError(f"larger than {MAX_SWEEP_BYTES // 1_000_000} MB: a sweep file is a short TOML text",
                         source=source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"not UTF-8 text (byte {exc.start}): a sweep file is TOML", source=source) from None
    return parse_sweep(text, source, path.parent)


def parse_sweep(text: str, source: str = "<sweep>", folder: Path = Path(".")) -> SweepFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise UsageError(f"invalid TOML: {exc}", source=f"{source}:{line.group(1)}" if line else source) from None
    except RecursionError:
        raise UsageError("values nested too deeply for a sweep file", source=source) from None
    return _Reader(text, source, folder).read(data)


class _Reader:
    def __init__(self, text: str, source: str, folder: Path) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.folder = folder

    def line_of(self, table: str | None, key: str | None = None) -> int | None:
        """The line of ``[table]`` (or of ``key =`` in it)."""
        head = None
        for i, line in enumerate(self.lines):
            if table is not None and re.match(rf"\s*\[\s*{re.escape(table)}\s*\]", line):
                head = i
                break
        if head is None:
            return None
        if key is None:
            return head + 1
        for i in range(head + 1, len(self.lines)):
            if re.match(r"\s*\[", self.lines[i]):
                break
            if re.match(rf"\s*(\"?){re.escape(key)}\1\s*=", self.lines[i]):
                return i + 1
        return head + 1

    def fail(self, message: str, table: str | None = None, key: str | None = None) -> UsageError:
        line = self.line_of(table, key)
        return UsageError(message, source=f"{self.source}:{line}" if line else self.source)

    def read(self, data: dict[str, Any]) -> SweepFile:
        for name, value in data.items():
            if name not in TABLES:
                raise self.fail(f"unknown table [{name}]{suggest(name, list(TABLES))} (tables: grid, train, data)")
            if not isinstance(value, dict):
                raise self.fail(f"[{name}] must be a table, got {shown_literal(value)}")
        grid = self._grid(data.get("grid", {}))
        train = self._train(data.get("train", {}), grid)
        path, synth_n = self._data(data.get("data", {}))
        self._check_combination(grid, train)
        return SweepFile(self.source, self.folder, grid, train, path, dict(data.get("data", {})), synth_n)

    def _grid(self, table: dict[str, Any]) -> dict[str, list[Any]]:
        grid: dict[str, list[Any]] = {}
        for key, values in table.items():
            if key not in GRID_KEYS:
                raise self.fail(f"[grid] has no key {key!r}{suggest(key, list(GRID_KEYS))} (keys: spec, optimizer, "
                                f"seed and the settings {', '.join(k for k in SETTINGS if k != 'seed')})", "grid", key)
            if not isinstance(values, list) or not values:
                raise self.fail(f"[grid] {key} must be a non-empty list of values, got {shown_literal(values)} "
                                "(a fixed value belongs in [train])", "grid", key)
            checked = [self._value("grid", key, v) for v in values]
            seen = [shown_literal(v) for v in checked]
            twice = next((s for i, s in enumerate(seen) if s in seen[:i]), None)
            if twice is not None:
                raise self.fail(f"[grid] {key} lists {twice} twice: each value is one grid point", "grid", key)
            grid[key] = checked
        if "seed" in grid:  # the repeats of every point: innermost
            grid["seed"] = grid.pop("seed")
        return grid

    def _train(self, table: dict[str, Any], grid: dict[str, list[Any]]) -> dict[str, Any]:
        train = {}
        for key, value in table.items():
            if key not in SETTINGS:
                extra = " (spec and optimizer are swept in [grid])" if key in ("spec", "optimizer") else ""
                raise self.fail(f"[train] has no key {key!r}{suggest(key, list(SETTINGS))}{extra} (keys: "
                                f"{', '.join(SETTINGS)})", "train", key)
            if key in grid:
                raise self.fail(f"{key} is both swept in [grid] and fixed in [train]: keep one", "train", key)
            train[key] = self._value("train", key, value)
        return train

    def _value(self, table: str, key: str, value: Any) -> Any:
        where = f"[{table}] {key}"
        if key == "spec":
            if not isinstance(value, str) or not value.strip():
                raise self.fail(f"{where}: a spec is a bundled name or a path, got {shown_literal(value)}", table, key)
            return value
        if key == "optimizer":
            if not isinstance(value, str) or value.lower() not in OPTIMIZERS:
                raise self.fail(f"{where}: {shown_literal(value)} is not an optimizer (use sgd or adam)", table, key)
            return value.lower()
        kind, low = SETTINGS[key]
        if kind == "choice":
            if value not in low:
                raise self.fail(f"{where} must be one of {', '.join(low)}, got {shown_literal(value)}", table, key)
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise self.fail(f"{where} must be true or false, got {shown_literal(value)}", table, key)
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(f"{where} must be an integer, got {shown_literal(value)}", table, key)
            if not low <= value <= MAX_INT:
                raise self.fail(f"{where} must be from {low} to {MAX_INT:,}, got {value}", table, key)
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise self.fail(f"{where} must be a finite number >= 0, got {shown_literal(value)}", table, key)
        return float(value)

    def _data(self, table: dict[str, Any]) -> tuple[Path | None, int | None]:
        for key in table:
            if key not in DATA_KEYS:
                raise self.fail(f"[data] has no key {key!r}{suggest(key, list(DATA_KEYS))} (keys: path, synth_n)",
                                "data", key)
        path, synth_n = table.get("path"), table.get("synth_n")
        if path is not None and (not isinstance(path, str) or not path):
            raise self.fail(f"[data] path must be a file or folder name, got {shown_literal(path)}", "data", "path")
        if synth_n is not None:
            if path is not None:
                raise self.fail("[data] path and synth_n exclude each other: synth_n sizes the synthesized set "
                                "used when there is no path", "data", "synth_n")
            if isinstance(synth_n, bool) or not isinstance(synth_n, int) or not 6 <= synth_n <= 1_000_000:
                raise self.fail(f"[data] synth_n must be an integer from 6 to 1,000,000, got {shown_literal(synth_n)}",
                                "data", "synth_n")
        return (self.folder / path if path is not None else None), synth_n

    def _check_combination(self, grid: dict[str, list[Any]], train: dict[str, Any]) -> None:
        given = list(grid) + list(train)
        for generic, specific in GENERIC.items():
            both = [k for k in specific if k in given]
            if generic in given and both:
                table = "grid" if both[0] in grid else "train"
                raise self.fail(f"{generic} and {both[0]} both set the {both[0].split('_')[0].upper()} "
                                f"{generic.replace('_', ' ')}: keep one", table, both[0])
        optimizers = grid.get("optimizer", list(OPTIMIZERS))
        for key, only in ONLY_FOR.items():
            others = [o for o in optimizers if o != only]
            if key in grid and len(grid[key]) > 1 and others:
                raise self.fail(f"[grid] {key} acts on {only} runs only: with {others[0]} in the grid each "
                                f"{others[0]} run would be trained {len(grid[key])} times alike; sweep {key} "
                                f"with optimizer = [{only!r}]", "grid", key)
        runs = math.prod(len(v) for v in grid.values()) * (1 if "spec" in grid else 2) * \
            (1 if "optimizer" in grid else 2)
        if runs > MAX_RUNS:
            raise self.fail(f"the grid has {runs:,} runs: at most {MAX_RUNS:,}", "grid")


def shown_literal(value: Any) -> str:
    """A value as a message shows it: strings quoted, booleans as TOML writes them, long values cut."""
    text = repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def shown_value(value: Any) -> str:
    """A setting's value in a run id and a table: ``0.001``, ``1e-05``, ``true``, ``bf16``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


# --------------------------------------------------------------------------- the runs of a sweep

@dataclass
class SweepPlan:
    """Every run of the sweep in order (spec, optimizer, then the grid's keys in file order, seeds
    innermost), and the digest of each spec's text by name."""

    sweep: SweepFile
    tasks: list[RunTask]
    spec_digests: dict[str, str] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        """The keys of a grid point, in the order of the run ids."""
        return ["spec", "optimizer"] + [k for k in self.sweep.swept if k not in ("spec", "optimizer")]


def load_specs(sweep: SweepFile, resolve: Callable[[Path], Path]) -> dict[str, tuple[str, Any, str]]:
    """Each grid spec (a path relative to the sweep file, or a bundled name), read:
    as written -> (its [model] name, ModelSpec, text)."""
    from archcalc.spec import load_spec
    from archcalc.spec.reader import BUNDLED

    loaded: dict[str, tuple[str, Any, str]] = {}
    for written in sweep.grid.get("spec", list(BUNDLED)):
        local = sweep.folder / written
        path = resolve(Path(written)) if not local.exists() and written in BUNDLED else local
        spec = load_spec(path)
        if any(name == spec.name for name, _, _ in loaded.values()):
            raise UsageError(f"[grid] spec: two specs are named {spec.name!r}; run ids and tables tell runs "
                             "apart by the [model] name", source=sweep.source)
        loaded[written] = (spec.name, spec, path.read_text(encoding="utf-8"))
    return loaded


def plan_sweep(sweep: SweepFile, specs: dict[str, tuple[str, Any, str]], data: Any, base: Any,
               threads: int) -> SweepPlan:
    """One RunTask per grid point and seed, each with its resolved TrainConfig."""
    from archcalc.bench.protocol import plan_models

    plans = {written: plan_models([spec], data, ["spec"])[0] for written, (_, spec, _) in specs.items()}
    grid = {"spec": list(specs), "optimizer": list(OPTIMIZERS), **sweep.grid}
    grid.pop("seed", None)
    plan = SweepPlan(sweep, [], {name: hashlib.sha256(text.encode()).hexdigest()[:16]
                                 for name, _, text in specs.values()})
    keys = plan.keys
    digest = data.digest()
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values, strict=True))
        written = point["spec"]
        name, _, text = specs[written]
        point["spec"] = name
        settings = {**sweep.train, **{k: v for k, v in point.items() if k not in ("spec", "optimizer")}}
        for seed in sweep.seeds:
            config = run_config(base, plans[written], point["optimizer"], {**settings, "seed": seed})
            rid = "/".join([name, point["optimizer"]] + [f"{k}={shown_value(point[k])}" for k in keys[2:]]
                           + [f"seed={seed}"])
            plan.tasks.append(RunTask(rid, text, plans[written].spec.source, name, config, point, threads, digest))
    return plan


def run_config(base: Any, plan: Any, optimizer: str, settings: dict[str, Any]) -> Any:
    """A run's TrainConfig: the sweep's settings over the spec's [train] over the defaults."""
    from archcalc.bench.protocol import config_for, resolve_amp

    overrides: dict[str, Any] = {}
    for key, value in settings.items():
        if key in GENERIC:
            if key == "momentum" and optimizer != "sgd":
                continue  # Adam has no momentum
            overrides[f"{optimizer}_{key}"] = value
        elif key in ("epochs", "batch_size", "seed") or key in ONLY_FOR or key.endswith("_lr"):
            overrides[key] = value
    config = config_for(base, plan, optimizer, overrides)
    fields = {k: settings[k] for k in ("val_every", "micro_batch", "channels_last") if k in settings}
    return replace(config, amp=resolve_amp(settings.get("amp", "auto"), config.device, plan), **fields)
