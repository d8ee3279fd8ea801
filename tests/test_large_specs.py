"""Large specs: a table over 1,000 rows is printed as plain columns (rich would take minutes for
100,000), with the same columns and every name shown literally."""

from __future__ import annotations


def chain(n: int, name: str = "relu") -> str:
    return "[input]\nshape = [4]\n" + "".join(f'[[layers]]\nname = "{name}{i}"\ntype = "ReLU"\n' for i in range(n))


def test_big_table_is_plain_columns(cli, write_spec):
    result = cli("shapes", write_spec(chain(1_200)))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["#", "name"])
    assert lines[header].split() == ["#", "name", "type", "input", "output", "params", "trainable"]
    rows = lines[header + 2: header + 2 + 1_200]
    assert rows[0].split() == ["1", "relu0", "ReLU", "[4]", "[4]", "0", "0"]
    assert rows[-1].split() == ["1200", "relu1199", "ReLU", "[4]", "[4]", "0", "0"]
    assert len({len(row) for row in rows}) <= 2  # aligned columns
    assert lines[header + 2 + 1_200] == "Total params: 0"


def test_big_table_escapes_names(cli, write_spec):
    text = chain(1_001, name="x\\u001b[2J")
    result = cli("params", write_spec(text))
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout and "x\\x1b[2J0" in result.stdout
