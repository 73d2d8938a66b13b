"""Run a web app (FastAPI, Gradio, any ASGI app) on this machine for the length of a ``with`` block.

Notebook 14 serves a model over HTTP and tests it from the same kernel: the
server runs in a thread of the notebook's process, listens on the loopback
address only, and stops when the block ends, whether it ends normally or on
an error. A server that is still running when the process ends stops with
it (the thread is a daemon), so none is ever left behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time

__all__ = ["running", "live", "port_open"]

_LIVE: dict[str, threading.Thread] = {}


def live() -> list[str]:
    """The URLs of the servers :func:`running` has started and not yet stopped."""
    return [url for url, thread in _LIVE.items() if thread.is_alive()]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def running(app, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0):
    """Serve ``app`` with uvicorn in a background thread; yields its base URL.

    Parameters
    ----------
    app : ASGI application
        E.g. a ``fastapi.FastAPI``, with a Gradio app mounted on it.
    host : str, default "127.0.0.1"
        A loopback address: this helper refuses to serve to the network.
    port : int, default 0
        0 lets the system pick a free port; the URL says which.
    timeout : float, default 30
        Seconds to wait for the server to start, and then to stop.

    Yields
    ------
    str
        ``http://127.0.0.1:<port>``. Introduced in ``14_serving_and_monitoring.ipynb``.

    Examples
    --------
    >>> from fastapi import FastAPI
    >>> import httpx
    >>> app = FastAPI()
    >>> @app.get("/ping")
    ... def ping():
    ...     return {"ok": True}
    >>> with running(app) as url:
    ...     httpx.get(f"{url}/ping").json()
    {'ok': True}
    >>> live()
    []
    """
    import uvicorn

    if not _loopback(host):
        raise ValueError(f"medkit.serve listens on this machine only (a loopback address such as 127.0.0.1); "
                         f"got host={host!r}. Exposing a model to a network needs authentication and TLS, "
                         "which a teaching server does not have.")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    failure = []

    def serve():
        try:
            server.run()
        except BaseException as error:  # e.g. the port is taken (uvicorn exits with SystemExit)
            failure.append(error)

    thread = threading.Thread(target=serve, name=f"medkit-serve-{host}:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the server did not start on {host}:{port} (is the port in use? port=0 picks a "
                               f"free one){': ' + repr(failure[0]) if failure else ''}")
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout)
            raise TimeoutError(f"the server did not start on {host}:{port} within {timeout} s")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()
    url = f"http://{host}:{bound[1]}"
    _LIVE[url] = thread
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():  # a request that does not end: close its connections too
            server.force_exit = True
            thread.join(timeout)
        _LIVE.pop(url, None)
        if thread.is_alive():
            raise RuntimeError(f"the server at {url} did not stop within {2 * timeout} s")


def port_open(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts connections at ``url``'s host and port (``http://host:port``)."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(timeout)
        return probe.connect_ex((host, int(port))) == 0
