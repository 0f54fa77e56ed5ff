"""Helpers for the course's notebooks, wherever they run: the book build, Jupyter, Colab.

The chapters hand numbers to their text with :func:`glue` (the text cites them as
``{glue:text}`name:.2f```). In the book build this is :func:`myst_nb.glue`; anywhere else
myst-nb is usually absent (Colab, Binder, a plain Jupyter), so the value is simply shown,
or nothing happens when the chapter asked not to show it.

The book build announces itself to the notebooks it executes through the environment
variable :data:`BOOK_BUILD_ENV` (set by the book's Sphinx extension before any kernel
starts); :func:`in_book_build` reads it.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["BOOK_BUILD_ENV", "glue", "in_book_build"]

#: Environment variable set (to ``"1"``) while the book build executes the notebooks.
BOOK_BUILD_ENV = "EBMLAB_BOOK_BUILD"


def in_book_build() -> bool:
    """Whether this code runs in a notebook that the book build executes.

    Returns
    -------
    bool
        True when the environment variable :data:`BOOK_BUILD_ENV` is ``"1"``.

    Examples
    --------
    >>> import os
    >>> from ebmlab.notebook import BOOK_BUILD_ENV, in_book_build
    >>> in_book_build() == (os.environ.get(BOOK_BUILD_ENV) == "1")
    True
    """
    return os.environ.get(BOOK_BUILD_ENV) == "1"


def glue(name: str, value: Any, display: bool = True) -> None:
    """Hand ``value`` to the book's text under ``name``; outside the book, show it (or not).

    In the book build (:func:`in_book_build`, with myst-nb installed) this is
    ``myst_nb.glue(name, value, display)``: the value's display forms are stored in the
    cell's output, where the text's ``{glue:}`` roles find them. Anywhere else,
    ``display=True`` shows the value as the cell's output would, and ``display=False``
    does nothing (myst-nb's hidden glue output would otherwise appear in some front ends
    as an output that cannot be rendered).

    Parameters
    ----------
    name : str
        The key the text cites, unique in the book.
    value : object
        Anything with a display form: a number, a string, a figure, ``IPython.display``
        objects.
    display : bool
        Also show the value in the notebook.

    Raises
    ------
    TypeError
        If ``name`` is not a string.

    Examples
    --------
    >>> from ebmlab.notebook import glue
    >>> glue("answer", 42, display=False)  # outside the book build: nothing happens
    """
    if not isinstance(name, str):
        raise TypeError(f"glue name must be a str, got {type(name).__name__} ({name!r}).")
    if in_book_build():
        try:
            from myst_nb import glue as myst_glue
        except ImportError:
            myst_glue = None
        if myst_glue is not None:
            myst_glue(name, value, display=display)
            return
    if display:
        from IPython.display import display as show

        show(value)
