"""Principal component analysis and the angles between subspaces.

Explained in {ref}`sec-autoencoders`: the optimal linear autoencoder with ``k`` code
units spans the top-``k`` principal subspace of the data (Bourlard & Kamp 1988; Baldi &
Hornik 1989). :func:`pca` computes that subspace; :func:`principal_angles` and
:func:`subspace_distance` measure how far a learned subspace is from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validation import as_tensor, check_positive_int

__all__ = ["PCAResult", "pca", "principal_angles", "subspace_distance"]


@dataclass(frozen=True)
class PCAResult:
    """Principal components of a data set, from :func:`pca`.

    Attributes
    ----------
    mean : Tensor of shape (n_features,)
        Data mean :math:`\\mu`.
    components : Tensor of shape (n_features, n_components)
        Orthonormal eigenvectors :math:`U_k` of the covariance, by decreasing
        eigenvalue; each column's largest-magnitude entry is positive.
    eigenvalues : Tensor of shape (min(n_samples, n_features),)
        All eigenvalues :math:`\\lambda_1 \\ge \\lambda_2 \\ge \\dots` of the covariance
        :math:`\\frac1n \\sum_k (x_k - \\mu)(x_k - \\mu)^\\top` (normalised by ``n``).
    """

    mean: torch.Tensor
    components: torch.Tensor
    eigenvalues: torch.Tensor

    @property
    def n_components(self) -> int:
        return self.components.shape[1]

    @property
    def discarded_variance(self) -> torch.Tensor:
        """:math:`\\sum_{i > k} \\lambda_i`, the squared reconstruction error of the data."""
        return self.eigenvalues[self.n_components :].sum()

    def _rows(self, name: str, value: object, size: int) -> torch.Tensor:
        tensor = as_tensor(name, value, ndim=2, dtype=self.mean.dtype, device=self.mean.device)
        if tensor.shape[1] != size:
            raise ValueError(
                f"{name} must have shape (n_samples, {size}). "
                f"Got shape {tuple(tensor.shape)} instead."
            )
        return tensor

    def encode(self, x: object) -> torch.Tensor:
        """Principal coordinates :math:`h = U_k^\\top (x - \\mu)`, shape (n_samples, k)."""
        x = self._rows("x", x, self.mean.shape[0])
        return (x - self.mean) @ self.components  # (n, k)

    def decode(self, h: object) -> torch.Tensor:
        """Reconstruction :math:`\\tilde x = U_k h + \\mu`, shape (n_samples, n_features)."""
        h = self._rows("h", h, self.n_components)
        return h @ self.components.T + self.mean  # (n, D)

    def reconstruct(self, x: object) -> torch.Tensor:
        """Projection :math:`\\tilde x = \\mu + U_k U_k^\\top (x - \\mu)` on the principal space."""
        return self.decode(self.encode(x))


def pca(x: object, n_components: int) -> PCAResult:
    """Top principal components :math:`U_k` of ``x`` from the SVD :math:`x - \\mu = U S V^\\top`.

    The covariance :math:`C = \\frac1n (x - \\mu)^\\top (x - \\mu)` has eigenvectors the
    right singular vectors and eigenvalues :math:`s_i^2 / n`; the SVD avoids forming
    :math:`C`, which would square its condition number. Explained in
    {ref}`sec-autoencoders`.

    Parameters
    ----------
    x : Tensor of shape (n_samples, n_features)
    n_components : int
        Number ``k`` of components kept, ``1 <= k <= min(n_samples, n_features)``.

    Returns
    -------
    PCAResult
    """
    x = as_tensor("x", x, ndim=2)
    if not x.is_floating_point():  # pragma: no cover - as_tensor always returns floats
        x = x.to(torch.float64)
    n_components = check_positive_int("n_components", n_components)
    n, d = x.shape
    if n_components > min(n, d):
        raise ValueError(
            f"n_components must be at most min(n_samples, n_features) = {min(n, d)}. "
            f"Got {n_components} instead."
        )
    mean = x.mean(0)  # (D,)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)  # (r,), (r, D)
    components = vh[:n_components].T  # (D, k)
    pivot = components.abs().argmax(0)  # (k,)
    signs = torch.sign(components[pivot, torch.arange(n_components, device=x.device)])
    return PCAResult(mean=mean, components=components * signs, eigenvalues=s**2 / n)


def _orthonormal_basis(name: str, a: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis of the column space of ``a``; raise if its columns are dependent."""
    u, s, _ = torch.linalg.svd(a, full_matrices=False)  # (D, p), (p,)
    tol = max(a.shape) * torch.finfo(a.dtype).eps * s[0]
    rank = int((s > tol).sum())
    if rank < a.shape[1]:
        raise ValueError(
            f"{name} must have linearly independent columns. Got {a.shape[1]} columns "
            f"spanning a space of dimension {rank} instead."
        )
    return u


def _bases(a: object, b: object) -> tuple[torch.Tensor, torch.Tensor]:
    A = as_tensor("A", a, ndim=2)
    B = as_tensor("B", b, ndim=2, dtype=A.dtype, device=A.device)
    if B.shape[0] != A.shape[0]:
        raise ValueError(
            f"B must have {A.shape[0]} rows, like A (both hold column vectors). "
            f"Got shape {tuple(B.shape)} instead."
        )
    return _orthonormal_basis("A", A), _orthonormal_basis("B", B)


def principal_angles(A: object, B: object) -> torch.Tensor:
    """Principal angles :math:`0 \\le \\theta_1 \\le \\dots \\le \\pi/2` between column spaces.

    The column spaces are those of ``A`` and ``B``.

    With orthonormal bases :math:`Q_A, Q_B`, :math:`\\cos\\theta_i` are the singular
    values of :math:`Q_A^\\top Q_B` and :math:`\\sin\\theta_i` those of
    :math:`(I - Q_A Q_A^\\top) Q_B`; small angles are taken from the sines, which
    resolve them to machine precision, large ones from the cosines (Knyazev &
    Argentati 2002). Explained in {ref}`sec-autoencoders`.

    Parameters
    ----------
    A : Tensor of shape (n_features, p)
        Linearly independent columns.
    B : Tensor of shape (n_features, q)
        Linearly independent columns.

    Returns
    -------
    Tensor of shape (min(p, q),)
        Angles in radians, ascending.
    """
    qa, qb = _bases(A, B)
    if qb.shape[1] > qa.shape[1]:
        qa, qb = qb, qa  # the sine formula needs the smaller space second
    # cosines come out descending and sines ascending: both in the order of ascending angles
    cos = torch.linalg.svdvals(qa.T @ qb).clamp(max=1.0)  # (q,)
    sin = torch.linalg.svdvals(qb - qa @ (qa.T @ qb)).clamp(max=1.0).flip(0)  # (q,)
    return torch.where(sin**2 < 0.5, torch.arcsin(sin), torch.arccos(cos))


def subspace_distance(A: object, B: object) -> torch.Tensor:
    """Subspace distance :math:`\\sin\\theta_{\\max} = \\lVert P_A - P_B \\rVert_2`.

    ``A`` and ``B`` must have the same number of columns; the distance is between
    their column spaces.

    Zero when ``A`` and ``B`` span the same space, one when some direction of one is
    orthogonal to the other. Explained in {ref}`sec-autoencoders`.

    Parameters
    ----------
    A : Tensor of shape (n_features, k)
    B : Tensor of shape (n_features, k)

    Returns
    -------
    Tensor of shape ()
    """
    A_t = as_tensor("A", A, ndim=2)
    B_t = as_tensor("B", B, ndim=2, dtype=A_t.dtype, device=A_t.device)
    if B_t.shape[1] != A_t.shape[1]:
        raise ValueError(
            f"B must have as many columns as A ({A_t.shape[1]}) for a subspace distance. "
            f"Got shape {tuple(B_t.shape)} instead."
        )
    return torch.sin(principal_angles(A_t, B_t).max())
