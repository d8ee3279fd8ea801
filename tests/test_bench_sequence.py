"""The speech CRNN and keyword transformer in the bench: they train, and bf16 autocast stays off for
recurrent and attention layers unless asked for, with the reason in results.json."""

from __future__ import annotations

import json

from test_bench import easy_data

from archcalc.bench.train import bf16_supported
from archcalc.data.arrays import save_npz


def test_sequence_models_train_in_float32_by_default(cli, tmp_path):
    data = save_npz(easy_data(n=24), tmp_path / "easy.npz")
    out = tmp_path / "run"
    result = cli("bench", "--spec", "speech_crnn", "--spec", "speech_kwt", "--data", data, "--epochs", "1",
                 "--optimizer", "adam", "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["protocol"]["amp"] == "off"
    if bf16_supported("cpu"):  # where auto would have chosen bf16, the protocol says why it did not
        assert "speech_crnn, speech_kwt has recurrent or attention layers" in doc["protocol"]["amp_note"]
    assert {run["model"] for run in doc["runs"]} == {"speech_crnn", "speech_kwt"}
    assert all(run["result"]["params"] in (153_459, 69_763) for run in doc["runs"])
