"""Tests for genphys.enumeration: the state list and the streaming log-sum-exp."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from genphys.enumeration import (
    MAX_ENUMERATION_BITS,
    StreamingLogSumExp,
    binary_states,
    iter_binary_states,
    logsumexp_over_states,
)


def test_binary_states_lists_every_state_once_in_code_order():
    states = binary_states(4)
    assert states.shape == (16, 4) and states.dtype == torch.float64
    brute = [tuple(reversed(bits)) for bits in itertools.product([0.0, 1.0], repeat=4)]
    assert [tuple(row.tolist()) for row in states] == brute
    codes = (states * 2 ** torch.arange(4, dtype=torch.float64)).sum(1)
    assert codes.tolist() == list(range(16))


def test_binary_states_range_and_zero_units():
    assert binary_states(0).shape == (1, 0)
    part = binary_states(5, start=3, stop=7)
    np.testing.assert_array_equal(part, binary_states(5)[3:7])


def test_chunks_cover_all_states():
    chunks = list(iter_binary_states(5, chunk_size=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 4]
    np.testing.assert_array_equal(torch.cat(chunks), binary_states(5))


@pytest.mark.parametrize("scale", [1.0, 800.0])
def test_streaming_logsumexp_matches_torch_including_huge_scores(scale):
    g = torch.Generator().manual_seed(0)
    scores = scale * torch.randn(1000, generator=g, dtype=torch.float64)
    values = torch.randn(1000, 3, generator=g, dtype=torch.float64)
    acc = StreamingLogSumExp()
    for s, v in zip(scores.split(37), values.split(37), strict=True):
        acc.add(s, v)
    np.testing.assert_allclose(acc.value.item(), torch.logsumexp(scores, 0).item(), rtol=1e-14)
    weights = torch.softmax(scores, 0)
    np.testing.assert_allclose(acc.expectation(0), weights @ values, rtol=1e-10, atol=1e-14)


def test_streaming_logsumexp_increasing_maximum_rescales():
    acc = StreamingLogSumExp()
    for chunk in ([0.0, 1.0], [700.0], [1400.0, 1399.0]):
        acc.add(torch.tensor(chunk, dtype=torch.float64))
    expected = torch.logsumexp(torch.tensor([0.0, 1.0, 700.0, 1400.0, 1399.0]).double(), 0)
    np.testing.assert_allclose(acc.value.item(), expected.item(), rtol=1e-15)


def test_logsumexp_over_states_counts_states():
    # every state has log-weight 0, so the sum is 2^n
    total = logsumexp_over_states(6, lambda s: torch.zeros(len(s), dtype=s.dtype), chunk_size=5)
    np.testing.assert_allclose(total.item(), 6 * np.log(2.0), rtol=1e-15)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="n must be at most"):
        binary_states(MAX_ENUMERATION_BITS + 1)
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        binary_states(-1)
    with pytest.raises(TypeError, match="n must be an integer"):
        binary_states(2.5)
    with pytest.raises(ValueError, match="start and stop"):
        binary_states(3, start=5, stop=2)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        list(iter_binary_states(3, chunk_size=0))
    with pytest.raises(ValueError, match="needs at least one chunk"):
        StreamingLogSumExp().value  # noqa: B018
