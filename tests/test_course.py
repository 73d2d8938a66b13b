"""Badges and setup cell follow the one repository URL; the setup cell installs the kit only where it is missing.

``tools/course.py`` (``make badges``) writes both from ``[project.urls]`` in ``pyproject.toml``.
"""

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import course  # tools/course.py (conftest puts tools/ on the path)
import nbformat
import pytest

import medkit  # noqa: F401  (the setup-cell tests hide and restore it)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_repository_url_comes_from_pyproject(tmp_path):
    assert course.repository_url().startswith("https://github.com/")
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\nname = "x"\n[project.urls]\nRepository = "git@github.com:a/b"\n')
    with pytest.raises(ValueError, match="expected https://github.com/<owner>/<name>"):
        course.repository_url(bad)


def test_every_notebook_is_in_step_with_the_url():
    stale = course.sync(NOTEBOOKS, course.repository_url(), check=True)
    assert not stale, f"out of step with pyproject.toml: {[p.name for p in stale]}; run make badges"


def test_the_readme_opens_notebook_00_on_colab():
    assert not course.sync_readme(ROOT / "README.md", course.repository_url(), check=True), "run make badges"
    assert f"colab.research.google.com/github/{course.repository_url()[19:]}/blob/main/notebooks/00_setup.ipynb" in (
        ROOT / "README.md"
    ).read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_badges_open_this_notebook(path):
    url = course.repository_url()
    slug = url.removeprefix("https://github.com/")
    title = nbformat.read(path, as_version=4).cells[0].source
    line = next(line for line in title.splitlines() if line.startswith(course.BADGE_MARK))
    assert f"colab.research.google.com/github/{slug}/blob/main/notebooks/{path.name})" in line
    assert f"kaggle.com/kernels/welcome?src={url}/blob/main/notebooks/{path.name})" in line
    assert f"mybinder.org/v2/gh/{slug}/main?labpath=notebooks%2F{path.name})" in line


def test_a_fork_changes_one_line(tmp_path):
    fork = "https://github.com/someone/medkit-fork"
    copy = tmp_path / NOTEBOOKS[3].name
    copy.write_bytes(NOTEBOOKS[3].read_bytes())
    assert course.sync([copy], fork) == [copy]
    assert course.sync([copy], fork, check=True) == [], "a second run changes nothing"
    nb = nbformat.read(copy, as_version=4)
    assert nb.cells[0].source.count("someone/medkit-fork") == 3
    assert nb.cells[0].source.count(course.BADGE_MARK) == 1, "the old badges are replaced, not kept"
    assert fork in nb.cells[2].source and course.repository_url() not in nb.cells[2].source


def _run_setup_cell(monkeypatch, importable):
    """Run the setup cell's install guard in IPython, with a stand-in for %pip; returns what %pip was asked."""
    from IPython.core.interactiveshell import InteractiveShell

    source = course.setup_cell(course.repository_url())
    guard, last = source.rsplit("\n", 1)
    assert last == "cfg = medkit.setup()"
    asked = []
    real = sys.modules["medkit"]

    def pip(line):  # the install makes medkit importable, as %pip does on Colab
        asked.append(line)
        sys.modules["medkit"] = real

    if not importable:
        monkeypatch.setitem(sys.modules, "medkit", None)  # `import medkit` raises ModuleNotFoundError
    shell = InteractiveShell.instance()
    shell.register_magic_function(pip, magic_name="pip")
    result = shell.run_cell(guard)
    assert result.success, result.error_in_exec
    return asked


def test_the_setup_cell_installs_the_kit_where_it_is_missing(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MEDKIT_DATA_DIR", str(tmp_path / "cache"))
    asked = _run_setup_cell(monkeypatch, importable=False)
    assert asked == [f'install --quiet "medkit @ git+{course.repository_url()}@main"']
    out = capsys.readouterr().out.splitlines()
    assert out == [f"installed medkit from {course.repository_url()}; data cache: {tmp_path / 'cache'}"]


def test_the_setup_cell_does_nothing_more_where_the_kit_is_installed(monkeypatch, capsys):
    assert _run_setup_cell(monkeypatch, importable=True) == []
    assert capsys.readouterr().out == ""


def test_the_kit_installed_from_the_repository_carries_what_the_notebooks_need(tmp_path):
    # What `%pip install git+<repository>` builds: a wheel of the package, without the checkout around it.
    # Built offline with this environment's setuptools, which `make` brings to the version pyproject.toml asks for.
    from importlib.metadata import version

    from packaging.requirements import Requirement

    backend = Requirement(tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"][0])
    assert backend.specifier.contains(version("setuptools")), f"this environment needs {backend} to build the kit: make test"
    # pip clones the repository (tracked files only) and builds there; here, a copy of the tracked files.
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    clone = tmp_path / "clone"
    for name in tracked:
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(clone)],
        capture_output=True, text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("medkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    needed = {name for name in tracked if name.startswith("medkit/") and name.endswith((".py", ".mplstyle"))}
    assert needed and needed <= names, f"missing from the wheel: {sorted(needed - names)}"
