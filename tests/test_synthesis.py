"""Yosys maps the blocks' multipliers to the device's DSPs (SB_MAC16, MULT18X18D).

Runs the project's YoWASP Yosys; its first run on a fresh machine compiles it (about 80 s).
"""

import pytest

from boards.synth import synthesize
from golden_model.config import Config
from hw.arithmetic import Arithmetic
from hw.hebbian import HebbianUnit
from hw.population import PopulationAccumulator
from hw.synapse import COLUMNS, SynapseUnit


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
@pytest.mark.parametrize(
    ("name", "factory", "multipliers"),
    [
        ("synapse", lambda cfg: SynapseUnit(Arithmetic.of(cfg), 6, 5, 2), 2),
        ("synapse_t", lambda cfg: SynapseUnit(Arithmetic.of(cfg), 5, 6, 3, layout=COLUMNS), 3),
        ("hebbian", lambda cfg: HebbianUnit(Arithmetic.of(cfg), 4, 6, 2, copy_rows=5), 2),
        (
            "population",
            lambda cfg: PopulationAccumulator(
                Arithmetic.of(cfg.replace(ticks_per_window=4, leak_shift=2)), 4, 2
            ),
            2,
        ),
    ],
)
def test_each_lane_multiplier_is_one_dsp(family, name, factory, multipliers):
    result = synthesize(factory(Config()), name, family)
    assert result.counts["DSP"] == multipliers, result.cells
    assert result.counts["LUT"] > 0 and result.counts["FF"] > 0


def test_unknown_family_is_an_error():
    with pytest.raises(ValueError, match="unknown family"):
        synthesize(None, "x", "xilinx")  # rejected before anything is elaborated


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
@pytest.mark.parametrize("share", [True, False])
def test_core_multipliers_are_counted_by_the_lane_plan(family, share):
    """The XOR core at W1=2, W2=3: a matrix's units share one set of multipliers (2 + 3), or
    each unit has its own (2 * 2 + 3 * 3); ``multiplier_count`` is what the plans budget."""
    from golden_model.schedule import compile_backprop
    from hw.network import NetworkCore, multiplier_count

    cfg = Config()
    schedule = compile_backprop(cfg)
    lanes = {"W1": 2, "W2": 3}
    core = NetworkCore(schedule, cfg, lanes=lanes, debug=False, share_multipliers=share)
    result = synthesize(core, "core", family)
    assert result.counts["DSP"] == multiplier_count(schedule, lanes, share) == (5 if share else 13)


def test_a_one_word_memory_in_registers_takes_no_block_ram_and_less_logic():
    """The ECP5 boards keep one-word weight memories in flip-flops: the 2-4-1 XOR core's W1 at
    12 lanes (one word) maps to no DP16KD and fewer LUT4 than in block RAM."""
    arith = Arithmetic.of(Config())
    block = synthesize(SynapseUnit(arith, 4, 3, 12, fetch=True), "in_block", "ecp5").counts
    registers = synthesize(
        SynapseUnit(arith, 4, 3, 12, fetch=True, registers=True), "in_registers", "ecp5"
    ).counts
    assert block["BRAM"] > 0 and registers["BRAM"] == 0, (block, registers)
    assert registers["LUT"] < block["LUT"], (block, registers)
