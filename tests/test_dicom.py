"""medkit.data.dicom: phantom films written as DICOM and read back."""

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID

from medkit import data
from medkit.data.dicom import STORED_RANGE, read_film, write_dicom


@pytest.fixture(scope="module")
def films():
    return data.load("phantom", sizes=(4, 4, 12), image_size=32, confounder=0.9, seed=3)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("rescale", [(1.0, 0.0), (2.0, -1000.0)])
def test_a_film_reads_back_as_it_was_written(films, tmp_path, photometric, rescale):
    files = write_dicom(films, tmp_path / "dcm", photometric=photometric, rescale=rescale)
    assert len(files) == len(films.test)
    for file, image in zip(files, films.test.images):
        # 8 bits spread over 3,200 output values: rounding a stored value moves it by at most 1/3200 of the range
        assert np.abs(read_film(file) - image / 255.0).max() < 1e-3
        film = pydicom.dcmread(file)
        assert film.PhotometricInterpretation == photometric and film.BitsStored == 12 and film.BitsAllocated == 16


def test_monochrome1_stores_the_inverted_values(films, tmp_path):
    two = pydicom.dcmread(write_dicom(films, tmp_path / "m2")[0])
    one = pydicom.dcmread(write_dicom(films, tmp_path / "m1", photometric="MONOCHROME1")[0])
    assert np.array_equal(one.pixel_array.astype(int), 4095 - two.pixel_array.astype(int))
    assert two.pixel_array.min() >= STORED_RANGE[0] and two.pixel_array.max() <= STORED_RANGE[1]
    # Read as if it were MONOCHROME2, the inverted film is the negative: the pitfall notebook 13 measures.
    one.PhotometricInterpretation = "MONOCHROME2"
    assert np.allclose(read_film(one), 1.0 - read_film(two), atol=1e-6)


def test_identities_tie_studies_to_patients(films, tmp_path):
    sets = [pydicom.dcmread(f) for f in write_dicom(films, tmp_path / "dcm", images_per_patient=3)]
    by_patient = {}
    for ds in sets:
        by_patient.setdefault(ds.PatientID, []).append(ds)
        for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.FrameOfReferenceUID):
            assert UID(uid).is_valid
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert len({ds.SOPInstanceUID for ds in sets}) == len(sets)
    assert 1 < len(by_patient) < len(sets), "some patients have more than one study"
    for studies in by_patient.values():
        assert len({(s.PatientName, s.PatientBirthDate, s.PatientSex, s.FrameOfReferenceUID) for s in studies}) == 1
        assert len({s.StudyInstanceUID for s in studies}) == len(studies)
        dates = [s.StudyDate for s in studies]
        assert dates == sorted(dates), "follow-up studies come later"


def test_identifiers_hide_in_comments_and_private_tags(films, tmp_path):
    ds = pydicom.dcmread(write_dicom(films, tmp_path / "dcm")[0])
    family = str(ds.PatientName).split("^")[0]
    assert family in ds.ImageComments
    block = ds.private_block(0x0009, "MEDKIT PHANTOM")
    assert block[0x10].value == str(ds.PatientName)
    markers = films.info["test"]["marker"]
    burned = [pydicom.dcmread(f).BurnedInAnnotation for f in write_dicom(films, tmp_path / "again")]
    assert burned == ["YES" if m else "NO" for m in markers] and "YES" in burned


def test_the_same_seed_writes_the_same_files(films, tmp_path):
    a = write_dicom(films, tmp_path / "a", seed=7)
    b = write_dicom(films, tmp_path / "b", seed=7)
    c = write_dicom(films, tmp_path / "c", seed=8)
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))
    assert pydicom.dcmread(a[0]).PatientID != pydicom.dcmread(c[0]).PatientID


def test_bad_input_is_refused_and_nothing_is_half_written(films, tmp_path):
    with pytest.raises(ValueError, match="photometric must be one of"):
        write_dicom(films, tmp_path / "x", photometric="RGB")
    with pytest.raises(ValueError, match="split must be one of"):
        write_dicom(films, tmp_path / "x", split="holdout")
    with pytest.raises(ValueError, match="outside 12 bits"):
        write_dicom(films, tmp_path / "x", rescale=(0.5, 0.0))
    assert not (tmp_path / "x").exists() and not list(tmp_path.iterdir())
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError):
        write_dicom(films, tmp_path / "taken")
    colour = pydicom.dcmread(write_dicom(films, tmp_path / "ok")[0])
    colour.PhotometricInterpretation = "RGB"
    with pytest.raises(ValueError, match="grey-scale films"):
        read_film(colour)
