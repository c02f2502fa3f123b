"""The virtual board: the iCEBreaker's system under Verilator behind a pty, driven by
``pulsegate host`` through pyserial as a real board would be."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from boards.catalogue import board_config
from golden_model.circuit import FIXED, Circuit
from golden_model.schedule import compile_backprop
from golden_model.tasks import xor_sample

PULSEGATE = [sys.executable, "-m", "pulsegate.cli"]
#: The first build of the board's harness (a cold cache) takes about a minute on 2 cores.
BUILD_SECONDS = 600


def golden_weights(samples: int, count: int) -> np.ndarray:
    """The golden model's weights after the first ``samples`` of ``host train-xor --samples
    count``'s order, from the board configuration's initial weights."""
    cfg = board_config()
    order = np.random.default_rng([cfg.seed, 1]).integers(0, 4, count)
    golden = Circuit(compile_backprop(cfg), cfg, FIXED)
    for k in order[:samples]:
        sample = xor_sample(int(k))
        golden.load_signed("x", sample["x"])
        golden.load_signed("t", sample["t"])
        golden.run_sample()
    return golden.weight_flat.copy()


def host(port: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PULSEGATE, "host", *args, "--port", port],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def status_of(text: str) -> dict[str, int]:
    fields = dict(re.findall(r"(\w+)=(\w+)", text.splitlines()[-1]))
    return {k: int(v == "True") if v in ("True", "False") else int(v) for k, v in fields.items()}


def read_weights(port: str) -> np.ndarray:
    from boards.host import HostClient, SerialTransport

    transport = SerialTransport(port, timeout=2.0)
    try:
        return HostClient(transport).read_weights()
    finally:
        transport.close()


@pytest.fixture
def virtual_board(tmp_path, request):
    """A fresh virtual iCEBreaker (XOR, the board configuration): its port's path. A test's
    ``slots`` mark sets the store's samples (a host trains a store-full a run)."""
    ready = tmp_path / "board.json"
    marker = request.node.get_closest_marker("slots")
    slots = ["--slots", str(marker.args[0])] if marker else []
    proc = subprocess.Popen(
        [*PULSEGATE, "sim", "board", "--board", "icebreaker", "--json", str(ready), *slots],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: teardown can end all of it
    )
    try:
        end = time.monotonic() + BUILD_SECONDS
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < end, "the virtual board did not start"
            time.sleep(0.2)
        port = json.loads(ready.read_text())["port"]
        assert Path(port).exists()
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        # whatever of the board's process group is left (a harness must never outlive it;
        # if one did, it would hold the pipes and hang this teardown)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_host_trains_xor_on_the_virtual_board_bit_exactly(virtual_board):
    port, proc = virtual_board
    info = host(port, "info")
    assert info.returncode == 0, info.stderr
    assert "input_words=6" in info.stdout and "weights=21" in info.stdout
    count = 60
    trained = host(port, "train-xor", "--samples", str(count))
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "golden model's, bit for bit" in trained.stdout
    assert status_of(trained.stdout.splitlines()[-2])["run_done"] == count
    # read back independently of the command's own verdict
    assert np.array_equal(read_weights(port), golden_weights(count, count))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    stats = re.search(r"virtual board: (\d+) clocks .* (\d+) bytes in, (\d+) out", err)
    assert stats and int(stats[1]) > 0 and int(stats[2]) > 0 and int(stats[3]) > 0, err


@pytest.mark.slots(16)
def test_a_host_that_disappears_leaves_the_board_intact(virtual_board):
    """Kill a training host mid-run; a new host's status and abort work, and the weights
    are the golden model's after exactly the samples the board completed."""
    port, _ = virtual_board
    count = 4000
    first = subprocess.Popen(
        [*PULSEGATE, "host", "train-xor", "--samples", str(count), "--port", port],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # its first progress line comes after its first store-full of samples has run
    line = first.stderr.readline()
    assert re.search(r"\b16 of 4,000 samples", line), line
    time.sleep(0.5)  # into the next store-full
    assert first.poll() is None, "the first host finished before it could be killed"
    first.kill()
    first.wait()
    status = host(port, "status")
    assert status.returncode == 0, status.stderr
    aborted = host(port, "abort")
    assert aborted.returncode == 0, aborted.stderr
    after = status_of(aborted.stdout)
    assert after["running"] == 0 and 0 < after["samples"] < count
    assert status_of(host(port, "status").stdout)["samples"] == after["samples"]
    assert np.array_equal(read_weights(port), golden_weights(after["samples"], count))


def test_a_baud_the_virtual_uart_cannot_make_is_refused(capsys):
    from pulsegate.cli import main

    assert main(["sim", "board", "--board", "icebreaker", "--baud", "5000000"]) == 2
    assert "--baud" in capsys.readouterr().err
    assert main(["sim", "board", "--board", "icebreaker", "--slots", "300"]) == 2
    assert "--slots" in capsys.readouterr().err
