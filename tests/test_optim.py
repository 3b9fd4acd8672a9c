"""Tests for genphys.optim: the same parameters as torch.optim, step for step (the oracle)."""

from __future__ import annotations

import pytest
import torch

from genphys.optim import SGD, Adam

F64 = torch.float64


def _run(make, n_steps=7, change=None):
    """Minimise a fixed quadratic-plus-quartic loss; return the parameters after each step."""
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(4, 3, generator=g, dtype=F64), torch.randn(3, generator=g, dtype=F64)]
    target = [torch.randn(4, 3, generator=g, dtype=F64), torch.randn(3, generator=g, dtype=F64)]
    for p in params:
        p.requires_grad_(True)
    opt = make(params)
    trace = []
    for step in range(n_steps):
        if change is not None:
            change(opt, step)
        loss = sum(
            ((p - t) ** 2).sum() + ((p - t) ** 4).sum() for p, t in zip(params, target, strict=True)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        trace.append([p.detach().clone() for p in params])
    return trace


def _switch_momentum(opt, step):
    if step == 3:  # Hinton's momentum switch, through param_groups
        for group in opt.param_groups:
            group["momentum"] = 0.9


def _groups(params):
    return [{"params": [params[0]], "weight_decay": 0.3}, {"params": [params[1]]}]


@pytest.mark.parametrize(
    ("ours", "theirs", "change"),
    [
        (lambda p: SGD(p, lr=0.01), lambda p: torch.optim.SGD(p, lr=0.01), None),
        (
            lambda p: SGD(_groups(p), lr=0.01, momentum=0.5),
            lambda p: torch.optim.SGD(_groups(p), lr=0.01, momentum=0.5),
            _switch_momentum,
        ),
        (
            lambda p: SGD(p, lr=0.01, momentum=0.0),
            lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.0),
            _switch_momentum,  # from no momentum buffer to one
        ),
        (lambda p: Adam(p, lr=0.05), lambda p: torch.optim.Adam(p, lr=0.05), None),
        (
            lambda p: Adam(p, lr=0.05, betas=(0.8, 0.99), eps=1e-6),
            lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), eps=1e-6),
            lambda opt, step: opt.param_groups[0].update(lr=0.05 / (1 + step)),
        ),
    ],
)
def test_same_parameters_as_torch_optim(ours, theirs, change):
    for mine, reference in zip(_run(ours, change=change), _run(theirs, change=change), strict=True):
        for a, b in zip(mine, reference, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-15, atol=0)


def test_bad_input():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="momentum"):
        SGD(p, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="lr"):
        SGD(p, lr=-1.0)
    with pytest.raises(TypeError, match="params"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="betas"):
        Adam(p, lr=0.1, betas=(0.9, 1.0))


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: Adam(p, lr=0.1, betas=(0.9,)), ValueError, r"betas must be a pair.*Got 1"),
        (lambda p: Adam(p, lr=0.1, betas=0.9), TypeError, "betas must be a pair"),
        (lambda p: SGD([{"lr": 0.1}], lr=0.1), ValueError, r"params\[0\] must have a 'params'"),
        (lambda p: SGD([{"params": p, "lr": -1.0}], lr=0.1), ValueError, r"params\[0\]\['lr'\]"),
        (
            lambda p: Adam([{"params": p, "betas": (0.9, 1.5)}], lr=0.1),
            ValueError,
            r"params\[0\]\['betas'\]\[1\] must be a number in \[0, 1\]",
        ),
        (
            lambda p: SGD([{"params": p, "momentum": 1.0}], lr=0.1),
            ValueError,
            r"params\[0\]\['momentum'\] must be in \[0, 1\)",
        ),
        (lambda p: SGD([{"params": p, "Lr": 0.1}], lr=0.1), ValueError, r"Got \['Lr'\]"),
        (lambda p: SGD([{"params": p}, p[0]], lr=0.1), TypeError, r"params\[1\] must be a dict"),
    ],
)
def test_groups_are_validated_like_the_defaults(make, error, match):
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(error, match=match):
        make(p)
