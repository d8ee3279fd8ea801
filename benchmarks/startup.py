"""How fast `archcalc params` answers, against import torch + build + torchinfo.summary.

Both are timed as fresh processes, interleaved in one run, best of N; the ratio is what counts
(the machines are shared and noisy). Usage: python benchmarks/startup.py [N]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import time_process

SPEC = Path(__file__).resolve().parent.parent / "specs" / "speech_cnn.toml"

ARCHCALC = f"from archcalc.cli import app; app(['params', {str(SPEC)!r}], standalone_mode=False)"
TORCHINFO = """
import torch, torch.nn as nn, torchinfo
model = nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 16, 5), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2464, 128), nn.ReLU(), nn.Linear(128, 128),
                      nn.ReLU(), nn.Linear(128, 3), nn.Softmax(dim=1))
print(torchinfo.summary(model, input_size=(1, 1, 101, 40), verbose=0))
"""


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    ours = time_process(ARCHCALC, repeat)
    theirs = time_process(TORCHINFO, repeat)
    print(f"archcalc params (fresh process):          {ours * 1000:8.0f} ms")
    print(f"import torch + build + torchinfo.summary: {theirs * 1000:8.0f} ms")
    print(f"ratio: archcalc is {theirs / ours:.1f}x faster (target: >= 4x)")


if __name__ == "__main__":
    main()
