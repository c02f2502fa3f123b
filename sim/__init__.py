"""Running the RTL: Verilog emission, Verilator through cocotb, trace comparison."""
