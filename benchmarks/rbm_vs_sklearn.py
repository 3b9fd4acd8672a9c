"""Our PCD training against scikit-learn's ``BernoulliRBM`` on the binarised digits.

Both train a 64 x 16 RBM (16 hidden units: small enough for the exact log-likelihood)
on the 1438 training images of :func:`genphys.data.load_digits_binary` with PCD-1, the
same learning rate, the same number of epochs, and batch sizes 10 and 100. Three
trainers are timed side by side, interleaved, in one process:

* ``sklearn`` -- ``sklearn.neural_network.BernoulliRBM`` (PCD-1 with ``batch_size``
  persistent chains, no momentum, no weight decay, zero initial biases);
* ``ours, same`` -- :func:`genphys.training.train_rbm` with exactly those settings
  (``momentum=0``, ``final_momentum=0``, ``weight_decay=0``, ``n_chains=batch_size``,
  zero initial biases);
* ``ours, default`` -- :func:`genphys.training.initialize_rbm` (visible biases from the
  data) and the library's defaults for everything not fixed above: momentum 0.5 and
  ``max(batch_size, 100)`` persistent chains.

Each is scored with the exact mean log-likelihood per image (nats) on the 359 test images,
sklearn's fitted parameters loaded with ``BernoulliRBM.from_parameters``
(``components_.T``, ``intercept_visible_``, ``intercept_hidden_``). The last column
trains ``ours, default`` for as many epochs as fit into sklearn's wall time.

Usage::

    python benchmarks/rbm_vs_sklearn.py [--epochs 20] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.neural_network import BernoulliRBM as SklearnRBM
from threadpoolctl import threadpool_limits

from genphys.data import load_digits_binary
from genphys.rbm import BernoulliRBM, log_likelihood_exact
from genphys.training import PCD, initialize_rbm, train_rbm

N_HIDDEN = 16


def exact_test_ll(rbm: BernoulliRBM, x_test: torch.Tensor) -> float:
    with torch.no_grad():
        return float(log_likelihood_exact(rbm, x_test))


def fit_sklearn(x: np.ndarray, batch_size: int, lr: float, epochs: int, seed: int):
    model = SklearnRBM(
        n_components=N_HIDDEN,
        learning_rate=lr,
        batch_size=batch_size,
        n_iter=epochs,
        random_state=seed,
    )
    began = time.perf_counter()
    model.fit(x)
    seconds = time.perf_counter() - began
    rbm = BernoulliRBM.from_parameters(
        torch.as_tensor(model.components_.T.copy()),
        torch.as_tensor(model.intercept_visible_),
        torch.as_tensor(model.intercept_hidden_),
    )
    return rbm, seconds


def fit_ours(x: torch.Tensor, batch_size: int, lr: float, epochs: int, seed: int, same: bool):
    if same:
        rbm = BernoulliRBM(x.shape[1], N_HIDDEN, seed=seed)  # W ~ N(0, 0.01^2), biases 0
        extra = {"momentum": 0.0, "final_momentum": 0.0}
        phase = PCD(k=1, n_chains=batch_size)
    else:
        rbm = initialize_rbm(x, N_HIDDEN, seed=seed)
        extra = {}
        phase = PCD(k=1, n_chains=max(batch_size, 100))
    began = time.perf_counter()
    train_rbm(
        rbm,
        x,
        n_epochs=epochs,
        negative_phase=phase,
        batch_size=batch_size,
        learning_rate=lr,
        weight_decay=0.0,
        seed=seed,
        **extra,
    )
    return rbm, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3, help="seeds per setting")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    digits = load_digits_binary()
    x_train, x_test = digits.x_train, digits.x_test
    x_numpy = x_train.numpy()
    lr, epochs = args.learning_rate, args.epochs
    print(
        f"binarised digits: {x_train.shape[0]} train / {x_test.shape[0]} test images, "
        f"n_hidden = {N_HIDDEN}, PCD-1, learning rate {lr}, {epochs} epochs, "
        f"{args.repeats} seeds, {args.threads} thread(s) for torch and BLAS"
    )
    header = (
        f"{'batch':>5}  {'trainer':<14} {'ms/epoch':>9} {'ratio':>6} "
        f"{'test LL (mean +- sd)':>22} {'same-time LL':>13}"
    )
    print(header)
    print("-" * len(header))
    with threadpool_limits(limits=args.threads):
        for batch_size in (10, 100):
            times = {"sklearn": [], "ours, same": [], "ours, default": []}
            scores = {name: [] for name in times}
            equal_time = []
            for seed in range(args.repeats):  # interleaved, so load changes hit all three
                rbm, seconds = fit_sklearn(x_numpy, batch_size, lr, epochs, seed)
                times["sklearn"].append(seconds / epochs)
                scores["sklearn"].append(exact_test_ll(rbm, x_test))
                sklearn_seconds = seconds
                for name, same in (("ours, same", True), ("ours, default", False)):
                    rbm, seconds = fit_ours(x_train, batch_size, lr, epochs, seed, same)
                    times[name].append(seconds / epochs)
                    scores[name].append(exact_test_ll(rbm, x_test))
                # ours, default, for as many epochs as sklearn's wall time allows
                n_equal = max(1, int(sklearn_seconds / (seconds / epochs)))
                rbm, _ = fit_ours(x_train, batch_size, lr, n_equal, seed, same=False)
                equal_time.append((n_equal, exact_test_ll(rbm, x_test)))
            reference = np.median(times["sklearn"])
            for name in times:
                per_epoch = np.median(times[name])
                ll = np.array(scores[name])
                same_time = ""
                if name == "ours, default":
                    n_eq = int(np.median([n for n, _ in equal_time]))
                    same_time = f"{np.mean([v for _, v in equal_time]):7.2f} ({n_eq} ep)"
                print(
                    f"{batch_size:5d}  {name:<14} {1e3 * per_epoch:9.2f} "
                    f"{per_epoch / reference:6.2f} {ll.mean():13.2f} +- {ll.std(ddof=1):5.2f} "
                    f"{same_time:>13}"
                )
    print(
        "\nratio: median time per epoch divided by sklearn's (aim <= 1). test LL: exact mean "
        "log-likelihood per test image in nats (higher is better)."
    )


if __name__ == "__main__":
    main()
