"""The speech CRNN and keyword transformer in the bench: they train, and bf16 autocast stays off for
recurrent and attention layers unless asked for, with the reason in results.json."""

from __future__ import annotations

import json

import pytest
from test_bench import easy_data

from archcalc.bench.protocol import plan_models, resolve_amp
from archcalc.bench.train import auto_micro_batch, bf16_supported
from archcalc.data.arrays import save_npz
from archcalc.pytorch.build import build
from archcalc.spec.reader import bundled_spec, load_spec


def test_sequence_models_train_in_float32_by_default(cli, tmp_path):
    data = save_npz(easy_data(n=24), tmp_path / "easy.npz")
    out = tmp_path / "run"
    result = cli("bench", "--spec", "speech_crnn", "--spec", "speech_kwt", "--data", data, "--epochs", "1",
                 "--optimizer", "adam", "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["protocol"]["amp"] == "off"
    if bf16_supported("cpu"):  # where auto would have chosen bf16, the protocol says why it did not
        assert "off for speech_crnn, speech_kwt: recurrent or attention layers" in doc["protocol"]["amp_note"]
        assert doc["protocol"]["amp_off_for"] == ["speech_crnn", "speech_kwt"]
        assert "amp off (auto; recurrent or attention layers)" in " ".join(result.stdout.split())
    assert {run["model"] for run in doc["runs"]} == {"speech_crnn", "speech_kwt"}
    assert all(run["result"]["params"] in (153_459, 69_763) for run in doc["runs"])


@pytest.mark.skipif(not bf16_supported("cpu"), reason="this CPU has no bf16: auto is off for every model")
def test_auto_amp_is_decided_per_model(cli, tmp_path):
    """A conv model keeps bf16 beside a transformer in the same bench; the caption says which is off."""
    data = save_npz(easy_data(n=24), tmp_path / "easy.npz")
    out = tmp_path / "run"
    result = cli("bench", "--spec", "speech_cnn", "--spec", "speech_kwt", "--data", data, "--epochs", "1",
                 "--optimizer", "adam", "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    amp = {run["model"]: run["result"]["config"]["amp"] for run in doc["runs"]}
    assert amp == {"speech_cnn": "bf16", "speech_kwt": "off"}
    assert doc["protocol"]["amp"] == "bf16" and doc["protocol"]["amp_off_for"] == ["speech_kwt"]
    assert "amp bf16 (off for speech_kwt: recurrent or attention layers)" in " ".join(result.stdout.split())
    assert "off for speech_kwt" in (out / "table.md").read_text()
    resumed = cli("bench", "--spec", "speech_cnn", "--spec", "speech_kwt", "--data", data, "--epochs", "1",
                  "--optimizer", "adam", "--resume", out)
    assert resumed.exit_code == 0, resumed.output  # the per-model settings match the finished runs


def test_resolve_amp_and_micro_batch_per_kind(tmp_path):
    data = easy_data(n=12)
    plans = {p.spec.name: p for p in plan_models([load_spec(bundled_spec(n)) for n in
                                                  ("speech_cnn", "speech_crnn", "speech_kwt")], data, ["spec"])}
    assert resolve_amp("off", "cpu", plans["speech_cnn"]) == "off"
    assert resolve_amp("auto", "cpu", plans["speech_kwt"]) == "off"
    assert resolve_amp("auto", "cpu", plans["speech_crnn"]) == "off"
    assert resolve_amp("auto", "cpu", plans["speech_cnn"]) == ("bf16" if bf16_supported("cpu") else "off")
    # micro-batching: on for the transformer (per-sample maths), off for the CRNN (BatchNorm)
    assert auto_micro_batch(build(plans["speech_kwt"].spec), "cpu") == 64
    assert auto_micro_batch(build(plans["speech_kwt"].spec), "cuda") == 0
    assert auto_micro_batch(build(plans["speech_crnn"].spec), "cpu") == 0


def test_micro_batched_transformer_gets_the_same_weights_without_dropout():
    """Slices of the batch give the whole batch's gradient (up to rounding) for attention models;
    with dropout 0 the two runs must agree."""
    import torch

    from archcalc.bench.train import TrainConfig, to_device, train
    from archcalc.spec.reader import parse_spec

    text = bundled_spec("speech_kwt").read_text().replace("dropout = 0.1", "dropout = 0.0")
    assert "dropout = 0.0" in text
    data = easy_data(n=48)
    weights = []
    for micro_batch in (0, 8):
        torch.manual_seed(0)
        model = build(parse_spec(text, "kwt.toml"))
        config = TrainConfig(epochs=1, batch_size=24, amp="off", val_every=0, micro_batch=micro_batch)
        train(model, to_device(data, (1, 101, 40), "cpu", config.channels_last), config)
        weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    for name, value in weights[0].items():
        assert torch.allclose(value, weights[1][name], rtol=1e-4, atol=1e-5), name


@pytest.mark.skipif(not bf16_supported("cpu"), reason="this CPU has no bf16")
def test_resume_refuses_another_autocast_for_a_finished_run(cli, tmp_path):
    data = save_npz(easy_data(n=24), tmp_path / "easy.npz")
    out = tmp_path / "run"
    args = ("bench", "--spec", "speech_cnn", "--spec", "speech_kwt", "--data", data, "--epochs", "1",
            "--optimizer", "adam")
    assert cli(*args, "--out", out).exit_code == 0  # auto: bf16 for the CNN, float32 for the transformer
    doc = json.loads((out / "results.json").read_text())
    unfinished = {**doc, "runs": doc["runs"][:1], "complete": False}  # the transformer's run not finished
    (out / "results.json").write_text(json.dumps(unfinished))
    result = cli(*args, "--amp", "bf16", "--resume", out)  # would train the transformer in bf16
    assert result.exit_code == 2 and "used amp_off_for ['speech_kwt'], this bench []" in result.stderr, result.output
    doc["runs"][0]["result"]["config"]["amp"] = "off"  # a finished run recorded with another autocast
    (out / "results.json").write_text(json.dumps({**doc, "complete": False}))
    result = cli(*args, "--resume", out)
    assert result.exit_code == 2 and "speech_cnn/adam ran with amp off, this bench bf16" in result.stderr, result.output
