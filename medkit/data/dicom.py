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
    """The output range of a VOI window, as pydicom's ``apply_windowing`` uses it (PS3.3 C.11.2.1.2)."""
    bits = int(ds.BitsStored)
    low, high = (0, 2**bits - 1) if ds.PixelRepresentation == 0 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    slope, intercept = float(ds.get("RescaleSlope", 1.0)), float(ds.get("RescaleIntercept", 0.0))
    return low * slope + intercept, high * slope + intercept


def read_film(source) -> np.ndarray:
    """The film in a DICOM file as a float32 (H, W) image in [0, 1], bright where the body absorbed X-rays.

    The stored values go through the modality LUT (Rescale Slope and
    Intercept) and the first VOI window (Window Centre and Width), both with
    pydicom's functions, and are scaled from the window's output range to
    [0, 1]; a ``MONOCHROME1`` film is then inverted, so that films written
    either way read the same. A film without a window is scaled from its own
    lowest to its highest value.

    Parameters
    ----------
    source : str, Path or pydicom.Dataset

    Returns
    -------
    ndarray, float32, shape (H, W)
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = source if isinstance(source, pydicom.Dataset) else pydicom.dcmread(source)
    photometric = ds.get("PhotometricInterpretation")
    if photometric not in PHOTOMETRIC or int(ds.get("SamplesPerPixel", 1)) != 1:
        raise ValueError(f"read_film reads grey-scale films ({' or '.join(PHOTOMETRIC)}); this one is "
                         f"{photometric!r}. Convert a colour image to grey before reading it as a film.")
    values = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    if "WindowCenter" in ds:
        values = apply_voi_lut(values, ds, index=0, prefer_lut=False)
        low, high = _window_range(ds)
    else:
        low, high = values.min(), values.max()
    film = (values - low) / max(high - low, 1e-12)
    if photometric == "MONOCHROME1":
        film = 1.0 - film
    return np.clip(film, 0.0, 1.0).astype(np.float32)
