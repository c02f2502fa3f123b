"""cocotb testbench: the host link's sample store alone, one port, under Verilator.

Run by :func:`boards.board_sim.run_store_bench`, which builds the store as SB_SPRAM256KA
instances with the vendor's cell model (or as block RAM) at any width and depth, so that the
side-by-side blocks (width above 16 bits) and the banks (depth above 16,384 words) are checked
too, which the 2-4-1 network's store (one block) never uses. Random words are written to
random addresses, then every written address is read back in a random order and compared.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from sim.cocotb_job import read_job, write_result


@cocotb.test()
async def store(dut) -> None:
    job = read_job()
    width, depth, count = job["width"], job["depth"], job["writes"]
    rng = np.random.default_rng(job.get("seed", 1))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.we.value = 0
    dut.read_addr.value = 0
    dut.write_addr.value = 0
    dut.wdata.value = 0
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    # Both ends of every bank, then random addresses.
    banks = -(-depth // 16384)
    edges = [a for b in range(banks) for a in (16384 * b, min(16384 * (b + 1), depth) - 1)]
    addresses = list(dict.fromkeys(edges + [int(a) for a in rng.integers(0, depth, count)]))
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    written = {}
    for address in addresses:  # drive between rising edges
        value = int(rng.integers(low, high, endpoint=True))
        dut.write_addr.value, dut.wdata.value, dut.we.value = address, value, 1
        written[address] = value
        await FallingEdge(dut.clk)
    dut.we.value = 0
    mismatches = []
    order = list(written)
    rng.shuffle(order)
    for address in order:
        dut.read_addr.value = address
        await FallingEdge(dut.clk)  # the word is out a clock after its address
        got = dut.rdata.value.to_signed()
        if got != written[address]:
            mismatches.append({"address": address, "written": written[address], "read": got})
    result = {"checked": len(order), "mismatches": mismatches[:10], "bad": len(mismatches)}
    write_result(result)
    assert not mismatches, mismatches[:3]
