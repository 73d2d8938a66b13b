"""The install files agree with each other and with the README."""

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_dependencies_have_lower_bounds_not_pins():
    project = _pyproject()["project"]
    deps = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    for dep in deps:
        assert "==" not in dep, f"pinned dependency {dep!r}; use a lower bound"
        assert ">=" in dep, f"{dep!r} needs a lower bound"


def _names(requirements):
    return {re.split(r"[\[<>=]", d)[0] for d in requirements}


def test_stack_is_listed():
    names = _names(_pyproject()["project"]["dependencies"])
    for needed in ("tensorflow", "keras", "scikit-learn", "scikit-image", "filterpy", "matplotlib", "pooch"):
        assert needed in names
    extras = _pyproject()["project"]["optional-dependencies"]
    assert _names(extras["dev"]) >= {"pytest", "nbval", "ruff"}
    assert any(d.startswith("tensorflow[and-cuda]") for d in extras["gpu"])


def test_environment_yml_installs_from_pyproject_only():
    lines = [ln.strip() for ln in (ROOT / "environment.yml").read_text().splitlines()]
    deps = [ln[2:] for ln in lines if ln.startswith("- ")]
    assert deps == ["conda-forge", "python=3.12", "pip", "pip:", "-e .[dev,lab]"], deps


def test_the_core_install_brings_no_jupyter():
    # Colab, Kaggle and JupyterHub bring their own Jupyter; the kit must not replace it.
    jupyter = {"jupyterlab", "notebook", "ipykernel", "jupyter", "jupyter-server", "nbformat", "nbclient", "ipython"}
    assert not _names(_pyproject()["project"]["dependencies"]) & jupyter
    assert _names(_pyproject()["project"]["optional-dependencies"]["lab"]) == {"jupyterlab", "ipykernel", "nbformat",
                                                                               "nbclient"}
    assert "-e '.[dev,lab,grading]'" in (ROOT / "Makefile").read_text()  # make lab and make test install it


def test_ci_runs_the_readme_test_command_and_the_linter():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "make test" in ci and "make lint" in ci
    assert "make test" in (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:.*\n(\t.*\n)*\t.*pytest (.*\\\n)*.*\$\(TEST_ORDER\) \$\(NBVAL\)", makefile, re.M)
    assert re.search(r"^TEST_ORDER = \$\(shell \$\(PYTHON\) tools/slowest_first.py\) tests medkit$", makefile, re.M)
    assert re.search(r"^NBVAL := --nbval-lax ", makefile, re.M)


def test_make_test_runs_every_notebook_slowest_first(capsys):
    import slowest_first  # tools/ is on the test path (conftest)

    slowest_first.main(str(ROOT / "notebooks"))
    order = capsys.readouterr().out.split()
    assert sorted(order) == sorted(str(p) for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    cost = [slowest_first.seconds(Path(p)) for p in order]
    assert cost == sorted(cost, reverse=True) and len(order) >= 15


def test_readme_and_notebook_headers_give_the_runtimes_the_metadata_shows():
    import runtimes  # tools/runtimes.py

    assert runtimes.formatted(7.4) == "7 s" and runtimes.formatted(302.0) == "5 min 2 s"
    assert set(runtimes.readme_runtimes()) == set(runtimes.measured()) and len(runtimes.measured()) >= 15
    assert set(runtimes.guide_runtimes()) == set(runtimes.measured()), "the teaching guide's table, every notebook"
    assert runtimes._readme_block((ROOT / "README.md").read_text()) is not None, "the README lists where time goes"
    assert runtimes.mismatches() == []


def test_where_the_time_goes_lists_the_costly_sections_and_catches_a_stale_list(tmp_path):
    import shutil

    import runtimes

    (tmp_path / "notebooks").mkdir()
    notebook = tmp_path / "notebooks" / "08_evaluation_explainability.ipynb"
    shutil.copy(ROOT / "notebooks" / notebook.name, notebook)
    parts = runtimes.sections(notebook)
    # Every code cell's time is counted once, in the section above it; the cells' times fit in the span.
    cells = sum(runtimes._cell_seconds(c) for c in json.loads(notebook.read_text())["cells"])
    assert abs(sum(secs for _, secs in parts) - cells) < 1e-6 and cells <= runtimes.seconds(notebook) + 1e-6
    assert [title for title, _ in parts][:2] == ["(title)", "Setup"] and len(parts) >= 10
    truth = runtimes.formatted(runtimes.seconds(notebook))
    row = f"| 08 | [`{notebook.name}`](x) | evaluation | {truth} |\n"
    stale = f"{row}\n{runtimes._START}\nnothing is slow\n{runtimes._END}\nafter\n"
    (tmp_path / "README.md").write_text(stale)
    assert [p for p in runtimes.mismatches(tmp_path) if "where the time goes" in p], "a stale list is reported"
    runtimes.write(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert not [p for p in runtimes.mismatches(tmp_path) if "where the time goes" in p] and text.endswith("after\n")
    costliest = max(parts, key=lambda part: part[1])
    if runtimes.seconds(notebook) > runtimes.AIM:
        assert f"- **08** ({truth}): {costliest[0]} ({runtimes.formatted(costliest[1])})" in text
    else:
        assert "Every notebook runs within" in text


def test_runtimes_finds_a_stale_figure(tmp_path):
    import shutil

    import runtimes

    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "03_kalman_filter.ipynb", tmp_path / "notebooks")
    truth = runtimes.measured(tmp_path)["03"]
    (tmp_path / "README.md").write_text(f"| 03 | [`03_kalman_filter.ipynb`](x) | the filter | {truth} |\n")
    assert runtimes.mismatches(tmp_path) == []
    (tmp_path / "README.md").write_text("| 03 | [`03_kalman_filter.ipynb`](x) | the filter | 1 min 1 s |\n")
    assert runtimes.mismatches(tmp_path) == [f"README row 03: '1 min 1 s', metadata {truth!r}"]
    runtimes.write(tmp_path)
    assert runtimes.mismatches(tmp_path) == [] and truth in (tmp_path / "README.md").read_text()
    guide = tmp_path / "docs" / "teaching.md"
    guide.parent.mkdir()
    guide.write_text("| [03 · Kalman filter](../notebooks/03_kalman_filter.ipynb) | 9 s | patients |\n")
    assert runtimes.mismatches(tmp_path) == [f"teaching guide row 03: '9 s', metadata {truth!r}"]
    runtimes.write(tmp_path)
    assert runtimes.mismatches(tmp_path) == [] and f"| {truth} |" in guide.read_text()


def test_constraints_pin_what_pyproject_asks_for():
    # make installs with constraints.txt: every dependency is pinned there, within pyproject's bounds.
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    project = _pyproject()["project"]
    for dep in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(dep)
        name = req.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in constraints.txt; run make constraints"
        assert req.specifier.contains(pins[name]), f"constraints.txt pins {name}=={pins[name]}, outside {req.specifier}"


def test_python_version_is_stated_once():
    requires = _pyproject()["project"]["requires-python"]
    assert requires == ">=3.11"
    assert "Python 3.11 or newer" in (ROOT / "README.md").read_text()


def test_colab_versions_satisfy_every_lower_bound():
    # Offline half of `make test-colab`: on Colab, pip keeps a shipped package when its version meets the kit's
    # requirement, so every requirement must admit the version Colab ships (constraints-colab.txt).
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    colab = {}
    for line in (ROOT / "constraints-colab.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            colab[canonicalize_name(name)] = version
    assert {"tensorflow", "keras", "scikit-learn", "numpy"} <= set(colab), "not Colab's package list"
    project = _pyproject()["project"]
    checked = 0
    for text in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(text)
        version = colab.get(canonicalize_name(requirement.name))
        if version is not None:
            assert requirement.specifier.contains(version), f"{text!r} would replace Colab's {requirement.name} {version}"
            checked += 1
    assert checked >= 10, checked
