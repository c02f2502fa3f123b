"""Amaranth gateware elaborated from the golden model's configuration and schedule."""
