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
* Number every display equation of a numbered chapter. ``math_number_all`` does this for
  the ``math`` directive only; MyST's ``$$ ... $$`` blocks without a label get no number.
  :class:`NumberDisplayMath` gives each of them a label and an anchor, as Sphinx's math
  directive does, so that ``math_numfig`` numbers them per chapter ("(4.3)") in document
  order, between the labelled ones. Pages outside a numbered part of ``_toc.yml`` (the
  exercises, the API reference) keep unnumbered equations.
"""

from __future__ import annotations

import os
from typing import Any

from docutils import nodes
from sphinx.transforms import SphinxTransform

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
    return {"parallel_read_safe": True, "parallel_write_safe": True}
