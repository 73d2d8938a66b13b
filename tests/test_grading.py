"""Exercises that grade themselves: the student copies and the autograder that Otter-Grader makes (tools/assign.py).

`make test` checks what needs no execution: every coding exercise has public and hidden checks, and the
student copies hold no solution, no output and no hidden check; nbval runs every notebook's checks with its
solutions in place. Grading runs a whole notebook, so the grading itself is tested by `make test-grading`
(marker ``grading``): on notebook 00, the solutions get full marks, a blank copy scores zero and one wrong
answer fails exactly its check; then every notebook's solutions are graded.
"""

import re
import shutil
from pathlib import Path

import assign  # tools/assign.py (conftest puts tools/ on the path)
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def assigned(tmp_path_factory):
    """Student copies and autograder of every notebook, as `make student` and `make autograder` write them."""
    out = tmp_path_factory.mktemp("assigned")
    summary = assign.assign(NOTEBOOKS, out)
    return out, {path.name: (checked, manual) for path, checked, manual in summary}


def _read(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_coding_exercise_has_public_and_hidden_checks(path):
    nb = _read(path)
    for item in assign.exercises(nb):
        if not any(nb.cells[i].cell_type == "code" for i in item["solution"]):
            continue
        tags = [nb.cells[i].metadata.get("tags", []) for i in item["checks"]]
        public = sum("hidden" not in t for t in tags)
        hidden = sum("hidden" in t for t in tags)
        assert public >= 1 and hidden >= 1, f"{path.name} exercise {item['number']}: {public} public, {hidden} hidden checks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_student_copy_has_no_solution_no_output_and_its_public_checks(assigned, path):
    out, summary = assigned
    nb, copy = _read(path), _read(out / "student" / path.name)
    assert all(not c.outputs and c.execution_count is None for c in copy.cells if c.cell_type == "code")
    student_text = "\n".join(c.source for c in copy.cells)
    lesson_text = "\n".join(c.source for c in nb.cells if not (assign.is_solution(c) or assign.is_check(c)))
    for item in assign.exercises(nb):
        for i in item["solution"]:
            # Lines of the solution that the lesson does not have too (a solution may reuse a lesson's line).
            lines = [line.strip() for line in nb.cells[i].source.splitlines() if len(line.strip()) > 12]
            leaked = [line for line in lines if line not in lesson_text and line in student_text]
            assert not leaked, f"exercise {item['number']}'s solution is in the student copy: {leaked[:2]}"
        if item["checks"]:
            question = f"nb{path.name[:2]}_ex{item['number']}"
            assert f'grader.check("{question}")' in student_text
            public = (out / "student" / "tests" / f"{question}.py").read_text()
            assert "hidden=True" not in public, "a hidden check reached the students"
            assert public.count("hidden=False") == sum("hidden" not in nb.cells[i].metadata["tags"] for i in item["checks"])
    checked, manual = summary[path.name]
    assert checked + manual >= len(assign.exercises(nb))


def test_the_setup_cell_comes_before_otter_and_installs_the_grading_extra(assigned):
    out, _ = assigned
    copy = _read(out / "student" / NOTEBOOKS[0].name)
    code = [c.source for c in copy.cells if c.cell_type == "code"]
    assert code[0].endswith("cfg = medkit.setup()") and '"medkit[grading] @ git+' in code[0]
    assert "otter.Notebook(" in code[1]


def test_the_autograder_holds_every_check(assigned):
    out, _ = assigned
    for path in NOTEBOOKS:
        assert (out / "autograder" / f"{path.stem}-autograder.zip").is_file()
        solutions = _read(out / "autograder" / path.name)
        assert any("# BEGIN SOLUTION" in c.source for c in solutions.cells if c.cell_type == "code") or not any(
            assign.is_check(c) for c in _read(path).cells
        )


def _grade(out, notebook, tmp_path):
    results = tmp_path / f"results-{notebook.parent.name}"
    return assign.grade(out / "autograder" / f"{NOTEBOOKS[0].stem}-autograder.zip", notebook, results)


@pytest.mark.grading
def test_the_solutions_get_full_marks(assigned, tmp_path):
    out, _ = assigned
    scores = _grade(out, out / "autograder" / NOTEBOOKS[0].name, tmp_path)
    assert len(scores) == 3 and all(score == top > 0 for score, top, _ in scores.values()), scores


@pytest.mark.grading
def test_a_blank_student_copy_scores_zero(assigned, tmp_path):
    out, _ = assigned
    scores = _grade(out, out / "student" / NOTEBOOKS[0].name, tmp_path)
    assert len(scores) == 3 and all(score == 0 for score, _, _ in scores.values()), scores


@pytest.mark.grading
def test_one_wrong_answer_fails_exactly_its_check(assigned, tmp_path):
    out, _ = assigned
    wrong = tmp_path / "wrong" / NOTEBOOKS[0].name
    wrong.parent.mkdir()
    nb = _read(out / "autograder" / NOTEBOOKS[0].name)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "ex2_rarest = " in c.source]
    cell.source = re.sub(r"ex2_rarest = .*", 'ex2_rarest = "nodule"  # a wrong answer', cell.source)
    nbformat.write(nb, wrong)
    shutil.copytree(out / "student" / "tests", wrong.parent / "tests")
    scores = _grade(out, wrong, tmp_path)
    failed = {name: s for name, s in scores.items() if s[0] < s[1]}
    assert list(failed) == ["nb00_ex2"], scores
    score, top, output = failed["nb00_ex2"]
    # Its public check (the shape) passed and its hidden one (the name) failed.
    assert (score, top) == (1, 2) and re.search(r"1 result:\s*✅.*2 result:\s*❌.*assert ex2_rarest ==", output, re.S), output
