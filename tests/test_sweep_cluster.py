"""archcalc sweep --ray ADDRESS on a running Ray cluster of two nodes (started here, as two machines
would start theirs): the runs spread over both nodes, each exactly once, bit-identical to the same
runs without Ray."""

from __future__ import annotations

import json

import pytest
from test_sweep import IDS, fingerprint, grid, results  # noqa: F401  (grid is a fixture)


def test_a_sweep_on_a_running_cluster_of_two_nodes(cli, grid, tmp_path):  # noqa: F811
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        pytest.skip("another Ray session is open in this process")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    address = cluster.address
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        result = cli("sweep", grid, "--ray", address, "--threads", "1", "--out", tmp_path / "r")
        assert result.exit_code == 0, result.output
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    doc = results(tmp_path / "r")
    assert [r["id"] for r in doc["runs"]] == IDS and doc["complete"]
    session = doc["sweep"]["sessions"][0]
    assert session["executor"] == "ray" and session["cluster"]["address"] == address
    assert session["cluster"]["resources"]["CPU"] == 2
    assert len({r["worker"]["ray_node"] for r in doc["runs"]}) == 2  # both nodes ran runs
    here = cli("sweep", grid, "--threads", "1", "--out", tmp_path / "here", "--json")
    assert here.exit_code == 0, here.output
    assert [fingerprint(r) for r in json.loads(here.stdout)["runs"]] == [fingerprint(r) for r in doc["runs"]]
