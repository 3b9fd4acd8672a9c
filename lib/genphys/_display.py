"""Display helpers for the book: show library source live."""

from __future__ import annotations

import inspect
import textwrap

__all__ = ["show_source"]


def show_source(obj: object):
    """Display the source code of a library function, class or method.

    The book calls this instead of copying code, so the text always matches
    ``lib/genphys``. Returns an IPython ``Markdown`` object holding a fenced
    Python block, headed by the file it comes from.
    """
    from IPython.display import Markdown

    try:
        source = textwrap.dedent(inspect.getsource(obj))
        path = inspect.getsourcefile(obj) or "?"
    except (TypeError, OSError) as exc:
        raise TypeError(
            f"obj must be a function, class or method defined in Python source. Got {obj!r} instead."
        ) from exc
    where = path.replace("\\", "/").split("/lib/")[-1]
    return Markdown(f"`{where}`\n\n```python\n{source}```")
