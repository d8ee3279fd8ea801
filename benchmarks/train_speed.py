"""archcalc's training loop against the loop a student writes, on the same data, in one process.

The naive loop: a DataLoader over a TensorDataset (shuffle), `loss.item()` logged every batch,
default settings (fp32, NCHW), evaluation under no_grad through a DataLoader. archcalc's loop:
`archcalc.bench.train.train` with its CPU defaults for that model (channels_last; bf16 autocast where
the CPU supports it, except for recurrent and attention models; gradient accumulation over
cache-sized slices of each batch for conv and attention models without BatchNorm; pre-shuffled
tensor indexing, one synchronization per epoch, inference_mode evaluation). It also runs archcalc's
loop with each default that applies turned off in turn, to show what each one is worth.
Models: the four bundled ones (the course CNN and FFNN, the CRNN, the keyword transformer), or the
names given with --spec.
Both train the same model from the same initial weights for the same number of epochs on the same
data. Prints samples/s and the ratio for each model, the test accuracy of both, and the achieved
GFLOP/s against this machine's measured matrix-multiply peak.
Usage: python benchmarks/train_speed.py [EPOCHS] [N_TRAIN] [--spec NAME ...]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from torch import nn

from archcalc import analyze, build, bundled_spec, load_spec
from archcalc.analysis.cost import cost
from archcalc.bench.protocol import sequence_layers
from archcalc.bench.train import TrainConfig, auto_micro_batch, bf16_supported, to_device, train
from archcalc.data.arrays import SpeechData


def easy_data(n_train: int, seed: int = 0) -> SpeechData:
    """Three classes of 101x40 features that a model can learn (class-dependent bands + noise)."""
    rng = np.random.default_rng(seed)
    X, y = {}, {}
    for split, n in (("train", n_train), ("val", n_train // 4), ("test", n_train // 4)):
        labels = rng.integers(0, 3, n)
        feats = rng.normal(0, 1, (n, 101, 40)).astype(np.float32)
        for c in range(3):
            feats[labels == c, 30:70, 8 + 10 * c:14 + 10 * c] += 1.5
        X[split], y[split] = feats, labels
    return SpeechData(X=X, y=y, classes=("a", "b", "c"), source="easy synthetic")


def naive(model: nn.Module, data: SpeechData, epochs: int, seed: int) -> tuple[float, float]:
    """The loop from a tutorial; returns (samples/s, test accuracy)."""
    mean, std = data.X["train"].mean(), data.X["train"].std()
    tensors = {s: (torch.from_numpy((data.X[s] - mean) / std).unsqueeze(1), torch.from_numpy(data.y[s]))
               for s in ("train", "test")}
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*tensors["train"]), batch_size=1024,
                                         shuffle=True, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-5)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            print(f"loss {loss.item():.4f}", end="\r", file=sys.stderr)
    elapsed = time.perf_counter() - start
    correct = 0
    with torch.no_grad():
        for xb, yb in torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*tensors["test"]),
                                                  batch_size=1024):
            correct += (model(xb).argmax(1) == yb).sum().item()
    return epochs * len(tensors["train"][1]) / elapsed, correct / len(tensors["test"][1])


def fast(spec, data: SpeechData, config: TrainConfig):
    torch.manual_seed(0)
    model = build(spec)
    return train(model, to_device(data, (1, 101, 40), "cpu", config.channels_last), config)


def matmul_peak() -> tuple[float, float]:
    """Measured GFLOP/s of a large fp32 and bf16 matrix multiply on this machine."""
    out = []
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        a @ b
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        out.append(5 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9)
    return out[0], out[1]


def forward_flops(spec_name: str) -> int:
    """Forward multiply-adds x 2 per sample, from the architecture (every layer's MACs: conv, linear,
    recurrent gates over the time steps, attention projections and its T^2 terms)."""
    return 2 * int(cost(analyze(load_spec(bundled_spec(spec_name)))).total_macs)


def main() -> None:
    args = sys.argv[1:]
    names = [args[i + 1] for i, a in enumerate(args) if a == "--spec" and i + 1 < len(args)]
    plain = [a for i, a in enumerate(args) if a != "--spec" and (i == 0 or args[i - 1] != "--spec")]
    names = names or ["speech_cnn", "speech_ffnn", "speech_crnn", "speech_kwt"]
    epochs = int(plain[0]) if plain else 2
    n_train = int(plain[1]) if len(plain) > 1 else 6144
    data = easy_data(n_train)
    bf16 = bf16_supported("cpu")
    fp32_peak, bf16_peak = matmul_peak()
    print(f"{torch.get_num_threads()} threads, {n_train} training samples, {epochs} epochs, bf16 "
          f"{'supported' if bf16 else 'not supported'} by this CPU")
    print(f"measured matmul peak: {fp32_peak:.0f} GFLOP/s fp32, {bf16_peak:.0f} GFLOP/s bf16")
    for name in names:
        spec = load_spec(bundled_spec(name))
        # the defaults `archcalc bench` resolves for this model
        amp = "bf16" if bf16 and not sequence_layers(analyze(spec)) else "off"
        micro = auto_micro_batch(build(spec), "cpu")
        defaults = {"amp": amp, "channels_last": True, "val_every": 0, "micro_batch": micro}
        torch.manual_seed(0)
        naive_rate, naive_acc = naive(build(spec), data, epochs, 0)
        result = fast(spec, data, TrainConfig(epochs=epochs, **defaults))
        variants = {"channels_last": {"channels_last": False}}
        if micro:
            variants["micro-batching"] = {"micro_batch": 0}
        if amp == "bf16":
            variants["bf16 autocast"] = {"amp": "off"}
        others = {label: fast(spec, data, TrainConfig(epochs=epochs, **{**defaults, **change}))
                  for label, change in variants.items()}
        flops = 3 * forward_flops(name)  # training step ~ forward + backward (2x forward)
        gflops = result.samples_per_s * flops / 1e9
        peak = bf16_peak if amp == "bf16" else fp32_peak
        print(f"{name:12s} naive {naive_rate:8.0f} samples/s (test acc {naive_acc:.3f}) | archcalc "
              f"{result.samples_per_s:8.0f} samples/s (test acc {result.test_accuracy:.3f}) | "
              f"ratio {result.samples_per_s / naive_rate:.2f}x | {gflops:.0f} GFLOP/s = "
              f"{100 * gflops / peak:.0f}% of the {'bf16' if amp == 'bf16' else 'fp32'} matmul peak "
              f"(amp {amp}, micro-batch {micro or 'off'})")
        for label, other in others.items():
            print(f"  archcalc's loop without {label:15s} {other.samples_per_s:8.0f} samples/s: "
                  f"the default is {result.samples_per_s / other.samples_per_s:.2f}x faster")


if __name__ == "__main__":
    main()
