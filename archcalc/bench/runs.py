"""One training run, the same code wherever it executes (the bench, a --jobs worker, a Ray task).

The same (spec, settings, seed) on the same number of torch threads gives bit-identical weights,
losses and accuracy on a CPU in fp32: the seed fixes the initial weights and the shuffling, and
nothing else is random. The thread count matters because torch's CPU kernels split sums between
threads, which changes the rounding: 1 and 2 threads give weights that differ in the last bits.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

# os.getloadavg is missing on Windows
HAS_LOADAVG = hasattr(os, "getloadavg")


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), None where the system does not report it."""
    if not HAS_LOADAVG:
        return None
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def weights_digest(model: Any) -> str:
    """SHA-256 (16 hex digits) of every tensor of the state dict: names, dtypes, shapes and bits."""
    import torch

    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class LoadWatch:
    """The load average before a run, after it and at its highest at the end of an epoch: sampled
    only before and after, a run could hide another program that ran in between."""

    def __init__(self) -> None:
        self.before = load_average()
        self.peak = self.before

    def sample(self) -> None:
        now = load_average()
        if now is not None:
            self.peak = now if self.peak is None else max(self.peak, now)

    def around(self, progress: Any) -> Any:
        """``progress``, fed once per epoch, sampling the load first."""
        def each_epoch(record: dict[str, Any]) -> None:
            self.sample()
            if progress:
                progress(record)
        return each_epoch

    def result(self) -> dict[str, Any]:
        after = load_average()
        self.sample()
        return {"before": self.before, "after": after, "peak": self.peak, "cpu_count": os.cpu_count()}


def train_plan(plan: Any, config: Any, device_data: Any, progress: Any = None) -> tuple[Any, str, dict[str, Any]]:
    """Build the plan's model from the seed, train it; (TrainResult, weights digest, load average)."""
    import torch

    from archcalc.bench import train as train_module
    from archcalc.pytorch.build import build_from_analysis

    torch.manual_seed(config.seed)  # before the model is built: the same initial weights
    model = build_from_analysis(plan.analysis, outputs=plan.outputs)
    torch.manual_seed(config.seed)  # and before the run's shuffling and dropout
    watch = LoadWatch()
    result = train_module.train(model, device_data, config, watch.around(progress))
    return result, weights_digest(model), watch.result()


def run_record(run_id: str, plan: Any, result: Any, digest: str, load: dict[str, Any], threads: int,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of results.json ``runs``: identity, result (strict JSON) and the conditions it ran in."""
    from dataclasses import asdict

    from archcalc.bench.results import finite

    return {"id": run_id, "model": plan.label, "spec": plan.spec.source,
            "head": "logits" if plan.drop_softmax or not plan.ends_in_softmax else "softmax",
            **(extra or {}),
            "result": finite(asdict(result)),  # a diverged run's NaN losses become null
            "weights_sha256": digest, "threads": threads, "load": load}
