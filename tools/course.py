"""Keep every notebook's "open it elsewhere" badges and setup cell in step with one repository URL.

The URL is ``[project.urls] Repository`` in ``pyproject.toml``; nothing else
names it. ``make badges`` rewrites the notebooks and the README's "no install" line from it (a fork changes that one
line and runs it); ``tests/test_course.py`` fails when a notebook is out of step.

What each notebook gets:

- a line of badges under its title, "Open in Colab", "Open in Kaggle" and
  "launch Binder", each opening that notebook from the ``main`` branch;
- a setup cell that installs the kit from the repository when ``medkit`` is
  not importable (a Colab or Kaggle kernel), says so in one line, and otherwise
  does nothing more than ``import medkit`` and ``medkit.setup()``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
BRANCH = "main"
#: The first line of every badge line, so that an old one is found and replaced.
BADGE_MARK = "[![Open in Colab]"


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """``[project.urls] Repository`` from ``pyproject.toml``: ``https://github.com/<owner>/<name>``."""
    urls = tomllib.loads(pyproject.read_text())["project"].get("urls", {})
    url = urls.get("Repository", "").rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(
            f"[project.urls] Repository in {pyproject} is {url!r}; expected https://github.com/<owner>/<name>, "
            "the repository the badges open (Colab, Kaggle and Binder read notebooks from GitHub)."
        )
    return url


def badges(name: str, url: str) -> str:
    """The markdown badge line for notebook file ``name`` (e.g. ``00_setup.ipynb``)."""
    slug = url.removeprefix("https://github.com/")
    blob = f"{url}/blob/{BRANCH}/notebooks/{name}"
    return " ".join(
        [
            f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{slug}/blob/{BRANCH}/notebooks/{name})",
            f"[![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]"
            f"(https://kaggle.com/kernels/welcome?src={blob})",
            f"[![launch Binder](https://mybinder.org/badge_logo.svg)]"
            f"(https://mybinder.org/v2/gh/{slug}/{BRANCH}?labpath={quote('notebooks/' + name, safe='')})",
        ]
    )


def setup_cell(url: str) -> str:
    """The source of every notebook's first code cell."""
    return (
        "try:\n"
        "    import medkit\n"
        "except ModuleNotFoundError:  # on Colab or Kaggle: install the kit from its repository (about a minute)\n"
        f'    %pip install --quiet "medkit @ git+{url}@{BRANCH}"\n'
        "    import medkit\n"
        f'    print(f"installed medkit from {url}; data cache: {{medkit.config.data_dir()}}")\n'
        "\n"
        "cfg = medkit.setup()"
    )


def readme_line(url: str) -> str:
    """The README's "no install" line: notebook 00 on Colab."""
    slug = url.removeprefix("https://github.com/")
    return (
        f"**No install:** [open notebook 00 in Colab](https://colab.research.google.com/github/{slug}/blob/{BRANCH}"
        "/notebooks/00_setup.ipynb). Every notebook has *Open in Colab*, *Open in Kaggle* and *launch Binder* badges "
        "under its title; on Colab and Kaggle its first cell installs the kit (about a minute), and Binder builds "
        "the environment from `environment.yml`. For real data there, run `%env MEDKIT_DATASET=pneumoniamnist` "
        "before the setup cell."
    )


def sync_readme(readme: Path, url: str, check: bool = False) -> bool:
    """Rewrite (or with ``check``, only test) the README's "no install" line; True when it was out of step."""
    lines = readme.read_text().splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith("**No install:**")]
    if len(at) != 1:
        raise ValueError(f"{readme} needs exactly one line starting with '**No install:**', found {len(at)}")
    new = readme_line(url) + "\n"
    stale = lines[at[0]] != new
    if stale and not check:
        lines[at[0]] = new
        tmp = readme.with_name(f".{readme.name}.tmp")
        tmp.write_text("".join(lines))
        tmp.replace(readme)
    return stale


def synced(nb, name: str, url: str) -> bool:
    """Bring notebook ``nb`` (an nbformat node) in step; True when it changed."""
    title = nb.cells[0]
    lines = title.source.splitlines()
    kept = [line for line in lines if not line.startswith(BADGE_MARK)]
    # The badges go on the line after the title, with a blank line either side.
    body = kept[1:]
    while body and not body[0].strip():
        body.pop(0)
    new_title = "\n".join([kept[0], "", badges(name, url), "", *body])
    setup = next(c for c in nb.cells if c.cell_type == "code")
    new_setup = setup_cell(url)
    changed = (title.source, setup.source) != (new_title, new_setup)
    title.source, setup.source = new_title, new_setup
    return changed


def sync(notebooks: list[Path], url: str, check: bool = False) -> list[Path]:
    """Rewrite (or with ``check``, only list) the notebooks that are out of step."""
    import nbformat

    stale = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        if synced(nb, path.name, url):
            stale.append(path)
            if not check:
                tmp = path.with_name(f".{path.name}.tmp")
                nbformat.write(nb, tmp)
                tmp.replace(path)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list the notebooks out of step; exit 1 if any")
    args = parser.parse_args(argv)
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    stale = sync(notebooks, repository_url(), check=args.check)
    if sync_readme(ROOT / "README.md", repository_url(), check=args.check):
        stale.append(ROOT / "README.md")
    for path in stale:
        print(("out of step: " if args.check else "updated: ") + path.name)
    if not stale:
        print(f"README.md and all {len(notebooks)} notebooks in step with {repository_url()}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
