"""The course website (`make book`): Sphinx with MyST-NB and the Sphinx Book Theme.

Every numbered notebook is a page, rendered from its committed outputs (nothing is executed);
the landing page is the README's notebook table; `docs/teaching.md` is the instructor's guide;
the student copies from `make student` are offered for download. Built with `-W --keep-going`,
so a broken cross-reference, a missing image or any other warning fails the build.

Jupyter Book 2 (mystmd) downloads its site theme from GitHub when it builds, which machines without
that access cannot do (jupyter-book/mystmd#210); these are the maintained libraries that Jupyter Book 1
assembled, and they build offline. MathJax (from npm, installed by `make book`) is served from the site itself,
so that its math renders without a network too.
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
MATHJAX = ROOT / "build" / "npm" / "node_modules" / "mathjax" / "es5"

project = "medkit: machine learning on chest X-rays"
author = "The medkit developers"
copyright = "the medkit developers; code MIT, notebook text and figures CC BY 4.0"

extensions = ["myst_nb"]
root_doc = "docs/index"
include_patterns = ["docs/*.md", "notebooks/[0-9][0-9]_*.ipynb"]
exclude_patterns = ["build", ".venv", "**/.ipynb_checkpoints"]

# The committed outputs are the pages' outputs: `make notebooks` refreshes them, the site never re-runs them.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]  # widget state a notebook may carry; nothing is lost on a static page

mathjax_path = "mathjax/tex-chtml.js"  # relative to the site's _static folder

html_theme = "sphinx_book_theme"
html_context = {"default_mode": "auto"}  # light or dark as the reader's system is
html_title = "medkit"
html_copy_source = True  # the download button offers each page's notebook from _sources
html_theme_options = {
    "repository_url": REPOSITORY,
    "use_download_button": True,  # a page's notebook, with its solutions and outputs
    "show_toc_level": 2,
}


def _student_copies(app, docname, source):
    """Fill the download page with one link per student copy (`make student` writes them)."""
    if docname != "docs/downloads":
        return
    student = Path(app.srcdir) / "build" / "student"
    copies = sorted(student.glob("[0-9][0-9]_*.ipynb"))
    if not copies:
        raise RuntimeError(f"no student copies in {student}: run `make student` first (make book does)")
    rows = "\n".join(
        ["- {download}`all of them, with their checks (medkit-student.zip) <../build/medkit-student.zip>`"]
        + [f"- {{download}}`{p.stem} <../build/student/{p.name}>`" for p in copies]
    )
    source[0] = source[0].replace("<!-- student copies -->", rows)


def _mathjax(app):
    """Serve MathJax from the site (copied into _static/mathjax) rather than from a CDN."""
    import shutil

    if not (MATHJAX / "tex-chtml.js").is_file():
        raise RuntimeError(f"MathJax is not in {MATHJAX}: run `make book`, which installs it from npm")
    shutil.copytree(MATHJAX, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def _landing_redirect(app, exception):
    """The site's front door: /index.html opens the landing page, docs/index.html."""
    if exception is None and app.builder.format == "html":
        (Path(app.outdir) / "index.html").write_text(
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>medkit</title>'
            '<meta http-equiv="refresh" content="0; url=docs/index.html"></head>'
            '<body><a href="docs/index.html">medkit: the course</a></body></html>\n'
        )


def setup(app):
    app.connect("source-read", _student_copies)
    app.connect("builder-inited", _mathjax)
    app.connect("build-finished", _landing_redirect)
