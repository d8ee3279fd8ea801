"""Numbers typed by a user: only ASCII digits, at most MAX_DIGITS of them, budgets read exactly."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from archcalc import analyze, load_spec
from archcalc.analysis.cost import cost
from archcalc.analysis.solve import MAX_DIGITS, parse_budget, solve
from archcalc.errors import UsageError
from archcalc.symbolic import evaluate

CNN_T = ROOT / "examples" / "specs" / "speech_cnn_T.toml"
HUGE = "9" * 5000  # past the 4300 digits where int() itself raises ValueError


def one_line_error(result) -> str:
    """The result was refused with exit 2 and one ``error:`` line, no traceback."""
    err = result.stderr
    assert result.exit_code == 2, result.output
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in result.output, err
    return err


@pytest.mark.parametrize("value", ["²", "٣", "1²", "³2"])  # isdigit() takes both kinds; int() takes '٣'
def test_set_takes_ascii_digits_only(cli, value):
    err = one_line_error(cli("shapes", CNN_T, "--set", f"T={value}"))
    assert "--set 'T=" in err and "positive integer" in err


@pytest.mark.parametrize("args", [
    ["shapes", CNN_T, "--set", f"T={HUGE}"],
    ["solve", CNN_T, "--set", f"T={HUGE}"],
    ["solve", CNN_T, "--target", f"flatten={HUGE}"],
    ["solve", CNN_T, "--target", f"pool2:H={HUGE}"],
    ["solve", CNN_T, "--target", f"pool2:{HUGE}=22"],
    ["solve", CNN_T, "--max-macs", HUGE],
    ["solve", CNN_T, "--max-macs", "1" + "0" * MAX_DIGITS],
])
def test_integers_past_the_digit_limit_are_refused(cli, args):
    err = one_line_error(cli(*args))
    assert f"more than {MAX_DIGITS} digits" in err and len(err) < 200  # the value is quoted cut short


def test_integers_up_to_the_digit_limit_are_taken(cli):
    largest = "9" * MAX_DIGITS
    assert cli("solve", CNN_T, "--target", f"flatten={largest}", "--json").exit_code == 0
    assert cli("solve", CNN_T, "--max-macs", largest, "--json").exit_code == 0
    assert cli("shapes", CNN_T, "--set", "T=" + "0" * 40 + "200").exit_code == 0  # leading zeros are not digits


@pytest.mark.parametrize("budget", ["inf", "-inf", "Infinity", "nan", "NaN", "sNaN", "1e400", "1.5", "2e-1",
                                    "abc", "٣", ""])
def test_budgets_that_are_no_integer_are_refused(cli, budget):
    err = one_line_error(cli("solve", CNN_T, "--max-macs", budget))
    assert err.startswith("error: --max-macs ")


def test_budget_forms_denoting_integers_are_read_exactly():
    assert parse_budget("2e7") == 20_000_000
    assert parse_budget("2.5e3") == 2500
    assert parse_budget("123456789012345678901") == 123456789012345678901  # a float gives ...683968
    assert parse_budget("1.23456789012345678901e20") == 123456789012345678901
    with pytest.raises(UsageError) as caught:
        parse_budget("1e400")
    assert caught.value.option == "max_macs" and "--" not in str(caught.value)


def test_large_budget_is_compared_exactly(cli):
    budget = 123456789012345678901
    doc = json.loads(cli("solve", CNN_T, "--max-macs", str(budget), "--json").stdout)
    assert doc["budget"]["max_macs"] == budget
    largest = doc["budget"]["largest"]
    macs = cost(analyze(load_spec(CNN_T))).total_macs
    assert evaluate(macs, {"T": largest}) <= budget < evaluate(macs, {"T": largest + 1})


@pytest.mark.parametrize("max_macs", [float("inf"), float("nan"), 2e7, -1, True])
def test_api_budget_must_be_an_integer(max_macs):
    with pytest.raises(UsageError) as caught:
        solve(analyze(load_spec(CNN_T)), "T", [], max_macs=max_macs)
    assert caught.value.option == "max_macs" and str(caught.value).startswith("max_macs ")
