"""Print the numbered notebooks, the slowest first, by the execution times committed in their cells' metadata.

`make test` hands whole files to its two pytest-xdist processes in the order given on its command line
(`--no-loadscope-reorder`). Starting the longest notebooks first leaves short files for the end, so that neither
process waits long for the other (longest-processing-time-first scheduling). A notebook without timings (never
executed with `make notebooks`) counts as the slowest.
"""

import datetime
import json
import sys
from pathlib import Path


def seconds(path: Path) -> float:
    """First cell started to last cell finished, in seconds, from the committed metadata; inf when unknown."""
    stamps = []
    for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
        execution = cell.get("metadata", {}).get("execution", {})
        for key in ("iopub.execute_input", "shell.execute_reply"):
            if key in execution:
                stamps.append(datetime.datetime.fromisoformat(execution[key].replace("Z", "+00:00")))
    return (max(stamps) - min(stamps)).total_seconds() if stamps else float("inf")


def main(folder: str = "notebooks") -> None:
    notebooks = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    print(" ".join(str(p) for p in sorted(notebooks, key=seconds, reverse=True)))


if __name__ == "__main__":
    main(*sys.argv[1:])
