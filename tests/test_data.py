"""Tests for genphys.data: the binarised digits and the Ising data set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genphys.data import BinaryDigits, digits_split, ising_dataset, load_digits_binary


@pytest.fixture(scope="module")
def digits() -> BinaryDigits:
    return load_digits_binary()


@pytest.fixture(scope="module")
def raw_digits():
    from sklearn.datasets import load_digits

    return load_digits()


# ---------------------------------------------------------------------- digits
def test_digits_shapes_dtype_and_binary(digits):
    x_train, x_test, y_train, y_test = digits
    assert x_train.shape == (1438, 64) and x_test.shape == (359, 64)
    assert y_train.shape == (1438,) and y_test.shape == (359,)
    assert x_train.dtype == torch.float64 and y_train.dtype == torch.int64
    for x in (x_train, x_test):
        assert bool(((x == 0) | (x == 1)).all())
    # neither all zeros nor all ones: the threshold keeps the strokes
    assert 0.2 < float(x_train.mean()) < 0.4


def test_digits_are_the_thresholded_sklearn_images(digits, raw_digits):
    index_train, index_test = digits_split()
    expected = raw_digits.data[index_train] / 16.0 > 0.5
    np.testing.assert_array_equal(digits.x_train.numpy(), expected.astype(np.float64))
    np.testing.assert_array_equal(digits.y_test.numpy(), raw_digits.target[index_test])


def test_split_is_disjoint_complete_and_stratified(raw_digits):
    index_train, index_test = digits_split()
    assert np.intersect1d(index_train, index_test).size == 0
    np.testing.assert_array_equal(np.union1d(index_train, index_test), np.arange(1797))
    assert np.all(np.diff(index_train) > 0) and np.all(np.diff(index_test) > 0)
    labels = raw_digits.target
    for c in range(10):
        n_c = int((labels == c).sum())
        assert int((labels[index_test] == c).sum()) == round(0.2 * n_c)


def test_split_is_deterministic_and_depends_on_seed():
    _, a_test = digits_split(seed=0)
    _, b_test = digits_split(seed=0)
    np.testing.assert_array_equal(a_test, b_test)
    _, c_test = digits_split(seed=1)
    assert not np.array_equal(a_test, c_test)


def test_load_is_deterministic(digits):
    again = load_digits_binary()
    for u, v in zip(digits, again, strict=True):
        assert torch.equal(u, v)


def test_threshold_and_test_fraction_and_dtype():
    low = load_digits_binary(threshold=0.1)
    high = load_digits_binary(threshold=0.9)
    assert float(low.x_train.mean()) > float(high.x_train.mean())
    half = load_digits_binary(test_fraction=0.5, dtype=torch.float32)
    assert half.x_train.dtype == torch.float32
    assert abs(half.x_train.shape[0] - half.x_test.shape[0]) <= 10


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"threshold": 1.0}, ValueError, "threshold"),
        ({"threshold": -0.1}, ValueError, "threshold"),
        ({"threshold": "half"}, TypeError, "threshold"),
        ({"test_fraction": 0.0}, ValueError, "test_fraction"),
        ({"test_fraction": 1.0}, ValueError, "test_fraction"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"dtype": torch.int64}, TypeError, "dtype"),
    ],
)
def test_load_digits_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        load_digits_binary(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"test_fraction": 2.0}, ValueError, "test_fraction"),
        ({"test_fraction": 0.0}, ValueError, "test_fraction"),
        ({"seed": -3}, ValueError, "seed"),
    ],
)
def test_digits_split_bad_input(kwargs, error, name):
    with pytest.raises(error, match=name):
        digits_split(**kwargs)


# ----------------------------------------------------------------------- Ising
def test_ising_dataset_shape_binary_and_deterministic():
    pytest.importorskip("genphys.ising")
    x = ising_dataset(4, 2.5, 40, seed=3)
    assert x.shape == (40, 16) and x.dtype == torch.float64
    assert bool(((x == 0) | (x == 1)).all())
    assert torch.equal(x, ising_dataset(4, 2.5, 40, seed=3))


def test_ising_dataset_maps_spins_to_bits():
    ising = pytest.importorskip("genphys.ising")
    spins = ising.sample(4, 2.0, 10, seed=5)
    np.testing.assert_array_equal(
        ising_dataset(4, 2.0, 10, seed=5).numpy(), ((spins.reshape(10, 16) + 1) / 2).numpy()
    )


def test_ising_dataset_orders_at_low_temperature():
    pytest.importorskip("genphys.ising")
    # |m| per configuration: near 1 at T = 1 (ordered), small at T = 5 (disordered).
    # Exact values for L = 4: <|m|> = 0.999 at T = 1 and about 0.3 at T = 5; 200 samples
    # make the sample means accurate to a few hundredths.
    cold = ising_dataset(4, 1.0, 200, seed=0)
    hot = ising_dataset(4, 5.0, 200, seed=0)
    m_cold = (2 * cold - 1).mean(1).abs().mean()
    m_hot = (2 * hot - 1).mean(1).abs().mean()
    assert float(m_cold) > 0.95 and float(m_hot) < 0.6


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "name"),
    [
        ((1, 2.0, 10), {"seed": 0}, ValueError, "L"),
        ((4, 0.0, 10), {"seed": 0}, ValueError, "T"),
        ((4, "hot", 10), {"seed": 0}, TypeError, "T"),
        ((4, 2.0, 0), {"seed": 0}, ValueError, "n_samples"),
        ((4, 2.0, 10), {"seed": -1}, ValueError, "seed"),
        ((4, 2.0, 10), {"seed": 0, "dtype": torch.bool}, TypeError, "dtype"),
    ],
)
def test_ising_dataset_bad_input(args, kwargs, error, name):
    with pytest.raises(error, match=name):
        ising_dataset(*args, **kwargs)


def test_ising_dataset_takes_a_generator_like_every_random_function():
    seeded = ising_dataset(4, 2.5, 30, seed=11)
    from_generator = ising_dataset(4, 2.5, 30, generator=torch.Generator().manual_seed(11))
    assert torch.equal(seeded, from_generator)
    with pytest.raises(TypeError, match="seed"):
        ising_dataset(4, 2.5, 30)
    with pytest.raises(ValueError, match="seed"):
        ising_dataset(4, 2.5, 30, seed=1, generator=torch.Generator().manual_seed(1))
