"""Serve a validated film classifier over HTTP, refuse what it was not validated on, and count every request.

Notebook 14 serves a model and tests it from the same kernel. Three pieces:

- :func:`running` runs any ASGI app (FastAPI, Gradio) with uvicorn in a
  thread of this process, on the loopback address only, for the length of a
  ``with`` block, and stops it when the block ends, normally or on an error.
  A server still running when the process ends stops with it (the thread is
  a daemon), so none is ever left behind.
- :func:`read_upload` turns an uploaded file into the film the model reads,
  or refuses it with :class:`UploadRefused`, which carries an HTTP status and
  a message saying what was wrong and what to send. Nothing is decoded before
  the file has shown, from its header alone, that it is what the model was
  validated on (:class:`IntendedUse`): a PNG's size, bit depth and colour type
  from its first chunk; a DICOM file's transfer syntax, size, frames,
  samples, bits, photometric interpretation, modality, body part and view
  from its data set before the pixel data. So an upload can cost the server
  no more memory than its own size: a 76 KB PNG that claims 9000 x 9000
  pixels, or a DICOM data set deflated 1000 to 1, is refused before it is
  inflated. The API and the web demo both call it, so they refuse the same
  files with the same words.
- :func:`make_app` builds the FastAPI service around them: a request size
  limit enforced on the bytes as they arrive (not on what Content-Length
  claims), ``/predict``, ``/health`` and Prometheus metrics that count every
  request to ``/predict`` by the status it was answered with, whatever the
  outcome, including unexpected errors and clients that leave.

:func:`peak_memory` measures what a block of code costs the process in
resident memory, to check the second point.
"""

import contextlib
import io
import ipaddress
import re
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["running", "live", "port_open", "IntendedUse", "UploadRefused", "read_upload", "make_app", "MAX_BYTES",
           "peak_memory"]

_LIVE: dict[str, threading.Thread] = {}

#: The largest upload :func:`read_upload` and :func:`make_app` accept by default, in bytes (1 MiB). A 32 x 32 px
#: film is under 2 KB as PNG and under 5 KB as DICOM; an archive's full-size chest film (3000 x 3000 px, 16 bits)
#: is about 18 MB, so a service for such films raises it.
MAX_BYTES = 1 << 20


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


@dataclass(frozen=True)
class IntendedUse:
    """What a film classifier was validated on, and so what its service accepts.

    The service refuses everything else rather than resize, convert or
    guess: a film outside the intended use would be scored on pixels nobody
    validated. The model card states the same text (:meth:`describe`).

    Parameters
    ----------
    shape : (int, int)
        The film's rows and columns in pixels, e.g. ``(32, 32)``.
    modalities : tuple of str, default ("DX", "CR")
        DICOM Modality (0008,0060): digital radiography, computed radiography.
    body_parts : tuple of str, default ("CHEST",)
        DICOM Body Part Examined (0018,0015).
    views : tuple of str, default ("PA", "AP")
        DICOM View Position (0018,5101): posteroanterior, anteroposterior.

    Examples
    --------
    >>> use = IntendedUse((32, 32))
    >>> print(use.describe())
    radiographs (DICOM Modality DX or CR, Body Part Examined CHEST, View Position PA or AP), 32 x 32 px, \
one grey channel: 8-bit grey PNG, or uncompressed DICOM (MONOCHROME2 or MONOCHROME1, 8 or 16 bits allocated, one \
frame); nothing is resized or converted
    """

    shape: tuple[int, int]
    modalities: tuple[str, ...] = ("DX", "CR")
    body_parts: tuple[str, ...] = ("CHEST",)
    views: tuple[str, ...] = ("PA", "AP")

    def __post_init__(self):
        shape = tuple(self.shape)
        if len(shape) != 2 or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
            raise ValueError(f"shape is a film's (rows, columns) in pixels, e.g. (32, 32); got {self.shape!r}.")
        object.__setattr__(self, "shape", tuple(int(n) for n in shape))
        for name in ("modalities", "body_parts", "views"):
            values = getattr(self, name)
            if isinstance(values, str) or not values:
                raise ValueError(f"{name} is a non-empty tuple of DICOM codes, e.g. ('PA', 'AP'); got {values!r}.")
            object.__setattr__(self, name, tuple(str(v).upper() for v in values))

    def describe(self) -> str:
        """One sentence for a model card or an error message."""
        rows, columns = self.shape
        return (f"radiographs (DICOM Modality {' or '.join(self.modalities)}, Body Part Examined "
                f"{' or '.join(self.body_parts)}, View Position {' or '.join(self.views)}), {columns} x {rows} px, "
                "one grey channel: 8-bit grey PNG, or uncompressed DICOM (MONOCHROME2 or MONOCHROME1, 8 or 16 bits "
                "allocated, one frame); nothing is resized or converted")

    def as_dict(self) -> dict:
        """The same, for JSON (``/health``)."""
        return {"rows": self.shape[0], "columns": self.shape[1], "formats": ["PNG (8-bit grey)", "DICOM (uncompressed)"],
                "modalities": list(self.modalities), "body_parts": list(self.body_parts), "views": list(self.views)}


class UploadRefused(ValueError):
    """An upload the service will not score: ``status`` is the HTTP status to answer, the message says why.

    413: too large; 415: not a format the service reads (not PNG or DICOM,
    JPEG, compressed DICOM pixel data); 422: readable, but not a film the
    model was validated on (size, colour, frames, modality, body part, view)
    or damaged. Introduced in ``14_serving_and_monitoring.ipynb``.
    """

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = int(status)
        self.message = message


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR = {0: "grey", 2: "colour (RGB)", 3: "palette colour", 4: "grey with transparency (alpha)",
               6: "colour with transparency (RGBA)"}
_SEND = "Send one film as an 8-bit grey-scale PNG or an uncompressed DICOM file"


def _too_large(max_bytes: int) -> str:
    return (f"the upload is larger than this service's limit of {max_bytes:,} bytes ({max_bytes / 2**20:.3g} MiB). "
            f"{_SEND}; a film of the size this model reads is far smaller than the limit.")


def _read_bounded(upload, max_bytes: int) -> bytes:
    """The upload's bytes, reading at most ``max_bytes + 1`` of them from a stream or a file."""
    if isinstance(upload, (bytes, bytearray, memoryview)):
        raw = bytes(upload)
    elif isinstance(upload, (str, Path)):
        with open(upload, "rb") as stream:
            raw = stream.read(max_bytes + 1)
    elif hasattr(upload, "read"):
        raw = upload.read(max_bytes + 1)
    else:
        raise TypeError(f"read_upload takes the upload's bytes, a binary stream or a file path; got "
                        f"{type(upload).__name__}.")
    if len(raw) > max_bytes:
        raise UploadRefused(413, _too_large(max_bytes))
    return raw


def _png_film(raw: bytes, use: IntendedUse) -> np.ndarray:
    """A PNG's film, its header checked before a pixel is inflated (PNG specification, sections 5.3 and 11.2.2)."""
    from PIL import Image

    rows, columns = use.shape
    kept, position, ended = [_PNG_SIGNATURE], len(_PNG_SIGNATURE), False
    while position + 8 <= len(raw) and not ended:  # each chunk: length (4 bytes), type (4), data, CRC (4)
        length, kind = struct.unpack(">I4s", raw[position:position + 8])
        chunk = raw[position:position + 12 + length]
        if len(chunk) < 12 + length:
            break
        if position == len(_PNG_SIGNATURE):  # the first chunk must be IHDR: width, height, bit depth, colour type
            if kind != b"IHDR" or length != 13:
                raise UploadRefused(422, f"a damaged PNG: its first chunk is {kind!r}, not the 13-byte IHDR header "
                                         f"the format requires. {_SEND}.")
            width, height, depth, colour = struct.unpack(">IIBB", chunk[8:18])
            if (height, width) != (rows, columns):
                raise UploadRefused(422, f"the film is {width} x {height} px; this model reads {columns} x {rows} px "
                                         "films, and the service does not resize. Resize it on your side.")
            if (depth, colour) != (8, 0):
                raise UploadRefused(422, f"the film is a PNG in {_PNG_COLOUR.get(colour, f'colour type {colour}')}, "
                                         f"{depth} bits per sample; this model reads 8-bit grey-scale films (PNG colour "
                                         "type 0, PIL mode 'L'). Convert it on your side, e.g. Image.convert('L').")
        # Only the header and the pixels go on to the decoder: text (zTXt, iTXt) and colour-profile (iCCP) chunks
        # are inflated as the file is opened, and say nothing about the grey levels.
        if kind in (b"IHDR", b"IDAT", b"IEND"):
            kept.append(chunk)
        ended = kind == b"IEND"
        position += 12 + length
    if not ended:
        raise UploadRefused(422, f"a truncated PNG: the file ends at byte {len(raw):,} before its IEND chunk. "
                                 "Send the whole file.")
    try:
        image = Image.open(io.BytesIO(b"".join(kept)), formats=["PNG"])  # reads the header only
        if image.size != (columns, rows) or image.mode != "L":  # the header read above says so: check PIL agrees
            raise UploadRefused(422, f"the PNG decodes as a {image.size[0]} x {image.size[1]} px film in mode "
                                     f"{image.mode!r}; this model reads {columns} x {rows} px films in mode 'L'.")
        image.load()  # the decoder stops when the film's rows are full, however much compressed data follows
        film = np.asarray(image, np.float32) / 255.0
    except UploadRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UploadRefused(413, f"the PNG would decode to too many pixels ({error}). {_SEND} of "
                                 f"{columns} x {rows} px.") from None
    except Exception as error:  # Pillow's errors for damaged data: OSError, SyntaxError, ValueError, zlib.error
        raise UploadRefused(422, f"a damaged PNG: its pixels cannot be decoded ({type(error).__name__}: {error}). "
                                 "Send the whole, undamaged file.") from None
    return film


_DICOM_CODES = (("Modality", "(0008,0060)", "modalities"), ("BodyPartExamined", "(0018,0015)", "body_parts"),
                ("ViewPosition", "(0018,5101)", "views"))


def _dicom_film(raw: bytes, use: IntendedUse, max_bytes: int) -> np.ndarray:
    """A DICOM Part 10 file's film, its header checked against ``use`` before the pixel data is read (PS3.10, PS3.5)."""
    import pydicom
    from pydicom.filereader import read_dataset, read_preamble
    from pydicom.uid import ExplicitVRLittleEndian, UncompressedTransferSyntaxes

    from medkit.data.dicom import PHOTOMETRIC, read_film

    rows, columns = use.shape
    stream = io.BytesIO(raw)
    try:
        read_preamble(stream, False)
        # The file meta group (0002,xxxx) is always explicit VR little endian, and says how the rest is encoded.
        meta = pydicom.dataset.FileMetaDataset(read_dataset(stream, False, True, stop_when=lambda tag, vr, n: tag >> 16 != 2))
        syntax = meta.get("TransferSyntaxUID")
    except Exception as error:
        raise UploadRefused(422, f"a damaged DICOM file: its file meta information cannot be read "
                                 f"({type(error).__name__}: {error}). {_SEND}.") from None
    if syntax is None:
        raise UploadRefused(422, f"a DICOM file without a Transfer Syntax UID (0002,0010) in its file meta information, "
                                 f"so its data set cannot be read. {_SEND}.")
    if syntax not in UncompressedTransferSyntaxes:
        raise UploadRefused(415, f"the DICOM pixel data are compressed ({syntax.name}); this service reads "
                                 "uncompressed pixel data only (explicit or implicit VR little endian, or deflated). "
                                 "Send the film uncompressed (e.g. pydicom's Dataset.decompress(), or dcmdjpeg).")
    body = raw[stream.tell():]
    if syntax.is_deflated:  # PS3.5 A.5: the whole data set is deflated. Inflate no more than an uncompressed upload
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, max_bytes + 1)
        except zlib.error as error:
            raise UploadRefused(422, f"a damaged DICOM file: its deflated data set cannot be inflated ({error}). "
                                     f"{_SEND}.") from None
        if len(body) > max_bytes:
            raise UploadRefused(413, f"the deflated DICOM data set inflates to more than this service's limit of "
                                     f"{max_bytes:,} bytes. {_SEND}; a film of the size this model reads is far smaller.")
        meta.TransferSyntaxUID = ExplicitVRLittleEndian  # what the inflated bytes now are
    implicit, little = syntax.is_implicit_VR, syntax.is_little_endian

    def data_set(stop_before_pixels):
        ds = read_dataset(io.BytesIO(body), implicit, little,
                          stop_when=(lambda tag, vr, n: tag == 0x7FE00010) if stop_before_pixels else None)
        ds.file_meta = meta
        return ds

    try:
        header = data_set(stop_before_pixels=True)
        frames = int(header.get("NumberOfFrames") or 1)
        samples, bits = int(header.get("SamplesPerPixel", 1)), header.get("BitsAllocated")
        photometric, size = header.get("PhotometricInterpretation"), (header.get("Rows"), header.get("Columns"))
        codes = {name: str(header.get(name) or "").strip().upper() for name, _, _ in _DICOM_CODES}
    except Exception as error:
        raise UploadRefused(422, f"a damaged DICOM file: its data set cannot be read ({type(error).__name__}: "
                                 f"{error}). {_SEND}.") from None
    readable = []  # what the model cannot read at all
    if frames != 1:
        readable.append(f"it holds {frames} frames (Number of Frames); this model reads one film per file: send "
                        "each frame as a file of its own")
    if samples != 1 or photometric not in PHOTOMETRIC:
        readable.append(f"it is {photometric!r} with {samples} sample(s) per pixel; this model reads grey films "
                        f"({' or '.join(PHOTOMETRIC)}, 1 sample per pixel): convert colour to grey on your side")
    if bits not in (8, 16):
        readable.append(f"its Bits Allocated is {bits!r}; this service reads 8 or 16")
    if size != (rows, columns):
        readable.append(f"the film is {size[1]} x {size[0]} px (Columns x Rows); this model reads {columns} x {rows} "
                        "px films, and the service does not resize: resize it on your side")
    if readable:
        raise UploadRefused(422, "this DICOM file cannot be scored: " + "; ".join(readable) + ".")
    outside = [f"its {name} {tag} is {codes[name] or 'missing'}, expected {' or '.join(getattr(use, field))}"
               for name, tag, field in _DICOM_CODES if codes[name] not in getattr(use, field)]
    if outside:
        raise UploadRefused(422, "this DICOM file is outside the model's intended use: " + "; ".join(outside) +
                                 f". The model is validated only on {use.describe()}. Send such a film; a file "
                                 "that leaves out these elements cannot be checked, so it is refused.")
    needed = rows * columns * bits // 8
    try:
        ds = data_set(stop_before_pixels=False)
        stored = len(ds.PixelData) if "PixelData" in ds else 0
    except Exception as error:
        raise UploadRefused(422, f"a damaged DICOM file: its pixel data cannot be read ({type(error).__name__}: "
                                 f"{error}). Send the whole file.") from None
    if stored < needed:
        raise UploadRefused(422, f"a truncated DICOM file: its pixel data hold {stored:,} bytes, and a {columns} x "
                                 f"{rows} px film of {bits} bits needs {needed:,}. Send the whole file.")
    try:
        film = read_film(ds)
    except ValueError as error:  # read_film says what it refuses, and why
        raise UploadRefused(422, f"this DICOM file cannot be read as a film: {error}") from None
    except Exception as error:
        raise UploadRefused(422, f"a DICOM film that cannot be decoded ({type(error).__name__}: {error}). "
                                 f"{_SEND}.") from None
    return film


def read_upload(upload, use: IntendedUse, *, max_bytes: int = MAX_BYTES) -> np.ndarray:
    """The film in an uploaded file, or :class:`UploadRefused` saying what was wrong and what to send.

    The file is recognised by its content, never by its name or content
    type: a DICOM Part 10 file by ``DICM`` after a 128-byte preamble, a PNG
    by its 8-byte signature. Everything the intended use constrains is
    checked from the header, before any pixel is decoded or inflated, so
    that the work and memory spent on an upload stay in proportion to
    ``max_bytes`` whatever the file claims. Accepted: an 8-bit grey PNG of
    ``use.shape``, or a DICOM file with uncompressed (or deflated) pixel
    data, one frame, one sample per pixel, MONOCHROME1 or MONOCHROME2, of
    ``use.shape``, whose Modality, Body Part Examined and View Position are
    in ``use``; it is read with notebook 13's ``medkit.data.dicom.read_film``.
    JPEG is refused: it is lossy, so its grey levels are not the ones the
    model was validated on.

    Parameters
    ----------
    upload : bytes, binary stream or path
        The file; at most ``max_bytes + 1`` bytes of a stream are read.
    use : IntendedUse
        What the model was validated on.
    max_bytes : int, default MAX_BYTES (1 MiB)
        The largest file, and the most a deflated DICOM data set may inflate to.

    Returns
    -------
    ndarray, float32, shape use.shape, in [0, 1]
        Introduced in ``14_serving_and_monitoring.ipynb``.

    Raises
    ------
    UploadRefused
        With ``status`` 413, 415 or 422 and a message naming what was wrong and what to send.

    Examples
    --------
    >>> from PIL import Image
    >>> use = IntendedUse((32, 32))
    >>> grey = io.BytesIO(); Image.new("L", (32, 32), 128).save(grey, format="PNG")
    >>> read_upload(grey.getvalue(), use).shape
    (32, 32)
    >>> jpeg = io.BytesIO(); Image.new("L", (32, 32), 128).save(jpeg, format="JPEG")
    >>> try:
    ...     read_upload(jpeg.getvalue(), use)
    ... except UploadRefused as refused:
    ...     print(refused.status, str(refused).split(":")[0])
    415 a JPEG file
    """
    if not isinstance(use, IntendedUse):
        raise TypeError(f"use is a medkit.serve.IntendedUse, e.g. IntendedUse((32, 32)); got {type(use).__name__}.")
    raw = _read_bounded(upload, max_bytes)
    if raw[128:132] == b"DICM":  # DICOM Part 10: a 128-byte preamble, then the magic word
        film = _dicom_film(raw, use, max_bytes)
    elif raw.startswith(_PNG_SIGNATURE):
        film = _png_film(raw, use)
    elif raw.startswith(b"\xff\xd8\xff"):
        raise UploadRefused(415, "a JPEG file: JPEG compression is lossy and changes the grey levels, and this model "
                                 f"was validated on lossless films only. {_SEND}, from the original pixels.")
    elif not raw:
        raise UploadRefused(415, f"the upload is empty. {_SEND}.")
    else:
        raise UploadRefused(415, "not a film this service reads: neither a PNG (its 8-byte signature) nor a DICOM "
                                 f"Part 10 file ('DICM' at byte 128). {_SEND}.")
    if film.shape != use.shape:  # read_film's answer, checked against the header read above
        raise UploadRefused(422, f"the film decodes to {film.shape[1]} x {film.shape[0]} px; this model reads "
                                 f"{use.shape[1]} x {use.shape[0]} px films.")
    return film


class _Guard:
    """ASGI middleware: a limit on every request body, and every request to ``path`` counted and timed.

    The limit is enforced on the bytes as they arrive, whatever the
    Content-Length header says: a declared length over the limit is refused
    before a byte is read, and a body that passes the limit (with the header
    missing, or lying) is refused as soon as it does, with
    ``HTTPException(413)``, which the app answers (FastAPI's own
    ``max_body_size`` does the same, but answers "Content Too Large" without
    saying the limit). The count is taken when the answer starts, before the
    client can read it, so a client that reads ``/metrics`` after its answers
    finds them all; a request that raises before answering is counted as the
    500 the server then sends, and one whose client leaves before its answer
    as 499 (the code nginx logs for it): the total is the number of requests.
    """

    def __init__(self, app, *, max_bytes, requests, latency, path):
        self.app, self.max_bytes, self.requests, self.latency, self.path = app, max_bytes, requests, latency, path

    async def __call__(self, scope, receive, send):
        from starlette.datastructures import Headers
        from starlette.exceptions import HTTPException
        from starlette.responses import JSONResponse

        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        watched = scope["path"].rstrip("/") == self.path
        declared = Headers(scope=scope).get("content-length", "")
        declared = int(declared) if declared.isdigit() else None
        start, counted, state = time.perf_counter(), [], {"received": 0, "left": False, "started": False}
        too_large = HTTPException(413, _too_large(self.max_bytes))

        def count(status):
            if watched and not counted:
                counted.append(status)
                self.requests.labels(status=str(status)).inc()
                self.latency.observe(time.perf_counter() - start)

        async def limited_receive():
            if declared is not None and declared > self.max_bytes:
                raise too_large
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    raise too_large
            elif message["type"] == "http.disconnect":
                state["left"] = True
            return message

        async def watched_send(message):
            if message["type"] == "http.response.start":  # an answer to a client that left reaches nobody: 499
                state["started"] = True
                count(499 if state["left"] else message["status"])
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except HTTPException as error:  # the limit, raised where nothing inside answered it
            if error is not too_large or state["started"]:
                raise
            await JSONResponse({"detail": error.detail}, status_code=413)(scope, receive, watched_send)
        finally:  # an exception the server will answer 500, or a client that left
            count(499 if state["left"] else 500)


def make_app(model, threshold: float, model_id: str, *, use: IntendedUse | None = None, max_bytes: int = MAX_BYTES):
    """A FastAPI service for a validated film classifier: ``/predict``, ``/health`` and ``/metrics``.

    ``POST /predict`` takes one film as a multipart upload in a field named
    ``file`` (``curl -F file=@film.png``) and answers JSON: the probability,
    the decision at ``threshold``, the threshold and the model's version.
    What it refuses, it refuses through :func:`read_upload` with a 4xx status
    and a message ``{"detail": ...}`` saying what was wrong and what to send.
    Every request body is limited to ``max_bytes`` as its bytes arrive: a
    larger body is answered 413 when its Content-Length says so, or as soon
    as its bytes pass the limit when the header is missing or lies. The
    Prometheus registry is the app's own: ``medkit_requests_total`` by status
    (every request to ``/predict``, see :class:`_Guard`),
    ``medkit_request_seconds`` (time to the start of the
    answer, for every request) and ``medkit_score`` (the probabilities
    answered), mounted at ``/metrics``.

    Parameters
    ----------
    model : object with ``predict`` and ``input_shape``
        E.g. a :class:`medkit.deploy.LiteRT`: ``predict`` takes (N, H, W, 1)
        floats in [0, 1] and returns (N, 1) probabilities, from many threads
        at once (FastAPI runs each request in a thread pool).
    threshold : float
        The operating threshold chosen on validation.
    model_id : str
        The model's version (e.g. the start of its file's SHA-256), in every answer.
    use : IntendedUse, optional
        Defaults to ``IntendedUse(model.input_shape[:2])``; its shape must be the model's.
    max_bytes : int, default MAX_BYTES (1 MiB)
        The largest request body, and the most a deflated DICOM data set may inflate to.

    Returns
    -------
    fastapi.FastAPI
        With ``app.state.use``, ``app.state.registry`` and ``app.state.max_bytes``.
        Introduced in ``14_serving_and_monitoring.ipynb``.

    Examples
    --------
    >>> from fastapi.testclient import TestClient
    >>> class Half:  # a stand-in model: every film scores 0.5
    ...     input_shape = (32, 32, 1)
    ...     def predict(self, films):
    ...         return np.full((len(films), 1), 0.5, np.float32)
    >>> client = TestClient(make_app(Half(), 0.4, "demo"))
    >>> client.post("/predict", files={"file": ("film", b"%PDF-1.7")}).status_code
    415
    >>> sorted(client.get("/health").json())
    ['input', 'intended_use', 'max_bytes', 'model', 'status', 'threshold']
    """
    from fastapi import FastAPI, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app
    from starlette.exceptions import HTTPException

    shape = tuple(int(n) for n in model.input_shape)
    use = IntendedUse(shape[:2]) if use is None else use
    if use.shape != shape[:2] or shape[2:] not in ((), (1,)):
        raise ValueError(f"the intended use's films are {use.shape} px, and the model reads {shape}; they must agree "
                         "(one grey channel). Build IntendedUse with the model's input_shape[:2].")
    registry = CollectorRegistry()
    requests_total = Counter("medkit_requests", "Requests to /predict, by HTTP status (499: the client left)",
                             ["status"], registry=registry)
    latency = Histogram("medkit_request_seconds", "Time from a request's arrival to the start of its answer, "
                        "every request to /predict", registry=registry,
                        buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0))
    scores = Histogram("medkit_score", "Probabilities of pneumonia answered", registry=registry,
                       buckets=[round(b, 1) for b in np.arange(0.1, 1.01, 0.1)])
    app = FastAPI(title="medkit pneumonia classifier", version=model_id)
    app.state.use, app.state.registry, app.state.max_bytes = use, registry, max_bytes
    how = (f"POST /predict takes one film as multipart/form-data in a field named 'file' (curl -F file=@film.png "
           f"URL/predict): {use.describe()}.")

    @app.exception_handler(UploadRefused)
    async def refused(request, error: UploadRefused):
        return JSONResponse({"detail": error.message}, status_code=error.status)

    @app.exception_handler(HTTPException)
    async def explained(request, error: HTTPException):  # the framework's own 4xx, e.g. 405, or a form it cannot parse
        detail = error.detail
        if request.url.path.rstrip("/") == "/predict" and error.status_code != 413:
            detail = f"{detail}. {how}"
        return JSONResponse({"detail": detail}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(request, error: RequestValidationError):
        found = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in error.errors())
        return JSONResponse({"detail": f"the request is not a film upload ({found}). {how}"}, status_code=422)

    @app.get("/health")
    def health():
        return {"status": "ok", "model": model_id, "threshold": threshold, "input": list(shape),
                "intended_use": use.as_dict(), "max_bytes": max_bytes}

    @app.post("/predict")
    def predict(file: UploadFile):
        film = read_upload(file.file, use, max_bytes=max_bytes)
        probability = float(model.predict(film[None, :, :, None])[0, 0])
        scores.observe(probability)
        return {"probability": probability, "pneumonia": probability >= threshold, "threshold": threshold,
                "model": model_id}

    app.add_middleware(_Guard, max_bytes=max_bytes, requests=requests_total, latency=latency, path="/predict")
    app.mount("/metrics", make_asgi_app(registry))
    return app


_STATUS = re.compile(r"^(VmRSS|VmHWM):\s+(\d+) kB", re.MULTILINE)


class _Peak:
    """What :func:`peak_memory` measured: ``mb``, the rise of the peak above the start, and ``method``."""

    mb: float = float("nan")
    method: str = ""

    def __repr__(self):
        return f"peak memory +{self.mb:.1f} MB ({self.method})"


@contextlib.contextmanager
def peak_memory():
    """Measure how far this process's memory peaks above its level at the start of the block, in MB.

    On Linux this is the resident set: the kernel's high-water mark
    (``VmHWM`` in ``/proc/self/status``) is reset to the current size at the
    start (``/proc/self/clear_refs``, value 5) and read at the end, so it
    counts every allocation of every thread, Pillow's and zlib's included.
    Elsewhere it falls back to ``tracemalloc``, which sees only what Python
    and NumPy allocate; ``method`` says which. Memory freed before the block
    and reused inside it is not counted: measure a large cost on a process
    that has not just freed as much.

    Yields
    ------
    object
        Its ``mb`` is set when the block ends. Introduced in ``14_serving_and_monitoring.ipynb``.

    Examples
    --------
    >>> with peak_memory() as peak:
    ...     block = np.ones(50_000_000 // 8)
    >>> bool(40 < peak.mb < 100), peak.method in ("resident set", "tracemalloc")
    (True, True)
    """
    peak = _Peak()
    try:
        status = Path("/proc/self/status")
        before = dict((k, int(v)) for k, v in _STATUS.findall(status.read_text()))["VmRSS"]
        Path("/proc/self/clear_refs").write_text("5")
    except (OSError, KeyError):
        import tracemalloc

        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        peak.method = "tracemalloc"
        try:
            yield peak
        finally:
            peak.mb = (tracemalloc.get_traced_memory()[1] - base) / 2**20
            if started:
                tracemalloc.stop()
        return
    peak.method = "resident set"
    try:
        yield peak
    finally:
        peak.mb = (dict((k, int(v)) for k, v in _STATUS.findall(status.read_text()))["VmHWM"] - before) / 1024
