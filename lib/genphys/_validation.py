"""Argument checks shared by the public API.

Every failure raises with a message of the form
``"<name> must be <expectation>. Got <what was given> instead."`` so that the
reader knows which argument is wrong, what was expected and what arrived.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "check_binary",
    "check_finite",
    "check_float_dtype",
    "check_generator",
    "check_interval",
    "check_points",
    "check_positive_float",
    "check_positive_int",
    "check_probability",
    "check_same_placement",
    "check_seed",
    "describe",
    "first_parameter",
    "float_dtype_of",
]


def describe(value: object) -> str:
    """Short, human-readable description of ``value`` for error messages."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}, dtype {value.dtype}, device {value.device}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}, dtype {value.dtype}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} (type {type(value).__name__})"


def check_positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}. Got {describe(value)} instead.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}. Got {value} instead.")
    return int(value)


def check_positive_float(name: str, value: object, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float, or raise if it is not a finite positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a finite positive number. Got {describe(value)} instead.")
    value = float(value)
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}. Got {value} instead.")
    return value


def check_float_dtype(name: str, value: object) -> torch.dtype:
    """Return ``value`` if it is a floating ``torch.dtype`` (e.g. ``torch.float64``), else raise."""
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise TypeError(f"{name} must be a floating torch.dtype. Got {describe(value)} instead.")
    return value


def float_dtype_of(value: object) -> torch.dtype | None:
    """The dtype of a floating tensor, else ``None`` (so :func:`as_tensor` converts to float64)."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.dtype
    return None


def check_probability(name: str, value: object) -> float:
    """Return ``value`` as a float in [0, 1], or raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number in [0, 1]. Got {describe(value)} instead.")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1]. Got {value} instead.")
    return value


def check_finite(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Raise if ``tensor`` holds NaN or infinity; say how many and where the first is."""
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        bad = (~torch.isfinite(tensor)).nonzero()
        first = tuple(bad[0].tolist())
        raise ValueError(
            f"{name} must contain only finite values. Got {bad.shape[0]} NaN or infinite "
            f"entries (the first at index {first}) instead."
        )
    return tensor


def check_binary(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Raise unless every entry of ``tensor`` is 0 or 1."""
    bad = (tensor != 0) & (tensor != 1)
    if bool(bad.any()):
        idx = tuple(bad.nonzero()[0].tolist())
        raise ValueError(
            f"{name} must be binary (every entry 0 or 1). Got the value "
            f"{tensor[idx].item()!r} at index {idx} instead."
        )
    return tensor


def as_tensor(
    name: str,
    value: object,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    finite: bool = True,
    allow_empty: bool = False,
) -> torch.Tensor:
    """Convert ``value`` to a floating tensor and check its shape.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    value : array_like
        A tensor, NumPy array or nested sequence.
    ndim : int or sequence of int, optional
        Allowed numbers of dimensions.
    shape : sequence of (int or None), optional
        Expected shape; ``None`` entries match any size.
    dtype : torch.dtype, optional
        Required dtype. A tensor of another floating dtype raises (no silent cast);
        NumPy arrays and sequences are converted to it. Default ``torch.float64``.
    device : torch.device or str, optional
        Required device. A tensor on another device raises.
    finite : bool
        Reject NaN and infinity.
    allow_empty : bool
        Accept tensors with zero elements.
    """
    target = dtype if dtype is not None else torch.float64
    if isinstance(value, torch.Tensor):
        tensor = value
        if tensor.is_floating_point():
            if dtype is not None and tensor.dtype != dtype:
                raise TypeError(
                    f"{name} must have dtype {dtype} to match the model. "
                    f"Got dtype {tensor.dtype} instead."
                )
        elif tensor.dtype == torch.bool or not tensor.is_complex():
            tensor = tensor.to(target)
        else:
            raise TypeError(f"{name} must be a real tensor. Got {describe(value)} instead.")
        if device is not None and tensor.device != torch.device(device):
            raise ValueError(
                f"{name} must be on device {torch.device(device)} to match the model. "
                f"Got device {tensor.device} instead."
            )
    else:
        try:
            array = np.asarray(value)
        except Exception as exc:  # pragma: no cover - numpy raises many kinds
            raise TypeError(f"{name} must be array-like. Got {describe(value)} instead.") from exc
        if array.dtype == object or not (
            np.issubdtype(array.dtype, np.number) or array.dtype == bool
        ):
            raise TypeError(f"{name} must be a numeric array. Got {describe(value)} instead.")
        tensor = torch.as_tensor(array.astype(np.float64), dtype=target, device=device)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if tensor.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(
                f"{name} must have {want} dimensions. Got shape {tuple(tensor.shape)} instead."
            )
    if shape is not None:
        ok = len(shape) == tensor.ndim and all(
            s is None or s == t for s, t in zip(shape, tensor.shape, strict=False)
        )
        if not ok:
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise ValueError(
                f"{name} must have shape {want}. Got shape {tuple(tensor.shape)} instead."
            )
    if not allow_empty and tensor.numel() == 0:
        raise ValueError(f"{name} must not be empty. Got shape {tuple(tensor.shape)} instead.")
    if finite:
        check_finite(name, tensor)
    return tensor


def check_same_placement(reference_name: str, reference: torch.Tensor, **others: torch.Tensor):
    """Raise unless every tensor in ``others`` has the dtype and device of ``reference``."""
    for name, tensor in others.items():
        if tensor.dtype != reference.dtype:
            raise TypeError(
                f"{name} must have the dtype of {reference_name} ({reference.dtype}). "
                f"Got dtype {tensor.dtype} instead."
            )
        if tensor.device != reference.device:
            raise ValueError(
                f"{name} must be on the device of {reference_name} ({reference.device}). "
                f"Got device {tensor.device} instead."
            )


def check_generator(generator: object, device: torch.device, owner: str = "the state"):
    """Raise unless ``generator`` is a ``torch.Generator`` on the device type of ``owner``."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be a torch.Generator (seed it with manual_seed). "
            f"Got {describe(generator)} instead."
        )
    if generator.device.type != torch.device(device).type:
        raise ValueError(
            f"generator must live on the device of {owner} ({device}). "
            f"Got a generator on {generator.device} instead."
        )
    return generator


def first_parameter(name: str, module: object) -> torch.Tensor:
    """The first parameter of ``module`` (its dtype and device are the model's), or raise.

    A module without parameters (``nn.Identity()``) has nothing to train nor a dtype to
    follow, so it is refused here rather than with a bare ``StopIteration``.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{name} must be an nn.Module. Got {describe(module)} instead.")
    for parameter in module.parameters():
        return parameter
    raise ValueError(
        f"{name} must have at least one parameter (it sets the dtype and device and is what "
        f"training updates). Got {type(module).__name__} with no parameters instead."
    )


def check_points(
    name: str,
    value: object,
    *,
    width: int,
    dtype: torch.dtype,
    device: torch.device | str | None = None,
    owner: str = "the model",
) -> torch.Tensor:
    """Return ``value`` as a tensor of shape (B, width) with ``dtype``, or raise.

    The trailing dimension is checked, never broadcast: a density of dimension ``width``
    evaluated at points of another width would silently return a wrong number. A floating
    tensor of another dtype raises (no silent cast).
    """
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != dtype:
        raise TypeError(
            f"{name} must have dtype {dtype} to match {owner}. Got dtype {value.dtype} instead."
        )
    tensor = as_tensor(name, value, ndim=2, dtype=dtype, device=device)
    if tensor.shape[1] != width:
        raise ValueError(
            f"{name} must have shape (B, {width}) to match {owner} of dimension {width}. "
            f"Got shape {tuple(tensor.shape)} instead."
        )
    return tensor


#: The largest seed a ``torch.Generator`` accepts (an unsigned 64-bit integer).
MAX_SEED = 2**64 - 1


def check_seed(value: object, name: str = "seed") -> int:
    """Return ``value`` as an int in ``[0, 2**64 - 1]`` (what ``torch.Generator`` takes), or raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be an integer in [0, 2**64 - 1]. Got {describe(value)} instead."
        )
    if not 0 <= int(value) <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in [0, 2**64 - 1]. Got {value} instead.")
    return int(value)


def check_interval(low: object, high: object, *, names: tuple[str, str] = ("low", "high")):
    """Return ``(low, high)`` as floats if both are finite numbers with ``low < high``, else raise."""
    values = []
    for name, value in zip(names, (low, high), strict=True):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a finite number. Got {describe(value)} instead.")
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} must be a finite number. Got {value} instead.")
        values.append(float(value))
    if not values[0] < values[1]:
        raise ValueError(
            f"{names[0]} must be smaller than {names[1]}. Got {names[0]}={values[0]}, "
            f"{names[1]}={values[1]} instead."
        )
    return values[0], values[1]
