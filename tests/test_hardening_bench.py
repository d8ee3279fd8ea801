"""The bench never loses or mixes runs: results written first, resumes checked, one bench per folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import SPECS
from test_bench import easy_data

from archcalc.data.arrays import save_npz

ARGS = ("--epochs", "1", "--spec", "speech_ffnn", "--amp", "off")


@pytest.fixture
def easy_npz(tmp_path):
    return save_npz(easy_data(), tmp_path / "easy.npz")


def strict_json(path):
    """results.json parsed as strict JSON: NaN and Infinity are not JSON."""
    def refuse(name):
        raise ValueError(f"{path} holds {name}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def interrupt_at(monkeypatch, call: int) -> None:
    import archcalc.bench.train as train_module

    real_train, calls = train_module.train, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(train_module, "train", flaky)


def one_line_error(result, exit_code: int = 2) -> str:
    assert result.exit_code == exit_code, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output, result.stderr
    return result.stderr


# --------------------------------------------------------------------------- results written first

def test_interrupted_in_the_first_run_keeps_the_protocol_and_resumes(cli, easy_npz, tmp_path, monkeypatch):
    interrupt_at(monkeypatch, 1)
    out = tmp_path / "run"
    result = cli("bench", "--data", easy_npz, *ARGS, "--out", out)
    assert result.exit_code == 130 and "0 finished run(s) kept" in result.stderr
    doc = strict_json(out / "results.json")
    assert doc["runs"] == [] and not doc["complete"] and doc["protocol"]["epochs"] == 1
    monkeypatch.undo()
    result = cli("bench", "--data", easy_npz, *ARGS, "--resume", out)
    assert result.exit_code == 0, result.output
    doc = strict_json(out / "results.json")
    assert doc["complete"] and [r["id"] for r in doc["runs"]] == ["speech_ffnn/sgd", "speech_ffnn/adam"]


# --------------------------------------------------------------------------- resume checks

@pytest.mark.parametrize("extra,setting", [
    (("--epochs", "3"), "epochs"),
    (("--batch-size", "16"), "batch_size"),
    (("--optimizer", "sgd"), "optimizers"),
    (("--sgd-lr", "0.5"), "lr"),
])
def test_resume_with_other_settings_is_refused(cli, easy_npz, tmp_path, monkeypatch, extra, setting):
    interrupt_at(monkeypatch, 2)
    out = tmp_path / "run"
    assert cli("bench", "--data", easy_npz, *ARGS, "--out", out).exit_code == 130
    before = (out / "results.json").read_bytes()
    monkeypatch.undo()
    message = one_line_error(cli("bench", "--data", easy_npz, *ARGS, *extra, "--resume", out))
    assert "cannot resume" in message and setting in message and "results.json" in message
    assert (out / "results.json").read_bytes() == before


@pytest.mark.parametrize("text,missing", [
    ("[]", "not a JSON object"),
    ("{}", "no 'runs'"),
    ('{"runs": 3}', "'runs'"),
    ("TRUNCATE", "not valid JSON"),
    ("NO_RESULT", "'result'"),
])
def test_resume_of_a_broken_results_file(cli, easy_npz, tmp_path, text, missing):
    out = tmp_path / "run"
    assert cli("bench", "--data", easy_npz, *ARGS, "--out", out).exit_code == 0
    path = out / "results.json"
    if text == "TRUNCATE":
        text = path.read_text()[:300]
    elif text == "NO_RESULT":
        doc = json.loads(path.read_text())
        del doc["runs"][1]["result"]
        text = json.dumps(doc)
    path.write_text(text)
    message = one_line_error(cli("bench", "--data", easy_npz, *ARGS, "--resume", out))
    assert str(path) in message and missing in message


def test_the_loader_raises_a_data_error(tmp_path):
    from archcalc.bench.results import load_results
    from archcalc.errors import DataError

    path = tmp_path / "results.json"
    for text, missing in (("[]", "not a JSON object"), ('{"runs": []}', "no 'protocol'"),
                          ('{"runs": [], "protocol": {}, "environment": {}, "data": {}, "schema": 1}',
                           "environment has no 'device'"), ('{"runs": [', "not valid JSON")):
        path.write_text(text)
        with pytest.raises(DataError) as info:
            load_results(path)
        assert missing in str(info.value) and str(path) in str(info.value)


# --------------------------------------------------------------------------- one bench per folder

def test_a_folder_with_results_is_refused_without_resume(cli, easy_npz, tmp_path):
    out = tmp_path / "run"
    assert cli("bench", "--data", easy_npz, *ARGS, "--optimizer", "sgd", "--out", out).exit_code == 0
    before = (out / "results.json").read_bytes()
    message = one_line_error(cli("bench", "--data", easy_npz, *ARGS, "--out", out))
    assert "results.json" in message and f"--resume {out}" in message
    assert (out / "results.json").read_bytes() == before


def test_a_running_bench_locks_its_folder(cli, easy_npz, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (out / "bench.lock").write_text(f"{holder.pid}\n")
        message = one_line_error(cli("bench", "--data", easy_npz, *ARGS, "--out", out))
        assert f"pid {holder.pid}" in message and str(out) in message
        assert not (out / "results.json").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over_and_the_lock_is_released(cli, easy_npz, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is now free: the lock is stale
    (out / "bench.lock").write_text(f"{gone.pid}\n")
    result = cli("bench", "--data", easy_npz, *ARGS, "--optimizer", "sgd", "--out", out)
    assert result.exit_code == 0, result.output
    assert not (out / "bench.lock").exists()


def test_the_lock_is_released_after_an_error_and_an_interrupt(cli, easy_npz, tmp_path, monkeypatch):
    out = tmp_path / "run"
    result = cli("bench", "--data", tmp_path / "missing.npz", *ARGS, "--out", out)
    assert result.exit_code == 2 and not (out / "bench.lock").exists()
    interrupt_at(monkeypatch, 1)
    assert cli("bench", "--data", easy_npz, *ARGS, "--out", out).exit_code == 130
    assert not (out / "bench.lock").exists()


def test_lock_is_exclusive_in_one_process(tmp_path):
    from archcalc.bench.lock import folder_lock
    from archcalc.errors import ArchcalcError

    with folder_lock(tmp_path), pytest.raises(ArchcalcError, match=r"pid \d+"), folder_lock(tmp_path):
        pass
    with folder_lock(tmp_path):  # released: taken again
        pass


# --------------------------------------------------------------------------- strict JSON, divergence

def test_a_diverged_run_is_recorded_as_such_in_strict_json(cli, easy_npz, tmp_path):
    out = tmp_path / "run"
    result = cli("bench", "--data", easy_npz, "--epochs", "2", "--spec", "speech_ffnn", "--amp", "off",
                 "--optimizer", "sgd", "--sgd-lr", "1e30", "--drop-final-softmax", "--out", out)
    assert result.exit_code == 0, result.output
    run = strict_json(out / "results.json")["runs"][0]["result"]
    assert isinstance(run["diverged_epoch"], int) and run["diverged_epoch"] >= 1
    assert run["epochs"][-1]["epoch"] == run["diverged_epoch"]
    assert "diverged" in result.stdout and "diverged" in (out / "table.md").read_text()


def test_a_finite_run_is_not_diverged(cli, easy_npz, tmp_path):
    out = tmp_path / "run"
    assert cli("bench", "--data", easy_npz, *ARGS, "--optimizer", "adam", "--out", out).exit_code == 0
    assert strict_json(out / "results.json")["runs"][0]["result"]["diverged_epoch"] is None


# --------------------------------------------------------------------------- BatchNorm, last batch of one

def test_a_last_batch_of_one_is_merged_for_batchnorm(cli, easy_npz, tmp_path, write_spec):
    text = (SPECS / "speech_ffnn.toml").read_text().replace(
        'name = "relu1"\ntype = "ReLU"', 'name = "bn1"\ntype = "BatchNorm1d"\n\n[[layers]]\nname = "relu1"\ntype = "ReLU"')
    spec = write_spec(text.replace("total_params = 534147", ""))
    out = tmp_path / "run"
    # 96 training samples in batches of 19: five of 19 and one of 1, which BatchNorm cannot normalize
    result = cli("bench", "--data", easy_npz, "--epochs", "1", "--batch-size", "19", "--amp", "off",
                 "--spec", spec, "--optimizer", "sgd", "--out", out)
    assert result.exit_code == 0, result.output
    doc = strict_json(out / "results.json")
    assert "merged" in doc["protocol"]["last_batch"]
    assert doc["runs"][0]["result"]["curves"]["iteration"] == [1, 2, 3, 4, 5]
