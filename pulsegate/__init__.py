"""pulsegate: FPGA hardware for a pulse-gated neural circuit that learns by backpropagation.

The command-line face (``pulsegate ...``) lives here; the work is done by ``golden_model``,
``hw``, ``sim`` and ``boards``.
"""

__version__ = "0.1.0"
