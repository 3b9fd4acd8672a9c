"""Tests for genphys.pca: principal components and principal angles.

Oracles: an eigendecomposition of the covariance, scikit-learn's PCA and SciPy's
``subspace_angles``; planes built with known angles.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from model_helpers import gaussian_data as _gaussian_data

from genphys.pca import PCAResult, pca, principal_angles, subspace_distance


# ============================================================================ PCA
def test_pca_against_eigendecomposition_and_sklearn():
    from sklearn.decomposition import PCA

    x = _gaussian_data([5.0, 2.0, 1.0, 0.5, 0.1], 300, seed=4, shift=2.0)
    res = pca(x, 3)
    assert isinstance(res, PCAResult) and res.components.shape == (5, 3)
    np.testing.assert_allclose(res.components.T @ res.components, torch.eye(3), atol=1e-14)
    cov = (x - x.mean(0)).T @ (x - x.mean(0)) / 300  # the 1/n covariance
    evals = np.linalg.eigvalsh(cov.numpy())[::-1]
    np.testing.assert_allclose(res.eigenvalues, evals, rtol=1e-12)
    np.testing.assert_allclose(
        cov @ res.components, res.components * res.eigenvalues[:3], atol=1e-12
    )
    sk = PCA(3).fit(x.numpy())  # sklearn's variances use 1/(n - 1)
    np.testing.assert_allclose(res.eigenvalues[:3] * 300 / 299, sk.explained_variance_, rtol=1e-12)
    np.testing.assert_allclose(np.abs(sk.components_), res.components.abs().T, atol=1e-12)
    # sign convention: the largest-magnitude entry of each component is positive
    pivots = res.components.abs().argmax(0)
    assert bool((res.components[pivots, torch.arange(3)] > 0).all())


def test_pca_reconstruction_error_is_the_sum_of_discarded_eigenvalues():
    x = _gaussian_data([5.0, 2.0, 1.0, 0.5, 0.1], 300, seed=5)
    for k in range(1, 6):
        res = pca(x, k)
        error = ((x - res.reconstruct(x)) ** 2).sum(1).mean()  # squared error per sample
        np.testing.assert_allclose(error, res.discarded_variance, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(res.decode(res.encode(x)), res.reconstruct(x), rtol=1e-15)
    # fewer samples than features: only n eigenvalues, the rest are zero anyway
    wide = torch.randn(4, 9, dtype=torch.float64)
    res = pca(wide, 2)
    assert res.eigenvalues.shape == (4,)
    np.testing.assert_allclose(res.eigenvalues[-1].item(), 0.0, atol=1e-14)


def _planes_with_angles(angles, d=6, *, seed=0):
    """Two k-planes in R^d with principal angles `angles`, in a random orthonormal frame."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    k = len(angles)
    t = torch.as_tensor(angles, dtype=torch.float64)
    A = Q[:, :k]
    B = torch.cos(t) * Q[:, :k] + torch.sin(t) * Q[:, k : 2 * k]
    mix = torch.randn(k, k, generator=g, dtype=torch.float64) + 3 * torch.eye(k)
    return A, B @ mix  # any basis of the same plane


def test_principal_angles_known_values_including_tiny_ones():
    angles = [1e-10, 0.3, 1.2]
    A, B = _planes_with_angles(angles)
    np.testing.assert_allclose(principal_angles(A, B), angles, rtol=1e-7, atol=1e-15)
    # arccos alone could not see 1e-10: cos(1e-10) rounds to 1
    assert math.cos(1e-10) == 1.0
    np.testing.assert_allclose(principal_angles(B, A), angles, rtol=1e-7, atol=1e-15)
    # SciPy agrees on the angles it resolves (it returns ~1e-8 for the tiny one)
    np.testing.assert_allclose(
        np.sort(scipy.linalg.subspace_angles(A.numpy(), B.numpy()))[1:], angles[1:], rtol=1e-10
    )
    np.testing.assert_allclose(principal_angles(A, A), [0.0] * 3, atol=1e-15)
    # orthogonal planes
    Q = torch.eye(4, dtype=torch.float64)
    np.testing.assert_allclose(principal_angles(Q[:, :2], Q[:, 2:]), [math.pi / 2] * 2)


def test_principal_angles_between_spaces_of_different_dimension():
    A, B = _planes_with_angles([0.2, 0.7], seed=1)
    angles = principal_angles(A, B[:, :1])
    assert angles.shape == (1,)
    np.testing.assert_allclose(
        angles, scipy.linalg.subspace_angles(A.numpy(), B[:, :1].numpy()), rtol=1e-10
    )


def test_subspace_distance_is_the_projector_distance():
    A, B = _planes_with_angles([0.1, 0.5, 0.9], seed=2)
    qa, qb = torch.linalg.qr(A)[0], torch.linalg.qr(B)[0]
    projector_gap = torch.linalg.matrix_norm(qa @ qa.T - qb @ qb.T, ord=2)
    np.testing.assert_allclose(subspace_distance(A, B), projector_gap, rtol=1e-12)
    np.testing.assert_allclose(subspace_distance(A, B), math.sin(0.9), rtol=1e-12)


# ============================================================================ bad input
def test_pca_and_angles_reject_bad_input():
    x = torch.randn(10, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        pca(x[0], 1)
    with pytest.raises(ValueError, match="x must contain only finite"):
        pca(torch.full((3, 3), float("nan")), 1)
    with pytest.raises(ValueError, match="n_components must be an integer >= 1"):
        pca(x, 0)
    with pytest.raises(TypeError, match="n_components"):
        pca(x, 1.5)
    with pytest.raises(ValueError, match="n_components must be at most"):
        pca(x, 5)
    res = pca(x, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(n_samples, 4\)"):
        res.encode(torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"h must have shape \(n_samples, 2\)"):
        res.decode(torch.zeros(3, 4, dtype=torch.float64))
    A = torch.randn(5, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="B must have 5 rows"):
        principal_angles(A, torch.randn(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="A must have linearly independent columns"):
        principal_angles(torch.cat([A, A[:, :1]], dim=1), A)
    with pytest.raises(ValueError, match="B must have linearly independent columns"):
        principal_angles(A, torch.zeros(5, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="A must have 2 dimensions"):
        principal_angles(A[:, 0], A)
    with pytest.raises(ValueError, match="B must contain only finite"):
        subspace_distance(A, torch.full((5, 2), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="B must have as many columns as A"):
        subspace_distance(A, A[:, :1])
