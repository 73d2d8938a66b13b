"""Real-data figures that the notebooks quote, kept in a committed file that their prose cites.

Run on the phantom (the default), a notebook quotes what its own cells print.
Figures measured on real films cannot be shown that way on a machine without
the data, so they are recorded while ``make test-real`` executes every notebook
on PneumoniaMNIST:

- a cell calls :func:`record` with a key and the figure as it prints it, e.g.
  ``results.record("07.vit_train_auc", runs.summary("train AUC"))``; outside
  ``make test-real`` (``MEDKIT_RESULTS`` unset) this does nothing;
- ``python -m medkit.results`` then adds the recorded figures, with the date,
  the versions and the dataset file's MD5 of each notebook's run, to
  ``docs/results/pneumoniamnist.json`` (a notebook's figures replace all its
  earlier ones; other notebooks' stay);
- the prose quotes a figure followed by its key, ``0.981 ± 0.003 (results:
  `07.vit_train_auc`)``, and a test (:func:`misquoted`) checks that every quoted
  figure is the recorded one.

The module imports no TensorFlow.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import sys
import tempfile
from datetime import date
from importlib import metadata
from pathlib import Path

__all__ = ["ENV", "record", "collect", "citations", "misquoted", "write_json"]

#: The environment variable naming the file that :func:`record` adds to.
ENV = "MEDKIT_RESULTS"
_KEY = r"\d\d\.[a-z0-9_]+"
_CITATION = re.compile(rf"\s*\(results: `({_KEY})`\)")
_PACKAGES = ("numpy", "scikit-learn", "scikit-image", "tensorflow", "keras")


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record(key: str, figure: str) -> None:
    """Record ``figure``, as the notebook prints it, under ``key`` (notebook number, a dot, a name).

    Does nothing unless ``MEDKIT_RESULTS`` names a JSON file (``make test-real`` sets it); a key recorded
    again is replaced.

    Examples
    --------
    >>> record("07.vit_train_auc", "0.981 ± 0.003")  # MEDKIT_RESULTS unset: nothing is written
    """
    if not re.fullmatch(_KEY, str(key)):
        raise ValueError(f"a results key is the notebook's two digits, a dot and a lower-case name, e.g. "
                         f"'07.vit_train_auc'; got {key!r}.")
    if not isinstance(figure, str) or not figure.strip():
        raise ValueError(f"record the figure as the notebook prints it, a non-empty string such as '0.981 ± 0.003'; "
                         f"got {figure!r}.")
    target = os.environ.get(ENV)
    if not target:
        return
    path = Path(target)
    figures = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    figures[key] = figure.strip()
    write_json(path, figures)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict:
    found = {"python": platform.python_version()}
    for name in ("medkit", *_PACKAGES):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def collect(recorded: Path, out: Path, *, dataset: Path) -> dict:
    """Add the figures recorded in ``recorded`` to ``out``, with the date, the versions and ``dataset``'s MD5.

    ``dataset`` is the ``.npz`` file the notebooks ran on (a folder of images gets no MD5). Every notebook that
    recorded a figure has all its figures replaced, and its date, dataset and versions written under
    ``"notebooks"``; the figures of notebooks that recorded nothing this time are kept, so that ``make test-real
    NOTEBOOKS=...`` on a few notebooks updates only theirs.

    Returns what was written. Raises ``FileNotFoundError`` when nothing was recorded.
    """
    recorded, dataset, out = Path(recorded), Path(dataset), Path(out)
    if not recorded.is_file():
        raise FileNotFoundError(f"no figures were recorded at {recorded}: run the notebooks with {ENV} set to it "
                                "(make test-real does).")
    figures = json.loads(recorded.read_text(encoding="utf-8"))
    before = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    ran = sorted({key[:2] for key in figures})
    provenance = {"date": date.today().isoformat(),
                  "dataset": {"file": dataset.name, "md5": _md5(dataset) if dataset.is_file() else None},
                  "versions": _versions()}
    kept = {key: value for key, value in before.get("figures", {}).items() if key[:2] not in ran}
    notebooks = {**before.get("notebooks", {}), **{number: provenance for number in ran}}
    payload = {"notebooks": dict(sorted(notebooks.items())), "figures": dict(sorted({**kept, **figures}.items()))}
    write_json(out, payload)
    return payload


def citations(markdown: str) -> list[tuple[str, str]]:
    """Each ``(results: `key`)`` in ``markdown``, as ``(key, the text before it)``."""
    return [(m.group(1), markdown[:m.start()]) for m in _CITATION.finditer(markdown)]


def misquoted(markdown: str, figures: dict) -> list[str]:
    """What is wrong with the figures ``markdown`` cites: keys not recorded, and quotes that differ from the record.

    Examples
    --------
    >>> misquoted("training AUC 0.981 ± 0.003 (results: `07.vit_train_auc`)", {"07.vit_train_auc": "0.981 ± 0.003"})
    []
    >>> misquoted("training AUC 0.98 (results: `07.vit_train_auc`)", {"07.vit_train_auc": "0.981 ± 0.003"})
    ["07.vit_train_auc: the text before it should end with '0.981 ± 0.003' (the recorded figure)"]
    """
    problems = []
    for key, before in citations(markdown):
        if key not in figures:
            problems.append(f"{key}: not in the results file; run make test-real, or correct the key")
        elif not before.rstrip().endswith(figures[key]):
            problems.append(f"{key}: the text before it should end with {figures[key]!r} (the recorded figure)")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``python -m medkit.results RECORDED OUT --dataset FILE``."""
    parser = argparse.ArgumentParser(prog="python -m medkit.results", description=collect.__doc__.split("\n")[0])
    parser.add_argument("recorded", help="the JSON file the notebooks recorded into (MEDKIT_RESULTS)")
    parser.add_argument("out", help="the results file to write, e.g. docs/results/pneumoniamnist.json")
    parser.add_argument("--dataset", required=True, help="the real data the notebooks ran on (its MD5 is recorded)")
    args = parser.parse_args(argv)
    try:
        payload = collect(Path(args.recorded), Path(args.out), dataset=Path(args.dataset))
    except FileNotFoundError as err:
        print(f"no results written: {err}", file=sys.stderr)
        return 0 if not Path(args.recorded).exists() else 2
    print(f"wrote {len(payload['figures'])} figures to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
