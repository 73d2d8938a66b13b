"""Write student copies of the notebooks: solutions removed, outputs cleared.

Instructors run ``make student`` (or ``python -m medkit.student notebooks
build/student``). Every solution (a run of cells tagged ``solution``) is replaced by one empty
code cell, so exercise numbering stays intact, and all outputs are
cleared so that learners run every cell themselves.

Introduced for instructors in the README ("Teaching with the kit").
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["SOLUTION_TAG", "is_solution", "strip_solutions", "write_student_copies", "main"]

#: Cell tag that marks a solution.
SOLUTION_TAG = "solution"

_PLACEHOLDER = "# Your solution here."


def is_solution(cell) -> bool:
    """True when ``cell`` carries the ``solution`` tag."""
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def strip_solutions(nb):
    """A copy of notebook ``nb`` (an ``nbformat`` node) without solutions or outputs.

    A solution is a run of consecutive cells tagged ``solution`` (code and its
    discussion in markdown). Each run becomes one empty code cell, so the
    learner has a place to answer and the exercise numbering stays intact.

    Returns
    -------
    (notebook, int)
        The student notebook and the number of solutions removed.

    Examples
    --------
    >>> from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    >>> answer, why = new_code_cell("x = 1", outputs=[]), new_markdown_cell("Because.")
    >>> answer.metadata["tags"] = why.metadata["tags"] = ["solution"]
    >>> nb = new_notebook(cells=[new_markdown_cell("**Exercise 1**"), answer, why])
    >>> student, removed = strip_solutions(nb)
    >>> removed, [c.source for c in student.cells]
    (1, ['**Exercise 1**', '# Your solution here.'])
    """
    import copy

    import nbformat

    out = copy.deepcopy(nb)
    cells, removed, previous_was_solution = [], 0, False
    for cell in out.cells:
        if is_solution(cell):
            if not previous_was_solution:
                removed += 1
                cells.append(nbformat.v4.new_code_cell(_PLACEHOLDER))
            previous_was_solution = True
            continue
        previous_was_solution = False
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    out.cells = cells
    return out, removed


def write_student_copies(source: Path | str, target: Path | str) -> list[tuple[Path, int]]:
    """Write a student copy of every numbered notebook in ``source`` to ``target``.

    Each file is written to a temporary name and renamed, so an interrupted
    run never leaves a half-written notebook.

    Returns
    -------
    list of (Path, int)
        Each written notebook and how many solutions it lost.
    """
    import nbformat

    source, target = Path(source), Path(target)
    notebooks = sorted(source.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no numbered notebooks (NN_name.ipynb) in {source}.")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        student, removed = strip_solutions(nbformat.read(path, as_version=4))
        tmp = target / f".{path.name}.tmp"
        nbformat.write(student, tmp)
        tmp.replace(target / path.name)
        written.append((target / path.name, removed))
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m medkit.student SOURCE TARGET``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m medkit.student SOURCE_DIR TARGET_DIR", file=sys.stderr)
        return 2
    for path, removed in write_student_copies(*args):
        print(f"{path}: {removed} solutions removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
