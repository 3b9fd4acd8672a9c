"""VAE training time against a plain PyTorch loop, and test log-likelihoods on the digits.

Prints two tables:

1. seconds per epoch of :func:`genphys.vae.train_vae` and of a plain PyTorch loop of the
   same architecture written out below (pytorch/examples style), on the binarised digits,
   interleaved so both see the same machine load; float64 and float32;
2. the test log-likelihood per image of a trained VAE, estimated by the importance-weighted
   bound with k = 1000 (and the ELBO, k = 1, 10, 100 for comparison), next to the exact
   test log-likelihood of an RBM trained on the same split with
   :func:`genphys.training.train_rbm` (hidden layer small enough to enumerate).

Usage::

    python benchmarks/vae_training.py [--device cpu|cuda] [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from genphys.data import load_digits_binary
from genphys.rbm import log_likelihood_exact
from genphys.training import CD, initialize_rbm, train_rbm
from genphys.vae import VAE, train_vae


# ---------------------------------------------------------------- the plain loop
class PlainVAE(nn.Module):
    """The pytorch/examples VAE with one hidden layer, Bernoulli decoder on logits."""

    def __init__(self, n_features: int, n_latent: int, width: int, dtype, device) -> None:
        super().__init__()
        kw = {"dtype": dtype, "device": device}
        self.fc1 = nn.Linear(n_features, width, **kw)
        self.fc21 = nn.Linear(width, n_latent, **kw)
        self.fc22 = nn.Linear(width, n_latent, **kw)
        self.fc3 = nn.Linear(n_latent, width, **kw)
        self.fc4 = nn.Linear(width, n_features, **kw)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, generator):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn(std.shape, generator=generator, dtype=std.dtype, device=std.device)
        return mu + eps * std

    def decode(self, z):
        return self.fc4(F.relu(self.fc3(z)))

    def forward(self, x, generator):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        return self.decode(z), mu, logvar


def copy_weights(plain: PlainVAE, model: VAE) -> None:
    """Give the plain VAE the initial weights of the library VAE."""
    pairs = [
        (plain.fc1, model.encoder[0]),
        (plain.fc21, model.to_mean),
        (plain.fc22, model.to_log_var),
        (plain.fc3, model.decoder[0]),
        (plain.fc4, model.decoder[2]),
    ]
    with torch.no_grad():
        for a, b in pairs:
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)


def plain_train(plain: PlainVAE, x, *, epochs, batch_size, lr, seed) -> list[float]:
    """Adam on the negative ELBO (BCE + analytic KL); returns seconds per epoch."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    optimizer = torch.optim.Adam(plain.parameters(), lr=lr)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(x.shape[0], generator=generator, device=x.device)
        train_loss = 0.0
        for first in range(0, x.shape[0], batch_size):
            batch = x[order[first : first + batch_size]]
            logits, mu, logvar = plain(batch, generator)
            bce = F.binary_cross_entropy_with_logits(logits, batch, reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (bce + kld) / batch.shape[0]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            train_loss += loss.item() * batch.shape[0]
        seconds.append(time.perf_counter() - start)
    return seconds


# ---------------------------------------------------------------------- timing
def time_epochs(dtype, device, *, pairs, n_latent, width, batch_size):
    """Median seconds per epoch of both loops, and the median of the paired ratios.

    One epoch of each loop alternates with the other, ``pairs`` times, so a change in
    machine load hits both; the first pair (warm-up) is dropped.
    """
    data = load_digits_binary(dtype=dtype, device=device)
    x, x_test = data.x_train, data.x_test
    model = VAE(64, n_latent, (width,), seed=0, dtype=dtype, device=device)
    reference = PlainVAE(64, n_latent, width, dtype, device)
    copy_weights(reference, model)
    ours, plain = [], []
    for r in range(pairs + 1):
        history = train_vae(
            model, x, x_test=x_test, n_epochs=1, batch_size=batch_size, learning_rate=1e-3, seed=r
        )
        times = plain_train(reference, x, epochs=1, batch_size=batch_size, lr=1e-3, seed=r)
        if r > 0:
            ours.append(history["seconds"][0])
            plain.append(times[0])
    ratios = [a / b for a, b in zip(ours, plain, strict=True)]
    return statistics.median(ours), statistics.median(plain), statistics.median(ratios)


# ------------------------------------------------------------ log-likelihoods
def log_likelihoods(device, *, vae_epochs, rbm_epochs, n_latent, width, n_hidden, seed=0):
    data = load_digits_binary(device=device)
    x, x_test = data.x_train, data.x_test
    rows = []

    model = VAE(64, n_latent, (width,), seed=seed, device=device)
    start = time.perf_counter()
    history = train_vae(
        model, x, x_test=x_test, n_epochs=vae_epochs, batch_size=64, learning_rate=1e-3, seed=seed
    )
    vae_seconds = time.perf_counter() - start
    generator = torch.Generator(device=device).manual_seed(seed + 7)
    with torch.no_grad():
        elbo = model.elbo(x_test, generator=generator, n_samples=100).mean().item()
    rows.append((f"VAE ELBO (100-sample mean), {vae_epochs} epochs", elbo, vae_seconds))
    for k in (1, 10, 100, 1000):
        start = time.perf_counter()
        bound = model.iwae_bound(x_test, k=k, generator=generator).mean().item()
        rows.append((f"VAE IWAE bound k = {k}", bound, time.perf_counter() - start))
    rows.append(("VAE train ELBO (last epoch)", history["train_elbo"][-1], float("nan")))

    rbm = initialize_rbm(x, n_hidden, seed=seed, device=device)
    start = time.perf_counter()
    train_rbm(
        rbm,
        x,
        n_epochs=rbm_epochs,
        negative_phase=CD(k=1),
        batch_size=20,
        learning_rate=0.05,
        seed=seed,
    )
    rbm_seconds = time.perf_counter() - start
    with torch.no_grad():
        exact = log_likelihood_exact(rbm, x_test).item()
    rows.append((f"RBM exact, {n_hidden} hidden, CD-1 {rbm_epochs} epochs", exact, rbm_seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and epochs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n_latent, width, batch_size = 8, 128, 64

    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("\n1. Seconds per epoch on the digits (1438 images, batch 64, 64-128-8 VAE)")
    print(f"{'dtype':<10}{'train_vae':>12}{'plain loop':>12}{'paired ratio':>14}")
    pairs = 5 if args.quick else 20
    for dtype in (torch.float64, torch.float32):
        ours, plain, ratio = time_epochs(
            dtype, device, pairs=pairs, n_latent=n_latent, width=width, batch_size=batch_size
        )
        name = str(dtype).split(".")[-1]
        print(f"{name:<10}{ours:>12.4f}{plain:>12.4f}{ratio:>14.2f}")

    print("\n2. Test log-likelihood per image (nats), 359 test digits, same split")
    vae_epochs, rbm_epochs = (10, 5) if args.quick else (100, 100)
    rows = log_likelihoods(
        device,
        vae_epochs=vae_epochs,
        rbm_epochs=rbm_epochs,
        n_latent=n_latent,
        width=width,
        n_hidden=16,
    )
    print(f"{'quantity':<48}{'nats':>10}{'seconds':>10}")
    for name, value, seconds in rows:
        secs = "" if math.isnan(seconds) else f"{seconds:10.1f}"
        print(f"{name:<48}{value:>10.3f}{secs}")


if __name__ == "__main__":
    main()
