"""Tests for genphys._display: chapters show library source exactly as it is in lib/."""

from __future__ import annotations

import inspect
import textwrap

import pytest

import genphys
from genphys.rbm import BernoulliRBM, log_partition_exact


@pytest.mark.parametrize("obj", [log_partition_exact, BernoulliRBM.free_energy, BernoulliRBM])
def test_show_source_is_the_library_source_in_a_python_block(obj):
    shown = genphys.show_source(obj).data
    header, _, block = shown.partition("\n\n")
    assert header == "`genphys/rbm.py`"
    assert block.startswith("```python\n") and block.endswith("```")
    body = block.removeprefix("```python\n").removesuffix("```")
    # the file's own text, only dedented (methods are indented inside their class)
    assert body == textwrap.dedent(inspect.getsource(obj))
    assert body.startswith(("def ", "class ", "@"))


def test_methods_are_dedented():
    body = genphys.show_source(BernoulliRBM.free_energy).data
    assert "\ndef free_energy(self" in body


def test_show_source_rejects_objects_without_source():
    with pytest.raises(TypeError, match="obj must be a function, class or method"):
        genphys.show_source(42)
    with pytest.raises(TypeError, match="obj must be a function, class or method"):
        genphys.show_source(len)


def test_show_source_shows_the_function_under_a_decorator():
    """Methods wrapped by torch.no_grad() show the library's function, not torch's wrapper."""
    from genphys import mcmc

    assert hasattr(mcmc.metropolis_hastings, "__wrapped__")
    shown = genphys.show_source(mcmc.metropolis_hastings).data
    assert shown.startswith("`genphys/mcmc.py`"), shown[:80]
    assert "def metropolis_hastings(" in shown and "_contextlib" not in shown
