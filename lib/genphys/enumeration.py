"""Enumeration of binary states and numerically stable exact sums over them.

Explained in {ref}`sec-partition-function`. Exact sums over :math:`2^n` states
are done chunk by chunk, so memory stays bounded by ``chunk_size * n`` numbers
however large :math:`2^n` is, and they are accumulated in log space with a
running maximum (streaming log-sum-exp), so no term overflows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from ._validation import check_positive_int

__all__ = [
    "CHUNK_ELEMENTS",
    "MAX_ENUMERATION_BITS",
    "StreamingLogSumExp",
    "binary_states",
    "chunked_logsumexp",
    "code_ranges",
    "iter_binary_states",
    "logsumexp_over_states",
]

#: Largest layer that exact enumeration accepts (2**32 states).
MAX_ENUMERATION_BITS = 32

#: Numbers per intermediate tensor of one chunk of an exact sum (2**21 float64 = 16 MiB):
#: the exact routines size their chunks by it, so their memory does not grow with the
#: number of states, rows or grid cells.
CHUNK_ELEMENTS = 2**21


def binary_states(
    n: int,
    *,
    start: int = 0,
    stop: int | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """All binary vectors of length ``n`` with integer codes in ``[start, stop)``.

    State number ``k`` has bit ``i`` equal to :math:`\\lfloor k / 2^i \\rfloor \\bmod 2`,
    so ``binary_states(n)`` lists all :math:`2^n` states, unit 0 flipping fastest.

    Parameters
    ----------
    n : int
        Number of binary units, ``0 <= n <= MAX_ENUMERATION_BITS``.
    start, stop : int
        Range of state codes; ``stop`` defaults to ``2**n``.

    Returns
    -------
    states : Tensor of shape (stop - start, n)
    """
    n = check_positive_int("n", n, minimum=0)
    if n > MAX_ENUMERATION_BITS:
        raise ValueError(
            f"n must be at most {MAX_ENUMERATION_BITS} to enumerate 2**n states. Got {n} instead."
        )
    stop = 2**n if stop is None else stop
    if not 0 <= start <= stop <= 2**n:
        raise ValueError(
            f"start and stop must satisfy 0 <= start <= stop <= 2**n = {2**n}. "
            f"Got start={start}, stop={stop} instead."
        )
    codes = torch.arange(start, stop, device=device, dtype=torch.int64)  # (S,)
    bits = torch.arange(n, device=device, dtype=torch.int64)  # (n,)
    return ((codes[:, None] >> bits) & 1).to(dtype)  # (S, n)


def iter_binary_states(
    n: int,
    *,
    chunk_size: int = 2**16,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Iterator[torch.Tensor]:
    """Yield all :math:`2^n` binary states in chunks of at most ``chunk_size`` rows."""
    chunk_size = check_positive_int("chunk_size", chunk_size)
    total = 2 ** check_positive_int("n", n, minimum=0)
    for start in range(0, total, chunk_size):
        yield binary_states(
            n, start=start, stop=min(start + chunk_size, total), dtype=dtype, device=device
        )


class StreamingLogSumExp:
    """Accumulate :math:`\\log \\sum_k e^{s_k}` (and optionally weighted sums) chunk by chunk.

    After feeding all chunks, ``value`` is the log-sum-exp of every score seen and
    ``expectation(i)`` is :math:`\\sum_k e^{s_k} v_k / \\sum_k e^{s_k}` for the
    ``i``-th accumulated quantity ``v``. The running maximum keeps every
    exponential in :math:`(0, 1]`.
    """

    def __init__(self) -> None:
        self.max: torch.Tensor | None = None
        self.total: torch.Tensor | None = None  # sum of exp(s - max)
        self.weighted: list[torch.Tensor] = []  # sums of exp(s - max) * v

    def add(self, scores: torch.Tensor, *values: torch.Tensor) -> None:
        """Add a chunk of log-weights ``scores`` (S,) and per-state quantities (S, ...)."""
        chunk_max = scores.max()
        if self.max is None:
            self.max = chunk_max
            self.total = torch.zeros((), dtype=scores.dtype, device=scores.device)
            self.weighted = [
                torch.zeros(v.shape[1:], dtype=v.dtype, device=v.device) for v in values
            ]
        elif chunk_max > self.max:
            rescale = torch.exp(self.max - chunk_max)
            self.total = self.total * rescale
            self.weighted = [w * rescale for w in self.weighted]
            self.max = chunk_max
        weights = torch.exp(scores - self.max)  # (S,)
        self.total = self.total + weights.sum()
        for i, v in enumerate(values):
            self.weighted[i] = self.weighted[i] + torch.tensordot(weights, v, dims=1)

    @property
    def value(self) -> torch.Tensor:
        """The log-sum-exp of all scores added so far."""
        if self.max is None:
            raise ValueError("StreamingLogSumExp.value needs at least one chunk. Got none instead.")
        return self.max + torch.log(self.total)

    def expectation(self, index: int = 0) -> torch.Tensor:
        """Weighted mean of the ``index``-th accumulated quantity."""
        return self.weighted[index] / self.total


def logsumexp_over_states(
    n: int,
    log_weight: Callable[[torch.Tensor], torch.Tensor],
    *,
    chunk_size: int = 2**16,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """:math:`\\log \\sum_{s \\in \\{0,1\\}^n} e^{\\ell(s)}` by chunked streaming log-sum-exp.

    Parameters
    ----------
    n : int
        Number of binary units.
    log_weight : callable
        Maps states of shape (S, n) to log-weights of shape (S,).
    chunk_size : int
        Rows per chunk; memory is proportional to ``chunk_size * n``.
    """
    acc = StreamingLogSumExp()
    for states in iter_binary_states(n, chunk_size=chunk_size, dtype=dtype, device=device):
        acc.add(log_weight(states))
    return acc.value


class _ChunkedLogSumExp(torch.autograd.Function):
    """Forward: streaming log-sum-exp without a graph. Backward: the gradient as an expectation.

    :math:`\nabla_\theta \\log \\sum_s e^{\\ell_\theta(s)} = \\sum_s p_s \nabla_\theta \\ell_\theta(s)`
    with :math:`p_s = e^{\\ell_\theta(s) - \\log Z}`; each chunk's graph is built, used and freed
    in turn, so memory is that of one chunk.
    """

    @staticmethod
    def forward(ctx, log_weight, chunks, *parameters):
        acc = StreamingLogSumExp()
        for chunk in chunks:
            acc.add(log_weight(chunk).reshape(-1))
        value = acc.value
        ctx.log_weight, ctx.chunks = log_weight, chunks
        ctx.save_for_backward(value, *parameters)
        return value

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        value, *parameters = ctx.saved_tensors
        total = [torch.zeros_like(p) for p in parameters]
        wanted = [p for p in parameters if p.requires_grad]
        for chunk in ctx.chunks:
            with torch.enable_grad():
                scores = ctx.log_weight(chunk).reshape(-1)  # (S,), with its own small graph
                weights = torch.exp(scores.detach() - value.detach())  # p_s
                grads = torch.autograd.grad((weights * scores).sum(), wanted, allow_unused=True)
            it = iter(grads)
            for i, p in enumerate(parameters):
                if p.requires_grad:
                    g = next(it)
                    if g is not None:
                        total[i] += g
        return (None, None, *(grad_output * g for g in total))


def chunked_logsumexp(
    log_weight: Callable[[object], torch.Tensor],
    chunks: Sequence[object],
    parameters: Sequence[torch.Tensor] = (),
) -> torch.Tensor:
    """:math:`\\log \\sum_{\text{chunks}} \\sum_s e^{\\ell(s)}`, differentiable, with one chunk in memory.

    Without gradients this is a streaming log-sum-exp. With gradients (some of
    ``parameters`` require them and grad mode is on), no chunk's graph is kept: the
    backward pass evaluates each chunk again and accumulates
    :math:`\\sum_s p_s \nabla_\theta \\ell(s)`, the gradient of a log-sum-exp as an expectation
    (one more pass over the chunks; not twice differentiable).

    Parameters
    ----------
    log_weight : callable, chunk -> Tensor of shape (S,)
        The log-weights of one chunk; it reads ``parameters`` (e.g. a module's) itself.
    chunks : sequence
        What ``log_weight`` takes, e.g. ``(start, stop)`` ranges; traversed twice with
        gradients.
    parameters : sequence of Tensor
        Every tensor that ``log_weight`` depends on and whose gradient is wanted.

    Returns
    -------
    Tensor of shape ()
    """
    chunks = list(chunks)
    if not chunks:
        raise ValueError("chunks must hold at least one chunk. Got none instead.")
    parameters = list(parameters)
    if torch.is_grad_enabled() and any(p.requires_grad for p in parameters):
        return _ChunkedLogSumExp.apply(log_weight, chunks, *parameters)
    with torch.no_grad():
        acc = StreamingLogSumExp()
        for chunk in chunks:
            acc.add(log_weight(chunk).reshape(-1))
        return acc.value


def code_ranges(n_states: int, per_chunk: int) -> list[tuple[int, int]]:
    """``[(0, per_chunk), (per_chunk, 2 per_chunk), ...]`` covering ``range(n_states)``."""
    per_chunk = max(1, int(per_chunk))
    return [(s, min(s + per_chunk, n_states)) for s in range(0, n_states, per_chunk)]
