"""Progress of long runs on stderr: tqdm's bar on a terminal, a plain line every few seconds
when stderr is a file or a pipe (a CI log reads line by line)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress"]


class Progress:
    """``Progress("xor [fixed]", stops="all four outputs within 0.25")(done, total, error=e)``.

    Parameters
    ----------
    label : str
        What runs.
    unit : str
        What ``done`` counts.
    stops : str
        What ends the run before ``total``, if anything (shown once, so that ``total`` reads
        as a budget, not as the length of the run).
    every : float
        Seconds between plain lines when the stream is not a terminal.
    """

    def __init__(
        self,
        label: str,
        unit: str = "samples",
        *,
        stops: str = "",
        stream: TextIO | None = None,
        every: float = 5.0,
    ) -> None:
        self.label, self.unit, self.every = label, unit, every
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._last_line = -every
        self._bar: tqdm | None = None
        self._last: str | None = None
        if stops:
            print(f"{label}: stops when {stops}", file=self.stream, flush=True)

    def __call__(self, done: int, total: int | None = None, **status: float | str) -> None:
        shown = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in status.items()}
        if self.tty:
            if self._bar is None:
                self._bar = tqdm(
                    desc=self.label, total=total, unit=f" {self.unit}", file=self.stream
                )
            self._bar.total = total
            self._bar.set_postfix(shown, refresh=False)
            self._bar.update(done - self._bar.n)
            return
        elapsed = time.monotonic() - self.started
        rate = done / max(elapsed, 1e-9)
        budget = f" of {total:,}" if total else ""
        extra = "".join(f", {k} {v}" for k, v in shown.items())
        line = f"{self.label}: {done:,}{budget} {self.unit}{extra} ({rate:,.0f}/s)"
        self._last = line
        if elapsed - self._last_line >= self.every:
            self._last_line = elapsed
            print(line, file=self.stream, flush=True)
            self._last = None

    def close(self) -> None:
        """End the display (the last state is shown once more if it was not)."""
        if self._bar is not None:
            self._bar.close()
        elif self._last is not None:
            print(self._last, file=self.stream, flush=True)
