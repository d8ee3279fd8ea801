"""results.json on disk: strict JSON out, checked on the way in.

Every reader (``bench --resume``, ``report --bench``) goes through :func:`load_results`, so a
truncated or hand-edited file ends in one line naming the file and what is missing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from archcalc.atomic import write_text
from archcalc.errors import DataError

SCHEMA_VERSION = 1

# what the table, its caption, the curves and --resume read: (key, type) per level
TOP = (("runs", list), ("protocol", dict), ("environment", dict), ("data", dict), ("schema", int))
ENVIRONMENT = ("device", "device_name", "threads", "torch_version")
DATA = ("digest", "sizes")
PROTOCOL = ("epochs", "batch_size", "seed", "amp", "channels_last")
RUN = (("id", str), ("model", str), ("head", str), ("result", dict))
RESULT = (("optimizer", str), ("config", dict), ("params", int), ("test_accuracy", (int, float)),
          ("train_time_s", (int, float)), ("samples_per_s", (int, float)),
          ("time_per_epoch_s", (int, float)), ("curves", dict), ("epochs", list))
CURVES = ("iteration", "train_loss", "train_acc", "val_iteration", "val_loss", "val_acc")

TYPE_NAMES = {int: "an integer", str: "a string", dict: "an object", list: "a list", (int, float): "a number"}


def finite(value: Any) -> Any:
    """The document with every NaN or infinity replaced by None (null): results.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def save_results(path: Path, doc: dict[str, Any]) -> None:
    write_text(path, json.dumps(finite(doc), indent=2, allow_nan=False) + "\n")


def load_results(path: str | Path) -> dict[str, Any]:
    """Read and check a bench's results.json; DataError (exit 2) names the file and what is wrong."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("no such file; run archcalc bench to make one", source=source) from None
    except IsADirectoryError:
        raise DataError("is a folder, not a results file", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot be read ({getattr(exc, 'strerror', None) or exc})", source=source) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}): truncated "
                        "or edited by hand", source=source) from None
    if not isinstance(doc, dict):
        raise DataError(f"holds a JSON {type(doc).__name__.replace('list', 'array')}, not a JSON object "
                        "of bench results (schema, environment, data, protocol, runs)", source=source)
    _need(doc, TOP, "", source)
    if doc["schema"] != SCHEMA_VERSION:
        raise DataError(f"schema {doc['schema']}: this archcalc reads schema {SCHEMA_VERSION}", source=source)
    for section, keys in (("environment", ENVIRONMENT), ("data", DATA), ("protocol", PROTOCOL)):
        _need(doc[section], tuple((k, object) for k in keys), f"{section} ", source)
    for i, run in enumerate(doc["runs"]):
        if not isinstance(run, dict):
            raise DataError(f"runs[{i}] is not an object", source=source)
        where = f"runs[{i}]" + (f" ({run['id']!r})" if isinstance(run.get("id"), str) else "")
        _need(run, RUN, where + " ", source)
        _need(run["result"], RESULT, f"{where} result ", source)
        _need(run["result"]["curves"], tuple((k, list) for k in CURVES), f"{where} result curves ", source)
    return doc


def _need(obj: dict[str, Any], keys: tuple[tuple[str, Any], ...], where: str, source: str) -> None:
    for key, kind in keys:
        if key not in obj:
            raise DataError(f"{where}has no {key!r}" if where
                            else f"no {key!r}: not a complete bench results file", source=source)
        value = obj[key]
        if kind is not object and (not isinstance(value, kind) or isinstance(value, bool)):
            raise DataError(f"{where}{key!r} must be {TYPE_NAMES[kind]}, is {json.dumps(value)[:40]}",
                            source=source)
