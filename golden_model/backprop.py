"""Reference backpropagation in float: plain, and the push-me pull-you (PMPY) protocol.

The circuit must equal these. Weights are lists of ``W_i`` of shape ``n_i x (n_{i-1} + 1)``
with the bias column last; hidden units are ReLU; the output is linear (the default) or ReLU;
the loss is ``0.5 * ||o_L - t||^2``, and one step is ``W_i <- W_i - eta * delta_i [o_{i-1}; 1]^T``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "relu",
    "relu_prime",
    "forward",
    "sgd_step",
    "pmpy_input",
    "pmpy_step",
    "tie_input_layer",
]


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def relu_prime(x: np.ndarray) -> np.ndarray:
    """Heaviside ``[x > 0]`` as float: the derivative the gating chain captures."""
    return (x > 0).astype(np.float64)


def _with_bias(v: np.ndarray) -> np.ndarray:
    return np.concatenate([v, [1.0]])


def forward(weights: list[np.ndarray], x: np.ndarray, output: str = "linear") -> list[np.ndarray]:
    """Activations ``[o_0, n_1, o_1, ..., n_L, o_L]`` of one input."""
    acts = [np.asarray(x, dtype=np.float64)]
    o = acts[0]
    for i, w in enumerate(weights):
        n = w @ _with_bias(o)
        last = i == len(weights) - 1
        o = n if (last and output == "linear") else relu(n)
        acts += [n, o]
    return acts


def sgd_step(
    weights: list[np.ndarray], x: np.ndarray, t: np.ndarray, eta: float, output: str = "linear"
) -> tuple[list[np.ndarray], dict]:
    """One SGD step of plain backprop; returns new weights and the intermediate values
    (``outputs``, ``deltas``, ``masks``) for comparison with the circuit."""
    acts = forward(weights, x, output)
    L = len(weights)
    outs = acts[0::2]  # o_0 .. o_L
    nets = acts[1::2]  # n_1 .. n_L
    p_out = np.ones_like(nets[-1]) if output == "linear" else relu_prime(nets[-1])
    deltas = [None] * L
    deltas[L - 1] = (outs[L] - np.asarray(t, dtype=np.float64)) * p_out
    for i in range(L - 1, 0, -1):
        w_no_bias = weights[i][:, :-1]
        deltas[i - 1] = (w_no_bias.T @ deltas[i]) * relu_prime(nets[i - 1])
    new = [w - eta * np.outer(deltas[i], _with_bias(outs[i])) for i, w in enumerate(weights)]
    info = {
        "output": outs[L],
        "deltas": deltas,
        "masks": [relu_prime(n) for n in nets[:-1]] + ([p_out] if output == "relu" else []),
    }
    return new, info


def pmpy_input(x: np.ndarray) -> np.ndarray:
    """``o_0 = [r(x); r(-x)]``."""
    x = np.asarray(x, dtype=np.float64)
    return np.concatenate([relu(x), relu(-x)])


def pmpy_step(
    weights: list[np.ndarray], x: np.ndarray, t: np.ndarray, eta: float, output: str = "linear"
) -> tuple[list[np.ndarray], dict]:
    """One step written literally from the talk's PMPY table, every signed value a pair.

    ``weights[0]`` is ``W'_1`` acting on the doubled input ``[r(x); r(-x); 1]`` (shape
    ``n_1 x (2 n_0 + 1)``). Returns new weights and ``output``, ``deltas`` (signed, from their
    four-term splits), ``masks`` (``p+ - p-``).
    """
    r, rp = relu, relu_prime
    o = pmpy_input(x)
    t = np.asarray(t, dtype=np.float64)
    L = len(weights)
    outs, p_plus, p_minus, nets = [o], [], [], []
    for i, w in enumerate(weights):
        a = w @ _with_bias(o)
        n_plus, n_minus = r(a), r(-a)
        nets.append((n_plus, n_minus))
        last = i == L - 1
        if last and output == "linear":
            o = n_plus - n_minus
            p_plus.append(np.ones_like(o))
            p_minus.append(np.zeros_like(o))
        else:
            o = r(n_plus - n_minus)
            p_plus.append(rp(n_plus - n_minus) * rp(a))
            p_minus.append(rp(n_plus - n_minus) * rp(-a))
        outs.append(o)
    # Output error: four non-negative terms.
    e_plus, e_minus = r(outs[L] - t), r(t - outs[L])
    split = [None] * L
    split[L - 1] = (
        e_plus * p_plus[L - 1],  # delta++
        e_plus * p_minus[L - 1],  # delta+-
        e_minus * p_plus[L - 1],  # delta-+
        e_minus * p_minus[L - 1],  # delta--
    )
    for i in range(L - 1, 0, -1):
        dpp, dpm, dmp, dmm = split[i]
        delta = dpp + dpm - dmp - dmm
        back = weights[i][:, :-1].T @ delta
        bp, bm = r(back), r(-back)
        split[i - 1] = (
            bp * p_plus[i - 1],
            bp * p_minus[i - 1],
            bm * p_plus[i - 1],
            bm * p_minus[i - 1],
        )
    new = []
    deltas = []
    for i, w in enumerate(weights):
        dpp, dpm, dmp, dmm = split[i]
        pre = _with_bias(outs[i])
        dw_plus = np.outer(dpp - dmp, pre)
        dw_minus = -np.outer(dmm + dpm, pre)
        new.append(w - eta * (dw_plus + dw_minus))
        deltas.append(dpp + dpm - dmp - dmm)
    info = {
        "output": outs[L],
        "deltas": deltas,
        "masks": [pp - pm for pp, pm in zip(p_plus, p_minus, strict=True)],
    }
    return new, info


def tie_input_layer(w1: np.ndarray) -> np.ndarray:
    """``W'_1 = [W_1, -W_1, b]`` from ``W_1 = [W, b]``: the doubled input layer the circuit
    implements with one stored matrix."""
    return np.concatenate([w1[:, :-1], -w1[:, :-1], w1[:, -1:]], axis=1)
