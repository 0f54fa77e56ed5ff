r"""Model solutions of the written exercises, and the student edition of the book.

A solution is authored in a markdown cell of a notebook (a chapter or an exercise
notebook; Markdown pages are left alone, so they can show the convention) as an HTML
``<details>`` block, so that every Jupyter front end (JupyterLab, Notebook, Colab,
VS Code, GitHub's viewer) shows it collapsed under its question::

    <details class="solution" data-exercise="ex-1-1-lse">
    <summary>Solution</summary>

    The model solution in MyST Markdown: paragraphs, lists, $math$, code.

    </details>

``data-exercise`` names the label of the ``{exercise}`` it answers. The blank line after
``<summary>`` is required (without it Jupyter shows the Markdown unrendered).

A worked answer that needs code and figures (a chapter's demonstration that would answer a
graded design task) is a run of cells tagged ``solution`` (:data:`SOLUTION_TAG`): the
instructor edition shows and executes them like any other cell, the student edition drops
them, so they must not define anything that later cells use.

In the book build, a ``source-read`` hook turns each block into the sphinx-exercise
directive ``{solution} <label>`` with ``:class: dropdown``, so the site renders it as the
exercise's collapsible solution. A solution written directly as a ``{solution}`` directive
is an error: plain Jupyter would show it open, as a code block, under its question.

The **student edition** (``ebmlab_edition = "student"``; ``make student`` sets it through
the ``EBMLAB_EDITION`` environment variable) removes every block instead, before parsing,
so no solution reaches a page or the search index. After the build it strips the
notebooks and sources that readers download (``_sources/``) the same way, points the
Binder and Colab buttons at the branch ``ebmlab_student_branch`` (which the instructor
fills with those stripped notebooks), and fails if any solution is left in the site.

In both editions, the Binder and Colab buttons appear on notebook pages only: the page of a
MyST Markdown file (the introduction) would launch a ``.md`` file, which Colab cannot open.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from sphinx.errors import ConfigError, ExtensionError

EDITIONS = ("instructor", "student")
#: Tag of the cells that only the instructor edition carries.
SOLUTION_TAG = "solution"

_BLOCK = re.compile(
    r'^<details class="solution" data-exercise="(?P<label>[^"\s]+)">[ \t]*\n'
    r"<summary>[^\n]*</summary>[ \t]*\n"
    r"(?P<body>.*?)"
    r"^</details>[ \t]*(?:\n|\Z)",
    re.M | re.S,
)
_OPENER = re.compile(r'<details\b[^>]*\bclass="solution"')
_DIRECTIVE = re.compile(r"^[ \t]*(`{3,}|:{3,})[ \t]*\{solution\}", re.M)
_FENCE_RUN = re.compile(r"^[ \t]*(`{3,})", re.M)
# A solution rendered by sphinx-exercise (its HTML).
_RENDERED = re.compile(r'<div class="solution[ "]')

CONVENTION = (
    'write a solution as <details class="solution" data-exercise="LABEL">, then '
    "<summary>Solution</summary>, a blank line, the solution, and </details> on its own line"
)


class SolutionSyntaxError(ValueError):
    """A solution block that does not follow the authoring convention."""


def _check(markdown: str, where: str) -> list[re.Match[str]]:
    """Return the solution blocks of ``markdown``; raise if any is malformed."""
    if _DIRECTIVE.search(markdown):
        raise SolutionSyntaxError(
            f"{where}: a {{solution}} directive shows up open in plain Jupyter; {CONVENTION}")
    blocks = list(_BLOCK.finditer(markdown))
    if len(blocks) != len(_OPENER.findall(markdown)):
        raise SolutionSyntaxError(f"{where}: a malformed solution block; {CONVENTION}")
    for block in blocks:
        if not block["body"].startswith(("\n", " \n", "\t\n")):
            raise SolutionSyntaxError(
                f"{where}: solution to {block['label']!r} needs a blank line after "
                "</summary> (Jupyter renders no Markdown without it)")
    return blocks


def solutions_to_directives(markdown: str, where: str = "<text>") -> str:
    """Rewrite each ``<details class="solution">`` block as a sphinx-exercise solution.

    >>> text = ('<details class="solution" data-exercise="ex-1">\n<summary>Solution</summary>'
    ...         '\n\nIt is $1$.\n\n</details>\n')
    >>> print(solutions_to_directives(text))
    ```{solution} ex-1
    :class: dropdown
    <BLANKLINE>
    It is $1$.
    ```
    <BLANKLINE>
    """
    _check(markdown, where)

    def directive(block: re.Match[str]) -> str:
        body = block["body"].strip("\n")
        longest = max((len(run) for run in _FENCE_RUN.findall(body)), default=2)
        fence = "`" * max(3, longest + 1)
        return f"{fence}{{solution}} {block['label']}\n:class: dropdown\n\n{body}\n{fence}\n"

    return _BLOCK.sub(directive, markdown)


def strip_solutions(markdown: str, where: str = "<text>") -> str:
    """Remove each ``<details class="solution">`` block (the student edition)."""
    _check(markdown, where)
    stripped = _BLOCK.sub("", markdown)
    return re.sub(r"\n{3,}", "\n\n", stripped)


def is_solution_cell(cell: dict) -> bool:
    """A cell tagged :data:`SOLUTION_TAG` (instructor edition only)."""
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def transform_notebook(text: str, transform: Callable[[str, str], str], where: str, *,
                       drop_solution_cells: bool = False) -> str:
    """Apply ``transform`` to every markdown cell of a notebook given as JSON text.

    A markdown cell left empty is dropped, and so is every cell tagged ``solution`` when
    ``drop_solution_cells`` (the student edition). The JSON is written as Jupyter writes it.
    """
    notebook = json.loads(text)
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        if drop_solution_cells and is_solution_cell(cell):
            continue
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"])
            new = transform(source, f"{where}, cell {index}")
            if new != source:
                if not new.strip():
                    continue
                cell["source"] = new.splitlines(keepends=True)
        cells.append(cell)
    notebook["cells"] = cells
    return json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def _edition(app) -> str:
    return app.config.ebmlab_edition


def _on_config_inited(app, config) -> None:
    if config.ebmlab_edition not in EDITIONS:
        raise ConfigError(f"ebmlab_edition must be one of {EDITIONS}, "
                          f"got {config.ebmlab_edition!r}")
    if config.ebmlab_edition == "student":
        # The launch buttons open this branch, which holds the stripped notebooks.
        config.html_theme_options["repository_branch"] = config.ebmlab_student_branch


def _on_source_read(app, docname: str, source: list[str]) -> None:
    path = Path(app.env.doc2path(docname))
    if path.suffix != ".ipynb":
        return
    student = _edition(app) == "student"
    transform = strip_solutions if student else solutions_to_directives
    try:
        source[0] = transform_notebook(source[0], transform, str(path),
                                       drop_solution_cells=student)
    except SolutionSyntaxError as error:
        raise ExtensionError(str(error)) from error


def _strip_downloads(outdir: Path) -> None:
    """Strip the notebooks that the site offers for download (``_sources/``)."""
    for path in sorted((outdir / "_sources").rglob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        path.write_text(transform_notebook(text, strip_solutions, str(path),
                                           drop_solution_cells=True), encoding="utf-8")


def _carries_a_solution(path: Path) -> bool:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".html":
        return bool(_RENDERED.search(text))
    cells = json.loads(text)["cells"]
    if any(is_solution_cell(c) for c in cells):
        return True
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return bool(_OPENER.search(text) or _DIRECTIVE.search(text))


def leftover_solutions(outdir: Path) -> list[str]:
    """Pages, notebooks and sources of a built site that still carry a solution."""
    return [path.relative_to(outdir).as_posix() for path in sorted(outdir.rglob("*"))
            if path.is_file() and path.suffix in {".html", ".ipynb"}
            and "_static" not in path.relative_to(outdir).parts and _carries_a_solution(path)]


def _launch_notebooks_only(app, pagename: str, templatename: str, context: dict,
                           doctree) -> None:
    """Drop the launch buttons of a page whose source is not a notebook."""
    buttons = context.get("header_buttons")
    if buttons and Path(app.env.doc2path(pagename)).suffix != ".ipynb":
        buttons[:] = [b for b in buttons if b.get("label") != "launch-buttons"]


def _on_build_finished(app, exception) -> None:
    if exception is not None or _edition(app) != "student" or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    _strip_downloads(outdir)
    leftovers = leftover_solutions(outdir)
    if leftovers:
        raise ExtensionError(f"the student edition still carries solutions in {leftovers}")


def setup(app):
    app.add_config_value("ebmlab_edition", os.environ.get("EBMLAB_EDITION", "instructor"),
                         "env", [str])
    app.add_config_value("ebmlab_student_branch",
                         os.environ.get("EBMLAB_STUDENT_BRANCH", "student"), "env", [str])
    app.connect("config-inited", _on_config_inited)
    app.connect("source-read", _on_source_read)
    app.connect("build-finished", _on_build_finished)
    # After sphinx-book-theme adds the buttons (priority 501).
    app.connect("html-page-context", _launch_notebooks_only, priority=510)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
