"""The committed notebooks follow the kit's anatomy (CONTRIBUTING.md); tests/test_grading.py checks the student copies.

nbval (``make test``) checks that each notebook runs; these tests check what a
learner and an instructor rely on in the committed files.
"""

import re
from pathlib import Path

import assign  # tools/assign.py (conftest puts tools/ on the path)
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISE = re.compile(r"^\*\*Exercise (\d+)\*\*")


def _read(path):
    return nbformat.read(path, as_version=4)


def _exercise_numbers(nb):
    return [int(m.group(1)) for c in nb.cells if c.cell_type == "markdown" and (m := EXERCISE.match(c.source))]


def test_there_are_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS][:2] == ["00", "01"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_anatomy(path):
    nb = _read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {path.name[:2]} · "), "title first"
    assert "**Runtime:**" in first.source and "**Prerequisites:**" in first.source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source.endswith("\n\ncfg = medkit.setup()"), "the setup cell comes first (test_course checks it whole)"
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()]
    for heading in ("## Summary", "## Exercises", "## References"):
        assert heading in headings, f"{path.name} has no {heading!r} section"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_are_clean(path):
    assert path.stat().st_size < 1_000_000, "keep notebooks well under 1 MB (smaller figures)"
    nb = _read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), "execute top to bottom in a fresh kernel: make notebooks"
    for cell in code:
        for out in cell.outputs:
            assert out.output_type != "error", f"an error is committed in: {cell.source[:60]!r}"
            assert out.get("name") != "stderr", f"stderr is committed in: {cell.source[:60]!r}: {out.text[:200]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_solution(path):
    nb = _read(path)
    numbers = _exercise_numbers(nb)
    assert 3 <= len(numbers) <= 6, f"{path.name}: 3 to 6 graded exercises, found {len(numbers)}"
    assert numbers == list(range(1, len(numbers) + 1)), f"exercises numbered 1, 2, ...: {numbers}"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and EXERCISE.match(cell.source):
            after = nb.cells[i + 1]
            assert assign.is_solution(after) and after.cell_type == "code", f"exercise {cell.source[:30]!r} needs a solution"
    # Solutions and their checks come last, so no later cell depends on a name a solution defines.
    first_exercise = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and EXERCISE.match(c.source))
    later_code = [
        c for c in nb.cells[first_exercise:] if c.cell_type == "code" and not (assign.is_solution(c) or assign.is_check(c))
    ]
    assert not later_code, "only solutions and their checks may follow the first exercise"
    assert [item["number"] for item in assign.exercises(nb)] == numbers
