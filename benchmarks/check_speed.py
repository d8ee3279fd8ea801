"""`archcalc check` over the bundled specs, against a plain torchinfo.summary of the same models.

Both run as fresh processes (torch import included), interleaved in one run, best of N.
`archcalc check` does more (spec expectations, a cross-check per layer, named_parameters
totals), so a ratio near 1 means the extra work is nearly free.
Usage: python benchmarks/check_speed.py [N]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import time_process

ROOT = Path(__file__).resolve().parent.parent
SPECS = [str(ROOT / "specs" / "speech_cnn.toml"), str(ROOT / "specs" / "speech_ffnn.toml")]

PLAIN = """
import torch, torch.nn as nn, torchinfo
cnn = nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 16, 5), nn.ReLU(),
                    nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2464, 128), nn.ReLU(), nn.Linear(128, 128),
                    nn.ReLU(), nn.Linear(128, 3), nn.Softmax(dim=1))
ffnn = nn.Sequential(nn.Flatten(), nn.Linear(4040, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                     nn.Linear(128, 3), nn.Softmax(dim=1))
for model in (cnn, ffnn):
    print(torchinfo.summary(model, input_size=(2, 1, 101, 40), verbose=0))
"""


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    ours = time_process([sys.executable, "-m", "archcalc", "check", *SPECS], repeat)
    plain = time_process(PLAIN, repeat)
    print(f"archcalc check (2 specs, expectations + cross-check): {ours * 1000:7.0f} ms")
    print(f"plain torchinfo.summary of the same 2 models:          {plain * 1000:7.0f} ms")
    print(f"ratio archcalc check / plain torchinfo: {ours / plain:.2f}")


if __name__ == "__main__":
    main()
