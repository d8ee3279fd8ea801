"""The training loop: fast by construction, exact in what it records.

The whole data set lives on the device as one tensor; each epoch draws one permutation from a
seeded generator and indexes batches out of it (no DataLoader, no workers). Per-iteration loss and
accuracy stay on the device until the end of the epoch (one synchronization per epoch, not one per
batch). The timer covers the training steps only: the device is synchronized around it, and
evaluation, compilation and data preparation are timed separately.
"""

from __future__ import annotations

import math
import platform
import resource
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from archcalc.data.arrays import SPLITS, SpeechData
from archcalc.errors import DataError, UsageError

DEFAULT_LR = {"sgd": 0.01, "adam": 0.001}
DEFAULT_WEIGHT_DECAY = {"sgd": 1e-5, "adam": 0.0}


@dataclass(frozen=True)
class TrainConfig:
    """One run's protocol; the defaults are the course report's."""

    optimizer: str = "sgd"
    lr: float | None = None  # None: 0.01 for SGD, 0.001 (torch's default) for Adam
    momentum: float = 0.9  # SGD only
    weight_decay: float | None = None  # None: 1e-5 for SGD, 0 for Adam
    epochs: int = 50
    batch_size: int = 1024
    seed: int = 0
    device: str = "cpu"
    amp: str = "off"  # "off" or "bf16" (autocast)
    channels_last: bool = True
    compile: bool = False
    val_every: int = 1  # validate every N iterations; 0: at the end of each epoch only
    micro_batch: int = -1  # >0: accumulate each batch's gradient over slices; 0: off; -1: auto

    @property
    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def resolved_weight_decay(self) -> float:
        return self.weight_decay if self.weight_decay is not None else DEFAULT_WEIGHT_DECAY[self.optimizer]


@dataclass
class Curves:
    iteration: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_iteration: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)


@dataclass
class TrainResult:
    """Everything a run measured; ``asdict`` of it is one entry of results.json."""

    optimizer: str
    config: dict[str, Any]
    params: int
    test_accuracy: float
    test_loss: float
    train_time_s: float
    eval_time_s: float
    compile_time_s: float
    samples_per_s: float
    time_per_epoch_s: float
    peak_memory_bytes: int
    peak_memory_kind: str
    curves: Curves
    epochs: list[dict[str, float]]
    diverged_epoch: int | None = None  # the epoch whose loss became NaN or infinite; training stopped there


@dataclass
class DeviceData:
    """Normalized features and labels on the device, per split."""

    X: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]
    mean: float
    std: float


def to_device(data: SpeechData, input_shape: tuple[int, ...], device: str, channels_last: bool) -> DeviceData:
    """Normalize with the training set's global mean and std, reshape to the spec's input, move."""
    train = data.X["train"]
    mean, std = float(train.mean(dtype=np.float64)), float(train.std(dtype=np.float64))
    if std == 0:
        raise DataError("the training features are constant (standard deviation 0)", source=data.source)
    X, y = {}, {}
    for split in SPLITS:
        # normalized in float64, stored as float32
        x = torch.from_numpy((data.X[split].astype(np.float64) - mean) / std).float().reshape(-1, *input_shape)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        X[split] = x.to(device)
        y[split] = torch.from_numpy(data.y[split]).long().to(device)
    return DeviceData(X, y, mean, std)


def bf16_supported(device: str) -> bool:
    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.resolved_lr, momentum=config.momentum,
                               weight_decay=config.resolved_weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.resolved_lr, weight_decay=config.resolved_weight_decay)
    raise UsageError(f"unknown optimizer {config.optimizer!r}: use sgd or adam")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _autocast(config: TrainConfig) -> Any:
    if config.amp == "bf16":
        return torch.autocast(device_type=config.device.split(":")[0], dtype=torch.bfloat16)
    return nullcontext()


def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, config: TrainConfig,
             batch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss, accuracy) as 0-d tensors on the device: no synchronization here.

    On a CPU, slices of 64 keep activations in cache (measured 1.5-2.5x faster than 4096 for the
    course CNN); a GPU takes big slices.
    """
    batch = batch or (64 if config.device.startswith("cpu") else 4096)
    model.eval()
    loss_sum = torch.zeros((), device=X.device)
    correct = torch.zeros((), device=X.device)
    with torch.inference_mode(), _autocast(config):
        for start in range(0, X.shape[0], batch):
            out = model(X[start:start + batch]).float()
            target = y[start:start + batch]
            loss_sum += nn.functional.cross_entropy(out, target, reduction="sum")
            correct += (out.argmax(1) == target).sum()
    model.train()
    return loss_sum / X.shape[0], correct / X.shape[0]


Progress = Callable[[dict[str, Any]], None]


def train(model: nn.Module, data: DeviceData, config: TrainConfig, progress: Progress | None = None
          ) -> TrainResult:
    """Train ``model`` in place with cross-entropy and return what was measured."""
    device = config.device
    if config.micro_batch < 0:
        config = replace(config, micro_batch=auto_micro_batch(model, device))
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    optimizer = make_optimizer(model, config)
    step_model, compile_s = _maybe_compile(model, data, config, optimizer)
    generator = torch.Generator().manual_seed(config.seed)  # the shuffling: seeded for every run
    n = data.X["train"].shape[0]
    bounds = batch_bounds(n, config.batch_size)
    curves, epochs = Curves(), []
    train_s = eval_s = 0.0
    iteration = 0
    diverged = None
    model.train()
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(n, generator=generator).to(device)
        losses, corrects, sizes = [], [], []
        val_points: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        _sync(device)
        started = time.perf_counter()
        for start, end in bounds:
            idx = order[start:end]
            loss, correct = _step(step_model, optimizer, data.X["train"][idx], data.y["train"][idx], config)
            losses.append(loss)
            corrects.append(correct)
            sizes.append(idx.shape[0])
            iteration += 1
            if (config.val_every and iteration % config.val_every == 0) or end == n:
                _sync(device)
                train_s += time.perf_counter() - started
                t_eval = time.perf_counter()
                val_points.append((iteration, *evaluate(model, data.X["val"], data.y["val"], config)))
                _sync(device)
                eval_s += time.perf_counter() - t_eval
                started = time.perf_counter()
        record = _record_epoch(epoch, iteration - len(bounds), losses, corrects, sizes, val_points, curves)
        epochs.append(record)
        if progress:
            progress({**record, "epochs": config.epochs, "samples_per_s": epoch * n / max(train_s, 1e-9)})
        if not all(math.isfinite(record[k]) for k in ("train_loss", "val_loss")):
            diverged = epoch  # NaN stays NaN: later epochs would measure nothing
            break
    ran = len(epochs)
    t_eval = time.perf_counter()
    test_loss, test_acc = (float(v) for v in evaluate(model, data.X["test"], data.y["test"], config))
    eval_s += time.perf_counter() - t_eval
    memory, kind = _peak_memory(device)
    return TrainResult(
        optimizer=config.optimizer, config=_config_dict(config), params=sum(p.numel() for p in model.parameters()),
        test_accuracy=test_acc, test_loss=test_loss, train_time_s=train_s, eval_time_s=eval_s,
        compile_time_s=compile_s, samples_per_s=ran * n / max(train_s, 1e-9),
        time_per_epoch_s=train_s / ran, peak_memory_bytes=memory, peak_memory_kind=kind,
        curves=curves, epochs=epochs, diverged_epoch=diverged)


LAST_BATCH = "a last batch of 1 sample is merged into the batch before it (BatchNorm cannot normalize one sample)"


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, end) of each batch of an epoch; a last batch of one sample joins the one before it."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def _step(model: Any, optimizer: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
          config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a batch; (mean loss, correct count), still on the device.

    With ``micro_batch`` the batch's gradient is accumulated over slices: the mean loss of the
    batch is the sum over slices of (slice loss sum) / batch size, so the gradient is the same up
    to floating-point rounding, while each slice's activations stay in the CPU's cache.
    """
    optimizer.zero_grad(set_to_none=True)
    size = yb.shape[0]
    slice_size = config.micro_batch if 0 < config.micro_batch < size else size
    loss_sum = torch.zeros((), device=yb.device)
    correct = torch.zeros((), device=yb.device, dtype=torch.long)
    for start in range(0, size, slice_size):
        x_part, y_part = xb[start:start + slice_size], yb[start:start + slice_size]
        with _autocast(config):
            out = _forward(model, x_part)
        part = nn.functional.cross_entropy(out.float(), y_part, reduction="sum")
        (part / size).backward()
        loss_sum += part.detach()
        correct += (out.detach().argmax(1) == y_part).sum()
    optimizer.step()
    return loss_sum / size, correct


def _forward(model: Any, x: torch.Tensor) -> torch.Tensor:
    try:
        return model(x)  # type: ignore[no-any-return]
    except ValueError as exc:
        if "Expected more than 1 value per channel" not in str(exc):
            raise
        raise UsageError(f"a batch (or micro-batch slice) of {x.shape[0]} sample reached a BatchNorm layer, "
                         "which needs more than one value per channel: use a --batch-size and --micro-batch "
                         "of at least 2") from None


def auto_micro_batch(model: nn.Module, device: str) -> int:
    """On a CPU, for models without batch statistics: 32 for conv models, 64 for attention models,
    whose activations then fit in cache (measured 1.6-1.9x faster for the course CNN, 1.4-1.8x for
    the keyword transformer); off where it would change the maths (BatchNorm normalizes over the
    batch) or gains nothing (GPU, linear-only and recurrent models). With dropout each slice
    draws its own masks: the same distribution, not the same masks as one pass over the batch."""
    if not device.startswith("cpu"):
        return 0
    modules = list(model.modules())
    batch_stats = (nn.modules.batchnorm._BatchNorm, nn.SyncBatchNorm)
    if any(isinstance(m, batch_stats) for m in modules):
        return 0
    if any(isinstance(m, nn.MultiheadAttention) for m in modules):
        return 64
    if any(isinstance(m, nn.modules.conv._ConvNd) for m in modules):
        return 32
    return 0


def _record_epoch(epoch: int, first: int, losses: list[torch.Tensor], corrects: list[torch.Tensor],
                  sizes: list[int], val_points: list[tuple[int, torch.Tensor, torch.Tensor]],
                  curves: Curves) -> dict[str, float]:
    """Move one epoch's numbers to the host at once (a single synchronization)."""
    loss_values = torch.stack(losses).float().cpu().tolist()
    correct_values = torch.stack(corrects).float().cpu().tolist()
    acc_values = [c / s for c, s in zip(correct_values, sizes)]
    curves.iteration.extend(range(first + 1, first + 1 + len(loss_values)))
    curves.train_loss.extend(loss_values)
    curves.train_acc.extend(acc_values)
    for it, v_loss, v_acc in val_points:
        curves.val_iteration.append(it)
        curves.val_loss.append(float(v_loss))
        curves.val_acc.append(float(v_acc))
    total = sum(sizes)
    return {"epoch": epoch,
            "train_loss": sum(v * s for v, s in zip(loss_values, sizes)) / total,
            "train_acc": sum(correct_values) / total,
            "val_loss": curves.val_loss[-1], "val_acc": curves.val_acc[-1]}


def _maybe_compile(model: nn.Module, data: DeviceData, config: TrainConfig,
                   optimizer: torch.optim.Optimizer) -> tuple[Any, float]:
    """torch.compile with one warm-up step, timed on its own; the weights are restored after it."""
    if not config.compile:
        return model, 0.0
    state = {k: v.clone() for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    compiled = torch.compile(model)
    start = time.perf_counter()
    xb, yb = data.X["train"][:config.batch_size], data.y["train"][:config.batch_size]
    with _autocast(config):
        loss = nn.functional.cross_entropy(compiled(xb).float(), yb)
    loss.backward()
    _sync(config.device)
    elapsed = time.perf_counter() - start
    model.load_state_dict(state)
    optimizer.load_state_dict(opt_state)
    optimizer.zero_grad(set_to_none=True)
    return compiled, elapsed


def _peak_memory(device: str) -> tuple[int, str]:
    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated()), "cuda max_memory_allocated"
    # ru_maxrss is in KiB on Linux, bytes on macOS
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if platform.system() == "Darwin" else rss * 1024), "process peak RSS"


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    d = asdict(config)
    d["lr"], d["weight_decay"] = config.resolved_lr, config.resolved_weight_decay
    if config.optimizer != "sgd":
        d["momentum"] = None  # Adam has no momentum setting: record none rather than SGD's default
    return d
