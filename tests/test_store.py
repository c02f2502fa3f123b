"""The link's sample store: one port, block RAM or iCE40UP5K SPRAM."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from boards.store import BANK_DEPTH, SampleStore, spram_blocks, spram_slots


class _Platform:
    def __init__(self, device: str) -> None:
        self.device = device


def test_auto_takes_spram_only_on_an_iCE40UP_device_and_when_it_fits():
    store = SampleStore(16, 16 * 148)
    assert store.resolved_kind(_Platform("iCE40UP5K")) == "spram"
    assert store.resolved_kind(_Platform("iCE40HX8K")) == "block"
    assert store.resolved_kind(_Platform("LFE5U-85F")) == "block"
    assert store.resolved_kind(None) == "block"
    # Five SPRAMs' worth does not fit the UP5K's four: block RAM.
    assert SampleStore(16, 5 * 16384).resolved_kind(_Platform("iCE40UP5K")) == "block"
    assert spram_blocks(12, 100) == 1 and spram_blocks(20, 16385) == 4


def test_bad_store_settings_name_what_is_wrong():
    with pytest.raises(ValueError, match="store kind"):
        SampleStore(16, 8, kind="flash")
    with pytest.raises(ValueError, match="need 8 SPRAMs"):
        SampleStore(32, 4 * 16384, kind="spram")
    with pytest.raises(ValueError, match="width and depth"):
        SampleStore(16, 0)
    with pytest.raises(ValueError, match="store latency must be 1, or 2 for a block store"):
        SampleStore(16, 8, kind="spram", latency=2)
    with pytest.raises(ValueError, match="store latency"):
        SampleStore(16, 8, latency=3)


@pytest.mark.parametrize(
    ("depth", "latency"),
    [(40, 1), (40, 2), (BANK_DEPTH * 2 + 5, 2)],  # one bank; three, the last a short one
)
def test_block_store_reads_what_was_written_latency_clocks_after_the_address(depth, latency):
    """A block store returns each word ``latency`` clocks after its address, a new address
    every clock (with 2: across banks, each bank's output registered before the choice)."""
    store = SampleStore(12, depth, kind="block", latency=latency)
    ends = {*range(0, depth, 7), *range(BANK_DEPTH - 2, BANK_DEPTH + 2), depth - 1}
    addresses = sorted(a for a in ends if a < depth)
    written = {a: (a * 37 % 4096) - 2048 for a in addresses}
    got = []

    async def bench(ctx):
        for a, v in written.items():
            ctx.set(store.write_addr, a)
            ctx.set(store.wdata, v)
            ctx.set(store.we, 1)
            await ctx.tick()
        ctx.set(store.we, 0)
        order = list(reversed(addresses)) + [0] * latency
        for clock, a in enumerate(order):
            ctx.set(store.read_addr, a)
            await ctx.tick()
            if clock + 1 >= latency:
                got.append(ctx.get(store.rdata))

    sim = Simulator(store)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got[: len(addresses)] == [written[a] for a in reversed(addresses)]


def test_board_stores_fill_the_spram_on_the_up5k_and_keep_16_slots_elsewhere():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    from boards.catalogue import board_config, store_slots
    from golden_model.datasets import dataset_config

    assert store_slots(board_config(), ICEBreakerPlatform()) == 255
    assert store_slots(board_config(), ULX3S_85F_Platform()) == 16
    assert store_slots(board_config(), ICEBreakerPlatform(), 40) == 40
    # Digits: 148 words a sample, 255 samples in three SPRAMs.
    assert store_slots(dataset_config("digits"), ICEBreakerPlatform()) == 255
    assert spram_blocks(16, 255 * 148) == 3
    # 32-bit words of 600 a sample: two SPRAMs side by side, 54 samples in two banks.
    assert spram_slots(32, 600) == 54 and spram_slots(64, 20_000) == 0


@pytest.mark.parametrize(
    ("width", "depth"),
    [
        (12, 1000),  # one SPRAM, the board network's word
        (20, 16384 + 300),  # two blocks side by side, in two banks: four SPRAMs
    ],
)
def test_spram_store_returns_every_word_written(width, depth):
    """The SPRAM store under Verilator with Yosys' SB_SPRAM256KA model: random words at
    random addresses (and both ends of every bank) read back unchanged."""
    from boards.board_sim import run_store_bench

    verdict = run_store_bench(width, depth, writes=300, seed=width)
    assert verdict["bad"] == 0, verdict["mismatches"]
    assert verdict["checked"] >= 250
