"""Display helpers for the book: show library source live, and glue computed numbers into prose."""

from __future__ import annotations

import inspect
import textwrap

__all__ = ["glue", "show_source"]

# myst-nb reads hidden glued values from display data whose MIME types carry this prefix
# (myst_nb.ext.glue.GLUE_PREFIX); writing it here keeps chapters free of a myst-nb import,
# so they run unchanged in Binder, Colab or any Jupyter.
_GLUE_PREFIX = "application/papermill.record/"


def show_source(obj: object):
    """Display the source code of a library function, class or method.

    The book calls this instead of copying code, so the text always matches
    ``lib/genphys``. Returns an IPython ``Markdown`` object holding a fenced
    Python block, headed by the file it comes from.
    """
    from IPython.display import Markdown

    # methods wrapped by decorators such as torch.no_grad(): show the function written in the
    # library, not the decorator's wrapper
    obj = inspect.unwrap(obj) if callable(obj) and not inspect.isclass(obj) else obj
    try:
        source = textwrap.dedent(inspect.getsource(obj))
        path = inspect.getsourcefile(obj) or "?"
    except (TypeError, OSError) as exc:
        raise TypeError(
            f"obj must be a function, class or method defined in Python source. Got {obj!r} instead."
        ) from exc
    where = path.replace("\\", "/").split("/lib/")[-1]
    return Markdown(f"`{where}`\n\n```python\n{source}```")


def glue(name: str, value):
    """Make a computed value available to the prose of the same page, and return it.

    A chapter never types a number that its code computes: it writes
    ``glue("tau_int", tau)`` in a code cell and ``{glue:text}`tau_int:.2f``` in the text,
    and the book build (myst-nb) inserts the value, formatted, where the role stands.
    The value is stored hidden in the cell's outputs, exactly as ``myst_nb.glue(name,
    value, display=False)`` stores it; outside IPython nothing is displayed.

    Parameters
    ----------
    name : str
        Key used by the ``{glue:text}`` role; unique within a page.
    value : float, int, str or 0-d tensor/array
        The number (or short text). Tensors and arrays of one element are converted to
        Python numbers so that format specs such as ``:.3f`` apply.

    Returns
    -------
    The value as glued (a Python number or string).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Python identifier. Got {name!r} instead.")
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if not isinstance(value, int | float | str):
        raise TypeError(
            f"value must be a number, a string or a one-element tensor/array. Got {type(value).__name__} instead."
        )
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with every Jupyter
        return value
    if get_ipython() is None:
        return value
    display(
        {_GLUE_PREFIX + "text/plain": repr(value)},
        raw=True,
        metadata={"scrapbook": {"name": name, "mime_prefix": _GLUE_PREFIX}},
    )
    return value
