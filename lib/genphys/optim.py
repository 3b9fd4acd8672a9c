"""The updates of ``torch.optim.SGD`` and ``torch.optim.Adam``, without the ``Optimizer`` class.

:class:`SGD` and :class:`Adam` keep the interface the trainers use (``param_groups`` with a
mutable ``"lr"`` and ``"momentum"``, ``state``, :meth:`step`, :meth:`zero_grad`) and
compute every update with torch's own update functions, ``torch.optim.sgd.sgd`` and
``torch.optim.adam.adam``; ``tests/test_optim.py`` checks that the parameters match those
of ``torch.optim`` step for step. They exist for speed only: constructing the first
``torch.optim.Optimizer`` of a process imports ``torch._dynamo`` (2-4 s on our machines,
more than a whole small chapter), and ``Optimizer.step`` adds about 100 µs of bookkeeping
per call, more than an RBM update on a mini-batch of 20 digits. Explained in
{ref}`sec-training-rbms`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from ._validation import check_positive_float, check_probability, describe

__all__ = ["SGD", "Adam"]


def _groups(
    params: object,
    defaults: dict[str, object],
    check: Callable[[dict[str, object], str], dict[str, object]],
) -> list[dict[str, object]]:
    """Parameter groups with the defaults filled in; every group's settings go through ``check``."""
    items = list(params) if isinstance(params, Iterable) else None
    if not items:
        raise TypeError(
            f"params must be a non-empty list of Tensors or of dicts with 'params'. "
            f"Got {describe(params)} instead."
        )
    groups = items if isinstance(items[0], dict) else [{"params": items}]
    out = []
    for i, group in enumerate(groups):
        where = f"params[{i}]"
        if not isinstance(group, dict):
            raise TypeError(
                f"{where} must be a dict like the other parameter groups. "
                f"Got {describe(group)} instead."
            )
        if "params" not in group:
            raise ValueError(
                f"{where} must have a 'params' entry (a list of Tensors). "
                f"Got a group with keys {sorted(group)} instead."
            )
        unknown = sorted(set(group) - set(defaults) - {"params"})
        if unknown:
            raise ValueError(
                f"{where} must set only {sorted(defaults)} besides 'params'. Got {unknown} instead."
            )
        raw = group["params"]
        tensors = [raw] if isinstance(raw, torch.Tensor) else list(raw)
        if not tensors or not all(isinstance(p, torch.Tensor) and p.is_leaf for p in tensors):
            raise TypeError(f"{where}['params'] must be leaf Tensors. Got {describe(raw)} instead.")
        settings = check({**defaults, **{k: v for k, v in group.items() if k != "params"}}, where)
        out.append({**settings, "params": tensors})
    return out


def _named(where: str, name: str) -> str:
    return f"{where}['{name}']" if where else name


def _check_sgd(settings: dict[str, object], where: str) -> dict[str, object]:
    """``lr > 0``, ``momentum`` in [0, 1), ``weight_decay >= 0``, named by group."""
    lr = check_positive_float(_named(where, "lr"), settings["lr"])
    momentum = check_probability(_named(where, "momentum"), settings["momentum"])
    if momentum >= 1.0:
        raise ValueError(f"{_named(where, 'momentum')} must be in [0, 1). Got {momentum} instead.")
    weight_decay = check_positive_float(
        _named(where, "weight_decay"), settings["weight_decay"], allow_zero=True
    )
    return {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}


def _check_adam(settings: dict[str, object], where: str) -> dict[str, object]:
    """``lr > 0``, ``betas`` two numbers in [0, 1), ``eps > 0``, named by group."""
    lr = check_positive_float(_named(where, "lr"), settings["lr"])
    betas = settings["betas"]
    name = _named(where, "betas")
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Iterable):
        raise TypeError(f"{name} must be a pair (beta1, beta2). Got {describe(betas)} instead.")
    betas = tuple(betas)
    if len(betas) != 2:
        raise ValueError(
            f"{name} must be a pair (beta1, beta2) of numbers in [0, 1). "
            f"Got {len(betas)} value(s) {betas} instead."
        )
    for i, beta in enumerate(betas):
        if check_probability(f"{name}[{i}]", beta) >= 1.0:
            raise ValueError(f"{name}[{i}] must be in [0, 1). Got {beta} instead.")
    eps = check_positive_float(_named(where, "eps"), settings["eps"])
    return {"lr": lr, "betas": (float(betas[0]), float(betas[1])), "eps": eps}


class _Optimizer:
    param_groups: list[dict[str, object]]
    state: dict[torch.Tensor, dict[str, object]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (``.grad = None``)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @staticmethod
    def _with_grad(group: dict[str, object]) -> list[torch.Tensor]:
        return [p for p in group["params"] if p.grad is not None]

    def step(self) -> None:
        """One update of every parameter that has a ``.grad``."""
        if torch.is_grad_enabled():  # the guard costs more than a small update: only if needed
            with torch.no_grad():
                self._update()
        else:
            self._update()

    def _update(self) -> None:
        raise NotImplementedError


class SGD(_Optimizer):
    """SGD with momentum and weight decay: :math:`u \\leftarrow \\mu u + (g + \\lambda \\theta)`, :math:`\\theta \\leftarrow \\theta - \\epsilon u`.

    The update of ``torch.optim.SGD(params, lr, momentum, weight_decay)`` (no dampening,
    no Nesterov), computed by ``torch.optim.sgd.sgd``.

    Parameters
    ----------
    params : list of Tensor, or list of dict
        Parameter groups as for ``torch.optim`` (a dict may override the defaults).
    lr : float
    momentum : float
        In [0, 1).
    weight_decay : float
    """

    def __init__(
        self, params: object, *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        defaults = _check_sgd({"lr": lr, "momentum": momentum, "weight_decay": weight_decay}, "")
        self.param_groups = _groups(params, defaults, _check_sgd)
        self.state = {}

    def _update(self) -> None:
        for group in self.param_groups:
            params = self._with_grad(group)
            buffers = [self.state.get(p, {}).get("momentum_buffer") for p in params]
            sgd(
                params,
                [p.grad for p in params],
                buffers,
                weight_decay=group["weight_decay"],
                momentum=group["momentum"],
                lr=group["lr"],
                dampening=0.0,
                nesterov=False,
                maximize=False,
                foreach=False,
            )
            for p, buffer in zip(params, buffers, strict=True):
                self.state.setdefault(p, {})["momentum_buffer"] = buffer


class Adam(_Optimizer):
    """Adam (Kingma and Ba 2015): bias-corrected moment estimates, step :math:`\\epsilon\\, \\hat m / (\\sqrt{\\hat v} + \\varepsilon)`.

    The update of ``torch.optim.Adam(params, lr, betas, eps)`` (no weight decay, no
    AMSGrad), computed by ``torch.optim.adam.adam``.

    Parameters
    ----------
    params : list of Tensor, or list of dict
    lr : float
    betas : tuple of float
    eps : float
    """

    def __init__(
        self,
        params: object,
        *,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        defaults = _check_adam({"lr": lr, "betas": betas, "eps": eps}, "")
        self.param_groups = _groups(params, defaults, _check_adam)
        self.state = {}

    def _update(self) -> None:
        for group in self.param_groups:
            params = self._with_grad(group)
            states = []
            for p in params:
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                states.append(state)
            beta1, beta2 = group["betas"]
            adam(
                params,
                [p.grad for p in params],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [],
                [s["step"] for s in states],
                foreach=False,
                amsgrad=False,
                beta1=beta1,
                beta2=beta2,
                lr=group["lr"],
                weight_decay=0.0,
                eps=group["eps"],
                maximize=False,
            )
