"""How many CPU threads torch uses: decided once, when ``genphys`` is imported.

PyTorch starts one intra-op thread per core it can see. Where the CPU is shared or capped (a
Binder pod sees every core of its host but is given about one core of quota, a laptop runs
other work, the test command runs two pytest workers on two cores) those threads wait on each
other, and the small tensor operations of this book slow down by 6 to 25 times. So ``import
genphys`` calls :func:`configure_threads`, which sets ``torch.set_num_threads`` to
:func:`choose_num_threads`, the first of:

1. the environment variable ``GENPHYS_NUM_THREADS``, where it is set: a positive integer, the
   reader's own choice for every chapter, exercise page, project and check; or ``auto``, every
   CPU the process may use, ``cpus`` below (for a machine of one's own, idle otherwise);
2. otherwise ``min(cpus, DEFAULT_MAX_THREADS)``, where ``cpus`` is what the process may use
   (:func:`available_cpus`): the cgroup CPU quota rounded down (cgroup v2 ``cpu.max``, v1
   ``cpu.cfs_quota_us / cpu.cfs_period_us``; at least 1), or the affinity mask
   (``os.sched_getaffinity``, as set by ``taskset``), whichever is smaller.

``DEFAULT_MAX_THREADS`` is 1. Measured on the book's 2-core reference machine while it was
shared (the README's "Performance budget" has the table): chapter 11 (small networks,
minibatches of 128) took 17 s with one thread, 366 s with two while other work ran, 91 s with
one thread and more than 720 s with two while a third process kept a core busy; the
large-batch kernels of chapter 7 (free energies of all 65 536 states of a 4 x 4 lattice) were
4 times slower with two threads on the loaded machine, and can at best be twice as fast on an
idle one. Every page is sized for one core, so a second thread wins little where the machine
is idle and loses much where it is not. Choose otherwise with ``GENPHYS_NUM_THREADS=4`` or
``GENPHYS_NUM_THREADS=auto`` (or ``torch.set_num_threads(4)`` after ``import genphys``).

Examples
--------
>>> import genphys, torch
>>> from genphys.threads import choose_num_threads
>>> choose_num_threads(environ={"GENPHYS_NUM_THREADS": "3"})
3
>>> torch.get_num_threads() == choose_num_threads()
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import torch

__all__ = [
    "DEFAULT_MAX_THREADS",
    "ENV_VAR",
    "available_cpus",
    "cgroup_cpu_limit",
    "choose_num_threads",
    "configure_threads",
]

ENV_VAR = "GENPHYS_NUM_THREADS"
DEFAULT_MAX_THREADS = 1
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_cgroups(self_cgroup: str | None) -> tuple[str | None, str | None]:
    """The process's cgroup paths ``(v2, v1 cpu controller)`` from ``/proc/self/cgroup`` text.

    Lines read ``0::/path`` (v2) or ``N:cpu,cpuacct:/path`` (v1).
    """
    v2 = v1 = None
    for line in (self_cgroup or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _candidates(base: Path, own: str | None) -> list[Path]:
    """``base`` and, where the process's cgroup is known, that cgroup and its ancestors."""
    folders = [base]
    if own and own.strip("/"):
        parts = Path(own.strip("/")).parts
        folders += [base.joinpath(*parts[:k]) for k in range(1, len(parts) + 1)]
    return folders


def _v2_limit(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")  # "max 100000" or "<quota> <period>", in microseconds
    if not text:
        return None
    fields = text.split()
    try:
        quota, period = fields[0], float(fields[1]) if len(fields) > 1 else 100_000.0
        return None if quota == "max" or period <= 0 else float(quota) / period
    except ValueError:
        return None


def _v1_limit(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    try:
        q, p = float(quota), float(period)  # quota -1: no limit
    except (TypeError, ValueError):
        return None
    return q / p if q > 0 and p > 0 else None


def cgroup_cpu_limit(
    root: str | os.PathLike[str] = CGROUP_ROOT, *, self_cgroup: str | None = None
) -> float | None:
    """The CPU quota of this process in cores, ``quota / period``; ``None`` where there is none.

    Reads cgroup v2 ``<root>/cpu.max`` and cgroup v1 ``<root>/cpu/cpu.cfs_quota_us`` and
    ``cpu.cfs_period_us`` (also under ``cpu,cpuacct``), in the root of the hierarchy and in
    the process's own cgroup and its ancestors; the smallest quota found wins, since each
    level caps the ones below.

    Parameters
    ----------
    root : path-like
        Where the cgroup file systems are mounted (``/sys/fs/cgroup``; v2 may also be
        mounted at ``<root>/unified``). Tests pass a folder of fake files.
    self_cgroup : str, optional
        The text of ``/proc/self/cgroup``; read from there when omitted (and when ``root``
        is the real ``/sys/fs/cgroup``).

    Returns
    -------
    float or None
        Cores allowed, e.g. ``0.5`` for ``cpu.max = "50000 100000"``; ``None`` when no quota
        is set or nothing can be read (macOS, Windows).
    """
    root = Path(root)
    if self_cgroup is None and root == CGROUP_ROOT:
        self_cgroup = _read(Path("/proc/self/cgroup"))
    own_v2, own_v1 = _own_cgroups(self_cgroup)
    limits = []
    for base in (root, root / "unified"):
        limits += [_v2_limit(folder) for folder in _candidates(base, own_v2)]
    for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        limits += [_v1_limit(folder) for folder in _candidates(root / name, own_v1)]
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def available_cpus(
    root: str | os.PathLike[str] = CGROUP_ROOT,
    *,
    affinity: set[int] | None = None,
    self_cgroup: str | None = None,
) -> int:
    """Cores this process may use: ``min(len(affinity), max(1, floor(quota)))``.

    Parameters
    ----------
    root, self_cgroup
        As in :func:`cgroup_cpu_limit`.
    affinity : set of int, optional
        The CPUs the process may run on; ``os.sched_getaffinity(0)`` when omitted
        (``os.cpu_count()`` where the platform has no affinity mask).

    Returns
    -------
    int >= 1
        A quota of 1.5 cores gives 1: two busy threads under it are throttled for part of
        every period.
    """
    if affinity is None:
        try:
            affinity = os.sched_getaffinity(0)
        except AttributeError:  # macOS, Windows
            affinity = set(range(os.cpu_count() or 1))
    cpus = max(1, len(affinity))
    quota = cgroup_cpu_limit(root, self_cgroup=self_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return cpus


def choose_num_threads(
    *,
    environ: Mapping[str, str] | None = None,
    root: str | os.PathLike[str] = CGROUP_ROOT,
    affinity: set[int] | None = None,
    self_cgroup: str | None = None,
    max_threads: int = DEFAULT_MAX_THREADS,
) -> int:
    """The number of intra-op threads for torch: ``$GENPHYS_NUM_THREADS``, else ``min(cpus, max)``.

    ``GENPHYS_NUM_THREADS=auto`` gives ``cpus``, every CPU the quota and the affinity mask
    allow (:func:`available_cpus`); ``cpus`` also caps the default.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read ``GENPHYS_NUM_THREADS`` from (``os.environ``).
    root, affinity, self_cgroup
        As in :func:`available_cpus`.
    max_threads : int >= 1
        The default's ceiling, :data:`DEFAULT_MAX_THREADS` (the module docstring says why).

    Returns
    -------
    int >= 1

    Raises
    ------
    ValueError
        When ``GENPHYS_NUM_THREADS`` is set but is neither a positive integer nor ``auto``, or when
        ``max_threads`` is not a positive integer.
    """
    if isinstance(max_threads, bool) or not isinstance(max_threads, int) or max_threads < 1:
        raise ValueError(f"max_threads must be a positive integer. Got {max_threads!r} instead.")
    environ = os.environ if environ is None else environ
    override = environ.get(ENV_VAR, "").strip()
    cpus = available_cpus(root, affinity=affinity, self_cgroup=self_cgroup)
    if override.lower() == "auto":
        return cpus
    if override:
        try:
            n = int(override)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(
                f"{ENV_VAR} must be a positive integer or 'auto'. Got {override!r} instead."
            )
        return n
    return min(cpus, max_threads)


def configure_threads(**kwargs) -> int:
    """Set ``torch.set_num_threads(choose_num_threads(**kwargs))``; return that number.

    Called once by ``import genphys``; the keyword arguments are those of
    :func:`choose_num_threads`.
    """
    n = choose_num_threads(**kwargs)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
