"""Exercises for chapter 11, {ref}`sec-autoencoders`: reconstruction error, PCA and the KL sparsity penalty."""

from __future__ import annotations

import torch

from ._feedback import Exercise, Expression, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "QUESTIONS",
    "check_kl_sparsity_penalty",
    "check_mse_loss_ratio",
    "check_mse_reconstruction_error",
    "check_pca_encode_decode",
    "check_pca_reconstruction_error",
    "kl_sparsity_penalty",
    "mse_reconstruction_error",
    "pca_encode_decode",
    "pca_reconstruction_error",
]


def _data(seed: int, n: int, spectrum: list[float], shift: float) -> torch.Tensor:
    """n points whose covariance has the eigenvalues `spectrum`, in a random frame."""
    g = torch.Generator().manual_seed(seed)
    lam = torch.tensor(spectrum, dtype=torch.float64)
    d = lam.shape[0]
    rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    z = torch.randn(n, d, generator=g, dtype=torch.float64)  # (n, D)
    return (z * lam.sqrt()) @ rotation.T + shift


def _pca_cases(seed: int):
    # well separated eigenvalues, so that the top-k subspace is sharply defined
    return [
        (_data(seed, 40, [6.0, 3.0, 1.0, 0.3], 1.5), 1),
        (_data(seed + 1, 25, [5.0, 2.0, 1.0, 0.5, 0.1], -2.0), 2),
        (_data(seed + 2, 60, [9.0, 4.0, 2.0, 0.7, 0.2, 0.05], 0.5), 3),
    ]


def _pca_random(g: torch.Generator):
    """Fresh data sets with well separated eigenvalues (ratio >= 1.5) and a random k."""
    cases = []
    for _ in range(2):
        d = draw_int(g, 2, 7)
        ratios = 1.5 + 2.0 * torch.rand(d, generator=g, dtype=torch.float64)
        spectrum = (10.0 / torch.cumprod(ratios, 0)).tolist()
        x = _data(draw_int(g, 0, 2**30), draw_int(g, 3 * d, 80), spectrum, draw_float(g, -5, 5))
        cases.append((x, draw_int(g, 1, d - 1)))
    return cases


def _pca_stress():
    spectrum = [6.0, 3.0, 1.0, 0.3]
    far = _data(84, 50, spectrum, 1e6)
    return [
        Stress(
            "data 10⁶ away from the origin",
            (far, 2),
            "Centre the data before forming the covariance, (x - μ)ᵀ(x - μ) / n: the second "
            "moment minus μμᵀ subtracts numbers of size 10¹² that agree in their first digits.",
        ),
        Stress("k = D: nothing is thrown away", (_data(85, 30, spectrum, 1.0), 4)),
        Stress(
            "a batch of 20000 points in D = 64",
            (_data(86, 20_000, [0.5**i for i in range(64)], 0.5), 10),
        ),
    ]


# ------------------------------------------------------- reconstruction error
def mse_reconstruction_error(x, x_tilde):
    """(1/n) Σ_k ||x_k - x̃_k||²: squared error summed over features, averaged over points."""
    return ((x - x_tilde) ** 2).sum(dim=1).mean()


def _mse_torch_default(x, x_tilde):
    return ((x - x_tilde) ** 2).mean()


def _mse_total(x, x_tilde):
    return ((x - x_tilde) ** 2).sum()


def _mse_norm_not_squared(x, x_tilde):
    return torch.linalg.vector_norm(x - x_tilde, dim=1).mean()


def _mse_cases():
    g = torch.Generator().manual_seed(81)
    return [
        (
            torch.randn(n, d, generator=g, dtype=torch.float64),
            torch.randn(n, d, generator=g, dtype=torch.float64),
        )
        for n, d in [(5, 3), (8, 6), (4, 10)]
    ]


def _mse_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, d = draw_int(g, 1, 20), draw_int(g, 1, 20)
        x = draw_float(g, 0.1, 10) * torch.randn(n, d, generator=g, dtype=torch.float64)
        cases.append(
            (x, x + draw_float(g, 0.01, 2) * torch.randn(n, d, generator=g, dtype=torch.float64))
        )
    return cases


def _mse_stress():
    g = torch.Generator().manual_seed(87)
    x = torch.rand(10_000, 64, generator=g, dtype=torch.float64)
    return [
        Stress("a single point with a single feature", (x[:1, :1], x[1:2, :1])),
        Stress("10000 points with 64 features", (x, x.flip(0))),
    ]


MSE_RECONSTRUCTION_ERROR = Exercise(
    name="mse_reconstruction_error",
    forbidden_calls=(
        "genphys.autoencoder.mse_reconstruction_error",
        "torch.nn.functional.mse_loss",
    ),
    solution=mse_reconstruction_error,
    cases=_mse_cases,
    random_cases=_mse_random,
    stress_cases=_mse_stress,
    mistakes=(
        Mistake(
            _mse_torch_default,
            "that averages over all n·D entries, like F.mse_loss with its default reduction. "
            "The reconstruction error sums the squares over the D features of each point and averages "
            "only over the n points: your value is D times too small.",
        ),
        Mistake(
            _mse_total,
            "that is the total over all points. Divide by the number of points n, so that the "
            "error does not grow with the size of the data set.",
        ),
        Mistake(
            _mse_norm_not_squared,
            "that averages the distances ||x_k - x̃_k||; the error averages their SQUARES.",
        ),
    ),
)
check_mse_reconstruction_error = MSE_RECONSTRUCTION_ERROR.check


# --------------------------------------------------------- error from eigenvalues
def pca_reconstruction_error(x, k):
    """Σ_{i>k} λ_i, the eigenvalues of the 1/n covariance beyond the k largest."""
    centred = x - x.mean(dim=0)  # (n, D)
    covariance = centred.T @ centred / x.shape[0]  # (D, D)
    eigenvalues = torch.linalg.eigvalsh(covariance).flip(0)  # descending
    return eigenvalues[k:].sum()


def _pca_error_unbiased(x, k):
    eigenvalues = torch.linalg.eigvalsh(torch.cov(x.T)).flip(0)  # 1/(n - 1)
    return eigenvalues[k:].sum()


def _pca_error_kept(x, k):
    centred = x - x.mean(dim=0)
    eigenvalues = torch.linalg.eigvalsh(centred.T @ centred / x.shape[0]).flip(0)
    return eigenvalues[:k].sum()


def _pca_error_ascending(x, k):
    centred = x - x.mean(dim=0)
    eigenvalues = torch.linalg.eigvalsh(centred.T @ centred / x.shape[0])  # ascending!
    return eigenvalues[k:].sum()


def _pca_error_not_centred(x, k):
    eigenvalues = torch.linalg.eigvalsh(x.T @ x / x.shape[0]).flip(0)
    return eigenvalues[k:].sum()


PCA_RECONSTRUCTION_ERROR = Exercise(
    name="pca_reconstruction_error",
    forbidden_calls=("genphys.pca.pca",),
    solution=pca_reconstruction_error,
    cases=lambda: _pca_cases(82),
    random_cases=_pca_random,
    stress_cases=_pca_stress,
    mistakes=(
        Mistake(
            _pca_error_unbiased,
            "torch.cov divides by n - 1. The reconstruction error averages over the n points, "
            "so the covariance whose eigenvalues it sums is (1/n) Σ_k (x_k - μ)(x_k - μ)ᵀ.",
        ),
        Mistake(
            _pca_error_kept,
            "that is the variance PCA keeps. The error is what it throws away: the sum of the "
            "eigenvalues beyond the k largest.",
        ),
        Mistake(
            _pca_error_ascending,
            "torch.linalg.eigvalsh returns the eigenvalues in ASCENDING order, so [k:] drops "
            "the k smallest. Flip them (or take [:D - k]) to discard the smallest D - k.",
        ),
        Mistake(
            _pca_error_not_centred,
            "subtract the mean first: xᵀx / n is the second moment, not the covariance. The "
            "biases of the autoencoder (and PCA's μ) absorb the mean at no cost.",
        ),
    ),
)
check_pca_reconstruction_error = PCA_RECONSTRUCTION_ERROR.check


# ------------------------------------------------- encoder and decoder from PCA
def pca_encode_decode(x, k):
    """x̃ = μ + U_k U_kᵀ (x - μ): encode h = U_kᵀ(x - μ), decode x̃ = U_k h + μ."""
    mu = x.mean(dim=0)  # (D,)
    centred = x - mu  # (n, D)
    _, eigenvectors = torch.linalg.eigh(centred.T @ centred / x.shape[0])  # ascending
    U = eigenvectors[:, -k:]  # (D, k): the top k, in any order
    h = centred @ U  # (n, k), the code
    return h @ U.T + mu  # (n, D)


def _encode_decode_bottom(x, k):
    mu = x.mean(dim=0)
    _, eigenvectors = torch.linalg.eigh((x - mu).T @ (x - mu) / x.shape[0])
    U = eigenvectors[:, :k]
    return (x - mu) @ U @ U.T + mu


def _encode_decode_no_mean_back(x, k):
    return pca_encode_decode(x, k) - x.mean(dim=0)


def _encode_decode_not_centred(x, k):
    mu = x.mean(dim=0)
    _, eigenvectors = torch.linalg.eigh((x - mu).T @ (x - mu) / x.shape[0])
    U = eigenvectors[:, -k:]
    return x @ U @ U.T


PCA_ENCODE_DECODE = Exercise(
    name="pca_encode_decode",
    forbidden_calls=("genphys.pca.pca",),
    solution=pca_encode_decode,
    cases=lambda: _pca_cases(83),
    random_cases=_pca_random,
    stress_cases=lambda: _pca_stress()[:2],
    mistakes=(
        Mistake(
            _encode_decode_bottom,
            "torch.linalg.eigh sorts eigenvalues in ascending order, so eigenvectors[:, :k] are "
            "the k directions of LEAST variance. Keep the last k columns.",
        ),
        Mistake(
            _encode_decode_no_mean_back,
            "the decoder must add the mean back: x̃ = U_k h + μ. Without d = μ the "
            "reconstructions are centred at zero.",
        ),
        Mistake(
            _encode_decode_not_centred,
            "encode the CENTRED data, h = U_kᵀ(x - μ), and add μ back after decoding; "
            "projecting x itself through the origin misses the offset.",
        ),
    ),
)
check_pca_encode_decode = PCA_ENCODE_DECODE.check


# ------------------------------------------------------------- KL sparsity penalty
def kl_sparsity_penalty(h, rho):
    """Σ_j [ρ log(ρ/ρ̂_j) + (1-ρ) log((1-ρ)/(1-ρ̂_j))] with ρ̂_j = (1/n) Σ_k h_kj."""
    rho_hat = h.mean(dim=0)  # (d,): mean activation of each code unit
    log_rho = torch.log(torch.tensor(rho, dtype=h.dtype))
    log_not_rho = torch.log1p(torch.tensor(-rho, dtype=h.dtype))
    # differences of logarithms, not logarithms of ratios: ρ/ρ̂ overflows for a silent unit
    kl = rho * (log_rho - torch.log(rho_hat)) + (1 - rho) * (log_not_rho - torch.log1p(-rho_hat))
    return kl.sum()


def _kl_sparsity_reversed(h, rho):
    rho_hat = h.mean(dim=0)
    return (
        rho_hat * (torch.log(rho_hat) - torch.log(torch.tensor(rho, dtype=h.dtype)))
        + (1 - rho_hat) * (torch.log1p(-rho_hat) - torch.log1p(torch.tensor(-rho, dtype=h.dtype)))
    ).sum()


def _kl_sparsity_one_term(h, rho):
    rho_hat = h.mean(dim=0)
    return (rho * (torch.log(torch.tensor(rho, dtype=h.dtype)) - torch.log(rho_hat))).sum()


def _kl_sparsity_per_point(h, rho):
    # the KL of every single activation, averaged: not the KL of the MEAN activation
    r = torch.tensor(rho, dtype=h.dtype)
    kl = r * (torch.log(r) - torch.log(h)) + (1 - r) * (torch.log1p(-r) - torch.log1p(-h))
    return kl.sum(dim=1).mean()


def _kl_sparsity_mean_over_units(h, rho):
    return kl_sparsity_penalty(h, rho) / h.shape[1]


def _codes(g: torch.Generator, n: int, d: int, scale: float) -> torch.Tensor:
    """Sigmoid-like codes in (0, 1): uniform numbers raised to a power (small for scale < 1)."""
    u = torch.rand(n, d, generator=g, dtype=torch.float64)
    return u ** (1.0 / scale)


def _kl_cases():
    g = torch.Generator().manual_seed(88)
    return [
        (_codes(g, n, d, s), rho)
        for n, d, s, rho in [(6, 4, 1.0, 0.05), (10, 3, 0.3, 0.2), (5, 7, 2.0, 0.5)]
    ]


def _kl_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, d = draw_int(g, 1, 30), draw_int(g, 1, 20)
        cases.append((_codes(g, n, d, draw_float(g, 0.2, 3.0)), draw_float(g, 0.01, 0.9)))
    return cases


def _kl_stress():
    g = torch.Generator().manual_seed(89)
    silent = _codes(g, 8, 5, 1.0)
    silent[:, 0] = 0.0
    silent[0, 0] = 1e-308  # unit 0 fires almost never: mean activation ~1e-309
    return [
        Stress(
            "a unit that is almost never active (mean activation ~1e-309)",
            (silent, 0.05),
            "ρ/ρ̂ overflows to infinity when ρ̂ is tiny, although the KL is a finite number "
            "(about ρ log ρ - ρ log ρ̂). Write log(ρ/ρ̂) as log ρ - log ρ̂.",
        ),
        Stress("a single data point", (_codes(g, 1, 6, 1.0), 0.1)),
        Stress("a batch of 20000 codes of 256 units", (_codes(g, 20_000, 256, 0.5), 0.05)),
    ]


KL_SPARSITY_PENALTY = Exercise(
    name="kl_sparsity_penalty",
    forbidden_calls=("genphys.regularized_autoencoder.kl_sparsity_penalty",),
    solution=kl_sparsity_penalty,
    cases=_kl_cases,
    random_cases=_kl_random,
    stress_cases=_kl_stress,
    rtol=1e-9,
    mistakes=(
        Mistake(
            _kl_sparsity_reversed,
            "that is KL(ρ̂ || ρ), the divergence the other way round. The penalty is "
            "KL(ρ || ρ̂_j): the target ρ is the first argument, ρ log(ρ/ρ̂_j) + ...",
        ),
        Mistake(
            _kl_sparsity_one_term,
            "a Bernoulli KL has two terms: add (1 - ρ) log((1 - ρ)/(1 - ρ̂_j)) for the "
            "probability that the unit is off.",
        ),
        Mistake(
            _kl_sparsity_per_point,
            "that averages the KL of every single activation h_kj. The penalty compares ρ with "
            "the MEAN activation of each unit, ρ̂_j = (1/n) Σ_k h_kj: a unit may fire strongly "
            "on a few inputs as long as it is silent on average.",
        ),
        Mistake(
            _kl_sparsity_mean_over_units,
            "sum the KL over the code units j instead of averaging it.",
        ),
    ),
)
check_kl_sparsity_penalty = KL_SPARSITY_PENALTY.check

EXERCISES = [
    MSE_RECONSTRUCTION_ERROR,
    PCA_RECONSTRUCTION_ERROR,
    PCA_ENCODE_DECODE,
    KL_SPARSITY_PENALTY,
]

# ----------------------------------------------------------- derivation questions
MSE_LOSS_RATIO = Expression(
    name="mse_loss_ratio",
    question=(
        "For n data points with D features, by what factor does the reconstruction error "
        "L = (1/n) Σ_k ||x_k - x̃_k||² differ from torch.nn.functional.mse_loss(x_tilde, x) "
        "with its default reduction? Give L / mse_loss as a formula in n and D."
    ),
    variables={"n": (1.0, 500.0), "D": (1.0, 100.0)},
    solution="D",
    mistakes=(
        Mistake("n", "mse_loss averages over all n·D entries and L over the n points only."),
        Mistake("1/D", "L is the larger one: it sums over the D features that mse_loss averages."),
        Mistake(
            "n*D", "both average over the n points; only the features are treated differently."
        ),
    ),
    explanation=(
        "mse_loss averages the n·D squared entries: Σ_k Σ_i (x_ki - x̃_ki)² / (n D). L sums "
        "over the features and averages over the points, so L = D · mse_loss."
    ),
)
check_mse_loss_ratio = MSE_LOSS_RATIO.check

QUESTIONS = [MSE_LOSS_RATIO]
