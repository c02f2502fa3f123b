"""The roofline benchmark's cycle model and its 400-400-10 projection."""

import pytest

from golden_model.config import Config
from golden_model.datasets import dataset_config
from golden_model.schedule import compile_backprop
from pulsegate.roofline import measure_cycles, project_mnist, projected_cycles, unit_depths


def test_unit_depths_follow_layouts_and_lanes():
    cfg = Config(layers=(4, 8, 3))
    # forward W1 8x5 and W2 3x9 by rows, backward W2T 8x3 by columns, learning W1 and W2 at
    # once (the longer counts)
    assert unit_depths(cfg, 1) == [40, 27, 24, 40]
    assert unit_depths(cfg, 4) == [8 * 2, 3 * 3, 2 * 3, 8 * 2]
    # stochastic rounding: the rules take turns drawing from the shared LFSR
    stochastic = Config(layers=(4, 8, 3), rounding="stochastic")
    assert unit_depths(stochastic, 1) == [40, 27, 24, 40, 27]


# 27 lanes: words span rows (W1's rows of 5 go five a word, W2's of 9 three); the last,
# one multiplier pool with the two rules taking turns. Stochastic rounding: turns too.
@pytest.mark.parametrize("rounding", ["nearest", "stochastic"])
@pytest.mark.parametrize("lanes", [1, 4, 27, {"W1": 40, "W2": 27, "pool": "core"}])
def test_cycle_model_matches_the_simulated_core(lanes, rounding):
    """One overhead constant, taken from a 64-32-10 measurement elsewhere (28 cycles at N=1),
    predicts the iris core's measured cycles exactly: timing is data independent, every
    sweep runs back to back, and a rule taking its turn starts as the one before names its
    last word."""
    iris = dataset_config("iris").replace(rounding=rounding)
    measured = measure_cycles(iris, lanes=lanes)
    assert projected_cycles(iris, lanes, overhead=28) == measured


def test_mnist_projection_reports_memory_fit_and_rates():
    digits = {"cycles": 4838}
    p = project_mnist(digits, {"fmax_mhz": 50.0})
    assert p["weight_words"] == 400 * 401 + 10 * 401 + 400 * 10
    # W1 at 81 lanes (5 chunks of 401 columns), W2 and its copy at 31 (13 chunks of 401 and
    # of 400 rows): 112 multipliers, shared per matrix. Each 16-bit lane takes two of a
    # DP16KD's 9-bit write enables, so W1's 1,296-bit words fill 81 blocks (18 x 1024) side
    # by side, 2 deep; W2 and W2T 496 bits in 16 each; with the host link's store of 16
    # samples (13 blocks) that is 207 of 208. W1 at 101 (4 chunks) would need 204 alone.
    assert p["multipliers_used"] == 112 and p["lanes"] == "W1=81,W2=31"
    assert p["fits_block_ram"] and p["block_ram_blocks"] == 162 + 16 + 16
    assert p["projected_cycles_per_sample"] == 2 * 400 * 5 + 2 * 10 * 13 + 28
    assert p["overhead_cycles"] == 28
    assert p["us_per_sample_measured_fmax"] == pytest.approx(p["projected_cycles_per_sample"] / 50)
    assert p["us_per_sample_goal_100mhz"] < p["us_per_sample_measured_fmax"]


def test_roofline_table_gives_each_system_at_its_own_clock_and_says_what_was_not_built():
    from pulsegate.roofline import LOIHI, roofline_table

    routed = {
        "board": "ulx3s-85f",
        "network": "digits 64-32-10",
        "core": "memory",
        "lanes": 8,
        "cycles_per_sample": 830,
        "macs_per_sample": 5140,
        "multipliers": 156,
        "clock_mhz": 71.875,
        "fmax_mhz": 80.06,
        "timing_met": True,
        "samples_per_s": 86_596,
        "roofline_samples_per_s": 2_181_420,
        "roofline_fraction": 86_596 / 2_181_420,
        "logic": "8,159 TRELLIS_COMB (9.8 %)",
        "numpy_samples_per_s": 40_000,
    }
    missing = {
        "board": "icebreaker",
        "network": "digits 64-32-10",
        "lanes": 2,
        "error": "build stopped after its time limit",
    }
    projection = project_mnist({"cycles": 4838}, {"fmax_mhz": 71.875})
    projection["model_check"] = {
        "network": "iris",
        "lanes": 4,
        "projected_cycles": 60,
        "measured_cycles": 60,
    }
    data = {
        "rows": [routed, missing],
        "loihi": {"board": "Loihi", "network": "400-400-10", "samples_per_s": 1 / LOIHI["seconds"]},
        "accuracy": {"digits_test": 0.97, "digits_epochs": 20, "iris_test": 0.95, "iris_epochs": 9},
        "projection_400_400_10": projection,
    }
    text = roofline_table(data)
    line = next(x for x in text.splitlines() if x.startswith("| ulx3s-85f | digits"))
    assert "| memory, 8 | 830 |" in line and "| 71.875 (80.06; met) | 86,596 |" in line
    assert "| 3.97 % |" in line
    assert "| icebreaker | digits 64-32-10 | lanes 2: build stopped after its time limit |" in text
    assert "XOR board system" not in text  # no row priced with another network's clock


def test_bench_cores_gives_both_cores_clocks_on_a_board(capsys):
    """`pulsegate bench cores --no-synth`: per network and lane count, the memory core's
    micro-code clocks, and on a board both cores' clocks a sample: the memory core's load
    hidden behind its run (its micro-code's clocks), the spatial core's load added."""
    from pulsegate.bench import bench_cores

    rows = bench_cores(lanes=(8,), synth=False)["rows"]
    assert [r["network"].split()[0] for r in rows] == ["xor", "iris", "digits"]
    for r in rows:
        inputs = {"xor": 6, "iris": 14, "digits": 148}[r["network"].split()[0]]
        assert r["board_clocks"]["memory"] == r["memory_clocks"]
        assert r["board_clocks"]["spatial"] == r["spatial_clocks"] + inputs
        assert sum(r["clock_breakdown"].values()) == r["memory_clocks"]
    out = capsys.readouterr().out
    assert "on a board: memory / spatial" in out
    assert "| network | lanes x simd | multiply | step | gather | wait | control | clocks |" in out
    assert "| network | lanes x simd | built | two streams | two streams, folded gathers |" in out
    assert all(r["modelled"]["two streams"] < r["memory_clocks"] for r in rows)


def test_a_samples_clocks_are_told_apart_by_what_fills_them():
    """`hw.microcode.clock_breakdown`: the parts sum to the sample's clocks; at one lane every
    multiply-accumulate is a slot of its own, so the multiply clocks are the MACs; a small
    network at many lanes waits more than it multiplies (latency), a large one the reverse."""
    from boards.catalogue import board_config
    from hw.microcode import clock_breakdown, encode, sample_clocks
    from hw.microprogram import compile_program
    from pulsegate.bench import macs_per_sample

    for cfg in (board_config(), dataset_config("iris"), dataset_config("digits")):
        schedule = compile_backprop(cfg)
        for lanes, simd in ((1, 1), (2, 4), (8, 8)):
            for observe in (False, True):
                program = compile_program(schedule, lanes, simd)
                words, where = encode(program, cfg, observe_ticks=observe)
                parts = clock_breakdown(words, lanes, simd, where.banked)
                assert sum(parts.values()) == sample_clocks(words, lanes, simd, where.banked)
                assert min(parts.values()) >= 0
                if lanes == 1:
                    assert parts["multiply"] == macs_per_sample(schedule, cfg)
    xor, digits = (
        clock_breakdown(*_board_words(cfg, 8)) for cfg in (board_config(), dataset_config("digits"))
    )
    assert xor["wait"] > xor["multiply"] and digits["multiply"] > 10 * digits["wait"]


def test_the_modelled_sequencers_start_from_the_built_one():
    """`hw.microcode.modelled_clocks`: with one issue stream and the full pipeline it is the
    gateware's own clock count (every plan, drained at every tick or only at the end); a
    second stream, folded gathers and a shorter pipeline each take no more clocks, and none
    takes fewer than the busier unit's slots (the bound a model that lost a slot would
    pass)."""
    from boards.catalogue import board_config
    from hw.microcode import Kind, _slot_accesses, encode, modelled_clocks, sample_clocks
    from hw.microprogram import compile_program

    for cfg in (board_config(), dataset_config("iris"), dataset_config("digits")):
        schedule = compile_backprop(cfg)
        for lanes, simd in ((1, 1), (2, 4), (4, 4), (8, 8), (2, 32)):
            for observe in (False, True):
                words, where = encode(
                    compile_program(schedule, lanes, simd), cfg, observe_ticks=observe
                )
                plan = (words, lanes, simd, where.banked)
                built = sample_clocks(*plan)
                assert modelled_clocks(*plan) == built
                two = modelled_clocks(*plan, streams=2)
                folded = modelled_clocks(*plan, streams=2, folded=True)
                shallow = modelled_clocks(*plan, streams=2, folded=True, shorter=4)
                assert built >= two >= folded >= shallow
                busy = {"multiply": 0, "element": 0}
                for w in words:
                    if w.kind not in (Kind.TICK, Kind.FLAGS):
                        for _, writes in _slot_accesses(w, lanes, simd, where.banked):
                            step = any(m == "state" for m, _, _ in writes)
                            busy["element" if w.kind == Kind.GATHER or step else "multiply"] += 1
                assert two > max(busy.values())
    with pytest.raises(ValueError, match="streams"):
        modelled_clocks(*plan, streams=3)
    with pytest.raises(ValueError, match="shorter"):
        modelled_clocks(*plan, shorter=6)


def _board_words(cfg, lanes):
    from hw.microcode import encode
    from hw.microprogram import compile_program

    words, where = encode(compile_program(compile_backprop(cfg), lanes), cfg, observe_ticks=False)
    return words, lanes, lanes, where.banked


def test_bench_loihi_sets_numpy_at_two_batch_sizes_beside_loihi(capsys):
    from pulsegate.bench import bench_loihi

    data = bench_loihi(seconds=0.05)
    systems = [r["system"] for r in data["rows"]]
    assert systems[0].startswith("Loihi") and data["rows"][0]["us_per_sample"] == 1500.0
    assert systems[1:] == [
        "numpy float32, batch 1 (this CPU)",
        "numpy float32, batch 32 (this CPU)",
    ]
    assert all(r["samples_per_s"] > 0 for r in data["rows"])
    clocks = data["memory_core_clocks"]
    assert list(clocks) == [16, 32, 64, 128]
    from golden_model.datasets import dataset_config
    from golden_model.schedule import compile_backprop
    from pulsegate.bench import macs_per_sample

    cfg = dataset_config("digits20")
    fewest = macs_per_sample(compile_backprop(cfg), cfg) // 128  # every multiplier busy
    assert clocks[16] > clocks[32] > clocks[64] > clocks[128] > fewest
    assert "at 50 us a" in capsys.readouterr().out


def test_bench_loihi_sets_a_routed_build_beside_loihi(tmp_path, capsys):
    """``--build`` adds a routed 400-400-10 build's row (its samples/s at its PLL clock and
    whether timing met); a file that is no build report, or one of another network, is
    refused by the option's name."""
    import json

    from pulsegate.cli import main

    report = {
        "network": "400-400-10", "device": "LFE5U-85F", "lanes": 8, "simd": 32,
        "clock_mhz": 60.0, "timing_met": True, "cycles_per_sample": 12282,
        "samples_per_s": 4885,
    }  # fmt: skip
    good = tmp_path / "built.json"
    good.write_text(json.dumps(report))
    out = tmp_path / "loihi.json"
    assert (
        main(["bench", "loihi", "--seconds", "0.02", "--build", str(good), "--json", str(out)]) == 0
    )
    rows = json.loads(out.read_text())["rows"]
    assert rows[-1]["system"] == "pulsegate on the LFE5U-85F, memory core 8x32, 60 MHz (timing met)"
    assert rows[-1]["samples_per_s"] == 4885 and rows[-1]["us_per_sample"] == 1e6 / 4885
    assert "8x32, 60 MHz (timing met) | 4,885 |" in capsys.readouterr().out
    other = tmp_path / "digits.json"
    other.write_text(json.dumps(report | {"network": "64-32-10"}))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"network": "400-400-10"}))
    for path in (other, broken, tmp_path / "missing.json"):
        assert main(["bench", "loihi", "--seconds", "0.02", "--build", str(path)]) == 2
        assert "--build" in capsys.readouterr().err
