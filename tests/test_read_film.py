"""medkit.data.dicom.read_film on files the kit did not write: pydicom's own test files and hand-made edge cases.

The contract: the stored values through pydicom's ``apply_modality_lut`` and
``apply_voi_lut``, scaled to [0, 1] by the VOI output range (the LUT
descriptor's bits, or the two ends pydicom maps a window onto), MONOCHROME1
inverted; or a ValueError that names the file and says what to do.
"""

import io
import os
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_files
from pydicom.dataset import FileMetaDataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.sequence import Sequence
from pydicom.uid import JPEGLSLossless

from medkit import data
from medkit.data.dicom import read_film, write_dicom

_DX = "1.2.840.10008.5.1.4.1.1.1.1"
_RNG = np.random.default_rng(0)
_STORED = _RNG.integers(0, 4096, (12, 10)).astype(np.uint16)  # a 12-bit film, every value range touched below
_STORED[0, :4] = (0, 4095, 1, 4094)
_S = _STORED.astype(np.float64)  # for arithmetic by hand (uint16 would wrap below 0)


def _dataset(stored=_STORED, *, bits=12, photometric="MONOCHROME2", **elements):
    """A DX data set of the stored values (2-D, or 3-D for frames) with the given elements, as a detector exports it."""
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = _DX
    ds.Modality = "DX"
    ds.set_pixel_data(stored, photometric, bits)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def _saved(ds, path):
    ds.save_as(path, enforce_file_format=True)
    return path


def _lut(entries, first, bits, values, ow=False):
    """One VOI or Modality LUT item: descriptor (entries, first value mapped, bits) and data as US values or OW bytes."""
    item = pydicom.Dataset()
    item.LUTDescriptor = [entries, first, bits]
    if ow:
        item.add_new(0x00283006, "OW", np.asarray(values, "<u2").tobytes())
    else:
        item.add_new(0x00283006, "US", [int(v) for v in values])
    return item


def pydicom_film(ds, frame=None, prefer_lut=True):
    """The contract, spelled out with pydicom's functions alone."""
    pixels = ds.pixel_array if frame is None else ds.pixel_array[frame]
    values = apply_modality_lut(pixels, ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns that a float array indexes its VOI LUT; it floors it
        out = apply_voi_lut(values, ds, prefer_lut=prefer_lut).astype(np.float64)
    sequence = ds.get("VOILUTSequence")
    lut = bool(sequence) and "LUTDescriptor" in sequence[0] and "LUTData" in sequence[0]
    window = ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None
    if lut and (prefer_lut or not window):
        low, high = 0, 2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1
    elif window:
        # The ends pydicom maps the window's bottom and top onto: the modality LUT's outputs for the lowest and
        # highest stored values, in that order (so reversed by a negative slope).
        if ds.get("ModalityLUTSequence"):
            low, high = 0, 2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1
        else:
            b = int(ds.BitsStored)
            low, high = (0, 2**b - 1) if ds.PixelRepresentation == 0 else (-(2 ** (b - 1)), 2 ** (b - 1) - 1)
        if "RescaleSlope" in ds and "RescaleIntercept" in ds:
            low, high = low * ds.RescaleSlope + ds.RescaleIntercept, high * ds.RescaleSlope + ds.RescaleIntercept
    else:
        low, high = out.min(), out.max()
    film = (out - low) / (high - low)
    return 1.0 - film if ds.PhotometricInterpretation == "MONOCHROME1" else film


# pydicom's bundled test files (offline), sorted into the grey-scale images and the rest --------------------------

def _bundled():
    grey, other = [], []
    for path in get_testdata_files():
        if os.path.isdir(path):
            continue
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            other.append(path)
            continue
        name = os.path.relpath(path, os.path.dirname(pydicom.data.__file__))
        if "PixelData" in header or str(header.get("PhotometricInterpretation", "")).startswith("MONOCHROME"):
            (grey if str(header.get("PhotometricInterpretation", "")).startswith("MONOCHROME") else other).append(name)
        else:
            other.append(name)
    return sorted(grey), sorted(other)


GREY, OTHER = _bundled()
_DATA = os.path.dirname(pydicom.data.__file__)


def test_the_bundled_files_are_found():
    assert len(GREY) >= 40 and len(OTHER) >= 40, (len(GREY), len(OTHER))


@pytest.mark.parametrize("name", GREY)
def test_a_bundled_grey_scale_file_reads_as_pydicom_or_is_refused_clearly(name):
    path = os.path.join(_DATA, name)
    ds = pydicom.dcmread(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            decodable = ds.pixel_array is not None
    except Exception:
        decodable = False
    frames = int(ds.get("NumberOfFrames", 1) or 1) if str(ds.get("NumberOfFrames", "1")).isdigit() else None
    if not decodable or frames is None:  # pydicom itself cannot give these pixels here: read_film must say why
        with pytest.raises(ValueError) as refused:
            read_film(path)
        message = str(refused.value)
        assert path in message
        assert any(why in message for why in ("no decoder", "could not decode", "ends early", "Number of Frames",
                                              "not a whole number", "no Transfer Syntax", "Photometric"))
        return
    if frames > 1:
        with pytest.raises(ValueError, match=f"holds {frames} frames.*frame=k with k from 0 to {frames - 1}"):
            read_film(path)
        for k in (0, frames - 1):
            assert np.allclose(read_film(path, frame=k), pydicom_film(ds, k), atol=1e-6)
        return
    film = read_film(path)
    assert film.dtype == np.float32 and film.shape == (ds.Rows, ds.Columns)
    assert np.allclose(film, pydicom_film(ds), atol=1e-6)
    assert 0.0 <= film.min() and film.max() <= 1.0


@pytest.mark.parametrize("name", OTHER)
def test_a_bundled_file_that_is_not_a_grey_scale_image_is_refused_with_its_name(name):
    path = os.path.join(_DATA, name)
    with pytest.raises(ValueError) as refused:
        read_film(path)
    message = str(refused.value)
    assert path in message
    try:
        photometric = str(pydicom.dcmread(path, stop_before_pixels=True).get("PhotometricInterpretation", ""))
    except Exception:
        photometric = None
    if photometric == "PALETTE COLOR":
        assert "a palette-colour image" in message
    elif photometric:
        assert f"a colour image ({photometric})" in message
    else:
        assert "colour image" not in message  # the issue: a damaged file was called "a colour image"


# The kit's own files: the arithmetic notebook 14 compares with == must not change ---------------------------------

@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("rescale", [(1.0, 0.0), (2.0, -1000.0)])
def test_the_kits_own_films_read_bit_for_bit_as_before(tmp_path, photometric, rescale):
    films = data.load("phantom", sizes=(2, 2, 3), image_size=16, seed=5)
    for path in write_dicom(films, tmp_path / "d", photometric=photometric, rescale=rescale):
        ds = pydicom.dcmread(path)
        # read_film before issue 30, verbatim: a LINEAR_EXACT window, slope > 0
        values = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds).astype(np.float64), ds, index=0, prefer_lut=False)
        bits, slope, intercept = int(ds.BitsStored), float(ds.RescaleSlope), float(ds.RescaleIntercept)
        low, high = 0 * slope + intercept, (2**bits - 1) * slope + intercept
        before = (values - low) / max(high - low, 1e-12)
        before = 1.0 - before if photometric == "MONOCHROME1" else before
        assert np.array_equal(read_film(path), np.clip(before, 0.0, 1.0).astype(np.float32))


# Where a film can come from -------------------------------------------------------------------------------------

def test_a_path_bytes_a_file_object_and_a_dataset_read_the_same(tmp_path):
    path = _saved(_dataset(WindowCenter=2000, WindowWidth=3000), tmp_path / "f.dcm")
    film = read_film(path)
    raw = path.read_bytes()
    with open(path, "rb") as f:
        from_file = read_film(f)
    for other in (read_film(str(path)), read_film(raw), read_film(io.BytesIO(raw)), from_file,
                  read_film(pydicom.dcmread(path)), read_film(pydicom.dcmread(io.BytesIO(raw)))):
        assert np.array_equal(other, film)
    with pytest.raises(FileNotFoundError):
        read_film(tmp_path / "missing.dcm")
    with pytest.raises(ValueError, match="binary mode"):
        read_film(io.StringIO("DICM"))


# VOI LUT Sequence ----------------------------------------------------------------------------------------------

_GAMMA = np.round(1023 * (np.arange(4096) / 4095) ** 0.5).astype(int)  # a 10-bit non-linear curve over 12-bit input


@pytest.mark.parametrize("ow", [False, True])
def test_a_voi_lut_sequence_is_applied_with_its_descriptors_output_range(tmp_path, ow):
    ds = _dataset(VOILUTSequence=Sequence([_lut(4096, 0, 10, _GAMMA, ow=ow)]))
    film = read_film(_saved(ds, tmp_path / "lut.dcm"))
    by_hand = _GAMMA[_STORED] / 1023.0
    assert np.allclose(film, by_hand, atol=1e-6)
    assert np.allclose(film, pydicom_film(pydicom.dcmread(tmp_path / "lut.dcm")), atol=1e-6)
    # Without it the film would be the stored values scaled linearly: the "error 0.94" was this kind of gap.
    assert np.abs(film - _STORED / 4095.0).max() > 0.2


def test_a_lut_and_a_window_together_apply_the_lut_unless_told_otherwise(tmp_path):
    both = _saved(_dataset(VOILUTSequence=Sequence([_lut(4096, 0, 10, _GAMMA)]), WindowCenter=1000, WindowWidth=800,
                           VOILUTFunction="LINEAR_EXACT"), tmp_path / "both.dcm")
    ds = pydicom.dcmread(both)
    assert np.allclose(read_film(both), _GAMMA[_STORED] / 1023.0, atol=1e-6)
    assert np.allclose(read_film(both), pydicom_film(ds), atol=1e-6)
    window = np.clip((_S - 1000) / 800 + 0.5, 0, 1)
    assert np.allclose(read_film(both, prefer_lut=False), window, atol=1e-6)
    assert np.allclose(read_film(both, prefer_lut=False), pydicom_film(ds, prefer_lut=False), atol=1e-6)


def test_a_short_lut_clips_and_an_8_bit_lut_on_signed_pixels_with_a_negative_first_value(tmp_path):
    short = _saved(_dataset(VOILUTSequence=Sequence([_lut(1000, 1500, 12, np.linspace(0, 4095, 1000).round())])),
                   tmp_path / "short.dcm")
    expected = np.linspace(0, 4095, 1000).round()[np.clip(_STORED.astype(int), 1500, 2499) - 1500] / 4095
    assert np.allclose(read_film(short), expected, atol=1e-6)
    signed = _STORED.astype(np.int16) - 2048
    lut = np.round(255 * np.arange(4096) / 4095)
    path = _saved(_dataset(signed, VOILUTSequence=Sequence([_lut(4096, -2048, 8, lut)])), tmp_path / "signed.dcm")
    assert pydicom.dcmread(path).VOILUTSequence[0].LUTDescriptor[1] == -2048
    # By hand only: pydicom 3.0's apply_voi indexes an 8-bit LUT with 8-bit integers, so inputs past the 256th
    # entry wrap round (read_film declares the same entries as 16-bit to index them; see _voi_lut_view).
    assert np.allclose(read_film(path), lut[signed + 2048] / 255, atol=1e-6)
    assert read_film(path).max() == 1.0


def test_a_lut_after_a_fractional_rescale_is_indexed_as_pydicom_indexes_it(tmp_path):
    path = _saved(_dataset(RescaleSlope=0.7, RescaleIntercept=-3.5, VOILUTSequence=Sequence([_lut(4096, 0, 10, _GAMMA)])),
                  tmp_path / "f.dcm")
    ds = pydicom.dcmread(path)
    assert np.allclose(read_film(path), pydicom_film(ds), atol=1e-6)
    index = np.clip(np.floor(_S * 0.7 - 3.5), 0, 4095).astype(int)
    assert np.allclose(read_film(path), _GAMMA[index] / 1023.0, atol=1e-6)


def test_a_lut_that_breaks_its_descriptor_is_refused(tmp_path):
    over = _saved(_dataset(VOILUTSequence=Sequence([_lut(4096, 0, 10, _GAMMA * 4)])), tmp_path / "over.dcm")
    with pytest.raises(ValueError, match=rf"{over}.*above 1023.*prefer_lut=False"):
        read_film(over)
    odd = _saved(_dataset(VOILUTSequence=Sequence([_lut(4096, 0, 9, _GAMMA // 2)])), tmp_path / "odd.dcm")
    with pytest.raises(ValueError, match=rf"{odd}.*9 bits per entry.*8 or 10 to 16"):
        read_film(odd)
    cut = _saved(_dataset(VOILUTSequence=Sequence([_lut(4096, 0, 10, _GAMMA[:100])])), tmp_path / "cut.dcm")
    with pytest.raises(ValueError, match=rf"{cut}.*VOI LUT cannot be applied"):
        read_film(cut)
    empty = _dataset(VOILUTSequence=Sequence([pydicom.Dataset()]))
    with pytest.raises(ValueError, match="VOI LUT Sequence without LUT Descriptor or LUT Data, and no window"):
        read_film(empty)
    empty.WindowCenter, empty.WindowWidth = 2048, 4096  # pydicom then applies the window, and so does read_film
    assert np.allclose(read_film(empty), pydicom_film(empty), atol=1e-6)


# Windows --------------------------------------------------------------------------------------------------------

def test_linear_windows_follow_the_standards_formula_and_the_first_of_several_is_used(tmp_path):
    path = _saved(_dataset(WindowCenter=[1800, 500], WindowWidth=[2001, 300]), tmp_path / "w.dcm")  # LINEAR by default
    c, w = 1800 - 0.5, 2001 - 1  # PS3.3 C.11.2.1.2.1
    by_hand = np.clip((_S - c) / w + 0.5, 0, 1)
    assert np.allclose(read_film(path), by_hand, atol=1e-6)
    assert np.allclose(read_film(path), pydicom_film(pydicom.dcmread(path)), atol=1e-6)


def test_a_sigmoid_window_is_the_logistic_of_the_standard(tmp_path):
    path = _saved(_dataset(WindowCenter=2048, WindowWidth=1000, VOILUTFunction="SIGMOID", RescaleSlope=1,
                           RescaleIntercept=-1024), tmp_path / "s.dcm")
    by_hand = 1.0 / (1.0 + np.exp(-4 * ((_S - 1024.0) - 2048) / 1000))  # PS3.3 C.11.2.1.3.1
    assert np.allclose(read_film(path), by_hand, atol=1e-6)
    assert np.allclose(read_film(path), pydicom_film(pydicom.dcmread(path)), atol=1e-6)


@pytest.mark.parametrize("elements, message", [
    ({"WindowCenter": 1000, "WindowWidth": 0.5}, "Window Width must be greater than or equal to 1"),
    ({"WindowCenter": 1000, "WindowWidth": 0, "VOILUTFunction": "LINEAR_EXACT"}, "greater than 0"),
    ({"WindowCenter": 1000, "WindowWidth": 400, "VOILUTFunction": "GAMMA"}, "Unsupported"),
    ({"WindowCenter": 1000}, "Window Center without a Window Width: half a window"),
    ({"WindowWidth": 1000}, "Window Width without a Window Center: half a window"),
])
def test_a_window_that_cannot_be_applied_is_refused_with_the_file(tmp_path, elements, message):
    path = _saved(_dataset(**elements), tmp_path / "w.dcm")
    with pytest.raises(ValueError, match=message) as refused:
        read_film(path)
    assert str(path) in str(refused.value)


def test_a_film_without_a_window_spans_its_own_range_and_a_constant_one_reads_0(tmp_path):
    assert np.allclose(read_film(_dataset()), _S / 4095, atol=1e-6)
    assert np.array_equal(read_film(_dataset(np.full((4, 4), 7, np.uint16))), np.zeros((4, 4), np.float32))
    assert np.array_equal(read_film(_dataset(np.full((4, 4), 7, np.uint16), photometric="MONOCHROME1")),
                          np.ones((4, 4), np.float32))
    empty = _dataset()
    empty.add_new(0x00281050, "DS", None)
    empty.add_new(0x00281051, "DS", None)
    assert np.array_equal(read_film(empty), read_film(_dataset()))


# The modality LUT -----------------------------------------------------------------------------------------------

def test_a_rescale_slope_of_0_is_refused(tmp_path):
    path = _saved(_dataset(RescaleSlope=0, RescaleIntercept=100, WindowCenter=100, WindowWidth=50), tmp_path / "z.dcm")
    with pytest.raises(ValueError, match=rf"{path} has the Rescale Slope 0.0.*a slope of 0 maps every stored value"):
        read_film(path)
    half = _saved(_dataset(RescaleSlope=2.0), tmp_path / "half.dcm")
    with pytest.raises(ValueError, match="Rescale Slope but not the other half"):
        read_film(half)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_a_negative_slope_reads_as_the_same_rescaled_values_with_a_positive_one(tmp_path, photometric, function):
    window = {"WindowCenter": 1500, "WindowWidth": 2000, "VOILUTFunction": function}
    plain = _saved(_dataset(photometric=photometric, RescaleSlope=1, RescaleIntercept=0, **window), tmp_path / "p.dcm")
    flipped = _saved(_dataset(4095 - _STORED, photometric=photometric, RescaleSlope=-1, RescaleIntercept=4095, **window),
                     tmp_path / "n.dcm")
    ds = pydicom.dcmread(flipped)
    assert np.array_equal(apply_modality_lut(ds.pixel_array, ds), _STORED), "the same rescaled values"
    film = read_film(flipped)
    assert np.allclose(film, read_film(plain), atol=1e-6)  # the window acts on rescaled values: same film
    assert np.allclose(film, pydicom_film(ds), atol=1e-6)
    assert 0.1 < film.mean() < 0.9 and film.std() > 0.1  # before issue 30: all 0


def test_a_modality_lut_sequence_replaces_the_rescale(tmp_path):
    curve = np.round(65535 * np.sqrt(np.arange(4096) / 4095)).astype(int)
    path = _saved(_dataset(ModalityLUTSequence=Sequence([_lut(4096, 0, 16, curve)]), WindowCenter=40000,
                           WindowWidth=30000, VOILUTFunction="LINEAR_EXACT"), tmp_path / "m.dcm")
    by_hand = np.clip((curve[_STORED] - 40000) / 30000 + 0.5, 0, 1)
    assert np.allclose(read_film(path), by_hand, atol=1e-6)
    assert np.allclose(read_film(path), pydicom_film(pydicom.dcmread(path)), atol=1e-6)
    assert np.allclose(read_film(_dataset(ModalityLUTSequence=Sequence([_lut(4096, 0, 16, curve)]))),
                       (curve[_STORED] - curve[_STORED].min()) / np.ptp(curve[_STORED]), atol=1e-6)
    odd = _saved(_dataset(ModalityLUTSequence=Sequence([_lut(4096, 0, 12, curve // 16)])), tmp_path / "odd.dcm")
    with pytest.raises(ValueError, match=rf"{odd}.*12 bits per entry; DICOM allows 8 or 16"):
        read_film(odd)


def test_signed_8_bit_and_partly_stored_pixels(tmp_path):
    signed = (_STORED.astype(np.int16) - 2048)
    path = _saved(_dataset(signed, RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=-1000, WindowWidth=1500),
                  tmp_path / "signed.dcm")
    ds = pydicom.dcmread(path)
    assert ds.PixelRepresentation == 1 and ds.pixel_array.min() < 0
    assert np.allclose(read_film(path), np.clip((signed - 1024 - (-1000 - 0.5)) / 1499 + 0.5, 0, 1), atol=1e-6)
    eight = (_STORED // 16).astype(np.uint8)
    path = _saved(_dataset(eight, bits=8, WindowCenter=128, WindowWidth=256, VOILUTFunction="LINEAR_EXACT"),
                  tmp_path / "eight.dcm")
    assert np.allclose(read_film(path), np.clip((eight - 128.0) / 256 + 0.5, 0, 1), atol=1e-6)
    # 12 bits stored in 16: whatever lies in the 4 unused high bits (an old overlay, say) is not part of the value
    junk = _dataset(WindowCenter=2048, WindowWidth=4096, VOILUTFunction="LINEAR_EXACT")
    junk.PixelData = (_STORED | 0xF000).astype("<u2").tobytes()
    assert np.allclose(read_film(junk), np.clip((_S - 2048) / 4096 + 0.5, 0, 1), atol=1e-6)


# Multi-frame files ----------------------------------------------------------------------------------------------

def test_a_multi_frame_file_needs_a_frame(tmp_path):
    frames = np.stack([_STORED, 4095 - _STORED, _STORED // 2])
    path = _saved(_dataset(frames, WindowCenter=2000, WindowWidth=4000), tmp_path / "three.dcm")
    with pytest.raises(ValueError, match=rf"{path} holds 3 frames.*frame=k with k from 0 to 2"):
        read_film(path)
    ds = pydicom.dcmread(path)
    for k in range(3):
        film = read_film(path, frame=k)
        assert film.shape == _STORED.shape
        assert np.allclose(film, pydicom_film(ds, k), atol=1e-6)
    for bad in (3, -1, True, 1.0):
        with pytest.raises(ValueError, match="frame must be a whole number from 0 to 2"):
            read_film(path, frame=bad)
    assert np.array_equal(read_film(_dataset(), frame=0), read_film(_dataset()))
    with pytest.raises(ValueError, match="from 0 to 0"):
        read_film(_dataset(), frame=1)


def test_an_enhanced_file_with_per_frame_windows_is_refused(tmp_path):
    ds = _dataset()
    group, voi = pydicom.Dataset(), pydicom.Dataset()
    voi.WindowCenter, voi.WindowWidth = 1000, 500
    group.FrameVOILUTSequence = Sequence([voi])
    ds.SharedFunctionalGroupsSequence = Sequence([group])
    with pytest.raises(ValueError, match="functional groups .*FrameVOILUTSequence"):
        read_film(ds)


# Files cut short, and what is not a grey-scale film ---------------------------------------------------------------

def _complete(tmp_path):
    ds = _dataset(RescaleSlope=1, RescaleIntercept=0, WindowCenter=2000, WindowWidth=3000,
                  VOILUTSequence=Sequence([_lut(4096, 0, 10, _GAMMA)]))
    ds.PatientName = "Doe^Jane"
    return _saved(ds, tmp_path / "whole.dcm").read_bytes()


def test_a_file_cut_short_anywhere_is_said_to_end_early(tmp_path):
    raw = _complete(tmp_path)
    read_film(raw)
    pixels_at = raw.index(b"\xe0\x7f\x10\x00")  # (7FE0,0010) Pixel Data's tag, little endian
    cuts = sorted({*range(0, len(raw), 5), *range(pixels_at - 12, pixels_at + 14), len(raw) - 1})
    for cut in cuts:
        path = tmp_path / "cut.dcm"
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError) as refused:
            read_film(path)
        message = str(refused.value)
        assert str(path) in message and "colour" not in message, (cut, message)
        assert any(s in message for s in ("ends early", "cut short", "cannot be parsed")), (cut, message)
    with pytest.raises(ValueError, match="the DICOM bytes given ends early"):
        read_film(raw[: len(raw) - 100])
    with pytest.raises(ValueError, match="the DICOM data set given ends early"):  # notebook 14 reads uploads so
        read_film(pydicom.dcmread(io.BytesIO(raw[: len(raw) - 100])))


def test_a_header_cut_short_in_photometric_interpretation_is_not_called_a_colour_image(tmp_path):
    raw = _complete(tmp_path)
    at = raw.index(b"MONOCHROME2")
    path = tmp_path / "cut.dcm"
    path.write_bytes(raw[: at + 5])
    with pytest.raises(ValueError, match=rf"{path} ends early.*PhotometricInterpretation \(0028,0004\) declares 12 bytes"):
        read_film(path)
    with pytest.raises(ValueError, match="which DICOM does not define.*cut short"):  # a data set already read
        ds = _dataset()
        ds.PhotometricInterpretation = "MONOCH"
        read_film(ds)


@pytest.mark.parametrize("photometric, message", [
    ("RGB", r"a colour image \(RGB\)"), ("YBR_FULL", r"a colour image \(YBR_FULL\)"),
    ("PALETTE COLOR", "a palette-colour image"),
])
def test_colour_images_are_refused_saying_what_they_are(photometric, message):
    ds = _dataset(np.zeros((4, 4, 3), np.uint8), bits=8, photometric=photometric) if photometric != "PALETTE COLOR" \
        else _dataset(np.zeros((4, 4), np.uint8), bits=8, photometric=photometric)
    with pytest.raises(ValueError, match=message + ".*read_film reads grey-scale films"):
        read_film(ds)


def test_no_photometric_interpretation_no_pixels_or_no_transfer_syntax_are_named(tmp_path):
    ds = _dataset()
    del ds.PhotometricInterpretation
    with pytest.raises(ValueError, match=r"has pixels but no Photometric Interpretation \(0028,0004\)"):
        read_film(ds)
    report = _dataset()
    del report.PixelData
    report.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    with pytest.raises(ValueError, match=r"has no Pixel Data.*it is Basic Text SR Storage, not an image"):
        read_film(report)
    stripped = _dataset()
    del stripped.PixelData
    with pytest.raises(ValueError, match="says it is a Digital X-Ray Image Storage - For Presentation, but it holds no"):
        read_film(stripped)
    bare = _dataset()
    del bare.file_meta.TransferSyntaxUID
    with pytest.raises(ValueError, match="no Transfer Syntax UID.*ExplicitVRLittleEndian"):
        read_film(bare)
    (tmp_path / "notes.dcm").write_bytes(b"\0" * 128 + b"NOPE" + b"\0" * 40)
    with pytest.raises(ValueError, match="is not a DICOM file: there is no 'DICM' marker.*force=True"):
        read_film(tmp_path / "notes.dcm")
    with pytest.raises(ValueError, match="is only 20 bytes long"):
        read_film(b"\0" * 20)


def test_a_compression_without_its_decoder_names_what_to_install():
    decoder = get_decoder(JPEGLSLossless)
    if decoder.is_available:
        pytest.skip(f"a JPEG-LS decoder is installed here ({decoder.available_plugins})")
    path = [p for p in get_testdata_files("MR_small_jpeg_ls_lossless.dcm")][0]
    with pytest.raises(ValueError, match=r"compressed with JPEG-LS Lossless.*no decoder .*installed.*pylibjpeg.*Install one"):
        read_film(path)


def test_a_tag_cut_in_the_middle_of_its_header_is_said_to_end_early():
    ds = _dataset()
    ds.add_new(0x7FE10010, "LO", "VENDOR")  # a private element after the pixels: 8 bytes of header, 6 of value
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    whole = buffer.getvalue()
    assert np.array_equal(read_film(whole), read_film(_dataset()))
    with pytest.raises(ValueError, match="its last 4 bytes are a fraction of an element's header"):
        read_film(whole[: len(whole) - 14 + 4])


def test_a_deflated_bomb_is_refused_before_pydicom_inflates_it(tmp_path, monkeypatch):
    import zlib

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

    from medkit.data import dicom

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.save_as(tmp_path / "small.dcm", enforce_file_format=True)
    raw = (tmp_path / "small.dcm").read_bytes()
    start = 144 + int.from_bytes(raw[140:144], "little")
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    element = b"\xe0\x7f\x10\x00OB\x00\x00" + (64 << 20).to_bytes(4, "little")  # Pixel Data of 64 MiB of zeros
    body = packer.compress(element) + b"".join(packer.compress(bytes(1 << 20)) for _ in range(64)) + packer.flush()
    monkeypatch.setattr(dicom, "MAX_INFLATED", 8 << 20)  # the test's limit: 8 MiB
    with pytest.raises(ValueError, match="inflates to more than 8 MiB"):
        read_film(raw[:start] + body)
