"""The one seeding rule: exactly one of seed or generator, and the global RNG untouched."""

from __future__ import annotations

import pytest
import torch

from genphys.seeding import make_generator


def test_same_seed_same_numbers_and_global_rng_untouched():
    before = torch.random.get_rng_state()
    a = torch.rand(5, generator=make_generator(seed=3))
    b = torch.rand(5, generator=make_generator(seed=3))
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.rand(5, generator=make_generator(seed=4)))
    assert torch.equal(before, torch.random.get_rng_state())


def test_a_given_generator_is_used_and_advanced():
    g = torch.Generator().manual_seed(0)
    assert make_generator(generator=g) is g
    first = torch.rand(3, generator=g)
    assert not torch.equal(first, torch.rand(3, generator=make_generator(generator=g)))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, TypeError, "Got neither a seed nor a generator"),
        ({"seed": 1, "generator": torch.Generator()}, ValueError, "seed must be None"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"generator": "g"}, TypeError, "generator must be a torch.Generator"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_generator(**kwargs)
