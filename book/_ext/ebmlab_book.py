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
* Number every display equation of a numbered chapter. ``math_number_all`` does this for
  the ``math`` directive only; MyST's ``$$ ... $$`` blocks without a label get no number.
  :class:`NumberDisplayMath` gives each of them a label and an anchor, as Sphinx's math
  directive does, so that ``math_numfig`` numbers them per chapter ("(4.3)") in document
  order, between the labelled ones. Pages outside a numbered part of ``_toc.yml`` (the
  exercises, the API reference) keep unnumbered equations.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from docutils import nodes
from sphinx.transforms import SphinxTransform
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


def numbered_documents(env) -> set[str]:
    """Docnames listed under a numbered toctree of ``_toc.yml`` (and their descendants)."""
    site_map = getattr(env, "external_site_map", None)
    if site_map is None:
        return set()
    numbered: set[str] = set()

    def collect(docname: str) -> None:
        if docname in numbered or docname not in site_map:
            return
        numbered.add(docname)
        for subtree in site_map[docname].subtrees:
            for child in subtree.files():
                collect(child)

    for docname in site_map:
        for subtree in site_map[docname].subtrees:
            if subtree.numbered:
                for child in subtree.files():
                    collect(child)
    return numbered


class NumberDisplayMath(SphinxTransform):
    """Label and anchor every unlabelled display equation of a numbered chapter.

    Runs before docutils' ``PropagateTargets`` (priority 260), like the math directive's
    own labelling, so that the equation carries its anchor when Sphinx numbers it.
    """

    default_priority = 200

    def apply(self, **kwargs: Any) -> None:
        docname = self.env.docname
        if docname not in numbered_documents(self.env):
            return
        domain = self.env.get_domain("math")
        for node in list(self.document.findall(nodes.math_block)):
            if node.get("label") or node.get("nowrap"):
                continue          # labelled already, or an unnumbered amsmath block
            label = f"{docname}:auto-{self.env.new_serialno('ebmlab-equation')}"
            node["label"] = label
            node["docname"] = docname
            domain.note_equation(docname, label, location=node)
            node["number"] = domain.get_equation_number_for(label)
            target = nodes.target("", "", ids=[nodes.make_id(f"equation-{label}")])
            self.document.note_explicit_target(target)
            node.parent.insert(node.parent.index(node), target)


def setup(app):
    app.add_transform(NumberDisplayMath)
    os.environ[BOOK_BUILD_ENV] = "1"
    app.connect("html-page-context", _deduplicate_scripts, priority=100)
    app.connect("build-finished", _report_execution_times)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
