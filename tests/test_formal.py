"""Formal properties (``sim/formal.py``, SymbiYosys with Boolector from PyPI): each holds on
the real unit and fails on a unit broken on purpose, so none holds vacuously."""

from __future__ import annotations

import pytest

from boards.link_formal import LINK_PROPERTIES
from sim.formal import PROPERTIES, prove
from sim.sequencer_formal import SEQUENCER_PROPERTIES, SwappedWordsSequencer
from tests.faults import (
    CarrylessAccumulator,
    OneMoreSampleLink,
    SilentStep,
    StaleReadLink,
    TruncatingLfsr,
    UncheckedLink,
    WrappingStep,
    early_event_sum,
    wrapping_sum,
)


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_the_property_is_proved(name, tmp_path):
    result = prove(name, work=tmp_path)
    assert result.passed, result.log.read_text()[-3000:]


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("step-saturates", WrappingStep),
        ("step-saturates", SilentStep),
        ("step-saturates-n2", WrappingStep),
        ("lfsr-never-zero", TruncatingLfsr),
        ("accumulator-rounds", CarrylessAccumulator),
        ("step-sum-saturates", wrapping_sum),
        ("step-sum-saturates", early_event_sum),
    ],
)
def test_the_property_fails_on_a_broken_unit(name, broken, tmp_path):
    result = prove(name, broken, work=tmp_path)
    assert result.status == "FAIL", result.log.read_text()[-3000:]


@pytest.mark.parametrize("name", sorted(LINK_PROPERTIES))
def test_the_host_links_property_is_proved(name, tmp_path):
    result = prove(name, work=tmp_path, properties=LINK_PROPERTIES)
    assert result.passed, result.log.read_text()[-3000:]


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("link-writes-in-range", UncheckedLink),
        ("link-runs-its-count", OneMoreSampleLink),
        ("link-streams-in-order-latency2", StaleReadLink),
    ],
)
def test_the_host_links_property_fails_on_a_broken_link(name, broken, tmp_path):
    result = prove(name, broken, tmp_path, LINK_PROPERTIES)
    assert result.status == "FAIL", result.log.read_text()[-3000:]


@pytest.mark.slow  # about a minute of bounded proof; `make formal` runs it too
def test_the_sequencer_issues_the_program(tmp_path):
    """Every slot of a whole sample, any start and hold (bounded, :mod:`sim.sequencer_formal`)."""
    result = prove("sequencer-issues-the-program", None, tmp_path, SEQUENCER_PROPERTIES)
    assert result.passed, result.log.read_text()[-3000:]


def test_the_sequencer_property_fails_on_a_rom_out_of_order(tmp_path):
    result = prove(
        "sequencer-issues-the-program", SwappedWordsSequencer, tmp_path, SEQUENCER_PROPERTIES
    )
    assert result.status == "FAIL", result.log.read_text()[-3000:]
