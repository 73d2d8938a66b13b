"""Student copies and the autograder, made by Otter-Grader from the committed notebooks (`make student`, `make autograder`).

The committed notebooks are the instructor's copies: each exercise is a markdown cell ``**Exercise N** ...``
followed by its solution, cells tagged ``solution`` (code, then the model answer in words), and then its
checks, code cells tagged ``check``: each one test function and its call, as Otter's exception-based tests
are written. A check also tagged ``hidden`` is kept for grading and never reaches students. nbval runs the
checks with the solutions in place, so every ``make test`` shows that the solutions pass them.

This module only rewrites that layout as an Otter Assign master notebook, one question per exercise:

- ``nbNN_exI``, graded by its checks, with the solution code replaced by an empty cell;
- ``nbNN_exI_words``, graded by hand, where the solution has a model answer in words: the student
  gets a cell to write in, the instructor's copy keeps the answer;

then runs ``otter assign``, which writes the student notebook (public checks, no solutions) and the
autograder (all checks, as a zip that ``otter run`` or ``otter grade`` uses). An exercise without
checks is graded by hand as a whole.

Written to ``build/``:

- ``student/``: ``NN_name.ipynb`` for each notebook, without outputs, and ``tests/`` with the public checks
  (hand the folder out whole: the notebooks' ``grader.check`` cells read it), and the same folder as
  ``medkit-student.zip``;
- ``autograder/``: ``NN_name-autograder.zip`` and the solutions notebook ``NN_name.ipynb`` for each.

Grading one submission, without Docker: ``otter run -a build/autograder/04_cnn-autograder.zip 04_cnn.ipynb``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import course  # noqa: E402  (tools/course.py: the setup cell and the repository URL)

EXERCISE = re.compile(r"^\*\*Exercise (\d+)\*\*")
SOLUTION, CHECK, HIDDEN = "solution", "check", "hidden"


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def is_solution(cell) -> bool:
    """True when ``cell`` carries the ``solution`` tag."""
    return SOLUTION in _tags(cell)


def is_check(cell) -> bool:
    """True when ``cell`` carries the ``check`` tag."""
    return CHECK in _tags(cell)


def checked_names(check_source: str) -> list[str]:
    """The names a check reads: its test function's parameters.

    >>> checked_names("def test_rarest(ex2, ex2_rarest):\\n    assert ex2_rarest == 'x'\\n\\ntest_rarest(ex2, ex2_rarest)")
    ['ex2', 'ex2_rarest']
    """
    match = re.search(r"^def \w+\(([^)]*)\):", check_source, flags=re.M)
    if not match:
        raise ValueError(f"a check cell must define one test function (def test_...(names):), found:\n{check_source[:200]}")
    return [name.strip() for name in match.group(1).split(",") if name.strip()]


def exercises(nb) -> list[dict]:
    """Each exercise of ``nb``: its number, prompt cell index, solution cells and checks.

    Raises ValueError when an exercise has no solution or a check comes before its solution.
    """
    found, i = [], 0
    while i < len(nb.cells):
        cell = nb.cells[i]
        match = EXERCISE.match(cell.source) if cell.cell_type == "markdown" else None
        if not match:
            i += 1
            continue
        item = {"number": int(match.group(1)), "prompt": i, "solution": [], "checks": []}
        i += 1
        while i < len(nb.cells) and is_solution(nb.cells[i]):
            item["solution"].append(i)
            i += 1
        while i < len(nb.cells) and is_check(nb.cells[i]):
            item["checks"].append(i)
            i += 1
        if not item["solution"]:
            raise ValueError(f"exercise {item['number']} has no solution cells (tagged 'solution') after its prompt")
        found.append(item)
    return found


def _raw(text: str):
    return nbformat.v4.new_raw_cell(text)


def _yaml(header: str, config: dict) -> str:
    return f"# {header}\n" + yaml.safe_dump(config, sort_keys=False)


def master(nb, stem: str):
    """The Otter Assign master notebook for notebook ``nb`` (file stem ``stem``, e.g. ``04_cnn``)."""
    prefix = f"nb{stem[:2]}"
    items = {item["prompt"]: item for item in exercises(nb)}
    inside = {i for item in items.values() for i in item["solution"] + item["checks"]}
    url = course.repository_url()
    config = {
        "name": stem,
        "init_cell": True,
        "check_all_cell": False,
        "export_cell": False,  # students hand in the notebook itself
        "run_tests": False,  # make test-grading runs the solutions against the checks
        "requirements": [f"medkit[grading] @ git+{url}@{course.BRANCH}"],
        "python_version": "3.11",
        "tests": {"files": True, "ok_format": False},
    }
    cells = [_raw(_yaml("ASSIGNMENT CONFIG", config))]
    for i, cell in enumerate(nb.cells):
        if i in inside:
            continue
        if i not in items:
            cells.append(_plain(cell))
            continue
        item = items[i]
        code = [nb.cells[j] for j in item["solution"] if nb.cells[j].cell_type == "code"]
        words = [nb.cells[j] for j in item["solution"] if nb.cells[j].cell_type == "markdown"]
        checks = [nb.cells[j] for j in item["checks"]]
        name = f"{prefix}_ex{item['number']}"
        if checks:
            cells.append(_raw(_yaml("BEGIN QUESTION", {"name": name, "points": len(checks)})))
            cells.append(_plain(cell))
            reads = sorted({n for c in checks for n in checked_names(c.source)})
            cells.append(_raw("# BEGIN SOLUTION"))
            cells += [_answer(c, reads) for c in code]
            cells.append(_raw("# END SOLUTION"))
            cells.append(_raw("# BEGIN TESTS"))
            for c in checks:
                source = c.source if HIDDEN not in _tags(c) else "# HIDDEN\n" + c.source
                cells.append(nbformat.v4.new_code_cell(source))
            cells.append(_raw("# END TESTS"))
            cells.append(_raw("# END QUESTION"))
            if words:
                cells.append(_raw(_yaml("BEGIN QUESTION", {"name": f"{name}_words", "manual": True, "points": 1})))
                prompt = f"*Exercise {item['number']}, in words:* your answer to its question."
                cells.append(nbformat.v4.new_markdown_cell(prompt))
                cells.append(_raw("# BEGIN SOLUTION"))
                cells += [_plain(c) for c in words]
                cells.append(_raw("# END SOLUTION"))
                cells.append(_raw("# END QUESTION"))
        else:  # graded by hand as a whole: the code and the words
            cells.append(_raw(_yaml("BEGIN QUESTION", {"name": name, "manual": True, "points": 1})))
            cells.append(_plain(cell))
            cells.append(_raw("# BEGIN SOLUTION"))
            cells += [_answer(c, []) if c.cell_type == "code" else _plain(c) for c in (code + words)]
            cells.append(_raw("# END SOLUTION"))
            cells.append(_raw("# END QUESTION"))
    out = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
    return out


def _plain(cell):
    """A copy of ``cell`` without the kit's tags (Otter reads none of them)."""
    copy = nbformat.from_dict(dict(cell))
    tags = [t for t in _tags(copy) if t not in (SOLUTION, CHECK, HIDDEN)]
    if "tags" in copy.get("metadata", {}):
        copy.metadata["tags"] = tags
    return copy


def _answer(cell, reads: list[str]):
    """A solution code cell in Otter's syntax: the student sees one comment naming what the checks read."""
    hint = "# Your solution here." + (f" The checks read: {', '.join(reads)}." if reads else "")
    copy = _plain(cell)
    copy.source = f"{hint}\n# BEGIN SOLUTION NO PROMPT\n{cell.source}\n# END SOLUTION"
    return copy


def _student_setup(nb, stem: str) -> None:
    """In a student copy, the kit's setup cell comes first and installs the grading extra where it is missing.

    Otter puts its own first cell (``import otter``) at the top; on Colab or Kaggle otter is not there until
    the setup cell has installed the kit with its ``grading`` extra, so Otter's cell moves after it.
    """
    url = course.repository_url()
    setup = course.setup_cell(url)
    at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source == setup)
    init = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "otter.Notebook(" in c.source)
    nb.cells[at].source = setup.replace(f'"medkit @ git+{url}', f'"medkit[grading] @ git+{url}')
    cell = nb.cells.pop(init)
    nb.cells.insert(at if init < at else at + 1, cell)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None


def _otter_assign(master_path: Path, result: Path) -> None:
    """``otter assign --no-pdfs MASTER RESULT``, in this process (importing Otter once for every notebook)."""
    import contextlib
    import io
    import os

    from otter.assign import main as otter_assign

    said = io.StringIO()
    here = os.getcwd()
    try:
        os.chdir(master_path.parent)
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            otter_assign(master_path.name, str(result), no_pdfs=True)
    except Exception as err:
        raise RuntimeError(f"otter assign failed on {master_path.name}: {err}\n{said.getvalue()}") from err
    finally:
        os.chdir(here)


def assign(notebooks: list[Path], out: Path) -> list[tuple[Path, int, int]]:
    """Write the student copies and the autograder of ``notebooks`` under ``out`` (student/, autograder/).

    Returns each notebook with its number of checked questions and of hand-graded ones. Everything is
    written to a temporary folder first, so a failure leaves the previous output as it was.
    """
    if not notebooks:
        raise FileNotFoundError("no numbered notebooks (NN_name.ipynb) given")
    summary = []
    with tempfile.TemporaryDirectory(prefix="medkit-assign-") as tmp:
        tmp = Path(tmp)
        student, autograder = tmp / "student", tmp / "autograder"
        (student / "tests").mkdir(parents=True)
        autograder.mkdir()
        for path in notebooks:
            work = tmp / path.stem
            work.mkdir()
            source = master(nbformat.read(path, as_version=4), path.stem)
            nbformat.write(source, work / path.name)
            _otter_assign(work / path.name, work / "dist")
            copy = nbformat.read(work / "dist" / "student" / path.name, as_version=4)
            _student_setup(copy, path.stem)
            nbformat.write(copy, student / path.name)
            for test in (work / "dist" / "student" / "tests").glob("*.py"):
                shutil.copy2(test, student / "tests" / test.name)
            (zipped,) = (work / "dist" / "autograder").glob("*.zip")
            shutil.copy2(zipped, autograder / f"{path.stem}-autograder.zip")
            shutil.copy2(work / "dist" / "autograder" / path.name, autograder / path.name)
            graded = sum(1 for c in source.cells if c.cell_type == "raw" and c.source.startswith("# BEGIN QUESTION"))
            manual = sum(1 for c in source.cells if c.cell_type == "raw" and "manual: true" in c.source)
            summary.append((path, graded - manual, manual))
        # The folder a class downloads whole: the notebooks and the public checks their grader.check cells read.
        shutil.make_archive(str(tmp / "medkit-student"), "zip", root_dir=tmp, base_dir="student")
        out.mkdir(parents=True, exist_ok=True)
        for name in ("student", "autograder", "medkit-student.zip"):
            if (out / name).is_dir():
                shutil.rmtree(out / name)
            shutil.move(str(tmp / name), str(out / name))
    return summary


def grade(autograder_zip: Path, notebook: Path, results: Path) -> dict[str, tuple[float, float, str]]:
    """Grade ``notebook`` with ``autograder_zip`` as an instructor would (``otter run``, no Docker).

    The notebook is executed from its own folder. Returns {question: (score, max_score, output)} for
    the questions its checks grade (hand-graded ones are scored by a person).
    """
    import json
    import subprocess

    results.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(autograder_zip.resolve()), "-o", str(results.resolve()),
         notebook.name],
        capture_output=True, text=True, cwd=notebook.parent,
    )
    if done.returncode:
        raise RuntimeError(f"otter run failed on {notebook}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    tests = json.loads((results / "results.json").read_text())["tests"]
    return {t["name"]: (t["score"], t["max_score"], t.get("output", "")) for t in tests if "score" in t}


def grade_solutions(out: Path) -> int:
    """Grade every solutions notebook in ``out/autograder`` with its own autograder; 0 when all get full marks."""
    import time

    short = 0
    for zipped in sorted((out / "autograder").glob("*-autograder.zip")):
        stem = zipped.name.removesuffix("-autograder.zip")
        start = time.monotonic()
        scores = grade(zipped, out / "autograder" / f"{stem}.ipynb", out / "grading" / stem)
        got, top = sum(s for s, _, _ in scores.values()), sum(m for _, m, _ in scores.values())
        print(f"{stem}: {got:g} / {top:g} points from {len(scores)} checked exercises ({time.monotonic() - start:.0f} s)")
        for name, (score, most, output) in scores.items():
            if score < most:
                short += 1
                print(f"  {name}: {score:g} / {most:g}\n{output}")
    return 1 if short else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/NN_*.ipynb")
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--grade-solutions", action="store_true",
                        help="grade each solutions notebook in OUT/autograder with its autograder (runs every notebook)")
    args = parser.parse_args(argv)
    if args.grade_solutions:
        return grade_solutions(args.out)
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path, checked, manual in assign(notebooks, args.out):
        print(f"{path.name}: {checked} exercises graded by their checks, {manual} questions graded by hand")
    print(f"student copies: {args.out / 'student'}; autograder: {args.out / 'autograder'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
