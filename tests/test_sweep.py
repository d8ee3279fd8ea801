"""archcalc sweep: the sweep file validated like a spec, runs here, in --jobs workers and on Ray,
resumed, surviving a killed Ray worker, and bit-identical wherever a run executes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from test_bench import easy_data

from archcalc.bench.sweep import parse_sweep
from archcalc.data.arrays import save_npz
from archcalc.errors import UsageError

# --------------------------------------------------------------------------- the sweep file


def sweep_error(text: str) -> str:
    with pytest.raises(UsageError) as caught:
        parse_sweep(text, "grid.toml")
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("text,expected", [
    ("[grid]\nlrr = [0.1]\n", "grid.toml:2: [grid] has no key 'lrr' (did you mean 'lr'?)"),
    ("[grid]\nlr = 0.1\n", ("grid.toml:2: [grid] lr must be a non-empty list of values, got 0.1 (a fixed value "
                            "belongs in [train])")),
    ("[grid]\nlr = []\n", "grid.toml:2: [grid] lr must be a non-empty list"),
    ("[grid]\noptimizer = [\"sgd\", \"rmsprop\"]\n", "grid.toml:2: [grid] optimizer: 'rmsprop' is not an optimizer"),
    ("[grid]\nseed = [0, 1, 0]\n", "grid.toml:2: [grid] seed lists 0 twice"),
    ("[grid]\nbatch_size = [32, 0]\n", "grid.toml:2: [grid] batch_size must be from 1 to"),
    ("[grid]\nepochs = [1.5]\n", "grid.toml:2: [grid] epochs must be an integer, got 1.5"),
    ("[grid]\nlr = [nan]\n", "grid.toml:2: [grid] lr must be a finite number >= 0, got nan"),
    ("[grid]\namp = [\"fp16\"]\n", "grid.toml:2: [grid] amp must be one of auto, off, bf16, got 'fp16'"),
    ("# a comment\n[train]\nepochs = 1\nepoch = 2\n", ("grid.toml:4: [train] has no key 'epoch' (did you mean "
                                                       "'epochs'?)")),
    ("[grid]\nlr = [0.1]\n[train]\nlr = 0.2\n", "grid.toml:4: lr is both swept in [grid] and fixed in [train]"),
    ("[train]\nlr = 0.1\nsgd_lr = 0.2\n", "grid.toml:3: lr and sgd_lr both set the SGD lr: keep one"),
    ("[grid]\nmomentum = [0.5, 0.9]\n", "grid.toml:2: [grid] momentum acts on sgd runs only: with adam in the grid"),
    ("[grids]\n", "grid.toml: unknown table [grids] (did you mean 'grid'?)"),
    ("[data]\npath = \"a.npz\"\nsynth_n = 60\n", "grid.toml:3: [data] path and synth_n exclude each other"),
    ("[grid\n", "grid.toml:1: invalid TOML"),
    ("[train]\nspec = \"x\"\n", "grid.toml:2: [train] has no key 'spec'"),
])
def test_sweep_file_errors_name_file_line_and_key(text, expected):
    assert sweep_error(text).startswith(expected)


def test_a_valid_sweep_file():
    sweep = parse_sweep('[grid]\nseed = [2, 3]\nspec = ["a.toml"]\nlr = [1, 0.5]\n[train]\nepochs = 2\n'
                        '[data]\nsynth_n = 60\n', "g.toml", Path("/x"))
    assert list(sweep.grid) == ["spec", "lr", "seed"] and sweep.grid["lr"] == [1.0, 0.5]
    assert sweep.seeds == [2, 3] and sweep.swept == ["spec", "lr"] and sweep.synth_n == 60
    assert parse_sweep("[train]\nseed = 7\n").seeds == [7]


def test_specs_are_bundled_names_or_paths_relative_to_the_sweep_file(tmp_path):
    from conftest import SPECS

    from archcalc.bench.sweep import load_specs
    from archcalc.cli.common import resolve_spec

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.toml").write_text((SPECS / "speech_ffnn.toml").read_text().replace(
        'name = "speech_ffnn"', 'name = "mine"'))
    sweep = parse_sweep('[grid]\nspec = ["speech_cnn", "sub/mine.toml"]\n', "g.toml", tmp_path)
    assert {w: name for w, (name, _, _) in load_specs(sweep, resolve_spec).items()} == {
        "speech_cnn": "speech_cnn", "sub/mine.toml": "mine"}
    twice = parse_sweep('[grid]\nspec = ["speech_ffnn", "sub/mine.toml"]\n', "g.toml", tmp_path)
    (tmp_path / "sub" / "mine.toml").write_text((SPECS / "speech_ffnn.toml").read_text())
    with pytest.raises(UsageError, match="two specs are named 'speech_ffnn'"):
        load_specs(twice, resolve_spec)


# --------------------------------------------------------------------------- running a sweep

@pytest.fixture
def grid(tmp_path):
    """A 4-run sweep (2 points x 2 seeds) of the FFNN on 48 training samples."""
    save_npz(easy_data(n=48), tmp_path / "small.npz")
    path = tmp_path / "grid.toml"
    path.write_text('[grid]\nspec = ["speech_ffnn"]\noptimizer = ["adam"]\nlr = [0.01, 0.001]\nseed = [0, 1]\n'
                    '[train]\nepochs = 2\nbatch_size = 16\namp = "off"\n[data]\npath = "small.npz"\n')
    return path


IDS = ["speech_ffnn/adam/lr=0.01/seed=0", "speech_ffnn/adam/lr=0.01/seed=1",
       "speech_ffnn/adam/lr=0.001/seed=0", "speech_ffnn/adam/lr=0.001/seed=1"]


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_sweep_here_writes_table_figure_and_resumes(cli, grid, tmp_path, monkeypatch):
    from archcalc.bench import executors

    real, calls = executors.execute, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(executors, "execute", interrupted)
    out = tmp_path / "s"
    result = cli("sweep", grid, "--out", out)
    assert result.exit_code == 130 and "2 finished run(s) kept" in result.stderr
    doc = results(out)
    assert [r["id"] for r in doc["runs"]] == IDS[:2] and not doc["complete"]
    monkeypatch.undo()
    result = cli("sweep", grid, "--resume", out)
    assert result.exit_code == 0, result.output
    assert "2 of 4 runs finished earlier, skipped" in result.stderr
    doc = results(out)
    assert [r["id"] for r in doc["runs"]] == IDS and doc["complete"]
    assert doc["runs"][0]["point"] == {"spec": "speech_ffnn", "optimizer": "adam", "lr": 0.01}
    assert [r["result"]["config"]["lr"] for r in doc["runs"]] == [0.01, 0.01, 0.001, 0.001]
    assert [s["runs"] for s in doc["sweep"]["sessions"]] == [2, 2]
    table = (out / "table.md").read_text()
    assert "| spec | optimizer | lr | n | test accuracy | 95% CI | training time |" in table
    assert "| speech_ffnn | Adam | 0.001 | 2 |" in table and "runs per hour (one at a time" in table
    assert (out / "accuracy.png").stat().st_size > 1000
    assert "Sweep (test accuracy over seeds)" in result.stdout


@pytest.mark.parametrize("change,named", [
    (("lr = [0.01, 0.001]", "lr = [0.01]"), "[grid] lr was [0.01, 0.001] there, is [0.01] in"),
    (("epochs = 2", "epochs = 1"), "[train] epochs was 2 there, is 1 in"),
    (("seed = [0, 1]", "seed = [0, 1, 2]"), "[grid] seed was [0, 1] there, is [0, 1, 2]"),
])
def test_resume_refuses_another_grid_or_protocol(cli, grid, tmp_path, change, named):
    out = tmp_path / "s"
    result = cli("sweep", grid, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    doc = results(out)
    grid.write_text(grid.read_text().replace(*change))
    result = cli("sweep", grid, "--resume", out)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert named in result.stderr
    assert results(out) == doc  # nothing written


def test_sweep_usage_errors(cli, grid, tmp_path):
    for args, message in ((["--jobs", "2", "--ray"], "--jobs and --ray exclude each other"),
                          (["--jobs", "0"], "invalid value for '--jobs'")):
        result = cli("sweep", grid, *args, "--out", tmp_path / "x")
        assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    result = cli("sweep", tmp_path / "nope.toml")
    assert result.exit_code == 2 and "nope.toml: no such file" in result.stderr
    out = tmp_path / "taken"
    out.mkdir()
    (out / "results.json").write_text("{}")
    result = cli("sweep", grid, "--out", out)
    assert result.exit_code == 2 and "holds results.json" in result.stderr


# --------------------------------------------------------------------------- the same bits everywhere

def fingerprint(run: dict) -> tuple:
    r = run["result"]
    return (run["weights_sha256"], r["test_accuracy"], r["test_loss"], r["curves"]["train_loss"],
            r["curves"]["val_acc"])


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs for this module's tests, shut down after them."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_a_run_is_bit_identical_alone_in_a_pool_and_on_ray(cli, grid, tmp_path, ray_cluster):
    """One thread per run everywhere: alone (bench), here, in --jobs 2 workers and as Ray tasks."""
    runs = {}
    for name, args in (("here", []), ("jobs", ["--jobs", "2"]), ("ray", ["--ray"])):
        result = cli("sweep", grid, "--threads", "1", "--out", tmp_path / name, *args)
        assert result.exit_code == 0, result.output
        doc = results(tmp_path / name)
        assert [r["id"] for r in doc["runs"]] == IDS and {r["threads"] for r in doc["runs"]} == {1}
        runs[name] = [fingerprint(r) for r in doc["runs"]]
    pids = {r["worker"]["pid"] for r in results(tmp_path / "jobs")["runs"]}
    assert os.getpid() not in pids and results(tmp_path / "ray")["sweep"]["sessions"][0]["executor"] == "ray"
    assert runs["here"] == runs["jobs"] == runs["ray"]
    assert len({r[0] for r in runs["here"]}) == 4  # four different runs
    alone = cli("bench", "--data", grid.parent / "small.npz", "--spec", "speech_ffnn", "--optimizer", "adam",
                "--adam-lr", "0.001", "--seed", "1", "--epochs", "2", "--batch-size", "16", "--amp", "off",
                "--threads", "1", "--out", tmp_path / "alone", "--json")
    assert alone.exit_code == 0, alone.output
    assert fingerprint(json.loads(alone.stdout)["runs"][0]) == runs["ray"][3]


def _ray_workers_running(name: str) -> list[int]:
    """Worker processes of this user whose title shows them running the task ``name``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                title = handle.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title.startswith(f"ray::{name}"):
            found.append(int(entry))
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds Ray workers through /proc")
def test_a_killed_ray_worker_loses_no_run_and_doubles_none(cli, grid, tmp_path, ray_cluster):
    killed: list[int] = []
    stop = threading.Event()

    def kill_one() -> None:
        while not stop.is_set() and not killed:
            for pid in _ray_workers_running("archcalc_run"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_one, daemon=True)
    watcher.start()
    try:
        result = cli("sweep", grid, "--ray", "--out", tmp_path / "r")
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert result.exit_code == 0, result.output
    assert killed, "no Ray worker was seen running a run"
    doc = results(tmp_path / "r")
    assert [r["id"] for r in doc["runs"]] == IDS and doc["complete"]  # every run, exactly once
    assert killed[0] not in {r["worker"]["pid"] for r in doc["runs"]}  # its run was retried elsewhere


@pytest.mark.parametrize("version,mode,refused", [
    ("2.60.0", None, None), ("2.59.1", "token", None), ("2.58.0", "token", None),
    ("2.58.0", None, "Ray 2.58.0 starts local clusters without token authentication"),
    ("2.60.0", "disabled", "RAY_AUTH_MODE=disabled turns Ray's token authentication off"),
])
def test_a_local_ray_cluster_keeps_token_authentication(monkeypatch, version, mode, refused):
    from archcalc.bench.executors import check_token_authentication

    if mode is None:
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    else:
        monkeypatch.setenv("RAY_AUTH_MODE", mode)
    if refused is None:
        check_token_authentication(version)
    else:
        with pytest.raises(UsageError, match=refused):
            check_token_authentication(version)


def test_without_ray_installed_ray_says_what_to_install(cli, grid, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    result = cli("sweep", grid, "--ray", "--out", tmp_path / "x")
    assert result.exit_code == 2
    assert result.stderr == "error: --ray needs Ray, which is not installed: pip install 'archcalc[ray]'\n"


# --------------------------------------------------------------------------- --ray [ADDRESS], bound to this machine

def test_ray_takes_an_optional_address():
    from archcalc.cli.sweep import ray_address_shorthand

    takes = {"--jobs", "--threads", "--device", "--out", "--resume", "--ray-address"}
    cases = {
        ("--ray", "g.toml"): ["--ray", "g.toml"],  # the only positional word is the sweep file
        ("g.toml", "--ray"): ["g.toml", "--ray"],
        ("--ray", "head:6379", "g.toml"): ["--ray-address", "head:6379", "g.toml"],
        ("g.toml", "--ray", "auto"): ["g.toml", "--ray-address", "auto"],
        ("--ray=auto", "g.toml"): ["--ray-address", "auto", "g.toml"],
        ("--out", "o", "--ray", "g.toml"): ["--out", "o", "--ray", "g.toml"],  # 'o' is --out's value
        ("--ray", "--out", "o", "g.toml"): ["--ray", "--out", "o", "g.toml"],
        ("--ray", "h:1", "--", "g.toml"): ["--ray-address", "h:1", "--", "g.toml"],
    }
    for args, expected in cases.items():
        assert ray_address_shorthand(list(args), takes) == expected, args


def test_ray_address_on_the_command_line(cli, grid, tmp_path):
    for args in (["--ray", "head:6379", grid], [grid, "--ray", "head:6379"], ["--ray=head:6379", grid]):
        result = cli("sweep", *args, "--jobs", "2", "--out", tmp_path / "x")  # parsed, then refused
        assert result.exit_code == 2 and "--jobs and --ray exclude each other" in result.stderr, result.output
    result = cli("sweep", "--ray=", grid, "--out", tmp_path / "x")
    assert result.exit_code == 2 and "--ray-address: empty" in result.stderr, result.output


class _FakeRay:
    """Enough of Ray for ray_session: a local cluster that took a non-loopback address."""

    def __init__(self, address: str):
        self.address, self.stopped = address, False

    def is_initialized(self):
        return False

    def init(self, **options):
        self.options = options

    def get_runtime_context(self):
        return type("Context", (), {"gcs_address": self.address})()

    def shutdown(self):
        self.stopped = True


@pytest.mark.parametrize("address,refused", [("10.1.2.3:6379", True), ("[::1]:6379", False),
                                             ("127.0.0.1:40001", False)])
def test_a_local_cluster_on_another_address_is_refused(monkeypatch, address, refused):
    from archcalc.bench import executors

    fake = _FakeRay(address)
    monkeypatch.setattr(executors, "import_ray", lambda local=False: fake)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.setattr(fake, "__version__", "2.60.0", raising=False)
    if refused:
        with pytest.raises(UsageError, match="took the address 10.1.2.3, reachable from other machines"), \
                executors.ray_session(None):
            pass
        assert fake.stopped
    else:
        with executors.ray_session(None):
            pass
    assert fake.options["include_dashboard"] is False


LISTENING = r'''
import ipaddress, json
from archcalc.bench.executors import ray_session

def listening():
    found = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A":  # LISTEN
                found.add((fields[1], fields[9]))
    return found

def host(hexaddr):
    raw = hexaddr.split(":")[0]
    data = b"".join(bytes.fromhex(raw[i:i + 8])[::-1] for i in range(0, len(raw), 8))
    ip = ipaddress.ip_address(data)
    return str(getattr(ip, "ipv4_mapped", None) or ip)

before = listening()
with ray_session(None) as ray:
    assert ray.get(ray.remote(lambda: 1).remote()) == 1
    new = listening() - before
    gcs = ray.get_runtime_context().gcs_address
print(json.dumps({"gcs": gcs, "hosts": sorted(host(addr) for addr, _ in new)}))
'''


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from /proc/net")
def test_a_local_ray_cluster_listens_on_the_loopback_address_only(tmp_path):
    """archcalc's own local cluster, in a fresh process that has not imported Ray (as the CLI): every
    socket the cluster listens on is on 127.0.0.1, none on another interface or all of them."""
    import subprocess
    import sys

    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    done = subprocess.run([sys.executable, "-c", LISTENING], capture_output=True, text=True, env=env,
                          timeout=240, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["gcs"].startswith("127.0.0.1:")
    assert len(report["hosts"]) >= 3, report  # the GCS, the raylet and a worker at least
    assert set(report["hosts"]) == {"127.0.0.1"}, report


def test_ray_asks_one_gpu_per_run_for_cuda(cli, grid, tmp_path, monkeypatch):
    """No GPU here: the request Ray receives is what is checked (each run a task with num_gpus=1)."""
    from archcalc.bench import executors
    from archcalc.cli import sweep as sweep_cli

    seen = {}

    def fake_run_ray(tasks, data, threads, gpus, on_done, address):
        seen.update(devices={t.config.device for t in tasks}, threads=threads, gpus=gpus, n=len(tasks))
        return {"address": "fake", "resources": {"CPU": 2.0, "GPU": 1.0}}

    from archcalc.bench import protocol

    cpu_environment = protocol.environment
    monkeypatch.setattr(protocol, "environment", lambda device: {**cpu_environment("cpu"), "device": device})
    monkeypatch.setattr(sweep_cli, "resolve_device", lambda device: "cuda")
    monkeypatch.setattr(executors, "run_ray", fake_run_ray)
    monkeypatch.setattr(executors, "import_ray", lambda local=False: None)
    cli("sweep", grid, "--ray", "--device", "cuda", "--out", tmp_path / "g")
    assert seen == {"devices": {"cuda"}, "threads": 1, "gpus": 1.0, "n": 4}


class _RefusingRay(_FakeRay):
    """A cluster that refuses the token: Ray's C++ client writes to fd 2, then init raises."""

    def init(self, **options):
        os.write(2, b"[W gcs_client.cc:210] Failed to get cluster ID: Unauthenticated: InvalidAuthToken\n")
        raise ConnectionError("Failed to connect to Ray cluster at head:6379")


def test_a_refused_token_is_one_line_saying_so(monkeypatch, capfd):
    from archcalc.bench import executors

    monkeypatch.setattr(executors, "import_ray", lambda local=False: _RefusingRay("head:6379"))
    with pytest.raises(UsageError) as caught, executors.ray_session("head:6379"):
        pass
    assert str(caught.value) == ("cannot connect to the Ray cluster at head:6379: Failed to connect to Ray cluster "
                                 "at head:6379 (it refused this machine's authentication token: set "
                                 "RAY_AUTH_MODE=token and copy the head's ~/.ray/auth_token here)")
    assert "gcs_client" not in capfd.readouterr().err  # Ray's own lines are held back
    fake = _FakeRay("head:6379")
    fake.init = lambda **options: os.write(2, b"a warning Ray printed\n")
    monkeypatch.setattr(executors, "import_ray", lambda local=False: fake)
    with executors.ray_session("head:6379"):
        pass
    assert "a warning Ray printed" in capfd.readouterr().err  # given back when the connection works


def test_a_ray_error_while_connecting_is_one_line(monkeypatch):
    from archcalc.bench import executors

    class AuthenticationError(Exception):
        pass

    class Exceptions:
        RayError = AuthenticationError

    fake = _FakeRay("head:6379")
    fake.exceptions = Exceptions

    def init(**options):
        raise AuthenticationError("RAY_AUTH_MODE is token but no token was found")

    fake.init = init
    monkeypatch.setattr(executors, "import_ray", lambda local=False: fake)
    with pytest.raises(UsageError, match="cannot connect to the Ray cluster at head:6379: RAY_AUTH_MODE is token"), \
            executors.ray_session("head:6379"):
        pass
