"""`archcalc import` of a 100-layer model, beyond the cost of importing torch (target: < 3 s).

The model is written to a temporary file: 25 residual blocks of conv, BatchNorm, ReLU and a sum
(100 nodes). Both timings are fresh processes, best of 3, measured in the same run.
Usage: python benchmarks/import_speed.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import time_process

MODEL = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()

    def forward(self, x):
        return x + self.relu(self.bn(self.conv(x)))


def make(n=25, c=16):
    return nn.Sequential(*[Block(c) for _ in range(n)])
'''


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hundred.py"
        path.write_text(MODEL)
        out = Path(tmp) / "hundred.toml"
        torch_only = time_process("import torch", repeat=3)
        whole = time_process([sys.executable, "-m", "archcalc", "import", f"{path}:make", "--input-shape",
                              "16,32,32", "--out", str(out)], repeat=3)
        nodes = out.read_text().count("[[layers]]") + out.read_text().count("[[blocks.")
    print(f"import torch alone: {torch_only:.2f} s")
    print(f"archcalc import of a 100-node model ({nodes} tables written): {whole:.2f} s")
    print(f"beyond torch's import: {whole - torch_only:.2f} s (target: < 3 s)")


if __name__ == "__main__":
    main()
