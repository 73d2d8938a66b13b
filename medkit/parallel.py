"""Run several worker processes on this machine, and never leave one behind.

Distributed training (``10_scaling_gpus.ipynb``) starts Python processes that
talk to each other on ``127.0.0.1``. Three things go wrong when that is
written by hand in a notebook: a worker waits for a peer that never started
(a wrong port, a crash at import), and the cell hangs; an interrupted cell
leaves processes running that hold ports and memory; and one worker's output
fills its pipe while the cell reads another's, and everything stops.
:func:`run_workers` starts every command at once, writes each one's output to
a file (no pipe to fill), prints a line as each one ends, and kills all of
them (with anything they started) when one overruns the time limit, when the
cell is interrupted, or on any error. :func:`free_ports` finds ports to give
them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finished", "free_ports", "run_workers", "python_command", "still_running"]


@dataclass(frozen=True)
class Finished:
    """How one worker ended.

    Attributes
    ----------
    name : str
        The name it was given (``worker 0`` unless named).
    returncode : int
        Its exit status (0: success; negative: killed by that signal).
    output : str
        Everything it wrote to stdout and stderr, interleaved.
    seconds : float
        Wall-clock time from the start of all workers to its end.
    pid : int
        Its process id while it ran.
    """

    name: str
    returncode: int
    output: str
    seconds: float
    pid: int

    @property
    def ok(self) -> bool:
        """Whether it exited with status 0."""
        return self.returncode == 0

    def lines(self, prefix: str = "") -> list[str]:
        """Its output lines that start with ``prefix`` (all lines by default)."""
        return [line for line in self.output.splitlines() if line.startswith(prefix)]


def still_running(finished) -> list[str]:
    """The names of the workers in ``finished`` whose process still exists (none, after :func:`run_workers`).

    Examples
    --------
    >>> still_running(run_workers([python_command("-c", "0")], timeout=60, verbose=False))
    []
    """
    left = []
    for f in finished:
        try:
            os.kill(f.pid, 0)  # signal 0 only asks whether the process exists
        except ProcessLookupError:
            continue
        except PermissionError:  # it exists, under another user: its pid was reused
            continue
        left.append(f.name)
    return left


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports on ``host`` that nothing listens on now.

    The ports are held open together while they are chosen, so they are
    distinct; another program could still take one before the workers bind
    it, which on a laptop is rare.

    Examples
    --------
    >>> ports = free_ports(2)
    >>> len(set(ports)), all(1024 <= p < 65536 for p in ports)
    (2, True)
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of ports; got {n!r}.")
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def python_command(script: str | Path, *args) -> list[str]:
    """The command that runs ``script`` with this kernel's Python and ``args``.

    Examples
    --------
    >>> python_command("worker.py", 0, "a")[1:]
    ['worker.py', '0', 'a']
    """
    return [sys.executable, str(script), *(str(a) for a in args)]


def _kill(proc: subprocess.Popen) -> None:
    # Each worker leads its own process group, so this also stops what it started.
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    proc.wait()


def run_workers(commands, *, timeout: float, names=None, env: dict | None = None, cwd: str | Path | None = None,
                verbose: bool = True) -> list[Finished]:
    """Run ``commands`` at once and wait for all of them, killing all on any failure to finish.

    Parameters
    ----------
    commands : sequence of list of str
        One command per worker, e.g. from :func:`python_command`.
    timeout : float
        Seconds for all of them together. When it runs out, every worker
        still running is killed and :class:`TimeoutError` is raised with the
        end of each one's output.
    names : sequence of str, optional
        A name for each worker in messages (default ``worker 0``, ``worker 1``...).
    env : dict, optional
        Variables added to this process's environment for every worker.
    cwd : str or Path, optional
        Working folder of the workers.
    verbose : bool, default True
        Print one line as each worker ends: its name, status and time.

    Returns
    -------
    list of Finished
        In the order of ``commands``. A worker that fails does not raise:
        whether a peer's failure stops the others is often the lesson; read
        ``returncode`` and ``output``.

    Raises
    ------
    TimeoutError
        When the workers did not all end within ``timeout``.

    Examples
    --------
    >>> done = run_workers([python_command("-c", "print('hi')")], timeout=60, verbose=False)
    >>> done[0].ok, done[0].output
    (True, 'hi\\n')
    """
    commands = [list(c) for c in commands]
    if not commands or not all(commands):
        raise ValueError("commands must be a non-empty list of commands, each a non-empty list of strings, "
                         "e.g. [python_command('worker.py', 0), python_command('worker.py', 1)].")
    names = list(names) if names is not None else [f"worker {i}" for i in range(len(commands))]
    if len(names) != len(commands):
        raise ValueError(f"got {len(names)} names for {len(commands)} commands; give one name per command.")
    if timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}.")
    full_env = {**os.environ, **(env or {})}
    with tempfile.TemporaryDirectory(prefix="medkit-workers-") as logs, contextlib.ExitStack() as stack:
        files = [stack.enter_context(open(Path(logs) / f"{i}.log", "w+", encoding="utf-8", errors="replace"))
                 for i in range(len(commands))]
        procs: list[subprocess.Popen] = []
        start = time.monotonic()
        ended: dict[int, float] = {}
        try:
            for command, log in zip(commands, files):
                procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                              env=full_env, cwd=cwd, start_new_session=True))
            while len(ended) < len(procs):
                for i, proc in enumerate(procs):
                    if i not in ended and proc.poll() is not None:
                        ended[i] = time.monotonic() - start
                        if verbose:
                            status = "finished" if proc.returncode == 0 else f"exited with status {proc.returncode}"
                            print(f"{names[i]} {status} after {ended[i]:.0f} s", flush=True)
                if time.monotonic() - start > timeout:
                    running = [names[i] for i in range(len(procs)) if i not in ended]
                    for proc in procs:
                        _kill(proc)
                    tails = []
                    for name, log in zip(names, files):
                        log.seek(0)
                        tails.append(f"--- {name} (last lines) ---\n" + "\n".join(log.read().splitlines()[-5:]))
                    raise TimeoutError(
                        f"{', '.join(running)} still running after {timeout:g} s; every worker was stopped. A worker "
                        "that waits for a peer which never came (a wrong port, a crashed peer) waits until killed. "
                        "Their output ends:\n" + "\n".join(tails))
                time.sleep(0.1)
        finally:
            for proc in procs:
                _kill(proc)
        results = []
        for i, (name, log) in enumerate(zip(names, files)):
            log.seek(0)
            results.append(Finished(name, procs[i].returncode, log.read(), ended.get(i, time.monotonic() - start),
                                    procs[i].pid))
    return results
