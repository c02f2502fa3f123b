"""One module per ``pulsegate`` subcommand.

Each module has ``register(subparsers)``, which adds its parser (its options, its help, an
example) and sets ``func`` to the function that runs it. :mod:`pulsegate.cli` only discovers
them in :data:`COMMANDS` order and dispatches. Helpers several commands share (configuration
loading, option types, output checks) are in :mod:`pulsegate.commands.common`.
"""

COMMANDS = (
    "golden",
    "sim",
    "train",
    "schedule",
    "generate",
    "build",
    "logic",
    "host",
    "bench",
    "sweep",
)
