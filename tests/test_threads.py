"""The number of CPU threads: the override, the cgroup quota (v1 and v2), the affinity mask.

The cgroup files are fakes written into a temporary folder passed as ``root``; the affinity
mask and the environment are passed as arguments, so no test depends on the machine it runs
on, except the last two, which check what ``import genphys`` does in a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genphys.threads import (
    DEFAULT_MAX_THREADS,
    ENV_VAR,
    available_cpus,
    cgroup_cpu_limit,
    choose_num_threads,
    configure_threads,
)

LIB = Path(__file__).resolve().parents[1] / "lib"
EIGHT = set(range(8))


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


# ------------------------------------------------------------------ the quota
def test_no_cgroup_files_means_no_quota(tmp_path):
    assert cgroup_cpu_limit(tmp_path, self_cgroup="") is None


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000", None), ("50000 100000", 0.5), ("150000 100000", 1.5), ("400000", 4.0)],
)
def test_cgroup_v2_cpu_max(tmp_path, cpu_max, expected):
    _write(tmp_path, "cpu.max", cpu_max)
    assert cgroup_cpu_limit(tmp_path, self_cgroup="0::/") == expected


@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [("-1", "100000", None), ("100000", "100000", 1.0), ("250000", "100000", 2.5)],
)
@pytest.mark.parametrize("controller", ["cpu", "cpu,cpuacct"])
def test_cgroup_v1_quota_and_period(tmp_path, controller, quota, period, expected):
    _write(tmp_path, f"{controller}/cpu.cfs_quota_us", quota)
    _write(tmp_path, f"{controller}/cpu.cfs_period_us", period)
    assert cgroup_cpu_limit(tmp_path, self_cgroup="") == expected


def test_the_own_cgroup_and_its_ancestors_are_read_and_the_smallest_quota_wins(tmp_path):
    # v2: the pod's folder caps at 2 cores, the container inside it at 1 core
    _write(tmp_path, "cpu.max", "max 100000")
    _write(tmp_path, "kubepods/pod1/cpu.max", "200000 100000")
    _write(tmp_path, "kubepods/pod1/box/cpu.max", "100000 100000")
    assert cgroup_cpu_limit(tmp_path, self_cgroup="0::/kubepods/pod1/box\n") == 1.0
    # v1, the process's cpu controller path from /proc/self/cgroup
    v1 = tmp_path / "v1"
    _write(v1, "cpu/docker/abc/cpu.cfs_quota_us", "50000")
    _write(v1, "cpu/docker/abc/cpu.cfs_period_us", "100000")
    text = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n"
    assert cgroup_cpu_limit(v1, self_cgroup=text) == 0.5


def test_unreadable_or_malformed_files_are_ignored(tmp_path):
    _write(tmp_path, "cpu.max", "garbage")
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "100000")  # no period file
    assert cgroup_cpu_limit(tmp_path, self_cgroup="") is None


# ------------------------------------------------------------- cores available
@pytest.mark.parametrize(
    ("cpu_max", "affinity", "expected"),
    [
        (None, EIGHT, 8),  # no quota: the affinity mask
        (None, {3}, 1),  # taskset -c 3
        ("100000 100000", EIGHT, 1),  # Binder: about one core of quota on a big host
        ("150000 100000", EIGHT, 1),  # 1.5 cores rounds down
        ("20000 100000", EIGHT, 1),  # a fifth of a core: still one thread
        ("400000 100000", {0, 1}, 2),  # the mask is smaller than the quota
    ],
)
def test_available_cpus_is_the_smaller_of_quota_and_mask(tmp_path, cpu_max, affinity, expected):
    if cpu_max is not None:
        _write(tmp_path, "cpu.max", cpu_max)
    assert available_cpus(tmp_path, affinity=affinity, self_cgroup="") == expected


# ----------------------------------------------------------------- the decision
def test_the_environment_overrides_quota_and_mask(tmp_path):
    _write(tmp_path, "cpu.max", "100000 100000")
    kwargs = {"root": tmp_path, "affinity": {0}, "self_cgroup": ""}
    assert choose_num_threads(environ={ENV_VAR: "4"}, **kwargs) == 4
    assert choose_num_threads(environ={ENV_VAR: " 2 "}, **kwargs) == 2
    assert choose_num_threads(environ={ENV_VAR: ""}, **kwargs) == 1  # empty: not set


@pytest.mark.parametrize(
    ("cpu_max", "affinity", "expected"),
    [(None, EIGHT, 8), ("200000 100000", EIGHT, 2), ("50000 100000", EIGHT, 1), (None, {2}, 1)],
)
def test_auto_takes_every_cpu_the_quota_and_mask_allow(tmp_path, cpu_max, affinity, expected):
    if cpu_max is not None:
        _write(tmp_path, "cpu.max", cpu_max)
    kwargs = {"root": tmp_path, "affinity": affinity, "self_cgroup": ""}
    assert choose_num_threads(environ={ENV_VAR: "auto"}, **kwargs) == expected
    assert choose_num_threads(environ={ENV_VAR: "AUTO"}, **kwargs) == expected


def test_without_override_the_default_is_capped(tmp_path):
    kwargs = {"environ": {}, "root": tmp_path, "self_cgroup": ""}
    assert choose_num_threads(affinity=EIGHT, **kwargs) == min(8, DEFAULT_MAX_THREADS)
    assert choose_num_threads(affinity=EIGHT, max_threads=4, **kwargs) == 4
    assert choose_num_threads(affinity={0, 1}, max_threads=4, **kwargs) == 2
    _write(tmp_path, "cpu.max", "100000 100000")
    assert choose_num_threads(affinity=EIGHT, max_threads=4, **kwargs) == 1


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_override_names_the_variable(value):
    with pytest.raises(ValueError, match=f"{ENV_VAR} must be a positive integer or 'auto'. Got"):
        choose_num_threads(environ={ENV_VAR: value})


@pytest.mark.parametrize("value", [0, 1.0, True])
def test_a_bad_max_threads_names_the_argument(value):
    with pytest.raises(ValueError, match="max_threads must be a positive integer"):
        choose_num_threads(environ={}, max_threads=value)


def test_configure_threads_sets_torch_and_returns_the_number():
    import torch

    before = torch.get_num_threads()
    try:
        assert configure_threads(environ={ENV_VAR: "3"}) == 3
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------ import genphys
def _threads_after_import(env: dict[str, str], *, affinity: set[int] | None = None) -> str:
    code = "import torch, genphys; print(torch.get_num_threads())"
    if affinity is not None:  # as under taskset: torch itself then sees that many cores
        code = f"import os; os.sched_setaffinity(0, {affinity!r}); " + code
    environ = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, "OMP_NUM_THREADS")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**environ, "PYTHONPATH": str(LIB), **env},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_genphys_sets_the_threads_from_the_environment():
    assert _threads_after_import({ENV_VAR: "3"}) == "3"
    assert _threads_after_import({}) == str(choose_num_threads(environ={}))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity mask here")
def test_import_genphys_follows_the_affinity_mask():
    assert _threads_after_import({}, affinity={min(os.sched_getaffinity(0))}) == "1"
