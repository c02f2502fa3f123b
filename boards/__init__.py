"""Board targets on amaranth-boards platforms, synthesis and reports."""
