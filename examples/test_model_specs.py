"""Using archcalc from your own test suite: every spec of the project must hold.

Copy this file into your tests/ folder; `pytest` then fails with archcalc's message when a layer
size, a parameter count or the torch cross-check disagrees with what the spec asserts.
"""

from pathlib import Path

import pytest

import archcalc

SPEC_DIR = Path(__file__).parent / "specs"


@pytest.mark.parametrize("spec", sorted(SPEC_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_spec_holds(spec):
    archcalc.assert_spec(spec)  # raises AssertionError naming the layer and both values


def test_clip_length_needed_by_the_symbolic_cnn():
    analysis = archcalc.analyze(archcalc.load_spec(SPEC_DIR / "speech_cnn_T.toml"))
    assert analysis.ranges["T"].lo == 16  # shorter clips cannot pass both pools
