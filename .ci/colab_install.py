"""Does installing the kit on Colab change any package Colab ships? (`make test-colab`)

Run with the Python of a fresh virtual environment; it works in three steps:

1. ``pip install -e '.[dev]' -c constraints-colab.txt``, then uninstall the kit itself: the environment now
   holds what the kit needs, at the versions Colab ships (or pip fails, and says which version conflicts);
2. record every installed version;
3. ``pip install -e '.[dev]'`` again, without constraints, as a student's ``%pip install`` on Colab would,
   and compare: every package recorded in step 2 must keep its version.

Exit status 0 when nothing changed; 1 with the list of changed packages otherwise.
"""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints-colab.txt"


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--quiet", *args]
    if subprocess.run(command, cwd=ROOT).returncode:
        shown = " ".join(command).replace(" --quiet", "")
        sys.exit(f"pip failed. To see which versions conflict, run without --quiet:\n  {shown}")


def installed() -> dict[str, str]:
    return {canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def colab_versions() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def main() -> int:
    colab = colab_versions()
    pip("install", "-e", ".[dev]", "-c", str(CONSTRAINTS))
    pip("uninstall", "--yes", "medkit")
    before = installed()
    from_colab = sum(colab.get(name) == version for name, version in before.items())
    pip("install", "-e", ".[dev]")
    after = installed()
    changed = [f"{name} {before[name]} -> {after.get(name, 'removed')}" for name in before if after.get(name) != before[name]]
    key = ("tensorflow", "keras", "scikit-learn", "numpy")
    print("Colab's versions kept: " + ", ".join(f"{name} {after[name]}" for name in key if name in after))
    print(f"{from_colab} packages at Colab's versions before installing the kit; "
          f"{len(after) - len(before)} added by it (medkit itself included)")
    if changed:
        print("installing the kit changed what Colab ships:\n  " + "\n  ".join(changed))
        return 1
    print("installing the kit changed none of them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
