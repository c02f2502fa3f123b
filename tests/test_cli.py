"""The command line: results, plots, JSON, and one-line errors."""

import json
import subprocess
import sys

import pytest

from pulsegate.cli import main


def test_golden_xor_writes_plots_and_json(tmp_path, capsys):
    out = tmp_path / "xor"
    status = main(
        ["golden", "xor", "--out", str(out), "--json", str(out / "r.json"), "--seed", "3"]
    )
    assert status == 0
    data = json.loads((out / "r.json").read_text())
    assert data["converged"] is True and data["mode"] == "fixed" and data["seed"] == 3
    assert isinstance(data["samples"], int) and data["samples"] > 0
    assert [row[:2] for row in data["outputs"]] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    for (_, _, o), t in zip(data["outputs"], [0, 1, 1, 0], strict=True):
        assert abs(o - t) < 0.25
    for name in ("learning_curve.png", "raster.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "converged after" in printed and "ticks per sample" in printed


def test_golden_xor_float_is_reproducible(tmp_path):
    paths = [tmp_path / f"{k}.json" for k in range(2)]
    for p in paths:
        assert main(["golden", "xor", "--float", "--json", str(p)]) == 0
    assert paths[0].read_text() == paths[1].read_text()
    assert json.loads(paths[0].read_text())["mode"] == "float"


def test_golden_ar2_json(tmp_path):
    out = tmp_path / "ar2"
    assert (
        main(
            ["golden", "ar2", "--samples", "4000", "--out", str(out), "--json", str(out / "r.json")]
        )
        == 0
    )
    data = json.loads((out / "r.json").read_text())
    for key in (
        "cov_rel_error",
        "A1",
        "A2",
        "A1_true",
        "A2_true",
        "prediction_mse",
        "noise_variance",
    ):
        assert key in data
    assert len(data["cov_rel_error"]) == 3
    assert (out / "covariances.png").exists()


def test_bad_config_is_one_line_and_status_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"layers": [2, 0, 1]}')
    proc = subprocess.run(
        [sys.executable, "-m", "pulsegate.cli", "golden", "xor", "--config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "layers[1]" in proc.stderr and "Traceback" not in proc.stderr
    bad.write_text("{not json")
    assert main(["golden", "ar2", "--config", str(bad)]) == 2


def test_schedule_command(capsys):
    assert main(["schedule", "xor"]) == 0
    assert "bwd2" in capsys.readouterr().out
    assert main(["schedule", "ar2"]) == 0
    assert "shift" in capsys.readouterr().out


def test_build_failure_is_one_line_and_other_boards_still_build(tmp_path, capsys, monkeypatch):
    import boards.catalogue as catalogue
    import boards.pnr as pnr

    built = []

    def fake_build(name, cfg, out, **options):
        built.append(name)
        if name == "icebreaker":
            raise pnr.BuildError("the design does not fit iCE40UP5K: ICESTORM_LC 9/5")
        return {"board": name, "timing_met": True, "bitstream": "", "build_seconds": 0.0}

    monkeypatch.setattr(pnr, "build", fake_build)
    monkeypatch.setattr(pnr, "report_markdown", lambda result: f"report {result['board']}")
    status = main(["build", "--board", "all", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 1
    assert built == list(catalogue.BOARDS)  # the failure did not stop the others
    assert "pulsegate: error: the design does not fit iCE40UP5K" in captured.err
    assert "Traceback" not in captured.err
    assert "report ulx3s-85f" in captured.out


def test_train_iris_prints_progress_confusion_and_writes_plots(tmp_path, capsys):
    out = tmp_path / "iris"
    status = main(
        ["train", "iris", "--epochs", "3", "--out", str(out), "--json", str(out / "r.json")]
    )
    assert status == 0
    data = json.loads((out / "r.json").read_text())
    assert data["dataset"] == "iris" and data["epochs"] == 3 and data["samples"] == 3 * 105
    assert len(data["curve"]) == 3 and 0.0 <= data["test_accuracy"] <= 1.0
    assert sum(map(sum, data["confusion"])) == 45
    assert data["classes"] == ["setosa", "versicolor", "virginica"]
    for name in ("accuracy.png", "confusion.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "epoch   3/3" in printed and "confusion matrix" in printed and "virginica" in printed


def test_train_rtl_checks_the_core_and_reports_the_same_accuracy(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the RTL build goes to ./build
    argv = ["train", "iris", "--epochs", "1", "--samples", "12", "--json", "r.json"]
    assert main([*argv, "--rtl", "--threads", "2"]) == 0  # a two-thread model, bit-exact too
    printed = capsys.readouterr().out
    assert "12 samples, complete state (217 words) bit-exact" in printed
    assert "RTL: 12 of 12 samples" in printed and "RTL: 1 of 12 samples" in printed  # progress
    with_rtl = json.loads((tmp_path / "r.json").read_text())
    assert main(argv) == 0
    golden_only = json.loads((tmp_path / "r.json").read_text())
    assert with_rtl["test_accuracy"] == golden_only["test_accuracy"]
    assert with_rtl["samples"] == 12


def test_train_refuses_bad_counts_in_one_line(capsys):
    for argv in (["--epochs", "0"], ["--samples", "-3"], ["--threads", "0"]):
        assert main(["train", "iris", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("pulsegate: error: --") and err.count("\n") == 1
    # lane settings are parsed by the argument parser (exit status 2, the field named)
    for lanes in ("0", "W1=0", "W1", "W1=3,"):
        assert main(["train", "iris", "--lanes", lanes]) == 2
        assert "error: --lanes: must be a whole number >= 1" in capsys.readouterr().err


def test_a_fold_is_refused_where_it_does_not_apply_in_one_line(capsys):
    """``--simd`` folds the memory core only, at a given lane count it divides."""
    cases = [
        (["train", "iris", "--simd", "8"], "--simd: folds the memory core's RTL"),
        (["train", "iris", "--rtl", "--core", "memory", "--lanes", "2", "--simd", "3"],
         "--simd: simd must be a multiple of lanes (2), got 3"),
        (["logic", "--board", "icebreaker", "--simd", "4"], "--simd: folds a memory core"),
        (["build", "--board", "icebreaker", "--core", "memory", "--lanes", "auto",
          "--simd", "4"], "--simd: folds a memory core at a given --lanes"),
    ]  # fmt: skip
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"pulsegate: error: {message}") and err.count("\n") == 1, err


def test_bench_cores_takes_folded_plans():
    import argparse

    from pulsegate.commands.bench import fold_plan

    assert fold_plan("8") == 8 and fold_plan("2x8") == (2, 8)
    for bad in ("2x3", "x8", "0", "2x"):
        with pytest.raises(argparse.ArgumentTypeError):
            fold_plan(bad)


def test_bench_cores_draws_where_the_clocks_go(tmp_path, capsys):
    """`--plot PNG`: the clock breakdown as stacked bars, written as a PNG; a directory
    named as the file is refused before any work, naming the option."""
    png = tmp_path / "figs" / "breakdown.png"
    args = ["bench", "cores", "--lanes", "2", "--network", "xor", "--no-synth"]
    assert main([*args, "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert f"wrote {png}" in capsys.readouterr().out
    assert main([*args, "--plot", str(tmp_path)]) == 2
    assert "--plot" in capsys.readouterr().err


def test_a_lane_plan_naming_no_matrix_is_refused_in_one_line(capsys, tmp_path):
    assert main(["generate", "--lanes", "W1=2,W7=3", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pulsegate: error: config field 'lanes': no matrix named W7")


def test_a_pool_setting_is_parsed_and_a_bad_one_refused(capsys, tmp_path):
    from pulsegate.commands.common import lane_setting

    assert lane_setting("W1=130,W2=132,pool=core") == {"W1": 130, "W2": 132, "pool": "core"}
    assert main(["train", "iris", "--lanes", "W1=2,W2=2,pool=chip"]) == 2
    assert "pool must be one of matrix, core" in capsys.readouterr().err
    out = tmp_path / "core"
    assert main(["generate", "--lanes", "W1=4,W2=4,pool=core", "--out", str(out)]) == 0
    assert "multipliers_core" in (out / "pulsegate_core.v").read_text()  # one pool


@pytest.mark.parametrize("same", [True, False])
def test_host_train_iris_reports_accuracy_and_whether_the_board_matches(monkeypatch, capsys, same):
    """The command's wiring, with the board replaced (the RTL run of `train_dataset` is in
    test_boards): accuracy and confusion printed, exit 0 only when the weights read back are
    the golden model's after the same samples."""
    import numpy as np

    import boards.host
    from golden_model.classify import test_with_weights, train_classifier
    from golden_model.datasets import dataset_config, load_dataset

    cfg, data = dataset_config("iris"), load_dataset("iris")
    golden = train_classifier(cfg, data, 1, limit=20)
    weights = np.concatenate([w.ravel() for w in golden.weights.values()])
    if not same:
        weights[0] += 1

    def fake_train(client, cfg_, data_, epochs, *, limit, progress, poll):
        assert (cfg_, data_.name, epochs, limit) == (cfg, "iris", 1, 20)
        accuracy, confusion = test_with_weights(cfg_, data_, weights)
        return {
            "samples": 20,
            "status": "idle",
            "weights": weights,
            "test_accuracy": accuracy,
            "confusion": confusion,
        }

    class NoPort:
        def __init__(self, *args, **kwargs) -> None: ...
        def close(self) -> None: ...

    monkeypatch.setattr(boards.host, "SerialTransport", NoPort)
    monkeypatch.setattr(boards.host, "train_dataset", fake_train)
    argv = ["host", "train-iris", "--port", "none", "--epochs", "1", "--samples", "20"]
    assert main(argv) == (0 if same else 1)
    out = capsys.readouterr().out
    assert f"{golden.test_accuracy * 100:.2f} % after 20 samples" in out
    assert "setosa" in out  # the confusion matrix
    assert ("bit for bit" in out) == same


def test_host_refuses_bad_counts_before_opening_the_port(capsys):
    for argv in (["--epochs", "0"], ["--samples", "-1"]):
        assert main(["host", "train-iris", "--port", "/nonexistent/port", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("pulsegate: error: --") and err.count("\n") == 1


def test_host_names_a_port_it_cannot_open_in_one_line(capsys, tmp_path):
    assert main(["host", "info", "--port", str(tmp_path / "no-such-port")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pulsegate: error: --port ") and err.count("\n") == 1


def test_a_clock_no_pll_makes_is_refused_before_any_build(capsys, tmp_path, monkeypatch):
    import boards.pnr as pnr

    monkeypatch.setattr(pnr, "build", lambda *_, **__: pytest.fail("no build should start"))
    assert main(["build", "--board", "all", "--clock-mhz", "300", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pulsegate: error: --clock-mhz: icebreaker: 300 MHz is outside")
    assert err.count("\n") == 1
    assert main(["build", "--board", "icebreaker", "--clock-mhz", "fast"]) == 2
    assert "--clock-mhz: must be a frequency in MHz > 0 or 'auto'" in capsys.readouterr().err


def test_the_clock_search_climbs_under_the_fmax_and_keeps_the_fastest_met(monkeypatch, tmp_path):
    """A fake nextpnr whose Fmax falls as the clock asked rises: the search builds at the
    oscillator, then at the PLL's highest clock under 97 % of the last Fmax (under the Fmax
    of a PLL build that met), stops when a request would repeat, and keeps the fastest build
    that met timing."""
    import boards.pnr as pnr
    from boards.catalogue import board_config
    from boards.clocks import pll_at_most

    asked = []

    def fake_build(board, cfg, out, *, clock_mhz=None, **options):
        asked.append(clock_mhz)
        clock = 25.0 if clock_mhz is None else pll_at_most("ecp5", 25, clock_mhz).output_mhz
        fmax = 90.0 - 0.2 * clock  # placing for a faster clock costs a little
        return {
            "clock_mhz": clock,
            "fmax_mhz": fmax,
            "timing_met": fmax >= clock,
            "oscillator_mhz": 25.0,
        }

    monkeypatch.setattr(pnr, "build", fake_build)
    best = pnr.build_at_best_clock("ulx3s-85f", board_config(), tmp_path, lanes=1)
    assert asked[0] is None and len(asked) <= pnr.CLOCK_SEARCH_STEPS
    steps = best["clock_search"]
    assert all(s["requested_mhz"] is None or s["clock_mhz"] <= s["requested_mhz"] for s in steps)
    met = [s["clock_mhz"] for s in steps if s["timing_met"]]
    assert best["clock_mhz"] == max(met) > 25.0
    assert best["clock_mhz"] <= best["fmax_mhz"]

    def never_met(board, cfg, out, *, clock_mhz=None, **options):
        return {"clock_mhz": 25.0, "fmax_mhz": 20.0, "timing_met": False, "oscillator_mhz": 25}

    # A met build with room left: the next asks for its Fmax itself (not 97 % of it again),
    # so a design that meets 100 MHz is built at 100, not stopped at 97.
    asked.clear()

    def steady(board, cfg, out, *, clock_mhz=None, **options):
        asked.append(clock_mhz)
        clock = 25.0 if clock_mhz is None else pll_at_most("ecp5", 25, clock_mhz).output_mhz
        return {"clock_mhz": clock, "fmax_mhz": 100.4, "timing_met": True, "oscillator_mhz": 25}

    monkeypatch.setattr(pnr, "build", steady)
    best = pnr.build_at_best_clock("ulx3s-85f", board_config(), tmp_path / "steady", lanes=1)
    assert best["clock_mhz"] == pll_at_most("ecp5", 25, 100.4).output_mhz >= 99.0
    assert len(asked) == 3  # the oscillator, 97 % of 100.4, then 100.4

    monkeypatch.setattr(pnr, "build", never_met)
    with pytest.raises(pnr.BuildError, match="no clock met timing on ulx3s-85f"):
        pnr.build_at_best_clock("ulx3s-85f", board_config(), tmp_path / "never", lanes=1)


def test_clock_auto_searches_on_the_plan_lanes_auto_chose(capsys, tmp_path, monkeypatch):
    import boards.plans as plans
    import boards.pnr as pnr

    searched = {}

    def fake_auto(name, cfg, out, **options):
        assert options["clock_mhz"] is None  # the plan is chosen at the oscillator
        return {"lanes": 4, "lanes_tried": [{"lanes": "4", "result": "fits, timing met"}]}

    def fake_search(name, cfg, out, **options):
        searched.update(options)
        step = {"requested_mhz": None, "clock_mhz": 12.0, "fmax_mhz": 30.0, "timing_met": True}
        return {"board": name, "timing_met": True, "bitstream": "", "build_seconds": 0.0,
                "clock_search": [step]}  # fmt: skip

    monkeypatch.setattr(plans, "build_auto", fake_auto)
    monkeypatch.setattr(pnr, "build_at_best_clock", fake_search)
    monkeypatch.setattr(pnr, "report_markdown", lambda result: "report")
    argv = ["build", "--board", "icebreaker", "--core", "memory", "--lanes", "auto"]
    assert main([*argv, "--clock-mhz", "auto", "--out", str(tmp_path)]) == 0
    assert searched["lanes"] == 4 and searched["core"] == "memory"
    assert "clock oscillator: built at 12 MHz, Fmax 30.0 MHz, timing met" in capsys.readouterr().out


def test_train_digits20_reads_mnist_from_a_folder_and_names_what_is_wrong(tmp_path, capsys):
    from .test_classify import write_mnist

    write_mnist(tmp_path / "mnist", train=40, test=12)
    out = tmp_path / "mnist.json"
    argv = ["train", "digits20", "--data-dir", str(tmp_path / "mnist"), "--epochs", "1"]
    assert main([*argv, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["config"]["layers"] == [400, 400, 10] and result["samples"] == 40
    assert "mnist20: 40 training and 12 test samples" in capsys.readouterr().out
    # a folder without the files, and --data-dir for a data set that has none
    assert main(["train", "digits20", "--data-dir", str(tmp_path / "none")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert main(["train", "iris", "--data-dir", str(tmp_path / "mnist")]) == 2
    assert "digits20 only" in capsys.readouterr().err
