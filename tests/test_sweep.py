"""`pulsegate sweep`: the same table on a local pool and on a Dask cluster, the cache, and a
job that fails."""

from __future__ import annotations

import json

import pytest

from pulsegate import sweep
from pulsegate.cli import main
from pulsegate.sweep import grid, run_sweep

# A logic point (Yosys on the iCE40, a few seconds) and two training points.
POINTS = grid(["logic"], ["icebreaker"], ["board-xor"], ["2"]) + grid(
    ["train"], ["icebreaker"], ["board-xor"], seeds=[1, 2]
)


def _table(rows):
    return [{k: v for k, v in r.items() if k != "cached"} for r in rows]


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    rows = run_sweep(POINTS, cache=root / "cache", work=root / "work", jobs=2)
    return root, rows


def test_a_sweep_runs_every_point_on_a_local_pool(pool_run):
    _, rows = pool_run
    kinds = [(r["kind"], r["lanes"], r["seed"]) for r in rows]
    assert kinds == [("logic", "2", None), ("train", "1", 1), ("train", "1", 2)]
    assert not any(r["cached"] for r in rows) and not any("error" in r for r in rows)
    logic, *trained = rows
    assert 0 < logic["logic_cells"] < logic["device_cells"] and logic["BRAM"] > 0
    assert 100 < logic["cycles_per_sample"] < 200  # XOR at two lanes on a board
    assert all(r["converged"] for r in trained)


def test_a_dask_cluster_gives_the_same_table(pool_run, tmp_path):
    from distributed import LocalCluster

    _, rows = pool_run
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        on_dask = run_sweep(
            POINTS, cache=tmp_path / "cache", work=tmp_path / "work",
            scheduler=cluster.scheduler_address,
        )  # fmt: skip
    assert _table(on_dask) == _table(rows)


def test_a_second_run_takes_every_point_from_the_cache(pool_run, monkeypatch):
    root, rows = pool_run

    def no_executor(*args):
        raise AssertionError("a cached point was run again")

    monkeypatch.setattr(sweep, "_executor", no_executor)
    again = run_sweep(POINTS, cache=root / "cache", work=root / "work", jobs=2)
    assert all(r["cached"] for r in again)
    assert _table(again) == _table(rows)


def test_a_failing_job_is_a_row_and_the_others_finish(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"layers": [2, 0, 1]}))
    points = grid(["train"], ["icebreaker"], [str(bad), "board-xor"])
    rows = run_sweep(points, cache=tmp_path / "cache", work=tmp_path / "work", jobs=2)
    assert "error" in rows[0] and "layers" in rows[0]["error"]
    assert "error" not in rows[1] and rows[1]["converged"]
    # a failure is not cached: the next run tries it again
    again = run_sweep(points, cache=tmp_path / "cache", work=tmp_path / "work", jobs=2)
    assert not again[0]["cached"] and again[1]["cached"]


def test_the_command_writes_json_csv_and_a_pareto_plot(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["sweep", "--kind", "train", "--config", "board-xor", "--seed", "1", "--seed", "2"]
    files = ["--out", str(out), "--json", str(out / "s.json"), "--csv", str(out / "s.csv")]
    assert main([*argv, *files, "--jobs", "2"]) == 0
    rows = json.loads((out / "s.json").read_text())["rows"]
    assert [r["seed"] for r in rows] == [1, 2]
    assert (out / "s.csv").read_text().splitlines()[0].startswith("kind,board,config")
    assert "2 point(s), 0 from the cache, 0 failed" in capsys.readouterr().out
    # options are checked before any job runs, each naming itself
    assert main(["sweep", "--kind", "bogus", "--out", str(out)]) == 2
    assert "--kind" in capsys.readouterr().err
    assert main(["sweep", "--board", "nope", "--out", str(out)]) == 2
    assert "--board" in capsys.readouterr().err


def test_the_grid_is_every_combination_but_trains_a_network_once_per_seed():
    points = grid(
        ["logic", "train"], ["icebreaker", "ulx3s-85f"], ["iris"], ["1", "2"], seeds=[1, 2]
    )
    logic = [p for p in points if p.kind == "logic"]
    trained = [p for p in points if p.kind == "train"]
    assert len(logic) == 2 * 2 * 2
    assert [(p.board, p.lanes, p.seed) for p in trained] == [
        ("icebreaker", "1", 1),
        ("icebreaker", "1", 2),
    ]
    with pytest.raises(ValueError, match="unknown job kind"):
        grid(["bogus"], ["icebreaker"], ["iris"])
