from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))  # helpers such as torch_reference

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
