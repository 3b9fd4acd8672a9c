"""Test data and small models shared by several test files (written once, imported by each)."""

from __future__ import annotations

import torch

from genphys.linear_gaussian import LinearGaussianModel

F64 = torch.float64


def gen(seed: int = 0, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def random_linear_model(D=5, d=3, sigma2=0.3, seed=0, device="cpu") -> LinearGaussianModel:
    g = gen(seed)
    C = torch.randn(D, d, generator=g, dtype=F64).to(device)
    mu = torch.randn(D, generator=g, dtype=F64).to(device)
    return LinearGaussianModel(C, mu, sigma2)


def orthogonal_linear_model(D=5, d=3, sigma2=0.4, seed=0) -> LinearGaussianModel:
    """C = Q diag(s) with orthonormal columns Q: C^T C is diagonal, so is the posterior."""
    g = gen(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, d, generator=g, dtype=F64))
    scales = torch.tensor([2.0, 1.0, 0.5][:d], dtype=F64)
    return LinearGaussianModel(Q * scales, torch.randn(D, generator=g, dtype=F64), sigma2)


def gaussian_data(eigenvalues, n, *, seed, shift=1.0):
    """n points with covariance Q diag(eigenvalues) Qᵀ (random rotation Q) and mean `shift`."""
    g = torch.Generator().manual_seed(seed)
    lam = torch.as_tensor(eigenvalues, dtype=F64)
    d = lam.shape[0]
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=F64))
    z = torch.randn(n, d, generator=g, dtype=F64)  # (n, D)
    return (z * lam.sqrt()) @ Q.T + shift


def binary_data(n, d, *, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (n, d), generator=g).double()
