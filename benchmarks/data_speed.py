"""Samples per second of speech synthesis (eSpeak NG, workers) and of log-mel extraction (torch, CPU).

Usage: python benchmarks/data_speed.py [N]   (N synthesized clips, default 1800)
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from archcalc.data.features import SAMPLE_RATE, logmel
from archcalc.data.synth import default_workers, synthesize


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1800
    start = time.perf_counter()
    synthesize(n, seed=123)
    synth_s = time.perf_counter() - start
    waves = np.random.default_rng(0).normal(0, 0.1, (4000, SAMPLE_RATE)).astype(np.float32)
    logmel(waves[:256])  # warm-up
    start = time.perf_counter()
    logmel(waves)
    feat_s = time.perf_counter() - start
    print(f"synthesis + features: {n / synth_s:8.0f} clips/s ({n} clips in {synth_s:.1f} s, "
          f"{default_workers()} workers, spawn included)")
    print(f"log-mel features:     {len(waves) / feat_s:8.0f} clips/s (CPU, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
