"""A 12-run sweep on this machine: one run at a time, --jobs 2, a local Ray cluster, and the
oversubscribed --jobs 4 --threads 2; runs per hour of each, as ratios to one at a time, in one go.

Each executor runs the same sweep file in a fresh `archcalc sweep` process; its throughput is the
one results.json records (runs finished / wall time of the session: worker start-up, Ray's start
and the training included, data loading excluded). The script also checks that the executors that
ran with the same thread count gave bit-identical runs, and prints the load average around each
executor (another program on the machine makes the ratios meaningless; it is said when it happens).

Usage: python benchmarks/sweep_speed.py [N_TRAIN] [EPOCHS]   (default 1024 samples, 2 epochs)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from archcalc.data.arrays import SpeechData, save_npz

GRID = """[grid]
spec = ["speech_cnn"]
optimizer = ["sgd", "adam"]
lr = [0.01, 0.001]
seed = [0, 1, 2]
[train]
epochs = {epochs}
batch_size = 128
amp = "off"
[data]
path = "easy.npz"
"""

EXECUTORS = [("one at a time", []), ("one at a time, 1 thread", ["--threads", "1"]), ("--jobs 2", ["--jobs", "2"]),
             ("--ray", ["--ray"]), ("--jobs 4 --threads 2", ["--jobs", "4", "--threads", "2"])]


def easy_data(n_train: int, seed: int = 0) -> SpeechData:
    """Three learnable classes of 101x40 features (class-dependent bands plus noise)."""
    rng = np.random.default_rng(seed)
    X, y = {}, {}
    for split, n in (("train", n_train), ("val", n_train // 4), ("test", n_train // 4)):
        labels = rng.integers(0, 3, n)
        feats = rng.normal(0, 1, (n, 101, 40)).astype(np.float32)
        for c in range(3):
            feats[labels == c, 30:70, 8 + 10 * c:14 + 10 * c] += 1.5
        X[split], y[split] = feats, labels
    return SpeechData(X=X, y=y, classes=("a", "b", "c"), source="easy synthetic")


def run(folder: Path, name: str, args: list[str]) -> dict:
    out = folder / "".join(c if c.isalnum() else "_" for c in name)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "archcalc", "sweep", str(folder / "grid.toml"), "--out", str(out), *args],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    process_s = time.perf_counter() - start
    doc = json.loads((out / "results.json").read_text())
    session = doc["sweep"]["sessions"][-1]
    return {"name": name, "doc": doc, "session": session, "process_s": process_s,
            "load": (load, os.getloadavg()[0])}


def main() -> None:
    n_train = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        save_npz(easy_data(n_train), folder / "easy.npz")
        (folder / "grid.toml").write_text(GRID.format(epochs=epochs))
        results = [run(folder, name, args) for name, args in EXECUTORS]
    base = results[0]["session"]["runs_per_hour"]
    print(f"12 runs of speech_cnn ({n_train:,} training samples, {epochs} epochs, batch 128, fp32) on "
          f"{cores} cores")
    print(f"{'executor':<24} {'threads':>7} {'wall time':>10} {'runs/hour':>10} {'ratio':>6} {'process':>8} "
          f"{'mean train s':>12}  load before/after")
    for r in results:
        s, runs = r["session"], r["doc"]["runs"]
        train_s = sum(run["result"]["train_time_s"] for run in runs) / len(runs)
        print(f"{r['name']:<24} {s['threads']:>7} {s['wall_time_s']:>9.1f}s {s['runs_per_hour']:>10,.0f} "
              f"{s['runs_per_hour'] / base:>5.2f}x {r['process_s']:>7.1f}s {train_s:>12.2f}  "
              f"{r['load'][0]:.1f}/{r['load'][1]:.1f}")
    by_threads: dict[int, list[dict]] = {}
    for r in results:
        by_threads.setdefault(r["session"]["threads"], []).append(r)
    for threads, group in sorted(by_threads.items()):
        digests = [[run["weights_sha256"] for run in r["doc"]["runs"]] for r in group]
        same = all(d == digests[0] for d in digests)
        print(f"{threads} thread(s): {', '.join(r['name'] for r in group)}: "
              f"{'bit-identical weights in every run' if same else 'weights DIFFER'}")
    busy = [r["name"] for r in results if max(r["load"]) > cores + 0.5 and r["name"] != EXECUTORS[-1][0]]
    if busy:
        print(f"note: the machine was busier than its {cores} cores around: {', '.join(busy)}; the ratios are not "
              "reliable")


if __name__ == "__main__":
    main()
