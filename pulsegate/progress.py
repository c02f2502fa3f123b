"""A one-line progress display on stderr for long runs (no dependency)."""

from __future__ import annotations

import sys
import time


class ProgressLine:
    """``ProgressLine("xor [fixed]", unit="samples")(done, total)``; redraws in place on a
    terminal, prints at most ~10 lines otherwise."""

    def __init__(self, label: str, unit: str = "samples", stream=None) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self._last_decile = -1

    def __call__(self, done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        text = f"{self.label}: {done}/{total} {self.unit} ({rate:,.0f}/s)"
        if self.tty:
            self.stream.write("\r" + text + " " * 8)
            self.stream.flush()
            return
        decile = 10 * done // max(total, 1)
        if decile != self._last_decile:
            self._last_decile = decile
            self.stream.write(text + "\n")

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
