from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))  # helpers such as torch_reference
# Ray clusters started by the tests listen on the loopback address only, as archcalc's own (Ray reads
# this when it is imported, so it is set before any test imports Ray)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

# Property tests: the same examples on every run by default, so that a suite that passed passes again
# (CI); HYPOTHESIS_PROFILE=explore draws new random architectures on every run to look for bugs.
settings.register_profile("repeatable", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).parent / "golden"


def invoke(*args: str, env: dict[str, str] | None = None):
    """Run the CLI as a user would, at a fixed width and without colour."""
    from archcalc.cli import app

    runner = CliRunner(env={"COLUMNS": "110", "NO_COLOR": "1", **(env or {})})
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def fails(cli, path, *args, code=2) -> str:
    """``archcalc shapes PATH``: exit ``code`` with one ``error:`` line on stderr and no traceback."""
    result = cli("shapes", path, *args)
    assert result.exit_code == code, result.output
    err = result.stderr.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err and "Traceback" not in result.output
    return err


@pytest.fixture
def cli():
    return invoke


@pytest.fixture
def write_spec(tmp_path):
    def write(text: str, name: str = "model.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write
