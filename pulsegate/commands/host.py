"""``pulsegate host``: talk to a board over its serial port (pyserial)."""

from __future__ import annotations

import argparse
import sys

from ..progress import Progress
from .common import (
    CONFIG_HELP,
    add_command,
    board_config,
    format_confusion,
    load_config,
    positive_float,
    positive_int,
)

ACTIONS = (
    "info",
    "status",
    "weights",
    "abort",
    "train-xor",
    "train-linear",
    "train-iris",
    "train-digits",
)


def report_same(same: bool) -> int:
    """Say whether the board's weights are the golden model's; the exit status."""
    print(
        "the board's weights are the golden model's, bit for bit"
        if same
        else "the board's weights differ from the golden model's (another seed or build?)"
    )
    return 0 if same else 1


def train_xor(client, args: argparse.Namespace, poll) -> int:
    """``host train-xor``: the XOR samples in the golden model's order, from the
    configuration's initial weights and LFSR state; the weights read back are compared with
    the golden model's after the same samples, bit for bit."""
    import numpy as np

    from boards.host import train_samples
    from golden_model.circuit import FIXED, Circuit
    from golden_model.schedule import compile_backprop
    from golden_model.tasks import xor_sample

    cfg = board_config(args, "xor")
    count = 400 if args.samples is None else args.samples
    order = np.random.default_rng([cfg.seed, 1]).integers(0, 4, count)
    samples = [xor_sample(int(k)) for k in order]
    run_board = train_samples(
        client, cfg, samples, progress=Progress("training XOR on the board"), poll=poll
    )
    print(run_board["status"])
    golden = Circuit(compile_backprop(cfg), cfg, FIXED)
    for sample in samples:
        golden.load_signed("x", sample["x"])
        golden.load_signed("t", sample["t"])
        golden.run_sample()
    same = np.array_equal(run_board["weights"], golden.weight_flat)
    return report_same(same)


def train_linear(client, args: argparse.Namespace, poll) -> int:
    """``host train-linear``: the linear task on a board built for a one-layer network,
    checked bit for bit against the golden model."""
    import numpy as np

    from boards.host import train_samples
    from golden_model.fixed import to_float
    from golden_model.linear import check_linear, linear_samples, split_weights, train_linear

    cfg = board_config(args, "linear")
    check_linear(cfg, args.scale)
    count = 2000 if args.samples is None else args.samples
    run_board = train_samples(
        client,
        cfg,
        linear_samples(cfg, count, args.scale),
        progress=Progress("training the linear transform on the board"),
        poll=poll,
    )
    print(run_board["status"])
    golden = train_linear(cfg, samples=count, scale=args.scale)
    inputs, outputs = cfg.layers
    w1 = to_float(run_board["weights"][: outputs * (inputs + 1)], cfg.weight_frac)
    w, _ = split_weights(cfg, w1.reshape(outputs, inputs + 1))
    print(f"largest |W - A| of the board's weights: {np.max(np.abs(w - golden.A)):.5f}")
    same = np.array_equal(run_board["weights"], golden.weight_flat)
    return report_same(same)


def train_dataset(client, args: argparse.Namespace, poll) -> int:
    """``host train-iris|train-digits``: train the board in the golden model's order, read its
    weights back, print the test accuracy they give and whether they are the golden model's."""
    import numpy as np

    from boards.host import train_dataset as train_board
    from golden_model.classify import train_classifier
    from golden_model.datasets import dataset_config, default_epochs, load_dataset

    dataset = args.action.removeprefix("train-")
    cfg = load_config(args, dataset_config(dataset), dataset)
    epochs = args.epochs or default_epochs(dataset)
    data = load_dataset(dataset)
    run_board = train_board(
        client,
        cfg,
        data,
        epochs,
        limit=args.samples,
        progress=Progress(f"training {dataset} on the board"),
        poll=poll,
    )
    print(run_board["status"])
    print(
        f"test accuracy of the board's weights: {run_board['test_accuracy'] * 100:.2f} % "
        f"after {run_board['samples']} samples"
    )
    print(format_confusion(run_board["confusion"], data.classes))
    golden = train_classifier(cfg, data, epochs, limit=args.samples)
    same = np.array_equal(
        run_board["weights"], np.concatenate([w.ravel() for w in golden.weights.values()])
    )
    return report_same(same)


def run(args: argparse.Namespace) -> int:
    from boards.host import HostClient, SerialTransport, sleep_poll
    from boards.protocol import ProtocolError

    try:
        transport = SerialTransport(args.port, args.baud, timeout=args.timeout)
    except (OSError, ValueError) as exc:  # pyserial's SerialException is an OSError
        print(f"pulsegate: error: --port {args.port}: {exc}", file=sys.stderr)
        return 2
    client = HostClient(transport, deadline=args.deadline)
    try:
        if args.action == "info":
            print(client.info())
        elif args.action == "status":
            print(client.status())
        elif args.action == "weights":
            print(" ".join(str(int(w)) for w in client.read_weights()))
        elif args.action == "abort":
            client.abort()
            print(client.wait_idle(sleep_poll()))
        elif args.action == "train-xor":
            return train_xor(client, args, sleep_poll())
        elif args.action == "train-linear":
            return train_linear(client, args, sleep_poll())
        else:
            return train_dataset(client, args, sleep_poll())
    except ProtocolError as exc:
        print(f"pulsegate: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the port went away mid-run
        print(f"pulsegate: error: --port {args.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        transport.close()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "host",
        "talk to a board over its serial port",
        "pulsegate host info --port /dev/ttyUSB1",
        run,
    )
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=positive_int, default=115200, help="baud rate (115200)")
    p.add_argument("--timeout", type=positive_float, default=1.0, help="reply timeout in s (1.0)")
    p.add_argument(
        "--deadline",
        type=positive_float,
        default=600.0,
        help="longest wait in s for one run of the board to finish (600)",
    )
    p.add_argument("--config", help=CONFIG_HELP)
    p.add_argument(
        "--samples",
        type=positive_int,
        help="train-xor: samples (400); train-linear: samples (2000); train-iris, "
        "train-digits: stop after this many",
    )
    p.add_argument("--epochs", type=positive_int, help="train-iris, train-digits: epochs (20)")
    p.add_argument(
        "--scale", type=float, default=1.0, help="train-linear: entries of A in [-scale, scale]"
    )
