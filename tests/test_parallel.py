"""medkit.parallel: workers run together, their output is kept, and none is left behind."""

import sys
import time
from pathlib import Path

import pytest

from medkit import parallel
from medkit.parallel import python_command, run_workers

# A worker that starts a child (as a TensorFlow worker starts threads and helpers), writes both pids, then sleeps.
SLEEPER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
open(sys.argv[1], "w").write(f"{child.pid}\\n")
time.sleep(120)
"""


def gone(pid: int) -> bool:
    # A killed process may linger as a zombie until its parent reaps it; that is gone too.
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return True
    state = [line for line in status.read_text().splitlines() if line.startswith("State:")]
    return bool(state) and state[0].split()[1] in ("Z", "X")


def wait_for(path: Path, seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < end, f"{path} was not written within {seconds} s"
        time.sleep(0.05)


def test_workers_run_together_and_keep_their_output_in_order(capsys):
    code = "import sys, time; time.sleep(float(sys.argv[1])); print('slept', sys.argv[1]); sys.exit(int(sys.argv[2]))"
    done = run_workers([python_command("-c", code, 1.0, 0), python_command("-c", code, 0.0, 3)], timeout=60,
                       names=["slow", "failing"])
    assert [d.name for d in done] == ["slow", "failing"]
    assert [d.returncode for d in done] == [0, 3] and [d.ok for d in done] == [True, False]
    assert done[0].output == "slept 1.0\n" and done[1].lines("slept") == ["slept 0.0"]
    # The failing worker did not stop the other, and each end was reported as it happened.
    assert done[1].seconds < done[0].seconds
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("failing exited with status 3 after") and printed[1].startswith("slow finished after")


def test_environment_and_folder_reach_the_workers(tmp_path):
    code = "import os; print(os.environ['MEDKIT_TEST_VALUE'], os.getcwd())"
    (done,) = run_workers([python_command("-c", code)], timeout=60, env={"MEDKIT_TEST_VALUE": "42"}, cwd=tmp_path,
                          verbose=False)
    assert done.output.split() == ["42", str(tmp_path)]


def test_a_worker_over_time_is_killed_with_its_children(tmp_path):
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    with pytest.raises(TimeoutError, match="still running after 3 s") as err:
        run_workers([python_command(script, tmp_path / "child.pid")], timeout=3, verbose=False)
    child = int((tmp_path / "child.pid").read_text())
    assert str(child) in str(err.value), "the error shows the end of the worker's output"
    deadline = time.monotonic() + 10
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(child)


def test_an_interrupted_wait_kills_every_worker(tmp_path, monkeypatch):
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    real_sleep = time.sleep

    def interrupt_once_started(seconds):
        # Stands in for the learner pressing "interrupt the kernel" while the cell waits.
        if (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text().strip():
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(parallel.time, "sleep", interrupt_once_started)
    with pytest.raises(KeyboardInterrupt):
        run_workers([python_command(script, tmp_path / "child.pid")], timeout=60, verbose=False)
    wait_for(tmp_path / "child.pid")
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while not gone(child) and time.monotonic() < deadline:
        real_sleep(0.05)
    assert gone(child)


def test_free_ports_are_distinct_and_bindable():
    import socket

    ports = parallel.free_ports(3)
    assert len(set(ports)) == 3
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


@pytest.mark.parametrize("commands, kwargs, message", [
    ([], {"timeout": 10}, "non-empty list of commands"),
    ([[]], {"timeout": 10}, "non-empty list of commands"),
    ([[sys.executable, "-c", "0"]], {"timeout": 0}, "timeout must be a positive"),
    ([[sys.executable, "-c", "0"]], {"timeout": 10, "names": ["a", "b"]}, "2 names for 1 commands"),
])
def test_bad_arguments_say_what_to_pass(commands, kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_workers(commands, **kwargs)
    with pytest.raises(ValueError, match="positive number of ports"):
        parallel.free_ports(0)

