"""Tests for genphys._validation: every message names the argument, the expectation and the input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genphys._validation import (
    as_tensor,
    check_binary,
    check_float_dtype,
    check_positive_float,
    check_positive_int,
    check_probability,
    check_same_placement,
    float_dtype_of,
)


def test_as_tensor_converts_arrays_and_lists_to_float64():
    t = as_tensor("x", [[0, 1], [1, 0]])
    assert t.dtype == torch.float64 and t.shape == (2, 2)
    assert as_tensor("x", np.ones(3, dtype=np.float32)).dtype == torch.float64
    assert as_tensor("x", torch.tensor([True, False])).dtype == torch.float64


def test_as_tensor_messages():
    with pytest.raises(ValueError, match=r"x must have 2 dimensions\. Got shape \(3,\) instead"):
        as_tensor("x", [1.0, 2.0, 3.0], ndim=2)
    with pytest.raises(ValueError, match=r"x must have shape \(any, 4\)\. Got shape \(2, 3\)"):
        as_tensor("x", np.zeros((2, 3)), shape=(None, 4))
    with pytest.raises(ValueError, match="x must contain only finite values. Got 1 NaN"):
        as_tensor("x", [0.0, float("nan")])
    with pytest.raises(ValueError, match="x must not be empty"):
        as_tensor("x", np.zeros((0, 3)))
    with pytest.raises(TypeError, match="x must have dtype torch.float64 to match the model"):
        as_tensor("x", torch.zeros(2, dtype=torch.float32), dtype=torch.float64)
    with pytest.raises(TypeError, match="x must be a numeric array"):
        as_tensor("x", ["a", "b"])
    with pytest.raises(ValueError, match="x must be on device meta"):
        as_tensor("x", torch.zeros(2, dtype=torch.float64), device="meta")


def test_scalar_checks():
    assert check_positive_int("n", 3) == 3
    with pytest.raises(ValueError, match="n must be an integer >= 1. Got 0 instead"):
        check_positive_int("n", 0)
    with pytest.raises(TypeError, match="n must be an integer"):
        check_positive_int("n", True)
    with pytest.raises(ValueError, match="T must be a finite number > 0. Got -1.0"):
        check_positive_float("T", -1)
    with pytest.raises(ValueError, match="T must be a finite number > 0. Got inf"):
        check_positive_float("T", float("inf"))
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\]"):
        check_probability("p", 1.5)


def test_binary_and_placement():
    check_binary("x", torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"x must be binary.*Got the value 0.5 at index \(1,\)"):
        check_binary("x", torch.tensor([0.0, 0.5]))
    ref = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"a must have the dtype of W \(torch.float64\)"):
        check_same_placement("W", ref, a=torch.zeros(2, dtype=torch.float32))


def test_check_float_dtype_and_float_dtype_of():
    assert check_float_dtype("dtype", torch.float32) is torch.float32
    for bad in (torch.int64, "float64", np.float64, None):
        with pytest.raises(TypeError, match="dtype must be a floating torch.dtype. Got"):
            check_float_dtype("dtype", bad)
    assert float_dtype_of(torch.zeros(2, dtype=torch.float32)) is torch.float32
    assert float_dtype_of(torch.zeros(2, dtype=torch.int64)) is None
    assert float_dtype_of(np.zeros(2)) is None
