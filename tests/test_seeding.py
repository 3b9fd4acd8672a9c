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
        ({"seed": 2**64}, ValueError, r"seed must be an integer in \[0, 2\*\*64 - 1\]"),
        ({"seed": 2**70}, ValueError, r"seed must be an integer in \[0, 2\*\*64 - 1\]"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_generator(**kwargs)


def test_the_largest_seed_works_and_a_larger_one_is_named_everywhere():
    assert make_generator(seed=2**64 - 1).initial_seed() == 2**64 - 1
    from genphys import langevin

    with pytest.raises(ValueError, match="seed must be an integer in"):
        langevin.sample(
            lambda x: -(x**2).sum(1), torch.zeros(2, 1), step_size=0.1, n_steps=1, seed=2**70
        )
