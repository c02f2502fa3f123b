"""Board targets: the host link protocol, its gateware (UART, CRC), the link under Verilator
driven by the host client, and place-and-route reports."""

import math
import random

import pytest
from amaranth.hdl import Const, Module, Signal
from amaranth.sim import Simulator

from boards.board_sim import run_link_bench
from boards.catalogue import BOARDS, board_config, board_named
from boards.host import HostClient
from boards.link import crc8_next
from boards.protocol import (
    MAX_PAYLOAD,
    Code,
    Command,
    Info,
    ProtocolError,
    ReplyDecoder,
    crc8,
    encode_reply,
    encode_request,
    expected_error,
)
from boards.uart import UartRx, UartTx
from golden_model.config import Config
from golden_model.schedule import compile_backprop
from golden_model.tasks import train_xor
from hw.mcore import MemoryCore

INFO = Info(1, 6, 1, 21, 16, 16, 16)


def test_crc8_matches_a_known_check_value():
    assert crc8(b"123456789") == 0xF4  # CRC-8/SMBUS check value


def test_gateware_crc_step_matches_the_protocol():
    crc, byte, out = Signal(8), Signal(8), Signal(8)
    m = Module()
    m.d.comb += out.eq(crc8_next(crc, byte))
    rng = random.Random(3)
    cases = [(rng.randrange(256), rng.randrange(256)) for _ in range(300)]

    async def bench(ctx):
        for c, b in cases:
            ctx.set(crc, c)
            ctx.set(byte, b)
            # the step from state c equals crc8 of a message whose CRC so far is c
            want = c ^ b
            for _ in range(8):
                want = ((want << 1) ^ 7) & 0xFF if want & 0x80 else (want << 1) & 0xFF
            assert ctx.get(out) == want

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert crc8_next(Const(0, 8), Const(0x31, 8)).shape().width == 8


def test_reference_parser_names_every_kind_of_error():
    ok = encode_request(Command.READ_WEIGHT, (3).to_bytes(3, "little"))
    assert expected_error(ok, INFO) is None
    assert expected_error(b"\x00" + ok, INFO) == Code.FRAMING
    assert expected_error(ok[:-1], INFO) == Code.TRUNCATED
    assert expected_error(ok[:-1] + bytes([ok[-1] ^ 1]), INFO) == Code.CHECKSUM
    assert expected_error(encode_request(0x77), INFO) == Code.COMMAND
    assert expected_error(encode_request(Command.INFO, bytes(MAX_PAYLOAD + 1)), INFO) == Code.LENGTH
    assert expected_error(encode_request(Command.INFO, b"\x00"), INFO) == Code.LENGTH
    far = encode_request(Command.READ_WEIGHT, (21).to_bytes(3, "little"))
    assert expected_error(far, INFO) == Code.RANGE
    big = encode_request(
        Command.WRITE_WEIGHT, (0).to_bytes(3, "little") + (1 << 15).to_bytes(4, "little")
    )
    assert expected_error(big, INFO) == Code.VALUE
    assert expected_error(encode_request(Command.START, (17).to_bytes(2, "little")), INFO) == (
        Code.RANGE
    )


def test_reply_decoder_rejects_corrupt_replies():
    good = encode_reply(Code.OK, b"\x01\x02")
    (reply,) = ReplyDecoder().feed(good)
    assert reply.ok and reply.payload == b"\x01\x02"
    with pytest.raises(ProtocolError, match="checksum"):
        ReplyDecoder().feed(good[:-1] + bytes([good[-1] ^ 0xFF]))
    with pytest.raises(ProtocolError, match="starts with"):
        ReplyDecoder().feed(b"\x00" + good)


class _SilentTransport:
    def write(self, data):
        self.sent = data

    def read(self, count):
        return b""


def test_client_names_a_board_of_another_protocol_version():
    """A board built before protocol 2 answers INFO with version 1 (and 9 bytes): the client
    says which versions meet, not only that the length is wrong."""
    from boards.protocol import Code, encode_reply

    class OldBoard(_SilentTransport):
        reply = encode_reply(Code.OK, bytes([1, 148, 10, 0x26, 0x08, 16, 16, 16, 16]))

        def read(self, count):
            data, self.reply = self.reply[:count], self.reply[count:]
            return data

    with pytest.raises(ProtocolError, match="protocol version 1, this host version 2"):
        HostClient(OldBoard()).info()


def test_client_reports_a_missing_reply():
    with pytest.raises(ProtocolError, match="timeout"):
        HostClient(_SilentTransport()).status()


def test_uart_loopback_carries_every_byte():
    tx, rx = UartTx(divisor=5), UartRx(divisor=5)
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx
    m.d.comb += rx.rx.eq(tx.tx)
    data = [0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80, 0x3C]
    got = []

    async def bench(ctx):
        for byte in data:
            ctx.set(tx.data.payload, byte)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
            ctx.set(tx.data.valid, 0)
            for _ in range(60):
                await ctx.tick()
                if ctx.get(rx.data.valid):
                    got.append(ctx.get(rx.data.payload))
        assert got == data

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_unknown_board_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown board 'icebraker'"):
        board_named("icebraker")
    assert {"icebreaker", "ice40-hx8k", "ulx3s-85f", "orangecrab"} <= set(BOARDS)


# -- the link in the RTL, driven by the host client through a UART model --------------------


@pytest.fixture(scope="module")
def xor_order():
    result = train_xor(board_config())
    assert result.converged
    return result.order


# "spram": the sample store in iCE40UP5K SPRAMs, run with the vendor's cell model, on the
# first 40 samples of the training (three store-fulls); the whole training with `slow`. The
# block store is read in two clocks, as on the ECP5 boards.
@pytest.mark.parametrize(
    "store, count",
    [("block", None), ("spram", 40), pytest.param("spram", None, marks=pytest.mark.slow)],
)
def test_host_client_trains_xor_bit_exactly_over_the_uart(xor_order, store, count):
    order = xor_order[:count]
    latency = 2 if store == "block" else 1
    verdict = run_link_bench(
        board_config(), "train", order=order, store=store, store_latency=latency
    )
    assert verdict["bit_exact"], verdict["problems"]
    assert verdict["samples"] == len(order) > 16  # several store-fulls of samples
    assert verdict["status"]["trained"] and not verdict["status"]["running"]
    assert verdict["leds"] & 1  # the "trained" LED
    # The run LED's lit time: one run per store-full, no fewer clocks than multiply-accumulates.
    from pulsegate.bench import macs_per_sample

    assert verdict["runs"] == -(-verdict["samples"] // 16)
    minimum = macs_per_sample(compile_backprop(board_config()), board_config())
    assert minimum < verdict["cycles_per_sample"] < 10 * minimum
    # exactly the clocks a build's report quotes
    assert verdict["run_clocks"] == verdict["reported_run_clocks"]


def test_host_trains_iris_on_the_board_from_its_initial_weights(tmp_path):
    """``boards.host.train_dataset`` (what ``pulsegate host train-iris`` runs) against the iris
    system in the RTL: initial weights and LFSR written, 40 samples in the golden model's
    order over the UART, weights read back; the full state is bit-exact with the golden
    model and the accuracy is that of the golden model's weights after the same samples."""
    from golden_model.classify import train_classifier
    from golden_model.datasets import dataset_config, load_dataset

    cfg = dataset_config("iris")
    verdict = run_link_bench(
        cfg, "train", dataset="iris", order=list(range(40)), work=tmp_path / "iris"
    )
    assert verdict["bit_exact"], verdict["problems"]
    assert verdict["trained_samples"] == verdict["samples"] == 40
    golden = train_classifier(cfg, load_dataset("iris"), 1, limit=40)
    assert verdict["test_accuracy"] == golden.test_accuracy


@pytest.mark.slow  # the command's wiring is tested with the board replaced in test_linear
def test_host_trains_the_linear_transform_bit_for_bit_over_the_uart(tmp_path):
    """``boards.host.train_samples`` (what ``pulsegate host train-linear`` runs) on a board
    built for the one-layer 3-2 network, through the UART model."""
    from golden_model.config import default_config
    from golden_model.linear import train_linear

    cfg = default_config("linear")
    verdict = run_link_bench(
        cfg, "train", linear_scale=1.0, order=list(range(40)), work=tmp_path / "linear"
    )
    assert verdict["bit_exact"], verdict["problems"]
    assert verdict["trained_samples"] == verdict["samples"] == 40
    golden = train_linear(cfg, samples=40)
    assert verdict["weights"] == golden.weight_flat.tolist()


@pytest.mark.parametrize(("banks", "latency"), [(2, 2), (1, 1)])
def test_the_memory_core_trains_xor_bit_exactly_over_the_uart(xor_order, tmp_path, banks, latency):
    """The board system with the memory-centric core: the host link writes the samples,
    runs them and reads every weight back, bit-exact with the golden model; an abort keeps
    the weights whole. With two input banks (the ECP5 boards', whose store reads in two
    clocks) the next sample loads while one runs; with one (the iCE40 boards') it loads
    between samples."""
    options = {
        "core": "memory", "lanes": 4, "input_banks": banks, "store_latency": latency,
        "work": tmp_path,
    }  # fmt: skip
    verdict = run_link_bench(board_config(), "train", order=xor_order[:24], **options)
    assert verdict["bit_exact"], verdict["problems"]
    assert verdict["samples"] == 24
    # the clocks a build's report quotes are the ones a run takes
    assert verdict["run_clocks"] == verdict["reported_run_clocks"]
    core = MemoryCore(compile_backprop(board_config()), board_config(), 4, observe_ticks=False)
    load = {2: 0, 1: latency + core.input_size}[banks]  # hidden behind the run, or not
    assert verdict["reported_cycles_per_sample"] == core.clocks_per_sample + load
    verdict = run_link_bench(
        board_config(), "abort", order=xor_order[:16], abort_after_clocks=50, **options
    )
    assert verdict["ok"], verdict["problems"]
    assert 0 < verdict["run_done"] < verdict["count"]


# 300 frames of every kind in the default run; the thousand-frame run with `slow`
@pytest.mark.parametrize("frames", [300, pytest.param(1050, marks=pytest.mark.slow)])
def test_malformed_frames_get_errors_and_change_nothing(xor_order, frames):
    verdict = run_link_bench(
        board_config(), "malformed", order=xor_order[:8], seed=11, frames=frames
    )
    assert verdict["ok"], verdict["problems"][:5]
    assert verdict["frames"] >= frames
    assert set(verdict["kinds"]) == {
        "bad checksum",
        "truncated",
        "unknown command",
        "oversized length",
        "address out of range",
        "value out of range",
        "random bytes",
    }


def test_abort_mid_run_keeps_weights_and_copies_equal(xor_order):
    verdict = run_link_bench(board_config(), "abort", order=xor_order[:16], abort_after_clocks=50)
    assert verdict["ok"], verdict["problems"]
    assert 0 < verdict["run_done"] < verdict["count"]
    assert verdict["pairs_checked"] > 0


@pytest.mark.parametrize("offsets", ["end", pytest.param("all", marks=pytest.mark.slow)])
def test_abort_at_every_clock_around_a_runs_end_never_stops_the_next_run(xor_order, offsets):
    """An ABORT that lands in the clock in which a run's last sample completes used to stay
    set, and the next START stopped after one sample."""
    verdict = run_link_bench(board_config(), "stale_abort", order=xor_order[:4], offsets=offsets)
    assert verdict["ok"], verdict["problems"]
    assert verdict["stale_hits"], "no offset reached the run's last clock"
    assert verdict["offsets"][1] - verdict["offsets"][0] >= 24
    # A testbench that leaves a file open fails the ResourceWarning check in its own log.
    from boards.board_sim import DEFAULT_WORK

    assert "ResourceWarning" not in (DEFAULT_WORK / "stale_abort" / "test.log").read_text()


def test_host_client_recovers_from_every_link_fault_within_one_request(xor_order):
    verdict = run_link_bench(board_config(), "faults", order=xor_order[:8])
    assert verdict["ok"], verdict["problems"]
    outcomes = {(o["fault"], o["request"]): o["outcome"] for o in verdict["outcomes"]}
    assert len(outcomes) == 12
    # Request faults are refused by the board; a late reply is a timeout on the host.
    assert outcomes[("flip", "write")].startswith("error: WRITE_WEIGHT refused")
    assert outcomes[("late", "read")] == "error: no reply (timeout)"


# -- place and route with the open toolchain ---------------------------------------------------


def test_ecp5_board_build_meets_timing_and_reports(tmp_path):
    from boards.pnr import build

    result = build("ulx3s-85f", board_config(), tmp_path / "ulx3s")
    for key in ("board", "device", "fmax_mhz", "clock_mhz", "timing_met", "utilization"):
        assert key in result
    assert result["clock_mhz"] == 25
    assert result["timing_met"], f"Fmax {result['fmax_mhz']} MHz < 25 MHz"
    used = result["utilization"]
    assert used["MULT18X18D"]["used"] >= 2 and used["MULT18X18D"]["available"] == 156
    assert result["sample_store"] == {"slots": 16, "memory": "block"}
    assert (tmp_path / "ulx3s" / "top.bit").stat().st_size > 100_000
    assert "| TRELLIS_COMB |" in (tmp_path / "ulx3s" / "report.md").read_text()


def test_ice40up5k_board_build_meets_timing_and_reports(tmp_path):
    """The XOR system on the iCEBreaker: placed, routed, timed at the 12 MHz board clock."""
    from boards.pnr import build

    result = build("icebreaker", board_config(), tmp_path / "icebreaker")
    assert result["device"] == "iCE40UP5K" and result["clock_mhz"] == 12
    assert result["timing_met"], f"Fmax {result['fmax_mhz']} MHz < 12 MHz"
    used = result["utilization"]
    assert used["ICESTORM_LC"]["used"] <= used["ICESTORM_LC"]["available"] == 5280
    assert used["ICESTORM_DSP"]["used"] >= 2 and used["ICESTORM_RAM"]["used"] >= 3
    # The link's sample store takes one of the four SPRAMs, not block RAM, and holds the
    # protocol's 255 samples.
    assert used["ICESTORM_SPRAM"] == {"used": 1, "available": 4}
    assert result["sample_store"] == {"slots": 255, "memory": "spram"}
    assert "255 samples in SPRAM" in (tmp_path / "icebreaker" / "report.md").read_text()
    assert "SB_MAC16" in result["notes"]
    assert (tmp_path / "icebreaker" / "top.bin").stat().st_size > 100_000


def test_the_icebreaker_runs_its_core_from_the_pll_at_the_clock_asked(tmp_path):
    """The memory-core XOR system at 24 MHz from the iCEBreaker's PLL (its 12 MHz pin into
    SB_PLL40_PAD): routed with timing met at 24 MHz, and the report's throughput is at that
    clock, from the clocks a sample takes (exact for the memory core)."""
    from boards.pnr import build

    result = build(
        "icebreaker",
        board_config(),
        tmp_path / "pll",
        core="memory",
        clock_mhz=24,
        placement_seed=3,
    )
    assert result["clock_mhz"] == 24 and result["pll_requested_mhz"] == 24
    # the seed reaches nextpnr
    assert result["placement_seed"] == 3
    assert "--seed 3" in (tmp_path / "pll" / "build_top.sh").read_text()
    assert result["oscillator_mhz"] == 12
    assert result["timing_met"] and result["fmax_mhz"] >= 24
    assert result["utilization"]["ICESTORM_PLL"]["used"] == 1
    assert result["cycles_basis"] == "load + micro-code"  # one input bank on the iCE40
    assert result["samples_per_s"] == round(24e6 / result["cycles_per_sample"])
    assert "24 MHz PLL clock" in (tmp_path / "pll" / "report.md").read_text()


def test_ice40up5k_build_says_what_does_not_fit(tmp_path):
    """A network too large for the iCE40UP5K (2-8-1 in 16-bit words) must fail by naming the
    cell type that does not fit, not end in a bare placer error."""
    from boards.pnr import BuildError, build

    too_big = Config(layers=(2, 8, 1))
    with pytest.raises(BuildError, match=r"does not fit iCE40UP5K .*ICESTORM_LC \d+/5280"):
        build("icebreaker", too_big, tmp_path / "icebreaker")


def test_lane_candidates_follow_multipliers_and_widths():
    from boards.plans import lane_candidates
    from golden_model.datasets import dataset_config

    # 2-4-1: two sets of multipliers (W1's sweep and rule share one; W2's, W2T's and W2's
    # rule another), widest row 5; W1's rows of 3 go 2 a word at 6 lanes, all 4 at 12.
    xor = board_config()
    assert lane_candidates("icebreaker", xor) == [4, 3, 2, 1]  # 8 DSPs / 2 sets
    assert lane_candidates("ulx3s-85f", xor) == [12, 6, 5, 4, 3, 2, 1]
    digits = dataset_config("digits")
    # 65 columns take one chunk at 65 lanes, two at 33-64, three at 22-32: the fewest lanes
    # for each sample length are kept; at 66 W2's rows of 33 go two a word.
    ulx3s = lane_candidates("ulx3s-85f", digits)
    assert ulx3s[:5] == [66, 65, 33, 32, 22] and ulx3s[-1] == 1
    assert lane_candidates("orangecrab", digits)[0] == 13  # 28 / 2, and 14 splits as 13 does
    assert lane_candidates("ice40-hx8k", digits)[:2] == [65, 33]  # no DSPs: the widest sweep


def test_lane_plans_put_multipliers_where_the_sweeps_are():
    from boards.plans import lane_plans, weight_blocks
    from golden_model.datasets import dataset_config
    from golden_model.schedule import compile_backprop
    from hw.network import sweep_depths

    digits = dataset_config("digits")
    plans = lane_plans("ulx3s-85f", digits)
    # One pool of 132 multipliers for the whole core: W1 at 130 lanes (two rows of 65 a
    # word), W2 at 132 (four rows of 33), the two rules taking turns: 16 + 3 + 3 + (16 + 3)
    # sweep clocks (a turn costs no clock: a rule starts as the one before names its last word).
    assert plans[0] == {"W1": 130, "W2": 132, "pool": "core"}
    schedule = compile_backprop(digits)
    # Its memories: 2,080- and 2,112-bit words in 65 + 66 + 66 DP16KD of 208 (3 for the
    # store): a 36-bit block holds two 16-bit lanes, each on its own write enables (Yosys
    # maps the same 197).
    assert weight_blocks(schedule, digits, plans[0], "ecp5") == 197
    clocks = [sum(sweep_depths(schedule, digits, p)) for p in plans]
    assert clocks[0] == 16 + 3 + 3 + 16 + 3 < sum(sweep_depths(schedule, digits, 22))
    # Per matrix the best is W1 at 65 (a row a word) and W2 at 66 (two rows), 131
    # multipliers; W1 at 130 would leave W2 only 26.
    per_matrix = lane_plans("ulx3s-85f", digits, pools=("matrix",))
    assert per_matrix[0] == {"W1": 65, "W2": 66}
    assert sum(sweep_depths(schedule, digits, per_matrix[0])) == 32 + 5 + 5 + 32
    assert clocks == sorted(clocks) and plans[-1] == {"W1": 1, "W2": 1, "pool": "core"}
    # the UP5K's 8 DSPs: all to every matrix in turn (W2 at 7: at 8 its memories would take
    # the 30th and 31st block RAM), or W1 at 6 lanes and W2 at 2
    assert lane_plans("icebreaker", digits)[0] == {"W1": 8, "W2": 7, "pool": "core"}
    up5k = lane_plans("icebreaker", digits)
    assert all(weight_blocks(schedule, digits, p, "ice40") <= 30 for p in up5k)
    assert weight_blocks(schedule, digits, {"W1": 8, "W2": 8, "pool": "core"}, "ice40") == 32
    assert lane_plans("icebreaker", digits, pools=("matrix",))[0] == {"W1": 6, "W2": 2}


def _plan_lanes(lanes):
    """Datapath lanes (every unit's, summed): what the logic grows with."""
    from golden_model.schedule import compile_backprop
    from hw.network import multiplier_count

    return multiplier_count(compile_backprop(board_config()), lanes, share=False)


def test_auto_lanes_reports_a_tool_failure_as_itself_not_as_a_plan_that_does_not_fit(
    monkeypatch, tmp_path
):
    import boards.plans as planner

    tried = []

    def crashing_build(board, cfg, out, lanes, baud, router, time_limit, progress=None, **_):
        tried.append(lanes)
        raise planner.BuildError("the ulx3s-85f build failed (nextpnr crashed)")

    monkeypatch.setattr(planner, "build", crashing_build)
    monkeypatch.setattr(planner, "core_logic", lambda *_, **__: (1000, 83640))
    with pytest.raises(planner.BuildError, match="nextpnr crashed") as caught:
        planner.build_auto("ulx3s-85f", board_config(), tmp_path)
    assert not isinstance(caught.value, planner.DoesNotFit)
    assert len(tried) == 1  # no halving search after a crash


def test_auto_lanes_search_keeps_the_fastest_plan_that_builds(monkeypatch, tmp_path):
    import boards.plans as planner

    def fake_build(board, cfg, out, lanes, baud, router, time_limit, progress=None, **_):
        if _plan_lanes(lanes) > 21:
            raise planner.DoesNotFit(f"the design does not fit: {lanes}")
        ok = _plan_lanes(lanes) <= 15
        return {"board": board.name, "lanes": lanes, "timing_met": ok, "fmax_mhz": 9}

    monkeypatch.setattr(planner, "build", fake_build)
    monkeypatch.setattr(planner, "core_logic", lambda *_, **__: (1000, 83640))
    # datapath lanes 39, 27, 24, 21, 18, 15, 12, 9, 7, 5
    plans = planner.lane_plans("ulx3s-85f", board_config(), frontier="lanes")
    report = planner.build_auto("ulx3s-85f", board_config(), tmp_path)
    assert report["lanes"] == {"W1": 3, "W2": 3} == plans[5]
    tried = {t["lanes"]: t["result"] for t in report["lanes_tried"]}
    assert tried["W1=3,W2=3"] == "fits, timing met"
    assert tried["W1=6,W2=3"] == "timing not met (9 MHz)"
    assert "does not fit" in tried["W1=12,W2=5"]  # the fastest plan first
    assert len(tried) <= 1 + math.ceil(math.log2(len(plans)))  # then halving, not every plan
    # Without the logic check the search runs over the plans of fewer multipliers.
    report = planner.build_auto("ulx3s-85f", board_config(), tmp_path, check_logic=False)
    assert report["lanes"] == {"W1": 3, "W2": 3, "pool": "core"}


def test_auto_lanes_stop_after_one_build_when_the_fastest_fits(monkeypatch, tmp_path):
    import boards.plans as planner

    built = []

    def fake_build(board, cfg, out, lanes, baud, router, time_limit, progress=None, **_):
        built.append(lanes)
        return {"board": board.name, "lanes": lanes, "timing_met": True, "fmax_mhz": 30}

    monkeypatch.setattr(planner, "build", fake_build)
    monkeypatch.setattr(planner, "core_logic", lambda *_, **__: (1000, 83640))
    report = planner.build_auto("ulx3s-85f", board_config(), tmp_path)
    assert report["lanes"] == {"W1": 12, "W2": 5} and built == [report["lanes"]]


def test_auto_lanes_do_not_build_a_plan_whose_logic_is_over_the_limit(monkeypatch, tmp_path):
    import boards.plans as planner

    built = []

    def fake_build(board, cfg, out, lanes, baud, router, time_limit, progress=None, **_):
        built.append(lanes)
        return {"board": board.name, "lanes": lanes, "timing_met": True, "fmax_mhz": 30}

    def fake_logic(board, cfg, lanes, core="spatial"):  # logic grows with the lanes
        return 3_000 * _plan_lanes(lanes), 83_640

    monkeypatch.setattr(planner, "build", fake_build)
    monkeypatch.setattr(planner, "core_logic", fake_logic)
    report = planner.build_auto("ulx3s-85f", board_config(), tmp_path)
    # 21 lanes and fewer are within 85 % of 83,640 (71,094): the syntheses find the
    # fastest of them, and it is the one build
    assert built == [report["lanes"]] == [{"W1": 6, "W2": 3}]
    tried = {t["lanes"]: t["result"] for t in report["lanes_tried"]}
    assert tried["W1=12,W2=5"].startswith("not built: the core takes 117,000 of 83,640")


def test_a_build_past_its_time_limit_is_stopped_with_its_tools(tmp_path):
    """The build script and what it started are killed at the limit (YoWASP tools run as
    children of the script), and the caller gets TimeoutExpired in seconds, not hours."""
    import subprocess
    import time

    from boards.pnr import run_script

    class Plan:  # what run_script takes from Amaranth's BuildPlan
        script = "build_top"

        def extract(self, root):
            marker = tmp_path / "child_alive"
            (tmp_path / "build_top.sh").write_text(f"(sleep 1; touch {marker}) & sleep 30\n")

    started = time.perf_counter()
    with pytest.raises(subprocess.TimeoutExpired):
        run_script(Plan(), tmp_path, time_limit=0.3)
    assert time.perf_counter() - started < 1
    time.sleep(1.5)
    assert not (tmp_path / "child_alive").exists()  # the background child died too


def test_a_terminated_build_stops_its_tools(tmp_path):
    """``pulsegate build`` killed (SIGTERM) or interrupted stops the tools it started: they
    run in a session of their own, which no signal to the command reaches (a stopped build's
    nextpnr had kept running for 25 minutes beside the next one)."""
    import subprocess
    import sys
    import time

    script = tmp_path / "build_top.sh"
    started = tmp_path / "started"  # the script runs: the runner's handler is in place
    script.write_text(f"touch {started}; (sleep 1; touch {tmp_path / 'child_alive'}) & sleep 30\n")
    runner = tmp_path / "runner.py"
    runner.write_text(
        "import signal, sys\n"
        "from pathlib import Path\n"
        "from boards.pnr import run_script\n"
        "class Plan:\n"
        "    script = 'build_top'\n"
        "    def extract(self, root): pass\n"
        "signal.signal(signal.SIGTERM, lambda n, f: sys.exit(128 + n))  # as pulsegate.cli does\n"
        f"run_script(Plan(), Path({str(tmp_path)!r}), time_limit=None, poll=0.05)\n"
    )
    command = subprocess.Popen([sys.executable, str(runner)])
    deadline = time.monotonic() + 60  # a loaded machine imports slowly: wait, not guess
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), "the build script never started"
    command.terminate()
    assert command.wait(timeout=5) == 128 + 15
    time.sleep(1.5)
    assert not (tmp_path / "child_alive").exists()  # the script's background child died too


NEXTPNR_LOG = """Info: Packing IOs..
Info: Running main analytical placer, max placement attempts per cell = 194020834.
Info:     at iteration #1, type ALL: wirelen solved = 32718, spread = 3603993, legal = 3796684
Info:     at iteration #17, type ALL: wirelen solved = 651679, spread = 1053904, legal = 1245897
Info: Running simulated annealing placer for refinement.
Info:   at iteration #5: temp = 0.000000, timing cost = 10212, wirelen = 1082604
Info: Max frequency for clock '$glbnet$clk': 35.47 MHz (PASS at 25.00 MHz)
"""
ROUTER2 = """Info: Running router2...
Info:     iter=1 wires=1203096 overused=125381 overuse=162313 archfail=NA
Info:     iter=2 wires=1281427 overused=104177 overuse=119153 archfail=NA
"""
ROUTER1 = """Info: Routing 80562 arcs.
Info:            |   (re-)routed arcs  |   delta    | remaining|       time spent     |
Info:    IterCnt |  w/ripup   wo/ripup |  w/r  wo/r |      arcs| batch(sec) total(sec)|
Info:     159000 |    66313      92679 |  465   535 |     42328|      24.37    1216.94|
"""


def test_build_stage_reads_where_nextpnr_is():
    from boards.pnr import build_stage

    assert build_stage(None) == "synthesizing (Yosys)"
    assert build_stage("Info: Packing IOs..\n") == "packing"
    lines = NEXTPNR_LOG.splitlines(keepends=True)
    assert build_stage("".join(lines[:4])) == "placing (analytic), iteration 17"
    assert build_stage("".join(lines[:6])) == "placing (annealing), iteration 5"
    assert build_stage(NEXTPNR_LOG) == "placed at an estimated 35.47 MHz"
    placed = "placed at an estimated 35.47 MHz; "
    assert build_stage(NEXTPNR_LOG + ROUTER2) == (
        placed + "routing (router2): iteration 2, 104,177 wires overused"
    )
    assert build_stage(NEXTPNR_LOG + ROUTER1) == (
        placed + "routing (router1): 42,328 of 80,562 arcs left"
    )
    routed = "Info: Max frequency for clock '$glbnet$clk': 40.13 MHz (PASS at 25.00 MHz)\n"
    assert (
        build_stage(NEXTPNR_LOG + ROUTER2 + routed) == "routed: 40.13 MHz (writing the bitstream)"
    )


def test_a_build_shows_its_stages_as_they_change(tmp_path):
    from boards.pnr import run_script

    log = tmp_path / "top.tim"
    placing, routing = NEXTPNR_LOG.splitlines()[1], ROUTER2.splitlines()[1]

    class Plan:
        script = "build_top"

        def extract(self, root):
            (tmp_path / "build_top.sh").write_text(
                f'sleep 0.3; echo "{placing}" > {log}; sleep 0.3; '
                f'echo "{routing}" >> {log}; sleep 0.3\n'
            )

    stages = []
    run_script(Plan(), tmp_path, time_limit=None, progress=stages.append, poll=0.05)
    assert stages[0] == "synthesizing (Yosys)"
    assert "placing (analytic)" in stages
    assert stages[-1] == "routing (router2): iteration 1, 125,381 wires overused"
    assert len(stages) == len(set(stages))  # a stage once, however often it was polled


def test_core_logic_counts_the_core_by_yosys(tmp_path, capsys):
    """The XOR board core on the UP5K: a real synthesis, well inside the device, and more
    logic at more lanes (the second through ``pulsegate logic``)."""
    import json

    from boards.plans import core_logic
    from pulsegate.cli import main

    one, device = core_logic("icebreaker", board_config(), 1)
    out = tmp_path / "logic.json"
    lanes = "W1=2,W2=1"
    assert main(["logic", "--board", "icebreaker", "--lanes", lanes, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert device == report["device_cells"] == 5280
    assert 200 < one < report["logic_cells"] < device and report["fits_logic"]
    assert "within the 85%" in capsys.readouterr().out


def test_logic_cells_count_an_ice40_cell_per_lut_and_per_flip_flop():
    """An iCE40 flip-flop shares a cell only with the LUT that feeds it (few do): LUT + FF.
    An ECP5 slice has its flip-flops beside its LUTs: the larger of LUT + 2 CCU2C and FF."""
    from boards.plans import logic_cells

    counts = {"LUT": 4_221, "FF": 3_443, "CARRY": 903}
    assert logic_cells("ice40", counts) == 7_664  # the system packed to 7,377 with its link
    assert logic_cells("ecp5", counts) == 4_221 + 2 * 903
    assert logic_cells("ecp5", counts | {"FF": 9_000}) == 9_000
    # LUT RAM: four LUTs a TRELLIS_DPR16X4 (400-400-10 at 100 lanes: Yosys 48,083 LUT4,
    # 7,599 CCU2C and 3,225 DPR16X4 estimate 76,181; nextpnr placed 85,791 with the link)
    big = {"LUT": 48_083, "CARRY": 7_599, "LUTRAM": 3_225, "FF": 30_189}
    assert logic_cells("ecp5", big) == 48_083 + 2 * 7_599 + 4 * 3_225


def test_fastest_fitting_plan_halves_down_to_the_fastest_within_the_logic(monkeypatch):
    import boards.plans as planner

    checked = []

    def fake_logic(board, cfg, lanes, core="spatial"):
        checked.append(lanes)
        return 3_000 * _plan_lanes(lanes), 83_640

    monkeypatch.setattr(planner, "core_logic", fake_logic)
    plans = planner.lane_plans("ulx3s-85f", board_config(), frontier="lanes")
    plan, logic = planner.fastest_fitting_plan("ulx3s-85f", board_config())
    assert _plan_lanes(plan) == 21 and plans.index(plan) == 3  # 39, 27 and 24 are over
    assert logic["W1=12,W2=5"] == (117_000, 83_640) and len(checked) < len(plans)
    monkeypatch.setattr(planner, "core_logic", lambda *_, **__: (90_000, 83_640))
    assert planner.fastest_fitting_plan("ulx3s-85f", board_config())[0] is None


def test_logic_auto_prints_each_synthesis_and_the_plan_auto_would_build(
    monkeypatch, tmp_path, capsys
):
    import json

    import boards.plans as planner
    from pulsegate.cli import main

    monkeypatch.setattr(
        planner,
        "core_logic",
        lambda board, cfg, lanes, **_: (3_000 * _plan_lanes(lanes), 83_640),
    )
    out = tmp_path / "auto.json"
    assert main(["logic", "--board", "ulx3s-85f", "--lanes", "auto", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["fastest_fitting"] == "W1=6,W2=3"
    first = report["plans"][0]
    assert first == {
        "lanes": "W1=12,W2=5",
        "logic_cells": 117_000,
        "device_cells": 83_640,
        "fits_logic": False,
    }
    text = capsys.readouterr().out
    assert "lanes W1=12,W2=5: 117,000 of 83,640 logic cells (139.9%), over" in text
    assert "fastest within the limit: W1=6,W2=3" in text
    monkeypatch.setattr(planner, "core_logic", lambda *_, **__: (90_000, 83_640))
    assert main(["logic", "--board", "ulx3s-85f", "--lanes", "auto"]) == 1
    assert "no plan is within the limit" in capsys.readouterr().out


def test_the_logic_frontier_keeps_plans_of_fewer_lanes_not_of_fewer_multipliers():
    from boards.plans import lane_plans
    from golden_model.datasets import dataset_config
    from golden_model.schedule import compile_backprop
    from hw.network import multiplier_count, sweep_depths

    iris = dataset_config("iris")
    schedule = compile_backprop(iris)
    by_lanes = lane_plans("icebreaker", iris, frontier="lanes")
    by_multipliers = lane_plans("icebreaker", iris)
    lanes = [multiplier_count(schedule, p, share=False) for p in by_lanes]
    clocks = [sum(sweep_depths(schedule, iris, p)) for p in by_lanes]
    assert lanes == sorted(lanes, reverse=True) and len(set(lanes)) == len(lanes)
    assert clocks == sorted(clocks)
    # One lane per matrix (two multipliers of the eight, 131 sweep clocks) has the datapath
    # of one pool of one lane (158) and is faster: only the logic frontier keeps it.
    assert by_lanes[-1] == {"W1": 1, "W2": 1} and clocks[-1] == 131
    assert by_multipliers[-1] == {"W1": 1, "W2": 1, "pool": "core"}
    assert {"W1": 1, "W2": 1} not in by_multipliers
    with pytest.raises(ValueError, match="frontier"):
        lane_plans("icebreaker", iris, frontier="area")


def test_one_word_memories_are_registers_on_the_ecp5_and_take_no_block_ram():
    from amaranth.hdl import Fragment

    from boards.catalogue import WORD_REGISTERS
    from boards.plans import weight_blocks
    from golden_model.schedule import compile_backprop
    from hw.network import NetworkCore

    cfg = board_config()
    schedule = compile_backprop(cfg)
    one_word = {"W1": 12, "W2": 5}  # every matrix and copy a single word
    assert WORD_REGISTERS == {"ecp5": True, "ice40": False}
    assert weight_blocks(schedule, cfg, one_word, "ecp5") == 0
    assert weight_blocks(schedule, cfg, one_word, "ice40") > 0
    assert weight_blocks(schedule, cfg, 1, "ecp5") > 0  # deeper memories stay in block RAM
    for lanes, style in ((one_word, "logic"), (1, "block")):
        core = NetworkCore(schedule, cfg, lanes=lanes, debug=False, word_registers=True)
        Fragment.get(core, None)  # the units are made when the core is elaborated
        assert {u.memory.attrs["ram_style"] for u in core.synapses.values()} == {style}


# A stored nextpnr-ice40 report (the iCEBreaker XOR system, trimmed) and log lines.
ICE40_REPORT = {
    "fmax": {"clk": {"achieved": 22.675222396850586, "constraint": 12.00004768371582}},
    "utilization": {
        "ICESTORM_DSP": {"available": 8, "used": 2},
        "ICESTORM_HFOSC": {"available": 1, "used": 0},
        "ICESTORM_LC": {"available": 5280, "used": 4228},
        "ICESTORM_RAM": {"available": 30, "used": 3},
        "ICESTORM_SPRAM": {"available": 4, "used": 1},
        "SB_IO": {"available": 39, "used": 5},
        "SB_I2C": {"available": 2, "used": 0},
    },
}
OVER_LOG = """Info: Device utilisation:
Info: 	         ICESTORM_LC:  6346/ 5280   120%
Info: 	        ICESTORM_RAM:    12/   30    40%
Info: 	               SB_IO:     5/   39    12%
"""


def test_a_stored_nextpnr_report_parses_to_fmax_and_utilization():
    from boards.pnr import parse_report

    fmax, utilization = parse_report(ICE40_REPORT)
    assert round(fmax, 2) == 22.68
    assert utilization["ICESTORM_LC"] == {"used": 4228, "available": 5280}
    assert "SB_I2C" not in utilization and "ICESTORM_HFOSC" not in utilization  # unused
    assert utilization["ICESTORM_RAM"]["used"] == 3  # key cells always listed
    two_clocks = {"fmax": {"a": {"achieved": 50.0}, "b": {"achieved": 31.5}}}
    assert parse_report(two_clocks)[0] == 31.5  # the slowest domain
    assert parse_report({}) == (0.0, {})


def _step(kind, delay, cell, net=None):
    step = {"type": kind, "delay": delay, "from": {"cell": cell}, "to": {"cell": cell}}
    return {**step, "net": net} if net else step


def test_the_critical_path_is_summarized_from_the_report():
    from boards.pnr import critical_path, report_markdown

    slow = [
        _step("clk-to-q", 1.5, "core.a"),
        _step("routing", 4.0, "core.b", "a_q"),
        _step("logic", 1.0, "core.b"),
        _step("routing", 3.0, "core.c", "b_o"),
        _step("setup", 0.5, "core.c"),
    ]
    fast = [_step("clk-to-q", 1.0, "link.x"), _step("setup", 0.5, "link.y")]
    pad = [_step("clk-to-q", 1.0, "out"), _step("routing", 20.0, "pin_led")]
    report = {
        "critical_paths": [
            {"path": fast},
            {"path": slow},
            {"from": "posedge clk", "to": "<async>", "path": pad},  # not the clock's
        ]
    }
    path = critical_path(report)
    assert path == {
        "delay_ns": 10.0,
        "logic_ns": 3.0,
        "routing_ns": 7.0,
        "source": "core.a",
        "sink": "core.c",
        "cells": ["core.a", "core.b", "core.c"],
    }
    assert critical_path({}) is None and critical_path({"critical_paths": []}) is None
    result = {
        "board": "b",
        "device": "d",
        "network": "2-4-1",
        "clock_mhz": 125.0,  # 8 ns: 2 ns over
        "pll_requested_mhz": 125,
        "fmax_mhz": 100.0,
        "timing_met": False,
        "notes": "",
        "cycles_per_sample": 10,
        "cycles_basis": "micro-code",
        "samples_per_s": 1,
        "utilization": {},
        "critical_path": path,
    }
    text = report_markdown(result)
    assert "Critical path 10.00 ns (logic 3.00, routing 7.00)" in text
    assert "2.00 ns over" in text and "`core.a` to `core.c`" in text


def test_cells_over_capacity_are_read_from_the_log():
    from boards.pnr import over_capacity

    assert over_capacity(OVER_LOG) == ["ICESTORM_LC 6346/5280 (120 %)"]
    assert over_capacity(OVER_LOG.replace("6346", "4000")) == []


def test_memory_core_plans_each_save_clocks():
    """The memory core's ``--lanes auto`` candidates: powers of two within the device's
    multipliers and the fewest lanes that split a dimension into as many words, fastest
    first, each faster than every smaller count."""
    from boards.plans import memory_lane_counts
    from golden_model.datasets import dataset_config
    from golden_model.schedule import compile_backprop
    from hw.microcode import encode, sample_clocks
    from hw.microprogram import compile_program

    digits = dataset_config("digits")
    assert memory_lane_counts("icebreaker", digits) == [8, 7, 5, 4, 2, 1]  # the UP5K's 8 DSPs
    counts = memory_lane_counts("ulx3s-85f", digits)
    # 65 (the bias column's row of W1) in one word: 128's clocks with half the lanes
    assert counts[0] == 65 and counts[-1] == 1
    schedule = compile_backprop(digits)

    def clocks(n):
        return sample_clocks(encode(compile_program(schedule, n), digits)[0], n)

    assert [clocks(n) for n in counts] == sorted({clocks(n) for n in counts})
    assert clocks(65) == clocks(128)
    assert memory_lane_counts("icebreaker", board_config()) == [4, 3, 2, 1]  # XOR: no wider


def test_memory_core_auto_plans_weigh_folds_by_cost_and_clocks():
    """``--lanes auto`` on the memory core weighs folds beside full lane counts: each plan
    takes fewer clocks than every plan that costs as much or less, fastest (costliest)
    first."""
    from boards.plans import LANE_CELLS, MULTIPLIER_CELLS, memory_plans
    from golden_model.datasets import dataset_config
    from golden_model.schedule import compile_backprop
    from hw.cores import Fold
    from hw.microcode import encode, sample_clocks
    from hw.microprogram import compile_program

    digits = dataset_config("digits")
    plans = memory_plans("ulx3s-85f", digits)
    assert any(isinstance(p, Fold) for p in plans) and plans[-1] == 1
    schedule = compile_backprop(digits)

    def shape(plan):
        return (plan.lanes, plan.simd) if isinstance(plan, Fold) else (plan, plan)

    def clocks(plan):
        lanes, simd = shape(plan)
        return sample_clocks(encode(compile_program(schedule, lanes, simd), digits)[0], lanes, simd)

    def cost(plan):
        lanes, simd = shape(plan)
        return lanes * LANE_CELLS + simd * MULTIPLIER_CELLS

    taken = [clocks(p) for p in plans]
    assert taken == sorted(set(taken))  # fastest first, each faster than the next
    assert [cost(p) for p in plans] == sorted({cost(p) for p in plans}, reverse=True)
    assert all(shape(p)[1] <= 156 for p in plans)  # the ECP5-85F's multipliers


def test_auto_lanes_build_a_fold_with_its_multipliers(monkeypatch, tmp_path):
    """A fold ``--lanes auto`` picks is built as ``lanes`` element lanes beside ``simd``
    multipliers, and reported by its label (``8x32``)."""
    import boards.plans as planner
    from hw.cores import Fold

    built = []

    def fake_build(board, cfg, out, lanes, simd=None, **_):
        built.append((lanes, simd))
        ok = simd is None
        return {"board": board.name, "lanes": lanes, "timing_met": ok, "fmax_mhz": 50}

    monkeypatch.setattr(planner, "build", fake_build)
    monkeypatch.setattr(planner, "memory_plans", lambda *_: [Fold(8, 32), 8, 4])
    report = planner.build_auto(
        "ulx3s-85f", board_config(), tmp_path, core="memory", check_logic=False
    )
    assert built[0] == (8, 32) and report["lanes"] == 8
    assert report["lanes_tried"][0] == {"lanes": "8x32", "result": "timing not met (50 MHz)"}


def test_a_wide_ecp5_plan_keeps_state_and_buffers_in_lut_ram():
    """Past 32 lanes an ECP5 system's state memory and buffers are LUT RAM (their banks are
    a few rows each: block RAM is the weights'), and so at any plan where the weights fill
    the block RAM (400-400-10); narrower plans of smaller networks and the iCE40 leave the
    choice to Yosys."""
    from boards.top import LARGE_WEIGHTS, WIDE_PLAN, board_system
    from golden_model.datasets import dataset_config

    digits = dataset_config("digits")

    def style(family, lanes, cfg=digits):
        system = board_system(cfg, family=family, divisor=200, slots=2, lanes=lanes, core="memory")
        return system.core.ram_style

    assert style("ecp5", WIDE_PLAN + 1) == "distributed"
    assert style("ecp5", WIDE_PLAN) is None and style("ice40", 65) is None
    large = digits.replace(layers=(400, 160, 10))  # 66,170 weights: 1.06 Mbit
    assert (401 * 160 + 161 * 10) * large.weight_width > LARGE_WEIGHTS
    assert style("ecp5", 8, large) == "distributed" and style("ice40", 8, large) is None


def test_a_load_longer_than_the_run_sets_the_memory_cores_pace(tmp_path):
    """A one-layer 48-1 network at 8 lanes runs in fewer clocks than its 96 input words take
    to load (each waiting for a clock the lanes leave the state's write port free): the
    run's clocks are still exactly the report's, now paced by the load."""
    from golden_model.config import default_config

    cfg = default_config("linear").replace(layers=(48, 1))
    verdict = run_link_bench(
        cfg, "train", linear_scale=1.0, order=list(range(20)), core="memory", lanes=8,
        store_latency=2, work=tmp_path,
    )  # fmt: skip
    assert verdict["bit_exact"], verdict["problems"]
    core = MemoryCore(compile_backprop(cfg), cfg, 8, observe_ticks=False)
    assert verdict["reported_cycles_per_sample"] > core.clocks_per_sample  # paced by the load
    assert verdict["run_clocks"] == verdict["reported_run_clocks"]
