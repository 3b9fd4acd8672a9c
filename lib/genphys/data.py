"""Small binary data sets, generated or bundled: nothing is downloaded.

Explained in {ref}`sec-training-rbms`.

* :func:`load_digits_binary` -- the 8 x 8 handwritten digits bundled with scikit-learn
  (1797 images), thresholded to {0, 1} and split once, reproducibly, into a training
  and a test set;
* :func:`ising_dataset` -- configurations of the 2D Ising model drawn with
  :func:`genphys.ising.sample`, spins :math:`\\pm 1` mapped to bits :math:`(s + 1)/2`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ._validation import check_positive_float, check_positive_int, check_probability, describe

__all__ = ["DIGITS_SHAPE", "BinaryDigits", "digits_split", "ising_dataset", "load_digits_binary"]

#: Height and width of one digit image.
DIGITS_SHAPE = (8, 8)


class BinaryDigits(NamedTuple):
    """The binarised digits split into training and test sets.

    Attributes
    ----------
    x_train : Tensor of shape (n_train, 64)
        Binary images, one flattened 8 x 8 image per row (row-major).
    x_test : Tensor of shape (n_test, 64)
    y_train : Tensor of shape (n_train,)
        Digit labels 0-9 (int64).
    y_test : Tensor of shape (n_test,)
    """

    x_train: torch.Tensor
    x_test: torch.Tensor
    y_train: torch.Tensor
    y_test: torch.Tensor


def _check_split_arguments(test_fraction: object, seed: object) -> tuple[float, int]:
    test_fraction = check_probability("test_fraction", test_fraction)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1). Got {test_fraction} instead.")
    return test_fraction, check_positive_int("seed", seed, minimum=0)


def _stratified_test_mask(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask choosing ``round(test_fraction * n_c)`` test images of each class ``c``."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)  # (n_c,)
        n_test = round(test_fraction * members.shape[0])
        mask[rng.permutation(members)[:n_test]] = True
    return mask


def _digits_bunch():
    from sklearn.datasets import load_digits  # imported here: sklearn is slow to import

    return load_digits()


def digits_split(*, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and test images of :func:`load_digits_binary`.

    For every digit class ``c`` with ``n_c`` images, ``round(test_fraction * n_c)`` of
    them, chosen by a NumPy ``default_rng(seed)`` permutation, form the test set.

    Returns
    -------
    index_train : ndarray of shape (n_train,)
        Increasing positions in scikit-learn's ``load_digits()`` order.
    index_test : ndarray of shape (n_test,)
    """
    test_fraction, seed = _check_split_arguments(test_fraction, seed)
    labels = _digits_bunch().target
    test = _stratified_test_mask(labels, test_fraction, seed)
    return np.flatnonzero(~test), np.flatnonzero(test)


def load_digits_binary(
    *,
    threshold: float = 0.5,
    test_fraction: float = 0.2,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> BinaryDigits:
    """Binarised digits :math:`x_i = [\\,\\text{pixel}_i / 16 > \\text{threshold}\\,]`, split stratified.

    The images are scikit-learn's bundled ``load_digits`` (1797 images of 8 x 8 pixels
    with intensities 0-16; no download). A pixel becomes 1 when its intensity divided
    by 16 exceeds ``threshold``. The split is stratified: for every digit class
    ``c`` with ``n_c`` images, ``round(test_fraction * n_c)`` of them, chosen by a
    NumPy ``default_rng(seed)`` permutation, go to the test set. Both sets keep the
    original order of the images. With the defaults the split has 1438 training and
    359 test images and is the same on every machine and every call.

    Parameters
    ----------
    threshold : float
        In [0, 1); 0.5 by default.
    test_fraction : float
        Fraction of each class held out, in (0, 1); 0.2 by default.
    seed : int
        Seed of the split (not of anything else); 0 by default.
    dtype : torch.dtype
        Floating dtype of the images; ``torch.float64`` by default.
    device : torch.device or str, optional

    Returns
    -------
    BinaryDigits
        ``x_train`` (n_train, 64), ``x_test`` (n_test, 64), ``y_train``, ``y_test``.
        Explained in {ref}`sec-training-rbms`.
    """
    threshold = check_probability("threshold", threshold)
    if threshold == 1.0:
        raise ValueError(
            "threshold must be in [0, 1) (at 1 every pixel would be 0). Got 1.0 instead."
        )
    test_fraction, seed = _check_split_arguments(test_fraction, seed)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype. Got {describe(dtype)} instead.")

    bunch = _digits_bunch()
    images = bunch.data / 16.0 > threshold  # (1797, 64) bool
    labels = bunch.target.astype(np.int64)  # (1797,)
    test = _stratified_test_mask(labels, test_fraction, seed)

    def to_x(rows: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(images[rows].astype(np.float64), dtype=dtype, device=device)

    def to_y(rows: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(labels[rows], device=device)

    return BinaryDigits(to_x(~test), to_x(test), to_y(~test), to_y(test))


def ising_dataset(
    L: int,
    T: float,
    n_samples: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Ising configurations as bits, :math:`x = (s + 1)/2` with :math:`s \\sim e^{-E(s)/T}/Z`.

    Draws ``n_samples`` configurations of the periodic :math:`L \\times L` Ising model
    with :func:`genphys.ising.sample` (same ``L``, ``T``, ``seed`` or ``generator`` and its
    default burn-in and thinning) and flattens each one row by row.

    Parameters
    ----------
    L : int
        Linear lattice size, ``L >= 2``.
    T : float
        Temperature, ``T > 0``.
    n_samples : int
    seed : int, optional
    generator : torch.Generator, optional
        Exactly one of them, passed on to :func:`genphys.ising.sample` (the book's seeding
        rule, :func:`genphys.seeding.make_generator`).
    dtype : torch.dtype
        ``torch.float64`` by default.

    Returns
    -------
    Tensor of shape (n_samples, L * L)
        Entries 0 (spin down) and 1 (spin up). Explained in {ref}`sec-training-rbms`.
    """
    L = check_positive_int("L", L, minimum=2)
    T = check_positive_float("T", T)
    n_samples = check_positive_int("n_samples", n_samples)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype. Got {describe(dtype)} instead.")

    from . import ising  # imported here so that this module never depends on it at import

    spins = ising.sample(L, T, n_samples, seed=seed, generator=generator)  # (n, L, L), +-1
    if spins.shape != (n_samples, L, L) or not bool(((spins == 1) | (spins == -1)).all()):
        raise RuntimeError(  # pragma: no cover - guards against a change in genphys.ising
            f"genphys.ising.sample must return +-1 spins of shape ({n_samples}, {L}, {L}). "
            f"Got {describe(spins)} instead."
        )
    return ((spins.reshape(n_samples, L * L) + 1) / 2).to(dtype)
