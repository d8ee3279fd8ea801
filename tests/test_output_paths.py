"""Output paths that cannot be written are refused before any work, in one line with exit 2."""

from __future__ import annotations

import os

import pytest


def bad_paths(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    paths = {"under a file": (blocker / "out", "afile is a file, not a folder"),
             "deeper under a file": (blocker / "sub" / "out", "afile is a file, not a folder")}
    if os.path.isdir("/proc/self"):
        paths["in /proc"] = (os.path.join("/proc", "out"), "cannot write in the folder /proc")
    return paths


@pytest.mark.parametrize(("command", "suffix", "flag"), [
    (["draw"], ".svg", "--out"), (["report"], ".md", "--out"),
    (["data", "synth", "--n", "30"], ".npz", "--out"), (["data", "info"], ".png", "--png"),
])
def test_unwritable_outputs_are_refused_first(cli, tmp_path, command, suffix, flag):
    for what, (path, expected) in bad_paths(tmp_path).items():
        result = cli(*command, flag, f"{path}{suffix}")
        assert result.exit_code == 2, (what, result.output)
        err = result.stderr.strip()
        assert err.startswith(f"error: {flag} ") and expected in err and "\n" not in err, (what, err)
        assert "Traceback" not in result.output
