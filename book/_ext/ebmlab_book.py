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
"""

from __future__ import annotations

import os
from typing import Any

from ebmlab.notebook import BOOK_BUILD_ENV


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
    return {"parallel_read_safe": True, "parallel_write_safe": True}
