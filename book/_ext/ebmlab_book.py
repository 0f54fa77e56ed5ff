"""Sphinx tweaks for the EBM Lab book (loaded through ``_config.yml``'s local_extensions).

* Tell the notebooks that the book build executes them: the environment variable
  :data:`ebmlab.notebook.BOOK_BUILD_ENV` is set before any kernel starts (kernels inherit
  the environment), so that :func:`ebmlab.notebook.glue` hands values to myst-nb there and
  only there.
* Drop duplicated inline ``<script>`` blocks. sphinx-thebe registers its inline
  configuration script (``const THEBE_JS_URL = ...``) once per read of the environment,
  and Jupyter Book reads it twice, so every page declared the same ``const`` twice and
  the browser raised "Identifier 'THEBE_JS_URL' has already been declared".
  The handler runs early (priority 100): ``html-page-context`` stops at the first
  handler that returns a template name, so a late one might never be called.
* Report how long each notebook took to execute, slowest first, at the end of the build
  log, marking any over the house budget of a chapter (:data:`NOTEBOOK_BUDGET_S`). A
  notebook that suddenly takes about ``execute.timeout`` seconds longer than usual has lost
  a reply wake-up in the kernel client (see the comment on ``timeout`` in ``_config.yml``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sphinx.util import logging

from ebmlab.notebook import BOOK_BUILD_ENV

logger = logging.getLogger(__name__)

#: Seconds a notebook may take to execute (CHAPTERS.md: a chapter runs in under 2 minutes).
NOTEBOOK_BUDGET_S = 120.0


def execution_report(runtimes: Mapping[str, float], budget: float = NOTEBOOK_BUDGET_S) -> str:
    """The build log's table of notebook execution times, slowest first, with the total.

    Parameters
    ----------
    runtimes : mapping of str to float
        Seconds each notebook (by document name) took to execute.
    budget : float
        Notebooks slower than this are marked ``over budget``.
    """
    width = max(len(name) for name in runtimes)
    lines = [f"notebook execution times ({len(runtimes)} notebooks, slowest first):"]
    for name, seconds in sorted(runtimes.items(), key=lambda item: -item[1]):
        mark = f"  <- over the {budget:.0f} s budget" if seconds > budget else ""
        lines.append(f"  {name:<{width}}  {seconds:7.1f} s{mark}")
    lines.append(f"  {'total':<{width}}  {sum(runtimes.values()):7.1f} s")
    return "\n".join(lines)


def _report_execution_times(app, exception: Exception | None) -> None:
    from myst_nb.sphinx_ import NbMetadataCollector  # the data of myst-nb's nb-exec-table

    runtimes = {}
    for docname, data in NbMetadataCollector.get_doc_data(app.env).items():
        result = data.get("exec_data")
        if result and result.get("runtime") is not None:
            runtimes[docname] = float(result["runtime"])
    if runtimes:
        logger.info("\n" + execution_report(runtimes))


def _deduplicate_scripts(app, pagename: str, templatename: str, context: dict[str, Any],
                         doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        # Inline scripts come with a filename of None or "" depending on the caller.
        filename = str(getattr(script, "filename", script) or "")
        attributes = getattr(script, "attributes", {}) or {}
        key = (filename, tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    scripts[:] = unique


def setup(app):
    os.environ[BOOK_BUILD_ENV] = "1"
    app.connect("html-page-context", _deduplicate_scripts, priority=100)
    app.connect("build-finished", _report_execution_times)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
