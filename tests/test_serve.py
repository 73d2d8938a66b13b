"""medkit.serve: a served model refuses hostile uploads with a 4xx and bounded memory, and counts every request.

The hostile files are made here, each small on the wire: a 200 MB body
streamed in chunks, PNGs that claim 9000 x 9000 or 20000 x 20000 pixels,
a PNG whose pixel data inflate a thousandfold, a deflated DICOM data set that
inflates to 300 MB, truncated files, multi-frame, colour, CT, head and
lateral DICOM films, JPEG, and a Content-Length that lies.
"""

import concurrent.futures
import contextlib
import io
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, JPEGBaseline8Bit

from medkit import serve
from medkit.data import dicom

SHAPE = (32, 32)
USE = serve.IntendedUse(SHAPE)
MEMORY_BOUND_MB = 60  # each hostile upload below claims 80 MB to 300 MB once decoded or inflated


@pytest.fixture
def app():
    app = FastAPI()

    @app.get("/ping")
    def ping():
        return {"ok": True}

    return app


def test_serves_on_loopback_and_stops_after_the_block(app):
    with serve.running(app) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/ping").json() == {"ok": True}
        assert serve.live() == [url] and serve.port_open(url)
    assert serve.live() == [] and not serve.port_open(url)
    assert not [t for t in threading.enumerate() if t.name.startswith("medkit-serve")]


def test_stops_when_the_block_fails(app):
    with pytest.raises(RuntimeError, match="a cell failed"):
        with serve.running(app) as url:
            raise RuntimeError("a cell failed")
    assert serve.live() == [] and not serve.port_open(url)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org", "::"])
def test_refuses_to_serve_to_the_network(app, host):
    with pytest.raises(ValueError, match="loopback"):
        with serve.running(app, host=host):
            pass


def test_a_port_in_use_is_a_clear_error(app):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="port in use"):
            with serve.running(app, port=port):
                pass
    assert serve.live() == []


# --- films, good and hostile -------------------------------------------------------------------------------------


class MeanGrey:
    """A stand-in model whose probability is the film's mean grey level, so each answer depends on its film."""

    input_shape = (*SHAPE, 1)

    def predict(self, films):
        return np.asarray(films, np.float32).mean(axis=(1, 2, 3))[:, None]


class Fails(MeanGrey):
    """A model with a bug: films brighter than mid-grey make it raise."""

    def predict(self, films):
        if np.mean(films) > 0.5:
            raise RuntimeError("a bug in the model")
        return super().predict(films)


def grey(seed=0, shape=SHAPE):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def png(pixels, **save) -> bytes:
    """The pixels (uint8: grey or RGB; uint16: 16-bit grey) as a PNG, or in the ``format`` given."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


def png_claiming(width, height, inflated_rows=None) -> bytes:
    """An 8-bit grey PNG whose header claims width x height, its pixel data zeros compressed in one stream.

    ``inflated_rows`` rows of zeros are compressed (all of them by default), a
    few hundred KB whatever the size the header claims.
    """
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    deflate, row, data = zlib.compressobj(9), b"\0" * (width + 1), []  # each row: a filter byte, then the pixels
    rows = height if inflated_rows is None else inflated_rows
    for start in range(0, rows, 256):
        data.append(deflate.compress(row * min(256, rows - start)))
    data.append(deflate.flush())
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", b"".join(data)) + chunk(b"IEND", b""))


def dicom_film(*, rows=32, columns=32, frames=1, modality="DX", body_part="CHEST", view="PA", colour=False,
               syntax=ExplicitVRLittleEndian, drop=()) -> bytes:
    """A DICOM Part 10 file of a grey (or RGB) film, 16 bits allocated, with the codes given."""
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = modality, body_part, view
    shape = (frames, rows, columns) if frames > 1 else (rows, columns)
    if colour:
        ds.set_pixel_data(grey(1, (*shape, 3)), "RGB", 8)
    elif syntax.is_compressed:  # one JPEG frame, encapsulated (PS3.5 A.4)
        ds.set_pixel_data(grey(2, shape), "MONOCHROME2", 8)
        ds.PixelData = pydicom.encaps.encapsulate([png(grey(2, shape), format="JPEG")])
    else:
        ds.set_pixel_data(grey(2, shape).astype(np.uint16) * 16, "MONOCHROME2", 12)
    for name in drop:
        delattr(ds, name)
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def deflated_dicom_bomb(inflated_mb=300) -> bytes:
    """A DX chest PA film in the Deflated transfer syntax whose data set inflates to ``inflated_mb`` MB.

    The pixel data element claims ``inflated_mb`` MB of zeros; deflated, they
    take about a thousandth of that.
    """
    small = dicom_film(syntax=DeflatedExplicitVRLittleEndian)
    meta_end = 132 + 12 + struct.unpack("<I", small[140:144])[0]  # (0002,0000) holds the meta group's length
    ds = pydicom.dcmread(io.BytesIO(small), stop_before_pixels=True)
    header = pydicom.filebase.DicomBytesIO()
    header.is_little_endian, header.is_implicit_VR = True, False
    pydicom.filewriter.write_dataset(header, ds)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    size = inflated_mb << 20
    parts = [deflate.compress(header.getvalue() + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, size))]
    zeros = b"\0" * (1 << 20)
    parts += [deflate.compress(zeros) for _ in range(inflated_mb)]
    return small[:meta_end] + b"".join(parts) + deflate.flush()


@pytest.fixture(scope="module")
def phantom_dicom(tmp_path_factory):
    from medkit import data

    ds = data.load("phantom", sizes=(2, 2, 2), image_size=32)
    return ds, dicom.write_dicom(ds, tmp_path_factory.mktemp("dicom") / "films")


# The hostile uploads, what each must be answered, and words its message must hold: what was wrong, what to send.
HOSTILE = {
    "9000 x 9000 PNG": (lambda: png_claiming(9000, 9000), 422, ["9000 x 9000", "32 x 32", "Resize"]),
    "PNG bomb, 20000 x 20000": (lambda: png_claiming(20000, 20000), 422, ["20000 x 20000", "32 x 32"]),
    "32 x 32 PNG with 500 MB of pixel data": (lambda: png_claiming(32, 32, inflated_rows=16_000_000), 200, []),
    "truncated PNG": (lambda: png(grey())[:400], 422, ["truncated", "whole file"]),
    "colour PNG": (lambda: png(np.repeat(grey()[..., None], 3, axis=2), ), 422, ["RGB", "grey", "convert"]),
    "16-bit PNG": (lambda: png(grey().astype(np.uint16) * 256), 422, ["16 bits", "8-bit grey"]),
    "64 x 64 PNG": (lambda: png(grey(shape=(64, 64))), 422, ["64 x 64", "32 x 32"]),
    "JPEG": (lambda: png(grey(), format="JPEG", quality=95), 415, ["JPEG", "lossy", "PNG"]),
    "a text file": (lambda: b"patient: Garcia^Ana, film attached", 415, ["neither a PNG", "Send one film"]),
    "an empty file": (lambda: b"", 415, ["empty", "Send one film"]),
    "deflated DICOM bomb": (lambda: deflated_dicom_bomb(), 413, ["inflates to more than", "limit"]),
    "truncated DICOM": (lambda: dicom_film()[:-1000], 422, ["truncated", "whole file"]),
    "DICOM cut in its header": (lambda: dicom_film()[:200], 422, ["DICOM", "Send"]),
    "32-frame DICOM": (lambda: dicom_film(frames=32), 422, ["32 frames", "one film per file"]),
    "colour DICOM": (lambda: dicom_film(colour=True), 422, ["RGB", "grey"]),
    "512 x 512 DICOM": (lambda: dicom_film(rows=512, columns=512), 422, ["512 x 512", "32 x 32"]),
    "CT DICOM": (lambda: dicom_film(modality="CT"), 422, ["Modality (0008,0060) is CT", "DX or CR"]),
    "head DICOM": (lambda: dicom_film(body_part="HEAD"), 422, ["Body Part", "HEAD", "CHEST"]),
    "lateral DICOM": (lambda: dicom_film(view="LATERAL"), 422, ["LATERAL", "PA or AP"]),
    "DICOM without a view": (lambda: dicom_film(drop=("ViewPosition",)), 422, ["missing", "PA or AP"]),
    "JPEG-compressed DICOM": (lambda: dicom_film(syntax=JPEGBaseline8Bit), 415, ["JPEG Baseline", "uncompressed"]),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_each_hostile_upload_is_refused_with_what_was_wrong_and_what_to_send(name):
    make, status, words = HOSTILE[name]
    raw = make()
    assert len(raw) < serve.MAX_BYTES, "every hostile file here is small on the wire"
    if status == 200:  # trailing compressed data past the film's last row is not inflated
        assert np.array_equal(serve.read_upload(raw, USE), np.zeros(SHAPE, np.float32))
        return
    with pytest.raises(serve.UploadRefused) as refused:
        serve.read_upload(raw, USE)
    assert refused.value.status == status, str(refused.value)
    for word in words:
        assert word in str(refused.value)


def test_good_films_are_read_exactly(phantom_dicom, tmp_path):
    ds, files = phantom_dicom
    pixels = grey(3)
    assert np.array_equal(serve.read_upload(png(pixels), USE), pixels / np.float32(255))
    (tmp_path / "film.png").write_bytes(png(pixels))  # a path, as Gradio's file upload gives it, and a stream
    assert np.array_equal(serve.read_upload(tmp_path / "film.png", USE), serve.read_upload(io.BytesIO(png(pixels)), USE))
    for path in files:
        assert np.array_equal(serve.read_upload(path.read_bytes(), USE), dicom.read_film(path))
    deflated = pydicom.dcmread(files[0])
    deflated.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian  # a film legitimately deflated is read
    buffer = io.BytesIO()
    deflated.save_as(buffer, enforce_file_format=True)
    assert len(buffer.getvalue()) < files[0].stat().st_size
    assert np.array_equal(serve.read_upload(buffer.getvalue(), USE), dicom.read_film(files[0]))


def test_a_stream_is_read_no_further_than_the_limit():
    class Endless(io.RawIOBase):
        read_so_far = 0

        def readable(self):
            return True

        def read(self, n=-1):
            assert n >= 0, "an unbounded read"
            self.read_so_far += n
            return b"\0" * n

    stream = Endless()
    with pytest.raises(serve.UploadRefused, match="1,048,576 bytes") as refused:
        serve.read_upload(stream, USE)
    assert refused.value.status == 413 and stream.read_so_far == serve.MAX_BYTES + 1


def test_intended_use_and_model_must_agree():
    with pytest.raises(ValueError, match=r"\(64, 64\).*\(32, 32, 1\)"):
        serve.make_app(MeanGrey(), 0.5, "m", use=serve.IntendedUse((64, 64)))
    with pytest.raises(ValueError, match="rows, columns"):
        serve.IntendedUse((32,))
    with pytest.raises(ValueError, match="tuple of DICOM codes"):
        serve.IntendedUse((32, 32), views="PA")
    with pytest.raises(TypeError, match="IntendedUse"):
        serve.read_upload(png(grey()), (32, 32))


# --- the app -----------------------------------------------------------------------------------------------------


def counts(client_or_url) -> dict:
    page = (client_or_url.get("/metrics/") if not isinstance(client_or_url, str)
            else httpx.get(f"{client_or_url}/metrics/")).text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(page) for s in family.samples}
    by_status = {int(dict(labels)["status"]): int(v) for (name, labels), v in samples.items()
                 if name == "medkit_requests_total"}
    return {"status": by_status, "latencies": int(samples[("medkit_request_seconds_count", ())]),
            "scores": int(samples[("medkit_score_count", ())])}


def test_the_app_answers_refuses_and_counts():
    client = TestClient(serve.make_app(MeanGrey(), 0.5, "m1"))
    health = client.get("/health").json()
    assert health["intended_use"]["views"] == ["PA", "AP"] and health["input"] == [32, 32, 1]
    pixels = grey(4)
    answer = client.post("/predict", files={"file": ("x", png(pixels))}).json()
    assert answer == {"probability": float(MeanGrey().predict(pixels[None, ..., None] / np.float32(255))[0, 0]),
                      "pneumonia": answer["probability"] >= 0.5, "threshold": 0.5, "model": "m1"}
    sent = {200: 1}
    for name, (make, status, _) in HOSTILE.items():
        r = client.post("/predict", files={"file": ("x", make())})
        assert r.status_code == status, (name, r.text)
        if status != 200:
            with pytest.raises(serve.UploadRefused) as refused:
                serve.read_upload(make(), USE)
            assert r.json()["detail"] == str(refused.value), "the API's message is read_upload's"
        sent[status] = sent.get(status, 0) + 1
    # Requests that are not film uploads at all: no file field, a GET, a body over the limit.
    not_a_form = client.post("/predict", data={"film": "x"})
    assert not_a_form.status_code == 422 and "field named 'file'" in not_a_form.json()["detail"]
    a_get = client.get("/predict")
    assert a_get.status_code == 405 and "POST /predict" in a_get.json()["detail"]
    assert client.post("/predict", files={"file": ("x", b"\0" * (2 << 20))}).status_code == 413
    for status in (422, 405, 413):
        sent[status] = sent.get(status, 0) + 1
    seen = counts(client)
    assert seen["status"] == sent
    assert seen["latencies"] == sum(sent.values()) and seen["scores"] == sent[200]


def test_the_limit_counts_bytes_not_what_content_length_claims():
    client = TestClient(serve.make_app(MeanGrey(), 0.5, "m"))
    body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n" + b"\0" * (3 << 20) + b"\r\n--b--\r\n"
    for declared in ("10", None):  # a header that lies, and none (chunked)
        headers = {"content-type": "multipart/form-data; boundary=b"}
        content = body if declared else iter([body[i:i + 65536] for i in range(0, len(body), 65536)])
        if declared:
            headers["content-length"] = declared
        r = client.post("/predict", content=content, headers=headers)
        assert r.status_code == 413 and "1,048,576 bytes" in r.json()["detail"]
    assert counts(client)["status"] == {413: 2}


def test_a_model_that_fails_is_a_counted_500():
    client = TestClient(serve.make_app(Fails(), 0.5, "m"), raise_server_exceptions=False)
    assert client.post("/predict", files={"file": ("x", png(np.full(SHAPE, 250, np.uint8)))}).status_code == 500
    assert client.post("/predict", files={"file": ("x", png(np.full(SHAPE, 10, np.uint8)))}).status_code == 200
    assert counts(client)["status"] == {500: 1, 200: 1}


def test_pydicoms_own_test_files_get_no_5xx():
    from pydicom.data import get_testdata_files

    client = TestClient(serve.make_app(MeanGrey(), 0.5, "m"))  # a 5xx would raise here
    files = [path for path in map(Path, get_testdata_files()) if path.is_file()]
    assert len(files) > 100
    statuses = {}
    for path in files:
        status = client.post("/predict", files={"file": ("x", path.read_bytes())}).status_code
        assert status < 500, path
        statuses[status] = statuses.get(status, 0) + 1
    assert set(statuses) <= {413, 415, 422} and statuses.get(422, 0) > 50, statuses  # none is a 32 x 32 chest film


# --- a real server: memory, disconnects, concurrency -------------------------------------------------------------


def test_the_memory_meter_sees_a_large_allocation():
    with serve.peak_memory() as peak:
        block = np.ones(150 << 17)  # 150 MB of float64
    assert 120 < peak.mb < 300 and block.sum() == 150 << 17  # so a bound below can fail


def _streamed(megabytes):
    yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"film.png\"\r\n\r\n"
    chunk = b"\0" * (1 << 20)
    for _ in range(megabytes):
        yield chunk
    yield b"\r\n--b--\r\n"


def test_hostile_uploads_cost_the_server_little_memory():
    with serve.running(serve.make_app(MeanGrey(), 0.5, "m")) as url, httpx.Client(base_url=url, timeout=60) as client:
        headers = {"content-type": "multipart/form-data; boundary=b"}
        with serve.peak_memory() as peak:
            r = client.post("/predict", content=_streamed(200), headers=headers)  # chunked: no Content-Length
        assert r.status_code == 413 and peak.mb < MEMORY_BOUND_MB, (r.status_code, peak)
        for name in ("9000 x 9000 PNG", "PNG bomb, 20000 x 20000", "32 x 32 PNG with 500 MB of pixel data",
                     "deflated DICOM bomb"):
            make, status, _ = HOSTILE[name]
            raw = make()
            with serve.peak_memory() as peak:
                r = client.post("/predict", files={"file": ("x", raw)})
            assert r.status_code == status and peak.mb < MEMORY_BOUND_MB, (name, r.status_code, peak)
        assert counts(url)["status"] == {413: 2, 422: 2, 200: 1}


def _raw_request(url, head: bytes, body: bytes, *, close_early=False) -> bytes:
    """Send a request byte for byte; what came back before the server closed (it may close while we send)."""
    host, port = url.split("//")[1].split(":")
    answer = []
    with socket.create_connection((host, int(port)), timeout=30) as s:
        def read():
            with contextlib.suppress(OSError):
                while chunk := s.recv(65536):
                    answer.append(chunk)

        reader = threading.Thread(target=read)
        reader.start()
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            s.sendall(head + body)
        if close_early:
            s.shutdown(socket.SHUT_RDWR)
        reader.join(60)
    return b"".join(answer)


def test_a_lying_content_length_and_a_client_that_leaves_are_refused_and_counted():
    with serve.running(serve.make_app(MeanGrey(), 0.5, "m")) as url:
        part = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n"
        head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n")
        with serve.peak_memory() as peak:  # claims 100 bytes and sends 20 MB: the server reads 100, then hangs up
            answer = _raw_request(url, head % 100, part + b"\0" * (20 << 20))
        assert peak.mb < MEMORY_BOUND_MB, peak
        lied = counts(url)["status"]
        assert len(lied) == 1 and 400 <= min(lied) < 500 and sum(lied.values()) == 1, lied
        assert not answer or answer.startswith(b"HTTP/1.1 %d" % min(lied)), answer[:100]
        _raw_request(url, head % 100_000, part + b"\0" * 1000, close_early=True)  # claims more, sends less, leaves
        deadline = time.monotonic() + 30
        while sum(counts(url)["status"].values()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert counts(url)["status"] == {**lied, 499: 1}
        assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_concurrent_requests_with_failures_are_all_counted():
    uploads = [png(grey(i)) for i in range(20)]  # answered, or a 500 from the failing model on bright films
    uploads += [HOSTILE[name][0]() for name in ("colour PNG", "JPEG", "CT DICOM", "32-frame DICOM", "a text file")] * 4
    uploads += [b"\0" * (2 << 20)] * 10 + [png(np.full(SHAPE, 250, np.uint8))] * 10
    assert len(uploads) == 60
    with serve.running(serve.make_app(Fails(), 0.5, "m")) as url:
        def post(raw):
            with httpx.Client(base_url=url, timeout=60) as client:
                return client.post("/predict", files={"file": ("x", raw)}).status_code

        with concurrent.futures.ThreadPoolExecutor(60) as pool:
            statuses = list(pool.map(post, uploads))
        sent = {s: statuses.count(s) for s in set(statuses)}
        assert sent[500] >= 10 and sent[413] == 10 and sent[415] == 8 and sent[422] == 12, sent
        seen = counts(url)
    assert seen["status"] == sent and seen["latencies"] == 60
