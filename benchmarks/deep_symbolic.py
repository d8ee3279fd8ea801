"""`archcalc shapes` on a generated 1,000-layer spec with a symbolic input (target: < 3 s).

The spec alternates strided pools and padded convs on two symbolic axes, the worst case for
expression growth: without the canonical floor form each size would nest 1,000 floors.
Usage: python benchmarks/deep_symbolic.py [LAYERS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import time_process


def deep_spec(n_layers: int) -> str:
    lines = ['[model]\nname = "deep"\n[input]\nshape = [3, "H", "W"]\n']
    for i in range(n_layers):
        if i % 4 == 3:
            lines.append('[[layers]]\ntype = "MaxPool2d"\nkernel_size = 2\nstride = 1\n')
        elif i % 4 == 1:
            lines.append('[[layers]]\ntype = "ReLU"\n')
        else:
            lines.append(f'[[layers]]\ntype = "Conv2d"\nout_channels = {8 + i % 5}\nkernel_size = 3\n'
                         f'padding = 1\nstride = {2 if i % 50 == 0 else 1}\n')
    return "\n".join(lines)


def main() -> None:
    n_layers = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deep.toml"
        path.write_text(deep_spec(n_layers))
        start = time.perf_counter()
        from archcalc import analyze, load_spec

        analysis = analyze(load_spec(path))
        in_process = time.perf_counter() - start
        whole = time_process([sys.executable, "-m", "archcalc", "shapes", str(path)], repeat=3)
    print(f"{n_layers} layers, last size {analysis.layers[-1].out_shape}, valid for "
          f"H >= {analysis.ranges['H'].lo}, W >= {analysis.ranges['W'].lo}")
    print(f"analysis in process: {in_process:.2f} s")
    print(f"archcalc shapes (fresh process, table printed): {whole:.2f} s (target: < 3 s)")


if __name__ == "__main__":
    main()
