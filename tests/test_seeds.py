"""bench --seeds: statistics over seeds (Student t intervals, Welch differences) checked against
published values, and the bench's table, curves and resume with several seeds."""

from __future__ import annotations

import json
import math

import pytest
from test_bench import easy_data

from archcalc.bench.stats import mean_std, summarize, t_quantile, welch
from archcalc.data.arrays import save_npz

# --------------------------------------------------------------------------- statistics

# R: t.test(extra ~ group, data = sleep), Welch: t = -1.8608, df = 17.776, p-value = 0.07939,
# 95 percent confidence interval -3.3654832 0.2054832
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
# Wikipedia, Welch's t-test, example 1: t = -2.46, df = 25.0, p = 0.021
WIKI_1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
WIKI_2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


@pytest.mark.parametrize("df,quantile", [(1, 12.706204736), (4, 2.776445105), (9, 2.262157163),
                                         (30, 2.042272456)])
def test_t_quantiles_are_the_tables(df, quantile):
    assert t_quantile(0.975, df) == pytest.approx(quantile, abs=1e-8)


def test_t_interval_of_a_mean():
    s = summarize([1, 2, 3, 4, 5])
    assert (s.n, s.mean) == (5, 3.0) and s.std == pytest.approx(math.sqrt(2.5))
    # 3 ± 2.776445 * 1.5811388 / sqrt(5)
    assert (s.low, s.high) == pytest.approx((3 - 1.963243161, 3 + 1.963243161), abs=1e-8)
    one = summarize([0.7])
    assert (one.mean, one.std, one.low, one.high) == (0.7, None, None, None)
    assert mean_std([0.25, 0.25]) == (0.25, 0.0)


def test_welch_matches_r_on_the_sleep_data():
    d = welch(SLEEP_1, SLEEP_2)
    assert d is not None
    assert d.diff == pytest.approx(-1.58)
    assert d.t == pytest.approx(-1.860813, abs=1e-6) and d.df == pytest.approx(17.77647, abs=1e-5)
    assert d.p == pytest.approx(0.07939414, abs=1e-7)
    assert (d.low, d.high) == pytest.approx((-3.3654832, 0.2054832), abs=1e-7)
    assert not d.excludes_zero


def test_welch_matches_the_wikipedia_example_and_scipy():
    from scipy import stats

    d = welch(WIKI_1, WIKI_2)
    assert d is not None
    assert round(d.t, 2) == -2.46 and round(d.df, 1) == 25.0 and round(d.p, 3) == 0.021
    assert d.excludes_zero and d.high < 0
    reference = stats.ttest_ind(WIKI_1, WIKI_2, equal_var=False)
    assert d.t == pytest.approx(reference.statistic, rel=1e-12) and d.p == pytest.approx(reference.pvalue, rel=1e-10)


def test_welch_edge_cases():
    assert welch([0.5], [0.4, 0.6]) is None  # one value has no spread to test against
    exact = welch([0.9, 0.9], [0.8, 0.8])
    assert exact is not None and exact.df is None and exact.low == exact.high == pytest.approx(0.1)
    assert exact.p == 0.0 and exact.excludes_zero
    same = welch([0.5, 0.5], [0.5, 0.5])
    assert same is not None and same.p == 1.0 and not same.excludes_zero
    # one side without spread: the degrees of freedom are the other side's n - 1
    one_sided = welch([0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.4])
    assert one_sided is not None and one_sided.df == pytest.approx(3.0)


# --------------------------------------------------------------------------- bench --seeds

ARGS = ("--epochs", "1", "--batch-size", "16", "--spec", "speech_ffnn", "--amp", "off")


@pytest.fixture
def small_npz(tmp_path):
    return save_npz(easy_data(n=48), tmp_path / "small.npz")


def test_bench_with_seeds_shows_intervals_and_differences(cli, small_npz, tmp_path, write_spec):
    from conftest import SPECS

    logits = write_spec((SPECS / "speech_ffnn.toml").read_text().replace('name = "speech_ffnn"',
                                                                         'name = "ffnn_b"'))
    out = tmp_path / "r"
    result = cli("bench", "--data", small_npz, *ARGS, "--spec", logits, "--seeds", "2", "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    ids = [r["id"] for r in doc["runs"]]
    assert ids == [f"{m}/{o}/seed={s}" for m in ("speech_ffnn", "ffnn_b") for o in ("sgd", "adam") for s in (0, 1)]
    assert doc["protocol"]["seeds"] == [0, 1] and doc["complete"]
    assert [r["result"]["config"]["seed"] for r in doc["runs"][:2]] == [0, 1]
    run = doc["runs"][0]
    assert len(run["weights_sha256"]) == 16 and run["threads"] >= 1
    assert set(run["load"]) == {"before", "peak", "after", "cpu_count"}
    # the same spec under two names: same seeds, same weights
    assert doc["runs"][0]["weights_sha256"] == doc["runs"][4]["weights_sha256"]
    assert doc["runs"][0]["weights_sha256"] != doc["runs"][1]["weights_sha256"]
    text = result.stdout
    assert "Comparison over seeds" in text and "seeds 0,1" in text and "Differences (Welch)" in text
    assert "speech_ffnn - ffnn_b" in text and "Adam - SGD" in text
    table = (out / "table.md").read_text()
    assert "| difference | pp | 95% CI (pp) | p | excludes 0 |" in table
    assert "| speech_ffnn - ffnn_b (SGD) |" in table and "| speech_ffnn - ffnn_b (Adam) |" in table
    assert "| Adam - SGD (speech_ffnn) |" in table
    assert (out / "curves.png").stat().st_size > 1000


def test_seed_lists_and_their_errors(cli, small_npz, tmp_path):
    out = tmp_path / "r"
    result = cli("bench", "--data", small_npz, *ARGS, "--optimizer", "adam", "--seed", "3,5,4", "--out", out,
                 "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [r["id"] for r in doc["runs"]] == ["speech_ffnn/adam/seed=3", "speech_ffnn/adam/seed=5",
                                              "speech_ffnn/adam/seed=4"]
    for args, message in ((["--seed", "x"], "--seed 'x': write a seed from 0 to"),
                          (["--seed", "1,1"], "a seed is repeated"),
                          (["--seed", "1,2", "--seeds", "3"], "exclude each other"),
                          (["--seeds", "0"], "invalid value for '--seeds'")):
        bad = cli("bench", "--data", small_npz, *ARGS, *args, "--out", tmp_path / "x")
        assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and message in bad.stderr, bad.stderr
    # a resume with other seeds is refused, naming them
    again = cli("bench", "--data", small_npz, *ARGS, "--optimizer", "adam", "--seeds", "2", "--resume", out)
    assert again.exit_code == 2 and "seeds [3, 5, 4], this bench [0, 1]" in again.stderr, again.stderr


def test_one_seed_keeps_the_single_run_table(cli, small_npz, tmp_path):
    result = cli("bench", "--data", small_npz, *ARGS, "--optimizer", "sgd", "--seed", "2", "--out", tmp_path / "r",
                 "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [r["id"] for r in doc["runs"]] == ["speech_ffnn/sgd"] and doc["protocol"]["seeds"] == [2]
    from archcalc.render.bench import markdown_table

    assert "seed 2," in markdown_table(doc) and "Differences" not in markdown_table(doc)


def test_a_busy_machine_is_said_in_the_caption():
    from archcalc.bench.summary import busy_note

    def run(before, peak, after):
        return {"load": {"before": before, "peak": peak, "after": after, "cpu_count": 2}}

    assert busy_note([run(1.0, 2.0, 1.5), run(None, None, None), {}]) == ""
    note = busy_note([run(1.0, 3.6, 1.5), run(2.1, 2.0, 1.9), run(0.5, 1.0, 1.0)])
    assert note == (" The machine was busier than its 2 cores during 2 of 3 runs (load average up to 3.6): "
                    "those training times are not comparable.")


def test_diverged_runs_are_left_out_of_the_statistics():
    from archcalc.render.bench import markdown_table

    def run(seed, acc, diverged=None):
        return {"id": f"m/sgd/seed={seed}", "model": "m", "head": "logits",
                "result": {"optimizer": "sgd", "config": {"seed": seed}, "params": 10, "test_accuracy": acc,
                           "train_time_s": 1.0, "diverged_epoch": diverged}}

    doc = {"environment": {"device_name": "cpu", "device": "cpu", "threads": 2, "torch_version": "2"},
           "data": {"digest": "d", "sizes": {"train": 1, "val": 1, "test": 1}},
           "protocol": {"epochs": 1, "batch_size": 1, "seed": 0, "seeds": [0, 1, 2], "amp": "off",
                        "channels_last": True},
           "runs": [run(0, 0.5), run(1, 0.7), run(2, 0.33, diverged=1)]}
    table = markdown_table(doc)
    assert "| m | SGD | 10 | 2 | 60.00 ± 14.14% |" in table
    from archcalc.render.bench import table_rows

    assert table_rows(doc) == [["m", "SGD", "10", "2", "60.00 ± 14.14%", "0.00-100.00", "0:00:01.00"]]  # report
    assert "left out of the accuracy statistics: m/sgd/seed=2 (epoch 1)" in table
