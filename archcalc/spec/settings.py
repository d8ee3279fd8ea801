"""The ``[train]`` and ``[lint]`` tables of a spec, validated when the spec is read."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from archcalc.errors import SpecError
from archcalc.layers.registry import suggest

TRAIN_KEYS = ("epochs", "batch_size", "seed", "sgd_lr", "sgd_momentum", "sgd_weight_decay", "adam_lr",
              "adam_weight_decay")
INT_KEYS = ("epochs", "batch_size", "seed")
MAX_INT = 10**9  # epochs, batch sizes and seeds beyond this are typing mistakes


def check_train(table: Mapping[str, Any], fail: Callable[[str, str], SpecError]) -> None:
    """Every key known, integers integers, rates finite and >= 0; ``fail(message, key)`` raises."""
    for key, value in table.items():
        if key not in TRAIN_KEYS:
            raise fail(f"[train] has no key {key!r}{suggest(key, list(TRAIN_KEYS))} (keys: {', '.join(TRAIN_KEYS)})",
                       key)
        if key in INT_KEYS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise fail(f"[train] {key} must be an integer, got {value!r}", key)
            low = 0 if key == "seed" else 1
            if not low <= value <= MAX_INT:
                raise fail(f"[train] {key} must be from {low} to {MAX_INT:,}, got {value}", key)
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0:
            raise fail(f"[train] {key} must be a finite number >= 0, got {value!r}", key)


def check_lint(table: Mapping[str, Any], rules: list[str], fail: Callable[[str, str], SpecError]) -> None:
    """``ignore`` is the only key, a list of known rule ids."""
    for key in table:
        if key != "ignore":
            raise fail(f"[lint] has no key {key!r}{suggest(key, ['ignore'])}", key)
    ids = table.get("ignore", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise fail(f"[lint] ignore must be a list of rule ids, got {ids!r}", "ignore")
    for rule_id in ids:
        if rule_id not in rules:
            raise fail(f"[lint] ignore: no rule {rule_id!r}{suggest(rule_id, rules)} (rules: {', '.join(rules)})",
                       "ignore")
