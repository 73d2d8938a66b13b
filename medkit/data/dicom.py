"""Phantom films as DICOM files, as a hospital's archive exports them, and read back.

A radiograph leaves the hospital as DICOM: the pixels (here 12 bits stored
in 16), how to turn them into an image (the modality LUT's rescale slope and
intercept, the VOI window's centre and width, and the photometric
interpretation: ``MONOCHROME2`` shows low values dark, ``MONOCHROME1``
shows them bright), and who the patient is (name, ID, birth date, sex),
when and where the film was taken, and the UIDs that tie images to series,
studies and patients. :func:`write_dicom` writes phantom films that way,
with made-up but realistic identities (and the places identifiers hide: a
comment, a vendor's private tag, the burned-in marker), for notebook 13's
lesson on reading DICOM and de-identifying it; :func:`read_film` turns a
file back into the film the models take, with pydicom's own modality and
VOI LUT functions.

The DICOM standard, PS3.3 (C.7.6.3 Image Pixel, C.11 LUTs) and PS3.15
(Annex E, de-identification), defines every element used here.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np

from medkit.data.core import Dataset, Staging

__all__ = ["write_dicom", "read_film", "PHOTOMETRIC", "STORED_RANGE"]

PHOTOMETRIC = ("MONOCHROME2", "MONOCHROME1")
STORED_RANGE = (400, 3600)  # 12-bit values the film's 0 and 255 are stored as: a detector rarely uses its full range
_DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
_FAMILY = ("Garcia", "Okafor", "Nguyen", "Schmidt", "Rossi", "Kowalski", "Haddad", "Tanaka", "Silva", "Murphy",
           "Novak", "Larsen", "Dubois", "Moreau", "Kaya", "Popescu")
_GIVEN = ("Ana", "Ben", "Chiara", "Dmitri", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Lena",
          "Mateo", "Nora", "Omar", "Priya")


def _uid(*parts) -> str:
    """A UID that the same parts always give (pydicom derives it from a hash of them)."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _identities(n_patients: int, rng: np.random.Generator, start: datetime.date):
    """Made-up patients: name, ID, birth date, sex, and the date of their first study."""
    people = []
    for _ in range(n_patients):
        sex = "F" if rng.random() < 0.5 else "M"
        age_days = int(rng.integers(18 * 365, 90 * 365))
        first = start + datetime.timedelta(days=int(rng.integers(0, 365)))
        people.append({
            "name": f"{_FAMILY[rng.integers(len(_FAMILY))]}^{_GIVEN[rng.integers(len(_GIVEN))]}",
            "id": f"MK{int(rng.integers(10**6, 10**7))}",
            "birth": first - datetime.timedelta(days=age_days),
            "sex": sex,
            "first_study": first,
        })
    return people


def write_dicom(dataset: Dataset, root: Path | str, *, split: str = "test", photometric: str = "MONOCHROME2",
                site: str = "Medkit General Hospital", images_per_patient: int = 2, rescale=(1.0, 0.0),
                seed: int = 0, start: datetime.date = datetime.date(2025, 1, 6)) -> list[Path]:
    """Write one split of a phantom dataset as DICOM files, one film per file.

    Films are grouped into patients of 1 to ``images_per_patient`` studies
    (a follow-up 30 to 400 days after the previous one), each study one
    series of one posteroanterior chest film. The 8-bit film ``v`` is
    stored as 12-bit values ``s`` (Bits Stored 12 in 16 allocated) such that
    ``rescale_slope * s + rescale_intercept``, windowed with the stored
    centre and width, gives back ``v / 255``; with ``MONOCHROME1`` the
    values are inverted and the window with them, so a viewer that honours
    the photometric interpretation shows the same picture.

    Parameters
    ----------
    dataset : medkit.data.Dataset
        A phantom dataset (in memory), e.g. ``data.load("phantom", ...)``.
    root : str or Path
        A folder that does not exist yet; written in full or not at all.
    split : {"train", "val", "test"}, default "test"
    photometric : {"MONOCHROME2", "MONOCHROME1"}, default "MONOCHROME2"
    site : str
        Institution Name, and the root of the station name.
    images_per_patient : int, default 2
        The most studies per patient.
    rescale : (float, float), default (1, 0)
        Rescale Slope and Rescale Intercept of the modality LUT.
    seed : int, default 0
        Seeds the identities, the dates and the UIDs: the same seed writes the same files.
    start : datetime.date
        The earliest study date.

    Returns
    -------
    list of Path
        The files, in the split's order (``root/<n>.dcm``, no identifier in the name).

    Examples
    --------
    >>> import tempfile, pydicom
    >>> from medkit import data
    >>> ds = data.load("phantom", sizes=(2, 2, 4), image_size=32)
    >>> files = write_dicom(ds, Path(tempfile.mkdtemp()) / "films")
    >>> film = pydicom.dcmread(files[0])
    >>> film.Modality, film.PhotometricInterpretation, film.BitsStored, film.PixelSpacing
    ('DX', 'MONOCHROME2', 12, [12.5, 12.5])
    >>> bool(np.allclose(read_film(files[0]), ds.test.images[0] / 255, atol=1e-3))
    True
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset

    if split not in dataset.splits:
        raise ValueError(f"split must be one of {sorted(dataset.splits)}; got {split!r}.")
    films = dataset.splits[split]
    if not films.in_memory or films.images.dtype != np.uint8 or dataset.name != "phantom":
        raise ValueError(f"write_dicom writes in-memory phantom films (uint8); got {dataset.name!r}. "
                         "Load them with data.load('phantom', ...).")
    if photometric not in PHOTOMETRIC:
        raise ValueError(f"photometric must be one of {PHOTOMETRIC}; got {photometric!r}.")
    slope, intercept = (float(v) for v in rescale)
    if slope <= 0:
        raise ValueError(f"the rescale slope must be positive; got {slope!r}.")
    if images_per_patient < 1:
        raise ValueError(f"images_per_patient must be at least 1; got {images_per_patient!r}.")

    rng = np.random.default_rng(seed)
    low, high = STORED_RANGE
    spacing = float(dataset.info["pixel_spacing"])
    markers = dataset.info.get(split, {}).get("marker", np.zeros(len(films), bool))
    # Patients: consecutive films, 1 to images_per_patient each.
    counts = []
    while sum(counts) < len(films):
        counts.append(int(min(rng.integers(1, images_per_patient + 1), len(films) - sum(counts))))
    people = _identities(len(counts), rng, start)
    root = Path(root)
    files = []
    with Staging(root, is_dir=True) as tmp:
        index = 0
        for person, count in zip(people, counts):
            date = person["first_study"]
            for study in range(count):
                if study:
                    date += datetime.timedelta(days=int(rng.integers(30, 400)))
                raw = low + films.images[index].astype(np.float64) / 255.0 * (high - low)  # the windowed output
                stored = np.round((raw - intercept) / slope)
                centre = (low + high) / 2.0
                if photometric == "MONOCHROME1":
                    stored, centre = 4095 - stored, slope * 4095 + 2 * intercept - centre
                if stored.min() < 0 or stored.max() > 4095:
                    raise ValueError(f"rescale={rescale} puts stored values outside 12 bits; use slope 1 and "
                                     "intercept 0, or a slope near 1.")
                ds = pydicom.Dataset()
                ds.file_meta = FileMetaDataset()
                ds.file_meta.MediaStorageSOPClassUID = _DX_PRESENTATION
                ds.SOPClassUID = _DX_PRESENTATION
                ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "DX", "CHEST", "PA"
                ds.PatientName, ds.PatientID, ds.PatientSex = person["name"], person["id"], person["sex"]
                ds.PatientBirthDate = person["birth"].strftime("%Y%m%d")
                ds.PatientAge = f"{(date - person['birth']).days // 365:03d}Y"
                ds.StudyDate = ds.SeriesDate = ds.ContentDate = date.strftime("%Y%m%d")
                ds.StudyTime = ds.SeriesTime = ds.ContentTime = f"{int(rng.integers(7, 19)):02d}{int(rng.integers(60)):02d}00"
                ds.AccessionNumber = f"A{int(rng.integers(10**7, 10**8))}"
                ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = str(study + 1), 1, 1
                ds.InstitutionName, ds.StationName = site, f"{site.split()[0].upper()}-DR1"
                ds.ReferringPhysicianName = f"{_FAMILY[rng.integers(len(_FAMILY))]}^{_GIVEN[rng.integers(len(_GIVEN))]}"
                ds.DeviceSerialNumber = f"SN{int(rng.integers(10**5, 10**6))}"
                ds.ImageComments = f"PA chest, {person['name'].replace('^', ' ')}, ward 4"  # free text: identifiers hide here
                ds.StudyInstanceUID = _uid(seed, person["id"], study, "study")
                ds.SeriesInstanceUID = _uid(seed, person["id"], study, "series")
                ds.FrameOfReferenceUID = _uid(seed, person["id"], "frame")
                ds.PixelSpacing = [spacing, spacing]
                ds.ImagerPixelSpacing = [spacing, spacing]
                ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = slope, intercept, "US"
                ds.WindowCenter, ds.WindowWidth = centre, float(high - low)
                ds.VOILUTFunction = "LINEAR_EXACT"  # the window maps [c - w/2, c + w/2] onto the output range exactly
                ds.BurnedInAnnotation = "YES" if bool(markers[index]) else "NO"
                block = ds.private_block(0x0009, "MEDKIT PHANTOM", create=True)  # a vendor's private tags
                block.add_new(0x10, "LO", person["name"])
                block.add_new(0x11, "LO", f"film {index} of split {split}")
                ds.set_pixel_data(stored.astype(np.uint16), photometric, 12, generate_instance_uid=False)
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid(seed, person["id"], study, "image")
                ds.save_as(tmp / f"{index:05d}.dcm", enforce_file_format=True)
                files.append(root / f"{index:05d}.dcm")
                index += 1
    return files


def _window_range(ds) -> tuple[float, float]:
    """The two ends pydicom's ``apply_windowing`` maps a window onto, in its order (PS3.3 C.11.2.1.2).

    They are the modality LUT's outputs for the lowest and the highest stored
    value (for a Modality LUT Sequence, 0 and the largest value its
    descriptor's bits hold). With a negative Rescale Slope the first end is
    the larger: pydicom then runs the window's output from the top down, and
    ``(y - low) / (high - low)`` is still the window's fraction, 0 at its
    bottom and 1 at its top, as the standard's window function defines it.
    """
    lut = ds.get("ModalityLUTSequence")
    if lut:
        low, high = 0, 2 ** int(lut[0].LUTDescriptor[2]) - 1
    else:
        bits = int(ds.BitsStored)
        low, high = (0, 2**bits - 1) if ds.PixelRepresentation == 0 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if ds.get("RescaleSlope") is not None and ds.get("RescaleIntercept") is not None:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        return low * slope + intercept, high * slope + intercept
    return low, high


def _bytes_of(ds) -> bytes | None:
    """The bytes of the file or in-memory buffer a data set was read from, when they can be had (else None)."""
    import io
    import os

    buffer = getattr(ds, "buffer", None)
    if isinstance(buffer, io.BytesIO):
        return buffer.getvalue()
    filename = getattr(ds, "filename", None)
    if isinstance(filename, str | os.PathLike) and os.path.isfile(filename):
        return Path(filename).read_bytes()
    return None


def _open(source):
    """The data set in ``source``, how an error names it, and the bytes it was read from (None if unknown)."""
    import io

    import pydicom
    from pydicom.errors import InvalidDicomError

    if isinstance(source, pydicom.Dataset):
        name = str(source.filename) if getattr(source, "filename", None) else "the DICOM data set given"
        return source, name, _bytes_of(source)
    if isinstance(source, bytes | bytearray | memoryview):
        data, name = bytes(source), "the DICOM bytes given"
    elif hasattr(source, "read"):
        data, name = source.read(), str(getattr(source, "name", "") or "the DICOM file object given")
    else:
        data, name = Path(source).read_bytes(), str(source)
    if not isinstance(data, bytes):
        raise ValueError(f"{name} gave {type(data).__name__}, not bytes; open a DICOM file in binary mode ('rb').")
    if data[128:132] == b"DICM" and b"1.2.840.10008.1.2.1.99" in data[132:2048]:  # Deflated Explicit VR Little Endian
        inflated, _ = _inflate_count(data, MAX_INFLATED)
        if inflated > MAX_INFLATED:
            raise ValueError(f"{name} is deflated and inflates to more than {MAX_INFLATED >> 20} MiB "
                             "(medkit.data.dicom.MAX_INFLATED): refused before it is inflated. A chest film inflates "
                             "to a few megabytes; if this file is genuine, raise MAX_INFLATED.")
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except InvalidDicomError as err:
        if len(data) < 132:
            raise ValueError(f"{name} is only {len(data)} bytes long, shorter than the 128-byte preamble and 'DICM' "
                             "marker that open every DICOM file: it ends early, or is not DICOM. Copy or download "
                             "it again.") from err
        raise ValueError(f"{name} is not a DICOM file: there is no 'DICM' marker after its 128-byte preamble "
                         "(PS3.10 7.1). If it is a bare DICOM data set without preamble and file meta, read it with "
                         "pydicom.dcmread(path, force=True) and pass the Dataset to read_film.") from err
    except Exception as err:  # a damaged header raises whatever the parser met (struct.error, EOFError, ...)
        raise ValueError(f"{name} cannot be parsed as DICOM ({err.__class__.__name__}: {err}): the file ends early "
                         "or is damaged. Copy or download it again.") from err
    return ds, name, data


def _overrun(ds, size: int):
    """The first element, at any depth, whose value runs past byte ``size``: a file cut short. None if there is none."""
    from pydicom.dataelem import RawDataElement

    for tag in list(ds.keys()):
        element = ds.get_item(tag)
        if isinstance(element, RawDataElement):
            if element.length != 0xFFFFFFFF and element.value_tell + element.length > size:
                return element
        elif element.VR == "SQ":
            for item in element.value:
                found = _overrun(item, size)
                if found is not None:
                    return found
    return None


#: read_film refuses a deflated file (PS3.5 A.5) whose data set inflates to more than this many bytes, before
#: pydicom inflates it whole: a few kilobytes of deflated zeros can ask for gigabytes.
MAX_INFLATED = 1 << 30


def _inflate_count(data: bytes, limit: int) -> tuple[int, bool]:
    """The inflated size of the deflated data set after a file's meta (stopping past ``limit``), and whether its
    compressed stream is complete. The output is made in pieces of 1 MiB and dropped: memory stays bounded."""
    import struct
    import zlib

    meta_length = struct.unpack("<I", data[140:144])[0]  # (0002,0000) File Meta Information Group Length comes first
    inflater, pending, total = zlib.decompressobj(-zlib.MAX_WBITS), data[144 + meta_length:], 0
    try:
        while pending and not inflater.eof and total <= limit:
            total += len(inflater.decompress(pending, 1 << 20))
            pending = inflater.unconsumed_tail
    except zlib.error:
        return total, False
    return total, inflater.eof


def _inflates_whole(data: bytes) -> bool:
    """True when the deflated data set after a file's meta (PS3.5 A.5) is a complete raw-deflate stream."""
    if data[128:132] != b"DICM":
        return True  # no preamble: where the meta ends is not known here
    return _inflate_count(data, MAX_INFLATED)[1]


def _check_complete(ds, name: str, data: bytes | None) -> None:
    """Refuse a file that ends early: an element longer than what is left, no elements, or a tag cut in half."""
    from pydicom.datadict import keyword_for_tag
    from pydicom.dataelem import RawDataElement
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    if data is None:
        return
    size = len(data)
    ends_early = f"{name} ends early: it is not a complete DICOM file ({size} bytes)"
    again = "Copy or download it again; a file cut short cannot be read as a film."
    if getattr(ds, "file_meta", {}).get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        if not _inflates_whole(data):
            raise ValueError(f"{ends_early}; its deflated data set stops before the end of its compressed stream. {again}")
        return  # the elements' positions are in the inflated bytes, not the file's
    if len(ds) == 0:
        raise ValueError(f"{ends_early}; nothing after its file meta could be read (an element or sequence runs past "
                         f"the end of the file). {again}")
    cut = _overrun(ds, size)
    if cut is not None:
        what = keyword_for_tag(cut.tag) or str(cut.tag)
        raise ValueError(f"{ends_early}; its element {what} {cut.tag} declares {cut.length} bytes, but only "
                         f"{max(size - cut.value_tell, 0)} are left. {again}")
    last = ds.get_item(list(ds.keys())[-1])
    if isinstance(last, RawDataElement):  # an undefined length ends with an 8-byte delimiter after its value
        end = last.value_tell + (last.length if last.length != 0xFFFFFFFF else len(last.value or b"") + 8)
        if end > size:
            raise ValueError(f"{ends_early}; its last element, {keyword_for_tag(last.tag) or last.tag}, is cut short "
                             f"in its closing delimiter. {again}")
        if 0 < size - end < 8:
            raise ValueError(f"{ends_early}; its last {size - end} bytes are a fraction of an element's header. {again}")


def _check_grey(ds, name: str) -> str:
    """The photometric interpretation of a grey-scale film with pixel data; a clear refusal for anything else."""
    from pydicom.uid import UID

    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise ValueError(f"{name} holds floating-point pixels (a parametric map), not a radiograph's stored values; "
                             "read_film reads films with integer Pixel Data (7FE0,0010).")
        sop = ds.get("SOPClassUID") or getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID")
        kind = UID(str(sop)).name if sop else "a DICOM object of unstated class"
        if sop and "Image" in kind:
            raise ValueError(f"{name} says it is a {kind}, but it holds no Pixel Data (7FE0,0010): its pixels were "
                             "removed, or the file was cut short before them. Copy or export it again.")
        raise ValueError(f"{name} has no Pixel Data (7FE0,0010): it is {kind}, not an image (or a file cut short "
                         "before its pixels). read_film reads grey-scale films.")
    photometric = ds.get("PhotometricInterpretation")
    expected = f"read_film reads grey-scale films ({' or '.join(PHOTOMETRIC)})"
    if not photometric:
        raise ValueError(f"{name} has pixels but no Photometric Interpretation (0028,0004), so nothing says how to "
                         f"show them; {expected}. The file is incomplete: export it again from its source.")
    photometric = str(photometric).strip()
    if photometric == "PALETTE COLOR":
        raise ValueError(f"{name} is a palette-colour image (each stored value indexes a colour table), not a "
                         f"grey-scale film; {expected}. Convert it to grey first (pydicom's apply_color_lut gives "
                         "its RGB colours).")
    if photometric in ("RGB", "ARGB", "CMYK", "HSV") or photometric.startswith("YBR"):
        raise ValueError(f"{name} is a colour image ({photometric}), not a grey-scale film; {expected}. Convert it "
                         "to grey before reading it as a film.")
    if photometric not in PHOTOMETRIC:
        raise ValueError(f"{name} has the Photometric Interpretation {photometric!r}, which DICOM does not define; "
                         f"{expected}. The file may be cut short or damaged: export it again from its source.")
    samples = ds.get("SamplesPerPixel")
    if samples is not None and int(samples) != 1:
        raise ValueError(f"{name} says {photometric} but {samples} samples per pixel; a grey-scale film has 1. The "
                         "file contradicts itself: export it again from its source.")
    return photometric


def _stored_pixels(ds, name: str, frame: int | None) -> np.ndarray:
    """The stored values of one frame, (rows, columns), decoded by pydicom; a clear refusal when they cannot be."""
    from pydicom.pixels import get_decoder, pixel_array

    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} has the Number of Frames {ds.get('NumberOfFrames')!r}, not a whole number; the file "
                         "is damaged. Export it again from its source.") from err
    if frames < 1:
        raise ValueError(f"{name} says it holds {frames} frames; a film has at least 1. Export it again.")
    if frame is None and frames > 1:
        raise ValueError(f"{name} holds {frames} frames (a multi-frame image: a series, a cine loop or several "
                         f"views), and read_film returns one film. Pass frame=k with k from 0 to {frames - 1}.")
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int | np.integer)
                              or not 0 <= frame < frames):
        raise ValueError(f"frame must be a whole number from 0 to {frames - 1} for {name}, which holds {frames} "
                         f"frame(s); got {frame!r}.")
    functional = [s for k in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
                  for item in ds.get(k) or ()
                  for s in ("PixelValueTransformationSequence", "FrameVOILUTSequence") if s in item]
    if functional:
        raise ValueError(f"{name} keeps its rescale or window in functional groups ({functional[0]}), an enhanced "
                         "multi-frame image whose pixel transformations pydicom's LUT functions do not read; read_film "
                         "would show the stored values untransformed. Export it as a classic image (one film per "
                         "file, rescale and window at the top level).")
    tsyntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    if not tsyntax:
        raise ValueError(f"{name} has no Transfer Syntax UID (0002,0010) in its file meta, so nothing says how its "
                         "pixels are encoded. For an uncompressed little-endian data set set "
                         "ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian, and pass the Dataset.")
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as err:
        raise ValueError(f"{name} is encoded with {tsyntax.name} ({tsyntax}), which pydicom cannot decode. Convert it to "
                         "an uncompressed transfer syntax (e.g. dcmdjpeg or gdcmconv --raw) and read the copy.") from err
    convert = ("or convert the file to an uncompressed transfer syntax (e.g. with dcmdjpeg or gdcmconv --raw) and "
               "read the copy")
    if not decoder.is_available:
        raise ValueError(f"{name} is compressed with {tsyntax.name}, and no decoder for it is installed here. pydicom "
                         f"can decode it with one of: {'; '.join(decoder.missing_dependencies)}. Install one, {convert}.")
    try:
        pixels = ds.pixel_array if frames == 1 else pixel_array(ds, index=int(frame))
    except ValueError as err:
        if "less than expected" in str(err):
            raise ValueError(f"{name} ends early: its pixel data are shorter than {ds.get('Rows')} x "
                             f"{ds.get('Columns')} pixels of {ds.get('BitsAllocated')} bits need ({err}). Copy or "
                             "download it again.") from err
        raise ValueError(f"{name}: its pixel data cannot be decoded ({err}). Export it again from its source.") from err
    except AttributeError as err:
        raise ValueError(f"{name} lacks an element its pixel data need ({err}); the file is incomplete. Export it "
                         "again from its source.") from err
    except Exception as err:  # a decoder plugin failing on this stream raises RuntimeError or its own errors
        if not tsyntax.is_compressed:
            raise ValueError(f"{name}: its pixel data cannot be decoded ({err.__class__.__name__}: {err}). Export it "
                             "again from its source.") from err
        others = "; ".join(decoder.missing_dependencies) or "none"
        raise ValueError(f"{name} is compressed with {tsyntax.name}, and the installed decoder(s) "
                         f"({', '.join(decoder.available_plugins)}) could not decode it ({' '.join(str(err).split())}). "
                         f"Decoders pydicom can use but that are not installed: {others}. Install one, {convert}.") from err
    if pixels.ndim != 2:
        raise ValueError(f"{name} decodes to an array of shape {pixels.shape}, not one grey-scale film (rows, "
                         "columns); the file contradicts itself. Export it again from its source.")
    return pixels


def _check_modality(ds, name: str) -> None:
    """Refuse a modality LUT that cannot give a picture: a rescale slope of 0, half a rescale, a LUT of odd bits."""
    lut = ds.get("ModalityLUTSequence")
    if lut:
        descriptor = lut[0].get("LUTDescriptor")
        if descriptor is None or lut[0].get("LUTData") is None or len(descriptor) != 3:
            raise ValueError(f"{name} has a Modality LUT Sequence without a three-value LUT Descriptor and LUT Data; "
                             "the file is incomplete. Export it again from its source.")
        if int(descriptor[2]) not in (8, 16):
            raise ValueError(f"{name}: its Modality LUT Descriptor says {descriptor[2]} bits per entry; DICOM "
                             "allows 8 or 16 (PS3.3 C.11.1.1.1). The file is invalid: export it again.")
        return
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if (slope is None) != (intercept is None):
        present = "Rescale Slope" if slope is not None else "Rescale Intercept"
        raise ValueError(f"{name} has a {present} but not the other half of the rescale; DICOM requires both "
                         "(PS3.3 C.11.1). Set the missing one on the Dataset (slope 1 or intercept 0, if that is "
                         "what its source meant) and pass the Dataset.")
    if slope is None:
        return
    try:
        slope, intercept = float(slope), float(intercept)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} has a rescale that is not a pair of numbers ({err}); export it again.") from err
    if slope == 0 or not np.isfinite(slope) or not np.isfinite(intercept):
        raise ValueError(f"{name} has the Rescale Slope {slope!r} and Intercept {intercept!r}: "
                         + ("a slope of 0 maps every stored value to the intercept, a blank film. "
                            if slope == 0 else "a rescale must be two finite numbers. ")
                         + "The file is invalid; ask its source for a corrected export.")


def _voi(ds, name: str, prefer_lut: bool) -> str | None:
    """Which VOI transformation applies: ``"lut"``, ``"window"`` or None (as pydicom's ``apply_voi_lut`` chooses)."""
    sequence = ds.get("VOILUTSequence")
    lut = bool(sequence) and None not in (sequence[0].get("LUTDescriptor"), sequence[0].get("LUTData"))
    centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    window = centre not in (None, "") and width not in (None, "")
    if not window and (centre not in (None, "") or width not in (None, "")) and not lut:
        raise ValueError(f"{name} has a Window {'Center' if width in (None, '') else 'Width'} without a Window "
                         f"{'Width' if width in (None, '') else 'Center'}: half a window. DICOM requires both "
                         "(PS3.3 C.11.2). Set the missing one on the Dataset and pass it, or delete both to scale "
                         "the film from its lowest to its highest value.")
    if sequence and not lut and not window:
        raise ValueError(f"{name} has a VOI LUT Sequence without LUT Descriptor or LUT Data, and no window; the file "
                         "is incomplete. Export it again from its source.")
    if lut and (prefer_lut or not window):
        if len(sequence[0].LUTDescriptor) != 3:
            raise ValueError(f"{name}: its VOI LUT Descriptor has {len(sequence[0].LUTDescriptor)} values, not 3 "
                             "(entries, first input, bits). The file is invalid: export it again, or pass "
                             "prefer_lut=False to use its window, if it has one.")
        bits = int(sequence[0].LUTDescriptor[2])
        if bits != 8 and not 10 <= bits <= 16:
            raise ValueError(f"{name}: its VOI LUT Descriptor says {bits} bits per entry; DICOM allows 8 or 10 to 16 "
                             "(PS3.3 C.11.2.1.1). The file is invalid: export it again, or pass prefer_lut=False to "
                             "use its window, if it has one.")
        return "lut"
    return "window" if window else None


def _voi_lut_view(values: np.ndarray, ds):
    """The modality values and a data set holding ``ds``'s first VOI LUT, ready for pydicom's ``apply_voi_lut``.

    The values are clipped to the LUT's first and last input and floored to
    whole numbers, as pydicom's ``apply_voi`` indexes a float array (clip,
    then cast to an unsigned index); whole numbers spare its warning about
    float input. The LUT is the file's, with the same data, but an 8-bit
    one is declared as 16-bit entries: pydicom 3.0.2 builds its index array in
    the entries' type, so with 8-bit entries every input past 255 wraps
    round (input 4095 of a 4096-entry LUT read entry 255). The output range
    stays the file's own, 0 to 255.
    """
    import copy

    import pydicom

    item = copy.deepcopy(ds.VOILUTSequence[0])
    entries, first, bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 2**16
    item.LUTDescriptor = [entries, first, 16 if bits == 8 else bits]
    view = pydicom.Dataset()
    view.file_meta = ds.file_meta  # the byte order of LUT Data held as OW
    view.VOILUTSequence = [item]
    return np.floor(np.clip(values, first, first + entries - 1)).astype(np.int64), view


def read_film(source, *, frame: int | None = None, prefer_lut: bool = True) -> np.ndarray:
    """The film in a DICOM file as a float32 (H, W) image in [0, 1], bright where the body absorbed X-rays.

    The stored values go through the modality LUT (Rescale Slope and
    Intercept, or a Modality LUT Sequence) and the VOI transformation (a VOI
    LUT Sequence, or the first window: Window Center and Width with the VOI
    LUT Function, ``LINEAR`` by default, ``LINEAR_EXACT`` or ``SIGMOID``),
    all with pydicom's ``apply_modality_lut`` and ``apply_voi_lut``, and are
    scaled from the VOI output range to [0, 1]: ``0 .. 2**n - 1`` for a LUT
    of ``n`` bits (the third value of its LUT Descriptor), the modality LUT's
    outputs for the lowest and highest stored values for a window. A
    ``MONOCHROME1`` film is then inverted, so that films written either way
    read the same. A film with neither LUT nor window is scaled from its own
    lowest to its highest value (a constant film reads 0, or 1 if
    ``MONOCHROME1``).

    When a file has both a VOI LUT Sequence and a window, PS3.3 C.11.2 makes
    them alternative views and sets no precedence (IHE asks a DX viewer to let
    the reader choose); read_film follows pydicom's default and applies the
    LUT, the manufacturer's curve, unless ``prefer_lut=False``.

    A negative Rescale Slope is legal: the window still acts on the rescaled
    values, and the film is bright where they are high. pydicom then maps the
    window onto the two ends of the range in stored order, the larger first,
    and read_film scales by them in that order (sorting them would turn the
    film into its negative). A file that cannot
    give the right pixels is refused with a ValueError that names it and says
    what to do: a colour or palette image, no pixel data, a file cut short
    (in its header or its pixels), a rescale slope of 0, half a window, a
    compression no installed decoder reads (plain, RLE, JPEG baseline and
    JPEG 2000 decode with the kit's packages; JPEG-LS, lossless and 12-bit
    JPEG need ``pylibjpeg`` and its plugins, or ``gdcm``), and a multi-frame
    file unless ``frame`` is given.

    Introduced in ``13_dicom_and_privacy.ipynb``.

    Parameters
    ----------
    source : str, Path, bytes, binary file object or pydicom.Dataset
        A DICOM file (Part 10: preamble, ``DICM`` and file meta), or a data set already read.
    frame : int, optional
        For a multi-frame file, which frame to read (0 is the first); required there, since a film is one frame.
    prefer_lut : bool, default True
        When the file has both a VOI LUT Sequence and a window, apply the LUT (True) or the window (False).

    Returns
    -------
    ndarray, float32, shape (H, W)
        Values in [0, 1]; H = Rows, W = Columns.

    Raises
    ------
    ValueError
        When the file is not a complete grey-scale DICOM image that can be decoded here, naming the file.

    Examples
    --------
    >>> import pydicom
    >>> from pydicom.data import get_testdata_file
    >>> from pydicom.pixels import apply_modality_lut, apply_voi_lut
    >>> path = get_testdata_file("MR_small.dcm")  # 16-bit signed, window 600 +- 800
    >>> film = read_film(path)
    >>> film.shape, film.dtype, float(film.min()) >= 0.0, float(film.max()) <= 1.0
    ((64, 64), dtype('float32'), True, True)
    >>> ds = pydicom.dcmread(path)
    >>> by_pydicom = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)  # output range -32768 .. 32767
    >>> bool(np.allclose(film, (by_pydicom + 32768) / 65535, atol=1e-6))
    True
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds, name, data = _open(source)
    _check_complete(ds, name, data)
    photometric = _check_grey(ds, name)
    pixels = _stored_pixels(ds, name, frame)
    _check_modality(ds, name)
    try:
        values = apply_modality_lut(pixels, ds).astype(np.float64)
    except Exception as err:  # a LUT whose data disagree with its descriptor
        raise ValueError(f"{name}: its Modality LUT Sequence cannot be applied ({err.__class__.__name__}: {err}); its "
                         "descriptor and data disagree. Export the file again from its source.") from err
    voi = _voi(ds, name, prefer_lut)
    if voi is None:
        low, high = values.min(), values.max()
    else:
        holder = ds
        if voi == "lut":
            values, holder = _voi_lut_view(values, ds)
        try:
            values = apply_voi_lut(values, holder, index=0, prefer_lut=voi == "lut")
        except Exception as err:  # a width pydicom's function refuses, an unknown function, a short LUT
            raise ValueError(f"{name}: its VOI {'LUT' if voi == 'lut' else 'window'} cannot be applied "
                             f"({err.__class__.__name__}: {err}). Export the file again from its source"
                             + (", or pass prefer_lut=False to use its window." if voi == "lut" else ".")) from err
        if voi == "lut":
            low, high = 0, 2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1
            if values.max() > high:
                raise ValueError(f"{name}: its VOI LUT gives values up to {int(values.max())}, above {high}, the "
                                 "most its LUT Descriptor's bits allow; the file is invalid. Export it again, or pass "
                                 "prefer_lut=False to use its window.")
        else:
            low, high = _window_range(ds)
    span = high - low
    film = (values - low) / (span if span != 0 else 1.0)
    if photometric == "MONOCHROME1":
        film = 1.0 - film
    return np.clip(film, 0.0, 1.0).astype(np.float32)
