"""The one training loop every trainer of the library uses: history, progress bar, divergence stop.

A trainer (RBM, autoencoder, VAE, energy model, diffusion model, GAN) differs from the
others only in what one update does. It writes that as a *step*, a function of one
mini-batch that updates the parameters and returns the numbers to record, and hands it
to :func:`fit`, which owns what every trainer must do the same way:

* one :class:`History` of per-epoch records (mean of each step output over the epoch's
  mini-batches that returned it, weighted by their sizes; wall time; what the monitor
  measured);
* one ``tqdm`` progress bar over epochs with the latest record as its postfix;
* one divergence stop: a non-finite step output, parameter or monitored value raises
  :class:`TrainingDivergedError` naming the epoch, the mini-batch and the quantity, and
  the parameters are restored to those at the start of that epoch (the last finite
  ones), so no work is silently lost;
* one place for the per-epoch monitor (a function of the epoch returning numbers).

Seeding follows :mod:`genphys.seeding`: the trainer makes its generator once and
:func:`minibatches` shuffles with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from ._validation import check_positive_int, describe

__all__ = ["History", "TrainingDivergedError", "fit", "minibatches"]


class TrainingDivergedError(FloatingPointError):
    """Training produced NaN or infinity; the model keeps its last finite parameters.

    Attributes
    ----------
    epoch : int
        The epoch (1-based) in which the non-finite value appeared.
    quantity : str
        What became non-finite (a step output such as ``"loss"``, a parameter name, or a
        monitored quantity).
    history : History or object
        The records of the epochs completed before.
    step : int or None
        The mini-batch (0-based) within the epoch, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        epoch: int,
        quantity: str,
        history: object,
        step: int | None = None,
    ):
        super().__init__(message)
        self.epoch = epoch
        self.quantity = quantity
        self.history = history
        self.step = step


@dataclass
class History:
    """Per-epoch records of a training run: one mapping of name to float per epoch.

    Every record has ``epoch`` (1-based) and ``seconds`` (wall time of the updates,
    monitoring excluded); the rest are what the step returned (epoch means) and what the
    monitor measured. ``history["loss"]`` is one column as a float array, with ``nan``
    in epochs where the quantity was not recorded.

    Attributes
    ----------
    records : list of dict
    extras : dict
        Anything a trainer keeps besides the numbers (e.g. persistent chains).
    """

    records: list[dict[str, float]] = field(default_factory=list)
    extras: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def names(self) -> list[str]:
        """Every recorded quantity, in order of first appearance."""
        seen: dict[str, None] = {}
        for record in self.records:
            seen.update(dict.fromkeys(record))
        return list(seen)

    def append(self, record: Mapping[str, float]) -> None:
        """Add one epoch's record."""
        self.records.append({k: float(v) for k, v in record.items()})

    def column(self, name: str) -> np.ndarray:
        """One quantity over the epochs, shape (n_epochs,), ``nan`` where not recorded."""
        if name not in self.names:
            known = ", ".join(self.names) or "nothing (no epoch recorded)"
            raise KeyError(f"name must be one of {known}. Got {name!r} instead.")
        return np.array([r.get(name, np.nan) for r in self.records], dtype=np.float64)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.column(name)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def as_dict(self) -> dict[str, np.ndarray]:
        """Every column, keyed by name."""
        return {name: self.column(name) for name in self.names}


def minibatches(
    data: torch.Tensor | tuple[torch.Tensor, ...],
    batch_size: int,
    *,
    generator: torch.Generator,
) -> Iterator[torch.Tensor | tuple[torch.Tensor, ...]]:
    """Shuffle ``data`` along its first axis with ``generator`` and yield mini-batches.

    Parameters
    ----------
    data : Tensor of shape (n, ...) or tuple of Tensors of shape (n, ...)
        A tuple is shuffled with one permutation (e.g. inputs and labels).
    batch_size : int
        The last mini-batch holds the remainder (it is not dropped).
    generator : torch.Generator
        On the data's device.

    Yields
    ------
    Tensor of shape (B, ...) or tuple of them
    """
    batch_size = check_positive_int("batch_size", batch_size)
    tensors = data if isinstance(data, tuple) else (data,)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise TypeError(
            f"data must be a Tensor or a tuple of Tensors. Got {describe(data)} instead."
        )
    if any(t.dim() == 0 for t in tensors):
        raise ValueError(
            f"data must have a first (sample) dimension. Got {describe(data)} instead."
        )
    n = tensors[0].shape[0]
    if n == 0:
        raise ValueError(f"data must hold at least one sample. Got {describe(data)} instead.")
    if any(t.shape[0] != n for t in tensors):
        sizes = [t.shape[0] for t in tensors]
        raise ValueError(f"data must share its first dimension. Got sizes {sizes} instead.")
    order = torch.randperm(n, generator=generator, device=tensors[0].device)  # (n,)
    for first in range(0, n, batch_size):
        index = order[first : first + batch_size]
        batch = tuple(t[index] for t in tensors)
        yield batch if isinstance(data, tuple) else batch[0]


def _batch_size(batch: object) -> int:
    if isinstance(batch, torch.Tensor) and batch.dim() > 0:
        return batch.shape[0]
    if isinstance(batch, tuple | list) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0].shape[0] if batch[0].dim() > 0 else 1
    return 1


def _parameter_list(parameters: object) -> list[tuple[str, torch.Tensor]]:
    if isinstance(parameters, torch.nn.Module):
        named = list(parameters.named_parameters()) + [
            (name, b) for name, b in parameters.named_buffers() if b.is_floating_point()
        ]
    elif isinstance(parameters, Mapping):
        named = list(parameters.items())
    else:
        try:
            named = [(f"parameter {i}", p) for i, p in enumerate(parameters)]
        except TypeError:
            named = None
    if not named or not all(isinstance(p, torch.Tensor) for _, p in named):
        raise TypeError(
            "parameters must be an nn.Module, a mapping of names to Tensors or a list of "
            f"Tensors (at least one). Got {describe(parameters)} instead."
        )
    return named


def fit(
    step: Callable[[object], Mapping[str, float]],
    batches: Callable[[int], Iterable[object]],
    *,
    n_epochs: int,
    parameters: object,
    monitor: Callable[[int], Mapping[str, float]] | None = None,
    progress: bool = False,
    desc: str = "training",
    history: History | None = None,
    hint: str = "lower the learning rate or check the data",
) -> History:
    """Run ``step`` on every mini-batch of ``batches(epoch)`` for ``n_epochs`` epochs.

    After each epoch the record holds, for each name the step returned, its mean over
    the epoch's mini-batches that returned it, weighted by their sizes (a name reported on
    only some mini-batches is averaged over those alone), then what ``monitor(epoch)``
    returned. A non-finite step output, parameter or monitored value stops training with
    :class:`TrainingDivergedError`; the parameters are first restored to those at the
    start of the epoch.

    Parameters
    ----------
    step : callable, batch -> mapping of str to float
        Updates the parameters with one mini-batch and returns numbers to record
        (Python floats or 0-d tensors), e.g. ``{"loss": 0.7}``.
    batches : callable, epoch -> iterable
        The mini-batches of an epoch (1-based), e.g.
        ``lambda epoch: minibatches(x, 64, generator=g)``.
    n_epochs : int
    parameters : nn.Module, mapping of str to Tensor, or list of Tensor
        What the divergence stop checks and restores (a module's floating-point buffers
        are included).
    monitor : callable, epoch -> mapping of str to float, optional
        Measured after each epoch (its time is recorded as ``monitor_seconds``).
    progress : bool
        Show a ``tqdm`` progress bar over epochs.
    desc : str
        The bar's label and the name of the run in error messages.
    history : History, optional
        Continue this history (its epochs are counted on).
    hint : str
        What the error message advises after a divergence.

    Returns
    -------
    History

    Raises
    ------
    TrainingDivergedError
    """
    if not callable(step):
        raise TypeError(f"step must be callable (batch -> dict). Got {describe(step)} instead.")
    if not callable(batches):
        raise TypeError(
            f"batches must be callable (epoch -> iterable of batches). Got {describe(batches)} instead."
        )
    if monitor is not None and not callable(monitor):
        raise TypeError(f"monitor must be callable or None. Got {describe(monitor)} instead.")
    n_epochs = check_positive_int("n_epochs", n_epochs)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool. Got {describe(progress)} instead.")
    if history is None:
        history = History()
    elif not isinstance(history, History):
        raise TypeError(f"history must be a History or None. Got {describe(history)} instead.")
    named = _parameter_list(parameters)
    first_epoch = len(history) + 1

    if progress:  # tqdm.auto picks the notebook widget where it is available
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    bar = tqdm(
        range(first_epoch, first_epoch + n_epochs), disable=not progress, desc=desc, unit="epoch"
    )

    def stop(epoch: int, batch: int | None, quantity: str, value: float, saved) -> None:
        bar.close()
        with torch.no_grad():
            for (_, p), s in zip(named, saved, strict=True):
                p.copy_(s)
        where = f"epoch {epoch}" + ("" if batch is None else f", mini-batch {batch}")
        raise TrainingDivergedError(
            f"{desc} diverged at {where}: {quantity} is {value}. The model keeps the "
            f"parameters it had at the start of epoch {epoch}; {hint}.",
            epoch=epoch,
            quantity=quantity,
            history=history,
            step=batch,
        )

    try:
        for epoch in bar:
            saved = [p.detach().clone() for _, p in named]
            sums: dict[str, float] = {}
            weights: dict[str, int] = {}  # per name: only the mini-batches that reported it
            began = time.perf_counter()
            for i, batch in enumerate(batches(epoch)):
                out = step(batch)
                if not isinstance(out, Mapping):
                    raise TypeError(
                        f"step must return a mapping of names to numbers. Got {describe(out)} instead."
                    )
                size = _batch_size(batch)
                for name, value in out.items():
                    value = float(value.detach() if isinstance(value, torch.Tensor) else value)
                    if not math.isfinite(value):
                        stop(epoch, i, name, value, saved)
                    sums[name] = sums.get(name, 0.0) + size * value
                    weights[name] = weights.get(name, 0) + size
            seconds = time.perf_counter() - began
            for name, p in named:
                if not bool(torch.isfinite(p).all()):
                    stop(epoch, None, name, math.nan, saved)
            record = {"epoch": float(epoch), "seconds": seconds}
            record.update({k: v / weights[k] for k, v in sums.items()})
            if monitor is not None:
                began = time.perf_counter()
                measured = monitor(epoch)
                for name, value in measured.items():
                    if value is None:
                        continue
                    value = float(value.detach() if isinstance(value, torch.Tensor) else value)
                    if not math.isfinite(value):
                        stop(epoch, None, name, value, saved)
                    record[name] = value
                record["monitor_seconds"] = time.perf_counter() - began
            history.append(record)
            bar.set_postfix(
                {k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")},
                refresh=False,
            )
    finally:
        bar.close()
    return history
