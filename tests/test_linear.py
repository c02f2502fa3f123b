"""The talk's first result: a linear transform learned by one layer of PMPY pairs, in the
golden model, in the RTL (per tick) and through the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from boards.catalogue import board_config
from golden_model.circuit import FIXED, FLOAT
from golden_model.config import ConfigError, default_config
from golden_model.linear import check_linear, linear_samples, linear_target, train_linear
from pulsegate.cli import main


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_float_mode_converges_to_a_within_1e_2(seed):
    cfg = default_config("linear").replace(seed=seed)
    result = train_linear(cfg, FLOAT, samples=600)
    assert result.max_abs_error < 1e-2
    assert np.max(np.abs(result.bias)) < 1e-2  # t = A x has no offset
    assert result.curve[0][1] > 0.1  # it started far from A


@pytest.mark.parametrize("layers", [(3, 2), (4, 3), (2, 1)])
def test_fixed_point_converges_within_the_stated_tolerance(layers):
    cfg = default_config("linear").replace(layers=layers)
    result = train_linear(cfg, FIXED, samples=1500)
    assert result.converged, (result.max_abs_error, result.tolerance)
    assert result.tolerance < 4e-3  # the bound of docs/model.md at the default formats
    assert np.max(np.abs(result.bias)) <= result.tolerance


def test_targets_are_a_times_x_and_seeded():
    cfg = default_config("linear")
    samples = linear_samples(cfg, 5)
    a = linear_target(cfg)
    assert a.shape == (2, 3) and np.all(np.abs(a) <= 1.0)
    for sample in samples:
        assert np.allclose(sample["t"], a @ sample["x"])
    again = linear_samples(cfg, 5)
    assert all(np.array_equal(p["x"], q["x"]) for p, q in zip(samples, again, strict=True))
    assert not np.array_equal(linear_target(cfg.replace(seed=2)), a)


@pytest.mark.parametrize(
    ("changes", "scale", "field"),
    [
        ({"output": "relu"}, 1.0, "output"),
        ({}, 9.0, "scale"),  # beyond the 16-bit weight range of +-8
        ({"layers": (8, 2)}, 1.5, "scale"),  # 8 x 1.5 = 12 > the current range
        ({}, float("nan"), "scale"),
    ],
)
def test_a_transform_the_format_cannot_hold_names_the_field(changes, scale, field):
    with pytest.raises(ConfigError) as error:
        check_linear(default_config("linear").replace(**changes), scale)
    assert error.value.field == field


def test_golden_linear_prints_the_matrices_and_writes_json_and_plot(tmp_path, capsys):
    out = tmp_path / "linear"
    assert main(["golden", "linear", "--samples", "400", "--out", str(out), "--json",
                 str(out / "r.json")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "learned W" in printed and "target A" in printed and "largest |W - A|" in printed
    data = json.loads((out / "r.json").read_text())
    for key in ("A", "W", "bias", "max_abs_error", "samples", "curve", "mode", "seed", "config"):
        assert key in data
    assert np.array(data["W"]).shape == np.array(data["A"]).shape == (2, 3)
    assert data["max_abs_error"] <= data["tolerance"] and data["samples"] == 400
    assert (out / "linear.png").read_bytes()[:4] == b"\x89PNG"


def test_golden_linear_refuses_a_network_that_is_not_one_layer(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text('{"layers": [3, 4, 2]}')
    assert main(["golden", "linear", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'layers': the linear circuit needs exactly 2 entries" in err
    assert err.count("\n") == 1
    assert main(["golden", "linear", "--scale", "20"]) == 2
    assert "config field 'scale'" in capsys.readouterr().err


@pytest.mark.parametrize("core", ["spatial", "memory"])
def test_sim_linear_is_bit_exact_per_tick_and_learns(tmp_path, capsys, monkeypatch, core):
    monkeypatch.chdir(tmp_path)
    argv = ["sim", "linear", "--samples", "150", "--core", core, "--json", "r.json"]
    assert main(argv) == 0
    verdict = json.loads((tmp_path / "r.json").read_text())
    assert verdict["bit_exact"] and verdict["mismatches"] == 0
    assert verdict["core"] == core  # the core asked for is the one run
    assert verdict["ticks_compared"] == 150 * 4  # load, forward, error, learn
    assert verdict["max_abs_error"] <= verdict["tolerance"]
    golden = train_linear(default_config("linear"), samples=150)
    assert np.allclose(verdict["W"], golden.W)


@pytest.mark.parametrize("same", [True, False])
def test_host_train_linear_says_whether_the_board_learned_the_golden_weights(
    monkeypatch, capsys, tmp_path, same
):
    """The command's wiring, the board replaced (the RTL run over the UART is in test_boards)."""
    import boards.host

    path = tmp_path / "linear.json"
    path.write_text('{"layers": [3, 2]}')
    cfg = board_config().replace(layers=(3, 2))  # what the board was built with
    golden = train_linear(cfg, samples=50)
    weights = golden.weight_flat.copy()
    if not same:
        weights[1] += 1

    def fake_train(client, cfg_, samples, *, progress, poll):
        assert cfg_ == cfg and len(samples) == 50
        return {"samples": 50, "status": "idle", "weights": weights}

    class NoPort:
        def __init__(self, *args, **kwargs) -> None: ...
        def close(self) -> None: ...

    monkeypatch.setattr(boards.host, "SerialTransport", NoPort)
    monkeypatch.setattr(boards.host, "train_samples", fake_train)
    argv = ["host", "train-linear", "--port", "none", "--config", str(path), "--samples", "50"]
    assert main(argv) == (0 if same else 1)
    out = capsys.readouterr().out
    assert "largest |W - A| of the board's weights" in out
    assert ("bit for bit" in out) == same
