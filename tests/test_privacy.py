"""medkit.privacy: de-identification by PS3.15's Basic Profile, on files the kit did not write, and its scan."""

import datetime
import io
import re
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

from medkit import data, privacy
from medkit.data.dicom import write_dicom

KEY = b"a key the hospital keeps in its key store"
NAME = "Okonkwo^Adaeze^Chiamaka"  # the planted patient: her name, ID and birth date in every spelling
PATIENT_ID = "PX44710093"
BIRTH = "19470312"
SPELLED = ["Okonkwo Adaeze", "ADAEZE OKONKWO", "okonkwo, adaeze", "12/03/1947", "1947-03-12", "12 March 1947",
           "March 12, 1947", "03/12/47", PATIENT_ID.lower()]


def bundled():
    """pydicom's test files in the installed wheel (offline), with the DICOM files among them."""
    files = [Path(f) for f in get_testdata_files() if Path(f).is_file()]
    assert len(files) > 100, "pydicom's bundled test files"
    return files


def corner(film):
    """A pixel cleaner for the tests: the top-left 4 x 4 block of every frame is 'burned-in text'."""
    mask = np.zeros(film.shape, bool)
    mask[:4, :4] = True
    return mask


def quiet_read(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, **kwargs)


def plant(ds):
    """The patient's identifiers in every text element of Table E.1-1, nested sequences, private blocks."""
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PATIENT_ID, BIRTH
    exact, _ = privacy._table()
    planted = 0
    for number in exact:
        keyword = keyword_for_tag(number)
        try:
            vr = dictionary_VR(number)
        except KeyError:
            continue
        if not keyword or number >> 16 == 0x0002 or keyword.startswith("PatientIdentity"):
            continue
        text = f"{SPELLED[planted % len(SPELLED)]}"
        if vr == "PN":
            setattr(ds, keyword, NAME)
        elif vr in ("LO", "LT", "ST", "UT", "UC"):
            setattr(ds, keyword, f"seen {text}"[:64])
        elif vr == "SH":
            setattr(ds, keyword, PATIENT_ID)
        elif vr == "DA":
            setattr(ds, keyword, BIRTH)
        else:
            continue
        planted += 1
    request = Dataset()
    request.RequestedProcedureDescription = f"CXR for {SPELLED[0]}"
    request.RequestedProcedureID = PATIENT_ID
    inner = request.private_block(0x0011, "HOSPITAL RIS", create=True)
    inner.add_new(0x01, "LO", SPELLED[1])
    ds.RequestAttributesSequence = [request]
    other = Dataset()
    other.PatientID, other.IssuerOfPatientID = "ALT-99120044", "Regional Hospital"
    ds.OtherPatientIDsSequence = [other]
    block = ds.private_block(0x0009, "VENDOR X", create=True)
    block.add_new(0x10, "LO", NAME)
    block.add_new(0x11, "UN", NAME.encode())
    return planted


def secrets():
    return {"names": [NAME], "dates": [BIRTH], "other": [PATIENT_ID, "ALT-99120044"]}


# --- the scan -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", SPELLED + ["OKONKWO^ADAEZE", "Adaeze Chiamaka Okonkwo", "1947.03.12", "12.03.1947",
                                            "Mar 12, 1947", "12-Mar-1947", "patient okonkwo was seen"])
def test_the_scan_finds_every_spelling(text):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.ImageComments = text
    assert [h for h in privacy.scan(ds, secrets()) if h.startswith("ImageComments")], text


def test_the_scan_finds_identifiers_nested_private_and_in_raw_bytes_only():
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.remove_private_tags()
    assert privacy.scan(ds, secrets()) == []
    item = Dataset()
    item.CodeMeaning = f"follow-up of {SPELLED[2]}"
    ds.ViewCodeSequence = [item]
    block = item.private_block(0x0013, "VENDOR", create=True)
    block.add_new(0x01, "LO", "x")
    hits = privacy.scan(ds, secrets())
    assert any(h.startswith("ViewCodeSequence[0].CodeMeaning") for h in hits)
    assert any(h.startswith("private element ViewCodeSequence[0].(0013,") for h in hits)
    # Bytes after the end of the data set: no parser shows them, the byte scan does.
    clean = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    clean.remove_private_tags()
    buffer = io.BytesIO()
    clean.save_as(buffer, enforce_file_format=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom reads the trailing bytes as an unknown element
        assert "raw bytes: Okonkwo^Adaeze^Chiamaka" in privacy.scan(buffer.getvalue() + b"\x00Okonkwo^Adaeze", secrets())


def test_short_or_public_values_are_not_searched():
    found = privacy.identifiers(pydicom.dcmread(get_testdata_file("MR_small.dcm")))
    assert "TOSHIBA" not in found["other"], "the institution is named like the scanner's maker, which is kept"
    assert all(len(v) >= 1 for v in found["other"])
    assert "1" not in privacy.spellings({"other": ["1"]})


# --- de-identification of files the kit did not write -------------------------------------------------------------

def test_every_bundled_file_is_deidentified_or_refused_clearly(tmp_path):
    written, refused = 0, {}
    for path in bundled():
        out = tmp_path / f"{path.name}.out"
        try:
            report = privacy.deidentify(path, out, key=KEY)
        except privacy.Refused as why:
            assert not out.exists(), "nothing is written for a refused file"
            assert str(path) in str(why) and why.reason
            refused[path.name] = why.reason
            continue
        written += 1
        original, clean = quiet_read(path), quiet_read(out)
        assert privacy.scan(out, privacy.identifiers(original)) == [], path.name
        assert clean.PatientIdentityRemoved == "YES" and clean.DeidentificationMethodCodeSequence
        assert not [e for e in clean.iterall() if e.tag.is_private]
        if "PixelData" in original:
            assert clean.PixelData == original.PixelData, "pixels untouched without a pixel cleaner"
        assert report.files[0].actions
    assert written >= 96, (written, refused)
    reasons = ("not a DICOM file", "DICOMDIR", "fragment", "still in it", "without pixel data", "cut short", "incomplete")
    assert all(any(k in r for k in reasons) for r in refused.values()), {n: r for n, r in refused.items()
                                                                         if not any(k in r for k in reasons)}


def test_planted_identifiers_in_every_text_element_are_removed(tmp_path):
    for name in ("CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm", "MR_small_bigendian.dcm"):
        ds = quiet_read(get_testdata_file(name))
        assert plant(ds) > 200
        ds.save_as(tmp_path / name)
        for options in (dict(), dict(clean_descriptors=True), dict(shift_dates=False, keep_patient_characteristics=False)):
            out = tmp_path / f"{name}-{len(options)}-{options.get('shift_dates', 1)}.dcm"
            report = privacy.deidentify(tmp_path / name, out, key=KEY, **options)
            assert privacy.scan(out, secrets()) == [], (name, options)
            clean = quiet_read(out)
            assert "RequestAttributesSequence" not in clean and "OtherPatientIDsSequence" not in clean
            kinds = {a.action for a in report.files[0].actions}
            assert {"X", "Z"} <= kinds


def test_an_identifier_in_an_element_the_profile_keeps_is_refused(tmp_path):
    ds = quiet_read(get_testdata_file("CT_small.dcm"))
    ds.PatientName = NAME
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "399067008", "SCT", "Okonkwo lateral"
    ds.ViewCodeSequence = [item]  # a kept element, at depth 1: the profile has no action for it
    ds.save_as(tmp_path / "in.dcm")
    with pytest.raises(privacy.Refused, match=r"still in it.*ViewCodeSequence\[0\]\.CodeMeaning"):
        privacy.deidentify(tmp_path / "in.dcm", tmp_path / "out.dcm", key=KEY)
    assert not (tmp_path / "out.dcm").exists()


def test_free_text_is_removed_by_default_and_cleaned_on_request():
    ds = quiet_read(get_testdata_file("CT_small.dcm"))
    ds.PatientName = NAME
    ds.StudyDescription = "PA chest, Okonkwo Adaeze, ward 4"
    default = privacy.deidentify(ds, key=KEY).files[0].dataset
    assert "StudyDescription" not in default
    cleaned = privacy.deidentify(ds, key=KEY, clean_descriptors=True).files[0].dataset
    assert re.fullmatch(r"PA chest, X{7}.X{6}, ward 4", cleaned.StudyDescription), cleaned.StudyDescription
    codes = [i.CodeValue for i in cleaned.DeidentificationMethodCodeSequence]
    assert "113105" in codes and "113105" not in [i.CodeValue for i in default.DeidentificationMethodCodeSequence]


def moment(f):
    return datetime.datetime.strptime(f.StudyDate + f.StudyTime[:6], "%Y%m%d%H%M%S")


def test_pseudonyms_and_date_offsets_are_keyed_per_patient(tmp_path):
    films = data.load("phantom", sizes=(2, 2, 40), image_size=32, seed=3)
    files = write_dicom(films, tmp_path / "in", images_per_patient=3)
    first = privacy.deidentify(tmp_path / "in", tmp_path / "a", key=KEY)
    again = privacy.deidentify(tmp_path / "in", tmp_path / "b", key=KEY)
    other = privacy.deidentify(tmp_path / "in", tmp_path / "c", key=b"another hospital's secret key")
    assert len(first.written) == len(files) and not first.refused
    assert [f.output.read_bytes() for f in first.written] == [f.output.read_bytes() for f in again.written]
    by_patient = {}
    for src, out in zip(files, (f.output for f in first.written)):
        o, n = quiet_read(src), quiet_read(out)
        shift = moment(n) - moment(o)  # date and time: offsets are whole hours
        by_patient.setdefault(o.PatientID, set()).add((n.PatientID, str(n.PatientName), shift))
        assert re.fullmatch(r"[0-9]{15}", str(n.PatientName))
        assert n.LongitudinalTemporalInformationModified == "MODIFIED" and n.PatientBirthDate == ""
        assert n.StudyTime, "a time shifted with its date stays, also when the offset is a whole number of days"
        assert datetime.timedelta(days=-730) <= shift <= datetime.timedelta(days=-62)
    assert all(len(v) == 1 for v in by_patient.values()), "one pseudonym and one offset per patient"
    assert len({next(iter(v))[0] for v in by_patient.values()}) == len(by_patient)
    assert quiet_read(other.written[0].output).PatientID != quiet_read(first.written[0].output).PatientID


def test_person_names_get_keyed_codes_the_same_for_the_same_person():
    ds = quiet_read(get_testdata_file("CT_small.dcm"))
    ds.PatientName, ds.ReferringPhysicianName = NAME, "Garcia^Ben"
    other = quiet_read(get_testdata_file("MR_small.dcm"))
    other.PatientName, other.ReferringPhysicianName = "Nguyen^Grace", "Garcia^Ben"
    first, again, second = (privacy.deidentify(d, key=KEY).files[0] for d in (ds, ds, other))
    assert re.fullmatch(r"[0-9]{15}", str(first.dataset.PatientName))
    assert first.dataset.PatientName == again.dataset.PatientName != second.dataset.PatientName
    assert first.dataset.ReferringPhysicianName == second.dataset.ReferringPhysicianName, "one physician, one code"
    assert any(a.element == "PatientName" and "keyed code" in a.detail for a in first.actions)
    assert privacy.deidentify(ds, key=b"another hospital's secret key").files[0].dataset.PatientName != \
        first.dataset.PatientName


def test_ages_over_89_are_grouped_and_bands_generalise(tmp_path):
    ds = quiet_read(get_testdata_file("CT_small.dcm"))
    bins = (18, 30, 40, 50, 60, 70, 80)
    for age, band, expected in (("095Y", None, "090Y"), ("067Y", None, "067Y"), ("067Y", 10, "060Y"),
                                ("089Y", 5, "085Y"), ("006M", 10, "000Y"), ("095Y", 10, "090Y"), ("019Y", bins, "018Y"),
                                ("084Y", bins, "080Y"), ("096Y", bins, "080Y"), ("012Y", bins, "000Y"),
                                ("097Y", (0, 95), "090Y")):
        ds.PatientAge = age
        assert privacy.deidentify(ds, key=KEY, age_bins=band).files[0].dataset.PatientAge == expected, (age, band)
    ds.PatientAge = age
    assert "PatientAge" not in privacy.deidentify(ds, key=KEY, keep_patient_characteristics=False).files[0].dataset


# --- pixels -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm",
                                  "JPEG2000.dcm", "SC_rgb_rle_2frame.dcm", "SC_rgb_jpeg_dcmtk.dcm",
                                  "SC_rgb_small_odd.dcm", "SC_ybr_full_422_uncompressed.dcm", "liver_1frame.dcm",
                                  "rtdose.dcm", "image_dfl.dcm"])
def test_burned_in_text_is_masked_and_no_other_pixel_moves(name):
    ds = quiet_read(get_testdata_file(name))
    ds.BurnedInAnnotation = "YES"
    report = privacy.deidentify(ds, key=KEY, clean_pixels=corner)
    clean = report.files[0].dataset
    before, after = ds.pixel_array, clean.pixel_array
    for keyword in ("BitsAllocated", "BitsStored", "PixelRepresentation", "Rows", "Columns", "SamplesPerPixel"):
        assert clean.get(keyword) == ds.get(keyword), keyword
    assert after.shape == before.shape and after.dtype == before.dtype
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    mask = np.zeros(before.shape[:3] if frames > 1 else before.shape[:2], bool)
    mask[..., :4, :4] = True
    assert np.array_equal(after[~mask], before[~mask]), "pixels outside the masked text are unchanged"
    bits, signed = int(ds.BitsStored), int(ds.PixelRepresentation)
    darkest = (2 ** (bits - 1) - 1 if signed else 2 ** bits - 1) if ds.PhotometricInterpretation == "MONOCHROME1" \
        else (-(2 ** (bits - 1)) if signed else 0)
    assert (after[mask] == darkest).all()
    assert clean.BurnedInAnnotation == "NO"
    assert "113101" in [i.CodeValue for i in clean.DeidentificationMethodCodeSequence]


def test_an_8_bit_film_with_a_marker_keeps_its_8_bits(tmp_path):
    films = data.load("phantom", sizes=(60, 2, 40), image_size=32, confounder=0.9, seed=5)
    path = write_dicom(films, tmp_path / "in")[int(np.flatnonzero(films.info["test"]["marker"])[0])]
    ds = pydicom.dcmread(path)
    eight = np.round(ds.pixel_array / 4095 * 255).astype(np.uint8)
    ds.set_pixel_data(eight, "MONOCHROME2", 8, generate_instance_uid=False)
    del ds.WindowCenter, ds.WindowWidth, ds.RescaleSlope, ds.RescaleIntercept
    ds.save_as(tmp_path / "eight.dcm")
    privacy.deidentify(tmp_path / "eight.dcm", tmp_path / "out.dcm", key=KEY, clean_pixels=corner)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert (out.BitsAllocated, out.BitsStored, len(out.PixelData)) == (8, 8, eight.size)
    assert np.array_equal(out.pixel_array[4:], eight[4:]) and (out.pixel_array[:4, :4] == 0).all()


def test_burned_in_annotation_without_a_cleaner_or_not_found_is_refused(tmp_path):
    ds = quiet_read(get_testdata_file("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(privacy.Refused, match=r"Burned In Annotation is YES \(text in the pixels\) and no pixel cleaner"):
        privacy.deidentify(ds, key=KEY)
    with pytest.raises(privacy.Refused, match="found nothing: a person must look"):
        privacy.deidentify(ds, key=KEY, clean_pixels=lambda film: np.zeros(film.shape, bool))
    del ds.BurnedInAnnotation
    report = privacy.deidentify(ds, key=KEY)
    assert report.files[0].review == ["Burned In Annotation absent: the pixels were not searched for burned-in text"]


def test_pixels_that_cannot_be_decoded_are_refused_when_they_must_be_cleaned():
    ds = quiet_read(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    try:
        _ = ds.pixel_array
        pytest.skip("a JPEG-LS decoder is installed here")
    except Exception:
        pass
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(privacy.Refused, match="cannot be decoded here.*JPEG-LS"):
        privacy.deidentify(ds, key=KEY, clean_pixels=corner)
    del ds.BurnedInAnnotation  # not to be cleaned: the compressed pixels pass through as they are
    clean = privacy.deidentify(ds, key=KEY).files[0].dataset
    assert clean.PixelData == ds.PixelData


# --- hostile files ------------------------------------------------------------------------------------------------

def test_hostile_files_are_refused_and_nothing_is_half_written(tmp_path):
    cases = {
        "text.dcm": b"not a film at all",
        "truncated.dcm": Path(get_testdata_file("CT_small.dcm")).read_bytes()[:900],
        "cut-in-pixels.dcm": Path(get_testdata_file("CT_small.dcm")).read_bytes()[:20000],
        "cut-in-rle.dcm": Path(get_testdata_file("MR_small_RLE.dcm")).read_bytes()[:5000],
        "empty.dcm": b"",
    }
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(privacy.Refused, match=re.escape(name)):
            privacy.deidentify(tmp_path / name, tmp_path / f"{name}.out", key=KEY)
        assert not (tmp_path / f"{name}.out").exists()
    with pytest.raises(privacy.Refused, match="more than max_bytes"):
        privacy.deidentify(get_testdata_file("CT_small.dcm"), tmp_path / "big.out", key=KEY, max_bytes=1000)
    with pytest.raises(privacy.Refused, match="DICOMDIR"):
        privacy.deidentify(get_testdata_file("DICOMDIR"), tmp_path / "dir.out", key=KEY)
    source = Path(get_testdata_file("CT_small.dcm"))
    before = source.read_bytes()
    with pytest.raises(FileExistsError):
        privacy.deidentify(source, source, key=KEY)
    assert source.read_bytes() == before, "the original is never overwritten"


def test_a_deflated_bomb_is_refused_before_it_is_inflated(tmp_path):
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.save_as(tmp_path / "small.dcm", enforce_file_format=True)
    raw = (tmp_path / "small.dcm").read_bytes()
    start = 132 + 12 + int(pydicom.filereader.read_file_meta_info(tmp_path / "small.dcm").FileMetaInformationGroupLength)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    element = b"\xe0\x7f\x10\x00OB\x00\x00" + (300 << 20).to_bytes(4, "little")  # Pixel Data of 300 MB of zeros
    body = packer.compress(element) + b"".join(packer.compress(bytes(1 << 20)) for _ in range(300)) + packer.flush()
    (tmp_path / "bomb.dcm").write_bytes(raw[:start] + body)
    assert (tmp_path / "bomb.dcm").stat().st_size < 2 << 20
    with pytest.raises(privacy.Refused, match="inflates to more than max_bytes"):
        privacy.deidentify(tmp_path / "bomb.dcm", tmp_path / "bomb.out", key=KEY, max_bytes=50 << 20)
    report = privacy.deidentify(get_testdata_file("image_dfl.dcm"), tmp_path / "dfl.out", key=KEY)
    assert report.files[0].output.exists()


def test_a_folder_is_written_whole_with_refusals_listed(tmp_path):
    folder = tmp_path / "Okonkwo_Adaeze"  # a folder named after the patient: its name must not reach the output
    (folder / "2025").mkdir(parents=True)
    for name in ("CT_small.dcm", "MR_small.dcm"):
        (folder / "2025" / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    (folder / "notes.txt").write_text("Okonkwo Adaeze, MRN PX44710093")
    report = privacy.deidentify(folder, tmp_path / "out", key=KEY)
    assert len(report.written) == 2 and [Path(f.source).name for f in report.refused] == ["notes.txt"]
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(outputs) == 2 and all(re.fullmatch(r"[\d.]+\.dcm", n) for n in outputs)
    assert "2 of 3 files de-identified" in report.summary() and "notes.txt" in report.summary()


def test_bad_arguments_say_what_to_do(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    with pytest.raises(ValueError, match="at least 16"):
        privacy.deidentify(ds, key=b"short")
    with pytest.raises(ValueError, match="at least 16"):
        privacy.deidentify(ds, key="a string, not bytes, of some length")
    for bad in (0, 91, (30, 18), (), ("18",), True):
        with pytest.raises(ValueError, match="age_bins must be"):
            privacy.deidentify(ds, key=KEY, age_bins=bad)
    with pytest.raises(ValueError, match="out is needed"):
        privacy.deidentify(get_testdata_file("CT_small.dcm"), key=KEY)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        privacy.deidentify(tmp_path / "nothing", tmp_path / "x", key=KEY)
    with pytest.raises(TypeError, match="boolean mask of the film's shape"):
        privacy.deidentify(ds, key=KEY, clean_pixels=lambda film: np.zeros(3, bool))
