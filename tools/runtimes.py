"""Notebook runtimes as the committed execution metadata shows them, and where the kit states them.

Each notebook's runtime is the time from its first cell starting to its last cell finishing, read from the
timestamps `make notebooks` writes into the cells' metadata (tools/slowest_first.py). The README's table and each
notebook's "**Runtime:**" line must state that figure; `make notebooks` rewrites both with ``--write``, and
tests/test_packaging.py checks that they agree.

    python tools/runtimes.py           # print each notebook's runtime and what the README and header say
    python tools/runtimes.py --write   # put the measured runtimes into the README and the notebook headers

For every notebook over the kit's four-minute aim, the README also lists where the time goes: the sections (the
notebook's "## " headings) whose cells took a minute or more, from the same metadata. ``--write`` rewrites that
list between its two markers, and the same check compares it.
"""

import datetime
import json
import re
import sys
from pathlib import Path

from slowest_first import seconds

ROOT = Path(__file__).resolve().parents[1]
_TIME = r"(?:\d+ min )?\d+ s"
_HEADER = re.compile(r"(\*\*Runtime:\*\*\s+)(?:about |under )?(?:" + _TIME + r"|[\d.]+ minutes|a minute)")
_ROW = re.compile(r"^(\| (\d\d) \|.*\| )(" + _TIME + r")( \|)$", re.M)
# The teaching guide's table: | [03 · Kalman filter](../notebooks/03_kalman_filter.ipynb) | 28 s | ... |
_GUIDE_ROW = re.compile(r"^(\| \[(\d\d) · [^\]]*\]\(\.\./notebooks/\d\d_[^)]*\) \| )(" + _TIME + r")( \|)", re.M)
GUIDE = Path("docs") / "teaching.md"
AIM = 240.0  # seconds: the kit aims at every notebook within four minutes on a 2-core CPU (the README says so)
COSTLY = 60.0  # seconds: a section that takes this long is listed under "where the time goes"
_START, _END = "<!-- where the time goes: tools/runtimes.py --write -->", "<!-- end of where the time goes -->"


def formatted(secs: float) -> str:
    """Seconds as the kit writes them: ``7 s``, ``2 min 54 s``."""
    whole = int(round(secs))
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60} s"


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def measured(root: Path = ROOT) -> dict[str, str]:
    """Notebook number ("00") to its runtime from the committed metadata, formatted."""
    return {path.name[:2]: formatted(seconds(path)) for path in notebooks(root)}


def _cell_seconds(cell: dict) -> float:
    execution = cell.get("metadata", {}).get("execution", {})
    if "iopub.execute_input" not in execution or "shell.execute_reply" not in execution:
        return 0.0
    start, end = (datetime.datetime.fromisoformat(execution[key].replace("Z", "+00:00"))
                  for key in ("iopub.execute_input", "shell.execute_reply"))
    return (end - start).total_seconds()


def sections(path: Path) -> list[tuple[str, float]]:
    """A notebook's sections in order, each its "## " heading and the seconds its code cells took.

    The cells above the first heading count as "(title)". A markdown cell may open several sections; its code
    cells belong to the last one it opens.
    """
    out = [["(title)", 0.0]]
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("## "):
                    out.append([line[3:].strip(), 0.0])
        else:
            out[-1][1] += _cell_seconds(cell)
    return [(title, secs) for title, secs in out]


def where_the_time_goes(root: Path = ROOT) -> str:
    """The README's list: each notebook over the aim, with its sections of a minute or more, the costliest first.

    A sentence that says how many notebooks are over the aim comes first (or that none is).
    """
    lines = []
    for path in notebooks(root):
        total = seconds(path)
        if total <= AIM:
            continue
        costly = sorted((s for s in sections(path) if s[1] >= COSTLY), key=lambda s: -s[1])
        parts = "; ".join(f"{title.replace('|', '/')} ({formatted(secs)})" for title, secs in costly)
        lines.append(f"- **{path.name[:2]}** ({formatted(total)}): {parts or 'no section takes a minute'}")
    if not lines:
        return "Every notebook runs within the four minutes the kit aims at."
    count = ("One notebook takes", "Two notebooks take", "Three notebooks take", "Four notebooks take",
             "Five notebooks take", "Six notebooks take", "Seven notebooks take", "Eight notebooks take")
    opening = count[len(lines) - 1] if len(lines) <= len(count) else f"{len(lines)} notebooks take"
    return (f"{opening} longer than the four minutes the kit aims at. Where their time goes, by section (each "
            "section's code cells, from the same metadata; sections of a minute or more, the costliest first):\n\n"
            + "\n".join(lines))


def _readme_block(text: str) -> str | None:
    if _START not in text or _END not in text:
        return None
    return text.split(_START, 1)[1].split(_END, 1)[0].strip("\n")


def readme_runtimes(root: Path = ROOT) -> dict[str, str]:
    """Notebook number to the runtime the README's table gives."""
    return {m.group(2): m.group(3) for m in _ROW.finditer((root / "README.md").read_text(encoding="utf-8"))}


def guide_runtimes(root: Path = ROOT) -> dict[str, str]:
    """Notebook number to the runtime the teaching guide's table gives (empty if there is no guide)."""
    guide = root / GUIDE
    if not guide.exists():
        return {}
    return {m.group(2): m.group(3) for m in _GUIDE_ROW.finditer(guide.read_text(encoding="utf-8"))}


def header_runtimes(root: Path = ROOT) -> dict[str, str]:
    """Notebook number to what the "**Runtime:**" line of its first cell says (None when it gives no time)."""
    out = {}
    for path in notebooks(root):
        first = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
        m = _HEADER.search(first)
        out[path.name[:2]] = m.group(0)[len(m.group(1)):] if m else None
    return out


def mismatches(root: Path = ROOT) -> list[str]:
    """Every place where the README or a header disagrees with the metadata, as readable lines."""
    truth, readme, headers = measured(root), readme_runtimes(root), header_runtimes(root)
    problems = [f"teaching guide row {number}: {given!r}, metadata {truth.get(number)!r}"
                for number, given in guide_runtimes(root).items() if truth.get(number) != given]
    block = _readme_block((root / "README.md").read_text(encoding="utf-8"))
    if block is not None and block != where_the_time_goes(root):
        problems.append("README's list of where the time goes differs from the metadata (python tools/runtimes.py "
                        "--write rewrites it)")
    for number, runtime in truth.items():
        if readme.get(number) != runtime:
            problems.append(f"README row {number}: {readme.get(number)!r}, metadata {runtime!r}")
        if headers[number] != runtime:
            problems.append(f"notebook {number} header: {headers[number]!r}, metadata {runtime!r}")
    return problems


def write(root: Path = ROOT) -> None:
    """Put the measured runtimes into the README's and the teaching guide's tables and every notebook's header."""
    truth = measured(root)
    readme = root / "README.md"
    text = _ROW.sub(lambda m: m.group(1) + truth.get(m.group(2), m.group(3)) + m.group(4),
                    readme.read_text(encoding="utf-8"))
    if _readme_block(text) is not None:
        before, rest = text.split(_START, 1)
        text = before + _START + "\n" + where_the_time_goes(root) + "\n" + _END + rest.split(_END, 1)[1]
    readme.write_text(text, encoding="utf-8")
    guide = root / GUIDE
    if guide.exists():
        guide.write_text(_GUIDE_ROW.sub(lambda m: m.group(1) + truth.get(m.group(2), m.group(3)) + m.group(4),
                                        guide.read_text(encoding="utf-8")), encoding="utf-8")
    for path in notebooks(root):
        nb = json.loads(path.read_text(encoding="utf-8"))
        source = "".join(nb["cells"][0]["source"])
        runtime = truth[path.name[:2]]
        new = _HEADER.sub(lambda m, runtime=runtime: m.group(1) + runtime, source, count=1)
        if new != source:
            nb["cells"][0]["source"] = new.splitlines(keepends=True)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if "--write" in argv:
        write()
    readme, headers = readme_runtimes(), header_runtimes()
    for number, runtime in measured().items():
        print(f"{number}  metadata {runtime:>12}   README {readme.get(number)!s:>12}   header {headers[number]!s:>12}")
    problems = mismatches()
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
