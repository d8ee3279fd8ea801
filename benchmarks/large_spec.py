"""`archcalc shapes` and `params` on generated chains of 1,000, 10,000 and 100,000 layers.

Reading, analysis and printing must grow linearly with the number of layers (the largest spec
archcalc reads has 100,000 [[layers]] tables): the script prints each time and the ratio of the
time per layer at 100,000 to the time per layer at 10,000 (about 1 when linear).
Usage: python benchmarks/large_spec.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import time_process


def chain(n_layers: int) -> str:
    kinds = ['[[layers]]\ntype = "Linear"\nout_features = 16\n', '[[layers]]\ntype = "ReLU"\n']
    return '[model]\nname = "chain"\n[input]\nshape = [16]\n' + "".join(kinds[i % 2] for i in range(n_layers))


def main() -> None:
    times: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1_000, 10_000, 100_000):
            path = Path(tmp) / f"chain{n}.toml"
            path.write_text(chain(n))
            for command in ("shapes", "params"):
                seconds = time_process([sys.executable, "-m", "archcalc", command, str(path)], repeat=1)
                times[(command, n)] = seconds
                print(f"archcalc {command} {n:>7,} layers: {seconds:6.2f} s")
    for command in ("shapes", "params"):
        ratio = (times[(command, 100_000)] / 100_000) / (times[(command, 10_000)] / 10_000)
        print(f"{command}: time per layer at 100,000 / at 10,000 = {ratio:.2f} (1.00 = linear)")


if __name__ == "__main__":
    main()
