"""Training and the bench: reproducible, correct maths on the fast path, honest outputs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from conftest import GOLDEN, SPECS
from torch import nn

from archcalc import build, bundled_spec, load_spec, parse_spec
from archcalc.bench.protocol import fmt_hms
from archcalc.bench.train import TrainConfig, to_device, train
from archcalc.data.arrays import SpeechData, save_npz


def easy_data(n: int = 96, seed: int = 0, noise: float = 1.0) -> SpeechData:
    """Three learnable classes of 101x40 features: a class-dependent band plus noise."""
    rng = np.random.default_rng(seed)
    X, y = {}, {}
    for split, size in (("train", n), ("val", n // 2), ("test", n // 2)):
        labels = np.arange(size) % 3
        feats = rng.normal(0, noise, (size, 101, 40)).astype(np.float32)
        for c in range(3):
            feats[labels == c, 30:70, 8 + 10 * c:14 + 10 * c] += 2.0
        X[split], y[split] = feats, labels
    return SpeechData(X=X, y=y, classes=("yes", "no", "up"), source="easy")


@pytest.fixture
def easy_npz(tmp_path):
    return save_npz(easy_data(), tmp_path / "easy.npz")


FP32 = TrainConfig(epochs=3, batch_size=32, amp="off", channels_last=False, val_every=1)


def run(spec_name: str, config: TrainConfig, data: SpeechData | None = None):
    data = data or easy_data()
    torch.manual_seed(config.seed)
    model = build(load_spec(bundled_spec(spec_name)))
    torch.manual_seed(config.seed)
    return model, train(model, to_device(data, (1, 101, 40), "cpu", config.channels_last), config)


def test_same_seed_same_losses():
    _, a = run("speech_cnn", FP32)
    _, b = run("speech_cnn", FP32)
    assert a.curves.train_loss == b.curves.train_loss and a.curves.val_acc == b.curves.val_acc
    assert a.test_accuracy == b.test_accuracy
    _, c = run("speech_cnn", TrainConfig(**{**FP32.__dict__, "seed": 1}))
    assert c.curves.train_loss != a.curves.train_loss


def test_curves_go_down_on_an_easy_set():
    config = TrainConfig(optimizer="adam", epochs=8, batch_size=32, amp="off", val_every=0)
    _, result = run("speech_ffnn", config, easy_data(n=150, noise=0.5))
    losses = [e["train_loss"] for e in result.epochs]
    assert losses[-1] < losses[0] - 0.1
    assert result.test_accuracy > 0.9
    assert len(result.curves.iteration) == 8 * 5 and len(result.curves.val_iteration) == 8


def naive_weights(spec_name: str, data: SpeechData, steps: int, batch: int = 32) -> dict[str, torch.Tensor]:
    """The textbook loop: DataLoader, shuffle, SGD; fp32."""
    torch.manual_seed(0)
    model = build(load_spec(bundled_spec(spec_name)))
    mean, std = data.X["train"].mean(dtype=np.float64), data.X["train"].std(dtype=np.float64)
    x = torch.from_numpy((data.X["train"] - mean) / std).float().unsqueeze(1)
    # the same batches as archcalc's loop: one permutation from a generator seeded with the run's seed
    # (DataLoader(shuffle=True) would draw a worker seed from the generator first)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0)).tolist()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.from_numpy(data.y["train"])),
                                         batch_size=batch, sampler=order)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-5)
    for i, (xb, yb) in enumerate(loader):
        if i == steps:
            break
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(xb), yb).backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("channels_last,micro_batch", [(False, 0), (True, 0), (False, 16), (True, 16)])
def test_fast_loop_changes_speed_not_maths(channels_last, micro_batch):
    data = easy_data(n=96)
    expected = naive_weights("speech_cnn", data, steps=2, batch=48)
    config = TrainConfig(epochs=1, batch_size=48, amp="off", channels_last=channels_last, val_every=0,
                         micro_batch=micro_batch)
    model, _ = run("speech_cnn", config, data)  # 96 / 48 = 2 steps, each over 3 slices of 16
    for name, value in model.state_dict().items():
        assert torch.allclose(value, expected[name], rtol=1e-4, atol=1e-5), name


def test_micro_batch_is_automatic_only_where_it_keeps_the_maths():
    from archcalc.bench.train import auto_micro_batch

    cnn, ffnn = build(load_spec(bundled_spec("speech_cnn"))), build(load_spec(bundled_spec("speech_ffnn")))
    assert auto_micro_batch(cnn, "cpu") == 32
    assert auto_micro_batch(cnn, "cuda") == 0  # nothing to gain on a GPU
    assert auto_micro_batch(ffnn, "cpu") == 0  # GEMMs prefer the whole batch
    text = (SPECS / "speech_cnn.toml").read_text().replace(
        'name = "relu1"\ntype = "ReLU"', 'name = "bn1"\ntype = "BatchNorm2d"')
    assert "BatchNorm2d" in text
    assert auto_micro_batch(build(parse_spec(text, "bn.toml")), "cpu") == 0  # batch statistics


def test_end_to_end_bench_writes_results(cli, easy_npz, tmp_path):
    out = tmp_path / "run"
    result = cli("bench", "--data", easy_npz, "--epochs", "2", "--batch-size", "32", "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["complete"] and doc["schema"] == 1
    assert [r["id"] for r in doc["runs"]] == ["speech_cnn/sgd", "speech_cnn/adam", "speech_ffnn/sgd",
                                              "speech_ffnn/adam"]
    run0 = doc["runs"][0]["result"]
    assert run0["params"] == 346067 and 0 <= run0["test_accuracy"] <= 1 and run0["train_time_s"] > 0
    assert run0["config"]["lr"] == 0.01 and run0["config"]["momentum"] == 0.9
    assert run0["config"]["weight_decay"] == 1e-5 and doc["runs"][1]["result"]["config"]["lr"] == 0.001
    assert len(run0["curves"]["iteration"]) == 2 * 3 and len(run0["epochs"]) == 2
    assert doc["data"]["digest"] and doc["environment"]["torch_version"] == torch.__version__
    assert {"mean", "std"} <= set(doc["normalization"])
    png = (out / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    table = (out / "table.md").read_text()
    assert "| speech_cnn | SGD | 346,067 |" in table and "| speech_ffnn | Adam | 534,147 |" in table
    assert "Softmax" in result.stderr and "two softmaxes" in result.stderr  # warned once
    assert result.stderr.count("two softmaxes") == 1
    assert "346,067" in result.stdout and "training time" in result.stdout


def test_both_heads_and_json(cli, easy_npz, tmp_path):
    result = cli("bench", "--data", easy_npz, "--epochs", "1", "--batch-size", "48", "--spec", "speech_ffnn",
                 "--both-heads", "--optimizer", "adam", "--out", tmp_path / "r", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [(r["id"], r["head"]) for r in doc["runs"]] == [("speech_ffnn/adam", "softmax"),
                                                          ("speech_ffnn/adam/logits", "logits")]
    result = cli("bench", "--data", easy_npz, "--epochs", "1", "--spec", "speech_ffnn", "--optimizer",
                 "sgd", "--drop-final-softmax", "--out", tmp_path / "d")
    assert result.exit_code == 0 and "two softmaxes" not in result.stderr


def test_interrupted_bench_keeps_finished_runs_and_resumes(cli, easy_npz, tmp_path, monkeypatch):
    import archcalc.bench.train as train_module

    real_train = train_module.train
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(train_module, "train", flaky)
    out = tmp_path / "run"
    args = ("--data", easy_npz, "--epochs", "1", "--spec", "speech_ffnn")
    result = cli("bench", *args, "--out", out)
    assert result.exit_code == 130 and "1 finished run(s) kept" in result.stderr
    doc = json.loads((out / "results.json").read_text())
    assert not doc["complete"] and [r["id"] for r in doc["runs"]] == ["speech_ffnn/sgd"]
    result = cli("bench", *args, "--resume", out)
    assert result.exit_code == 0, result.output
    assert "speech_ffnn/sgd: finished earlier, skipped" in result.stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["complete"] and [r["id"] for r in doc["runs"]] == ["speech_ffnn/sgd", "speech_ffnn/adam"]


def test_spec_train_table_sets_the_protocol(cli, easy_npz, tmp_path, write_spec):
    text = (SPECS / "speech_ffnn.toml").read_text() + "\n[train]\nepochs = 2\nadam_lr = 0.005\n"
    path = write_spec(text)
    result = cli("bench", "--data", easy_npz, "--spec", path, "--optimizer", "adam", "--out", tmp_path / "r",
                 "--json")
    run = json.loads(result.stdout)["runs"][0]["result"]
    assert run["config"]["epochs"] == 2 and run["config"]["lr"] == 0.005
    bad = write_spec(text.replace("adam_lr", "adam_rl"), "bad.toml")
    result = cli("bench", "--data", easy_npz, "--spec", bad, "--out", tmp_path / "r2")
    assert result.exit_code == 2 and "did you mean 'adam_lr'" in result.stderr


@pytest.mark.parametrize("args,message", [
    (["--device", "cuda"], "CUDA is not available"),
    (["--optimizer", "rmsprop"], "use sgd or adam"),
    (["--amp", "fp8"], "use auto, bf16 or off"),
    (["--drop-final-softmax", "--both-heads"], "exclude each other"),
])
def test_bad_flags(cli, easy_npz, tmp_path, args, message):
    if args[:2] == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    result = cli("bench", "--data", easy_npz, "--out", tmp_path / "r", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_bad_inputs_write_nothing(cli, easy_npz, tmp_path, write_spec):
    four = write_spec((SPECS / "speech_ffnn.toml").read_text().replace("out_features = 3", "out_features = 4")
                      .replace("expect_params = 387", "").replace("total_params = 534147", "")
                      .replace("expect_shape = [3]", "").replace("output_shape = [3]", ""))
    out = tmp_path / "r"
    result = cli("bench", "--data", easy_npz, "--spec", four, "--out", out)
    assert result.exit_code == 2 and "output shape [4], but the data has 3 classes" in result.stderr
    assert not (out / "results.json").exists()
    wrong = tmp_path / "wrong.npz"
    d = easy_data()
    save_npz(SpeechData({s: x[:, :, :39] for s, x in d.X.items()}, d.y, d.classes), wrong)
    result = cli("bench", "--data", wrong, "--out", out)
    assert result.exit_code == 2 and "do not fit the input [1, 101, 40]" in result.stderr


def test_out_folder_without_write_permission(cli, easy_npz, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("running as a user who can write anywhere")
    result = cli("bench", "--data", easy_npz, "--out", locked / "run")
    assert result.exit_code == 2 and "cannot create it" in result.stderr


def test_unwritable_out_as_root_is_refused(cli, easy_npz, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli("bench", "--data", easy_npz, "--out", blocker / "run")
    assert result.exit_code == 2 and "--out" in result.stderr


def test_hms_format():
    assert fmt_hms(6 * 3600 + 10 * 60) == "6:10:00.000000"
    assert fmt_hms(61.5) == "0:01:01.500000"
    assert fmt_hms(0.9999999) == "0:00:01.000000"


def test_comparison_table_golden(monkeypatch):
    from archcalc.render.bench import markdown_table, print_comparison
    from archcalc.render.console import make_console

    doc = json.loads((GOLDEN / "bench_results.json").read_text())
    monkeypatch.setenv("COLUMNS", "80")
    console = make_console()
    monkeypatch.setattr("archcalc.render.bench.make_console", lambda: console)
    with console.capture() as captured:
        print_comparison(doc)
    for name, text in (("bench_table.txt", captured.get()), ("bench_table.md", markdown_table(doc))):
        if os.environ.get("ARCHCALC_UPDATE_GOLDEN"):
            (GOLDEN / name).write_text(text)
        assert text == (GOLDEN / name).read_text()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_matches_the_protocol():
    config = TrainConfig(epochs=1, batch_size=32, device="cuda", amp="off", val_every=0)
    _, result = run("speech_cnn", config)
    assert result.peak_memory_kind.startswith("cuda") and result.peak_memory_bytes > 0


def test_one_specs_train_table_does_not_leak_into_other_runs(cli, easy_npz, tmp_path, write_spec):
    first = write_spec((SPECS / "speech_ffnn.toml").read_text().replace('name = "speech_ffnn"', 'name = "tuned"')
                       + "\n[train]\nepochs = 1\nsgd_lr = 0.05\n", "tuned.toml")
    plain = write_spec((SPECS / "speech_ffnn.toml").read_text() + "\n[train]\nepochs = 2\n", "plain.toml")
    result = cli("bench", "--data", easy_npz, "--spec", first, "--spec", plain, "--out", tmp_path / "r", "--json")
    assert result.exit_code == 0, result.output
    configs = {r["id"]: r["result"]["config"] for r in json.loads(result.stdout)["runs"]}
    assert (configs["tuned/sgd"]["lr"], configs["tuned/sgd"]["epochs"]) == (0.05, 1)
    assert (configs["tuned/adam"]["lr"], configs["tuned/adam"]["epochs"]) == (0.001, 1)
    assert (configs["speech_ffnn/sgd"]["lr"], configs["speech_ffnn/sgd"]["epochs"]) == (0.01, 2)
