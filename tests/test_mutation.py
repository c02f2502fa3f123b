"""Mutation cover (:mod:`sim.mutation`): the mutants are built into one netlist, the
unmutated one is bit-exact, and the comparison kills mutants (a broken comparison would let
them all survive)."""

from __future__ import annotations

import pytest

from sim.mutation import MutationReport, run_mutation


def test_a_small_mutation_run_kills_mutants_and_scores_them(tmp_path):
    report = run_mutation(count=16, samples=12, timeout=0, work=tmp_path)
    assert len(report.mutations) == 16
    assert sorted(report.killed + report.survived) == list(range(1, 17))
    assert report.killed, "no mutant killed: the comparison sees nothing"
    assert all(report.reasons[k] for k in report.killed)
    assert report.line() == (
        f"mutation score: {len(report.killed)} of 16 non-equivalent mutants killed "
        f"({100 * len(report.killed) / 16:.1f} %)"
    )


def test_the_score_leaves_out_only_proved_equivalents():
    report = MutationReport(["m1", "m2", "m3", "m4"], killed=[1, 2], survived=[3, 4])
    report.equivalent = [4]
    assert report.non_equivalent == 3
    assert report.score == pytest.approx(200 / 3)
    assert [e["mutant"] for e in report.as_dict()["survived"]] == [3]


@pytest.mark.slow
def test_the_equivalence_check_proves_no_change_and_refuses_a_real_one(tmp_path):
    """Minutes each: the unmutated design is proved equivalent to itself; a mutant that the
    comparison kills (the first listed that is) is not."""
    from golden_model.config import default_config
    from sim.mutation import equivalent, list_mutations, write_core

    source = write_core(default_config("xor"), 2, tmp_path)
    assert equivalent(source, "mutate -mode none", 900) is True
    report = run_mutation(count=16, samples=12, timeout=0, work=tmp_path / "run")
    killed = report.mutations[report.killed[0] - 1]
    assert killed in list_mutations(source, 16, 1)
    assert equivalent(source, killed, 900) is False
    # a register's output tied to a constant gives its wire two initial values, which the
    # check reads as not proved (it had stopped the whole run with an error)
    tied = next(
        m
        for m in list_mutations(source, 1000, 1)
        if "-mode const" in m and "-port Q" in m and "-wire samples" in m
    )
    assert equivalent(source, tied, 900) is False


def test_the_stress_configuration_saturates_steps_its_lfsr_and_leaks():
    """The claim ``--variant stress`` rests on: within the mutation run's samples every
    saturation counter moves and the LFSR leaves its seed (else its netlist would test no
    more than the default one)."""
    from golden_model.circuit import FIXED, Circuit
    from sim.generate import schedule_for
    from sim.mutation import stress_config, training_samples

    cfg = stress_config()
    assert cfg.leak_shift and cfg.ticks_per_window > 1
    circuit = Circuit(schedule_for(cfg, "xor"), cfg, FIXED)
    seed = circuit.lfsr.state
    for sample in training_samples(12, 1):
        for name, values in sample.items():
            circuit.load_signed(name, values)
        circuit.run_sample()
    current, weight, copy = (int(v) for v in circuit.counters[:3])
    assert current > 0 and weight > 0 and copy > 0
    assert circuit.lfsr.state != seed


def test_the_wide_samples_saturate_the_default_configuration_too():
    """Every other drawn sample spans the currents' whole range, so that the default XOR
    netlist's saturation logic and counters take part in the run (with [-1, 1] alone they
    stay at zero); the first samples are the four XOR patterns."""
    import numpy as np

    from golden_model.circuit import FIXED, Circuit
    from golden_model.config import default_config
    from golden_model.tasks import xor_sample
    from sim.generate import schedule_for
    from sim.mutation import training_samples

    cfg = default_config("xor")
    limit = 2.0 ** (cfg.current_width - cfg.current_frac - 1)
    samples = training_samples(40, 1, limit=limit)
    assert all(np.array_equal(samples[k]["x"], xor_sample(k)["x"]) for k in range(4))
    assert max(abs(s["x"]).max() for s in samples) > 1.0
    counts = []
    for narrow in (True, False):
        circuit = Circuit(schedule_for(cfg, "xor"), cfg, FIXED)
        for sample in training_samples(40, 1, limit=1.0 if narrow else limit):
            for name, values in sample.items():
                circuit.load_signed(name, values)
            circuit.run_sample()
        counts.append([int(v) for v in circuit.counters[:3]])
    assert counts[0] == [0, 0, 0]
    assert all(c > 0 for c in counts[1])


def test_a_mutants_place_is_the_part_of_the_core_it_changes():
    from sim.mutation import place_of

    def mutation(cell: str, wire: str | None = None) -> str:
        tail = f" -wire {wire} -wirebit 0" if wire else ""
        return f"mutate -mode const0 -module pulsegate_core -cell {cell} -port Y -portbit 0{tail}"

    assert place_of(mutation("$flatten\\lanes.$814")) == "lanes"
    assert place_of(mutation("$auto$ff.cc:337:slice$1", "sequencer.row")) == "sequencer"
    assert place_of(mutation("$auto$ff.cc:337:slice$2", "sat_weight")) == "counters"
    assert place_of(mutation("$memory\\debug_rom$rdmux[0][4][8]$1729")) == "debug ROM"
    assert place_of(mutation("$memory\\state$127.group_rom$rdmux[0][4][9]$1545")) == "state memory"
    assert place_of(mutation("$auto$simple.cc:194:make_patterns_logic$2903")) == "optimizer"
    assert place_of(mutation("$auto$ff.cc:337:slice$3", "final")) == "core"


def test_register_bits_no_one_reads_are_not_mutated(tmp_path):
    """``splitcells`` in :data:`sim.mutation.PREPARE`: at 2 lanes (as many multipliers as
    lanes) the decoded "no source" select drives nothing, and synthesis drops its register
    bit; mutating it only made survivors that no comparison could kill (it was listed twice
    in 300 mutations before)."""
    from golden_model.config import default_config
    from sim.mutation import list_mutations, write_core

    source = write_core(default_config("xor"), 2, tmp_path)
    mutations = list_mutations(source, 300, 1)
    assert len(mutations) == 300
    assert not [m for m in mutations if "no_src" in m]


def test_a_per_tick_run_compares_every_tick_boundary(tmp_path):
    """``--per-tick``: the core drained and held at every tick, its whole state read there
    by the native harness and compared with the golden model's trace (the unmutated core
    must match at every boundary, or the run stops); a killed mutant is named by its tick."""
    report = run_mutation(count=16, samples=6, timeout=0, work=tmp_path, per_tick=True)
    assert report.killed, "no mutant killed: the comparison sees nothing"
    assert any(reason.startswith("tick ") for reason in report.reasons.values())
