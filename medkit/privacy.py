"""De-identifying DICOM files by the standard, and checking that no identifier is left.

A film leaves the hospital for research only after every element that could
identify the patient has been removed, emptied or replaced, as DICOM PS3.15
Annex E says element by element (Table E.1-1, the *Basic Application Level
Confidentiality Profile*), with the *options* a study needs recorded in the
file. :func:`deidentify` does it in four steps, and refuses a file rather
than write one it could not make safe:

1. **dicognito** (a maintained de-identifier) gives IDs, UIDs, addresses,
   the institution and the station pseudonyms, and moves every date and
   time back by one offset. Its seed is a keyed hash (HMAC-SHA256) of the
   Patient ID under a key the hospital keeps, so the same patient gets the
   same pseudonyms and the same date offset in every file and every run,
   and nobody without the key can compute them. Person names get a keyed
   code (15 digits from an HMAC of the name) rather than dicognito's
   realistic names, which are drawn from lists of common names and can be
   a name in the file; digits, because a word such as ``ANONYMOUS`` can
   itself be a name in a file (pydicom's ``waveform_ecg.dcm`` has one).
2. **The profile's table** (Table E.1-1 as ``dicom-anonymizer`` ships it)
   for every element dicognito does not cover, at every depth of every
   sequence: ``X`` remove, ``Z`` empty, ``D`` a dummy value, ``U`` a new
   UID; every private element is removed. Free-text descriptors are removed,
   or with *Clean Descriptors* kept with every spelling of every identifier
   in the file blanked out.
3. **Clean Pixel Data**: a detector the caller gives finds text burned into
   the pixels, which are set to the darkest value and rewritten with the
   file's own Bits Allocated, Bits Stored and Pixel Representation, and
   decoded again to check that nothing else moved.
4. **The scan**: before anything is written, every element (file meta,
   sequences, private blocks) and the raw bytes of the output are searched
   for every identifier of the original in every spelling a person or a
   system writes it (any case; ``^`` or spaces; given name first or last;
   dates as ``19650814``, ``1965-08-14``, ``14/08/1965``, ``08/14/1965``,
   ``14 Aug 1965``...). A file in which any is found is refused.

Notebook 13 teaches each step. The options this module applies are named
in :data:`CODES` (PS3.16 CID 7050) and written into every output file.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import re
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medkit.data.core import Staging

__all__ = ["deidentify", "scan", "identifiers", "spellings", "Report", "FileReport", "Action", "Refused", "CODES",
           "TABLE_EDITION"]

#: The edition of PS3.15 Table E.1-1 applied (as ``dicom-anonymizer`` ships it).
TABLE_EDITION = "dicomfields_2026c"

#: PS3.16 CID 7050 codes of the profile and of the options this module can apply.
CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "clean_pixel_data": ("113101", "Clean Pixel Data Option"),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "modified_dates": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    "patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
}

# Kept by the Retain Patient Characteristics option (a subset of its column: the rest is removed as the basic
# profile says, which the option allows).
_CHARACTERISTICS = ("PatientAge", "PatientSex", "PatientSize", "PatientWeight")
# Free text that the Clean Descriptors option keeps, cleaned (the rest of the option's column is removed).
_DESCRIPTORS = ("StudyDescription", "SeriesDescription", "ProtocolName", "ImageComments", "PerformedProcedureStepDescription",
                "RequestedProcedureDescription", "AcquisitionDeviceProcessingDescription", "DerivationDescription",
                "AdditionalPatientHistory", "PatientComments", "ReasonForStudy", "AdmittingDiagnosesDescription")
# Values that identify a person, a visit, a place or a device, wherever they appear; with every person name (PN),
# every date and every instance UID of the original, they are what the scan looks for.
_IDENTIFYING = ("PatientID", "OtherPatientIDs", "IssuerOfPatientID", "PatientAddress", "PatientTelephoneNumbers",
                "PatientTelecomInformation", "MedicalRecordLocator", "MilitaryRank", "AccessionNumber", "AdmissionID",
                "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
                "DeviceSerialNumber", "DetectorID", "RequestedProcedureID", "PerformedProcedureStepID",
                "ScheduledProcedureStepID", "PlacerOrderNumberImagingServiceRequest",
                "FillerOrderNumberImagingServiceRequest", "StudyID", "PatientInsurancePlanCodeSequence",
                "RegionOfResidence", "CountryOfResidence", "PatientBirthName", "PatientMotherBirthName",
                "CurrentPatientLocation", "PatientInstitutionResidence", "ResponsibleOrganization")
# The equipment and software a file names, which the profile keeps: an institution named like its scanner's maker
# ("TOSHIBA" beside "TOSHIBA_MEC") or a creator UID that is the software's own identifies nothing that they do not.
_EQUIPMENT = ("Manufacturer", "ManufacturerModelName", "SoftwareVersions", "ImplementationClassUID",
              "ImplementationVersionName")
_MIN_LENGTH = 4  # shorter values ("1", "M", "CT") are searched for only inside longer spellings
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_TEXT_VRS = ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT")


class Refused(ValueError):
    """A file :func:`deidentify` would not write: ``file`` is its path (or ``"<dataset>"``), ``reason`` why."""

    def __init__(self, file, reason: str):
        self.file, self.reason = str(file), reason
        super().__init__(f"{file}: not de-identified, and nothing was written for it: {reason}")


@dataclass(frozen=True)
class Action:
    """One thing done to one element: where, what (X, Z, D, U, C or K as in Table E.1-1) and how."""

    element: str
    action: str
    detail: str


@dataclass
class FileReport:
    """What :func:`deidentify` did to one file.

    Attributes
    ----------
    source : str
        The input file (or ``"<dataset>"``).
    output : Path or None
        The de-identified file; None when the file was refused or a dataset was given.
    actions : list of Action
        Every element removed, emptied, replaced, shifted, cleaned or kept by an option.
    review : list of str
        What a person should know before release (e.g. Burned In Annotation absent, pixels not checked).
    refused : str or None
        Why the file was not written.
    dataset : pydicom.Dataset or None
        The de-identified dataset, when a dataset was given.
    """

    source: str
    output: Path | None = None
    actions: list[Action] = field(default_factory=list)
    review: list[str] = field(default_factory=list)
    refused: str | None = None
    dataset: object = None


@dataclass
class Report:
    """Every file :func:`deidentify` read: the ones written, the ones refused, and each one's actions."""

    files: list[FileReport]
    options: tuple[str, ...]

    @property
    def written(self) -> list[FileReport]:
        return [f for f in self.files if f.refused is None]

    @property
    def refused(self) -> list[FileReport]:
        return [f for f in self.files if f.refused is not None]

    def summary(self) -> str:
        """Counts of files, of refusals by reason, and of actions by kind."""
        kinds = Counter(a.action for f in self.written for a in f.actions)
        lines = [f"{len(self.written)} of {len(self.files)} files de-identified ({', '.join(self.options)}); "
                 f"actions: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))]
        lines += [f"refused {f.source}: {f.refused}" for f in self.refused]
        reviews = Counter(note for f in self.written for note in f.review)
        lines += [f"for a person to review ({n} files): {note}" for note, n in reviews.items()]
        return "\n".join(lines)


def _table():
    """Table E.1-1's basic-profile action for each tag: exact tags, and (group, element, masks) for repeating groups."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    categories = dicom_anonymization_database_selector(TABLE_EDITION)
    exact, masked = {}, []
    for category, action in (("D_TAGS", "D"), ("Z_TAGS", "Z"), ("X_TAGS", "X"), ("U_TAGS", "U"), ("Z_D_TAGS", "Z/D"),
                             ("X_Z_TAGS", "X/Z"), ("X_D_TAGS", "X/D"), ("X_Z_D_TAGS", "X/Z/D"),
                             ("X_Z_U_STAR_TAGS", "X/Z/U*")):
        for entry in categories[category]:
            if len(entry) == 2:
                exact[(entry[0] << 16) | entry[1]] = action
            else:
                masked.append((*entry, action))
    return exact, masked


_TABLE = None


def _basic_action(tag) -> str | None:
    global _TABLE
    if _TABLE is None:
        _TABLE = _table()
    exact, masked = _TABLE
    if int(tag) in exact:
        return exact[int(tag)]
    for group, element, group_mask, element_mask, action in masked:
        if tag.group & group_mask == group and tag.element & element_mask == element:
            return action
    return None


def _elements(ds, path="") -> Iterator[tuple[str, object, object]]:
    """Every element at every depth, with a readable path: (path, the dataset holding it, the element)."""
    for element in list(ds):
        name = element.keyword or f"({element.tag.group:04X},{element.tag.element:04X})"
        here = f"{path}{name}"
        yield here, ds, element
        if element.VR == "SQ" and element.value is not None:
            for i, item in enumerate(element.value):
                yield from _elements(item, f"{here}[{i}].")


def _values(element) -> list:
    from pydicom.multival import MultiValue

    return list(element.value) if isinstance(element.value, (list, tuple, MultiValue)) else [element.value]


def _text(element) -> str:
    """An element's value as text ("" for binary values and sequences)."""
    if element.VR == "SQ" or element.value is None:
        return ""
    if element.VR in _TEXT_VRS:
        return "\\".join(str(v) for v in _values(element))
    if element.VR == "UN" and isinstance(element.value, bytes):
        return element.value.decode("latin-1")
    return ""


def _snapshot(ds) -> dict[str, str]:
    return {path: repr(element.value) for path, _, element in _elements(ds) if element.VR != "SQ"}


# --- the identifiers of a file, and their spellings ---------------------------------------------------------------

def identifiers(ds) -> dict[str, list[str]]:
    """The values in a dataset that identify a person, a visit, a place or an instance.

    Parameters
    ----------
    ds : pydicom.Dataset
        The original (file meta included, every sequence searched).

    Returns
    -------
    dict
        ``{"names": [...], "dates": [...], "other": [...]}``: every person name (any element of VR PN), every date
        (DA, and the date of a DT) in an element the profile does not keep, and the values of the elements that
        name a patient, a visit, a place or a device (Patient ID, Accession Number, Institution Name, Device Serial
        Number...) and of every instance UID. Introduced in ``13_dicom_and_privacy.ipynb``.
    """
    names, dates, other = set(), set(), set()
    datasets = [ds.file_meta, ds] if hasattr(ds, "file_meta") else [ds]
    for part in datasets:
        for _, _, element in _elements(part):
            if element.tag.is_private or element.value in (None, "", b""):
                continue
            values = _values(element)
            if element.VR == "PN":
                names.update(str(v) for v in values if str(v).strip())
            elif element.VR in ("DA", "DT") and _basic_action(element.tag) not in (None, "K"):
                dates.update(str(v)[:8] for v in values if re.fullmatch(r"\d{8}", str(v)[:8] or ""))
            elif element.keyword in _IDENTIFYING and element.VR != "SQ":
                other.update(str(v).strip() for v in values if str(v).strip())
            elif element.VR == "UI" and _basic_action(element.tag) not in (None, "K"):
                other.update(str(v) for v in values if str(v))
    kept = " ".join(_text(e) for part in datasets for _, _, e in _elements(part) if e.keyword in _EQUIPMENT).lower()
    other = {v for v in other if v.lower() not in kept}
    return {"names": sorted(names), "dates": sorted(dates), "other": sorted(other)}


def _date_spellings(value: str) -> set[str]:
    try:
        d = datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return {value}
    month, mon = _MONTHS[d.month - 1], _MONTHS[d.month - 1][:3]
    y, yy, m, dd = f"{d.year:04d}", f"{d.year % 100:02d}", f"{d.month:02d}", f"{d.day:02d}"
    out = {f"{y}{m}{dd}", f"{y}-{m}-{dd}", f"{y}.{m}.{dd}", f"{y}/{m}/{dd}"}
    for sep in "/.-":
        for year in (y, yy):
            out |= {f"{dd}{sep}{m}{sep}{year}", f"{m}{sep}{dd}{sep}{year}",
                    f"{d.day}{sep}{d.month}{sep}{year}", f"{d.month}{sep}{d.day}{sep}{year}"}
    for name in (month, mon):
        out |= {f"{d.day} {name} {y}", f"{dd} {name} {y}", f"{name} {d.day}, {y}", f"{name} {d.day} {y}",
                f"{dd}-{name}-{y}", f"{d.day}-{name}-{y}", f"{dd}{name}{y}"}
    return out


def spellings(found: dict[str, list[str]]) -> dict[str, list[str]]:
    """Every way each identifier may be written: what the scan searches for, by identifier.

    Names: with ``^`` or spaces, family name first or last, ``Family, Given``, and each part of three or more
    letters alone (matched as a whole word, so that "Ana" is found in "seen by Ana" but not in "Anatomy"); dates:
    DICOM's ``YYYYMMDD`` and the usual human formats, day or month first, two- or four-digit years, months in
    English; other values as they are. The scan ignores case.

    Parameters
    ----------
    found : dict
        As :func:`identifiers` returns it.

    Returns
    -------
    dict
        ``{identifier: [spelling, ...]}``.

    Examples
    --------
    >>> s = spellings({"names": ["Dubois^Ana"], "dates": ["19650814"], "other": []})
    >>> sorted(s["Dubois^Ana"])
    ['Ana', 'Ana Dubois', 'Dubois', 'Dubois Ana', 'Dubois, Ana', 'Dubois^Ana']
    >>> {"14 Aug 1965", "08/14/1965", "14.08.65", "1965-08-14"} <= set(s["19650814"])
    True
    """
    out = {}
    for name in found.get("names", []):
        forms = set()
        for group in str(name).split("="):  # alphabetic, ideographic and phonetic forms
            parts = [p.strip() for p in group.split("^")]
            words = [p for p in parts if p]
            if not words:
                continue
            family, given = parts[0], (parts[1] if len(parts) > 1 else "")
            forms |= {f for f in (group, " ".join(words), " ".join(reversed(words)), f"{given} {family}".strip(),
                                  f"{family}, {given}".strip(", "), f"{family} {given}".strip())
                      if len(f) >= _MIN_LENGTH}
            forms |= {w for p in words for w in re.split(r"[\s,.]+", p) if len(w) >= 3}  # each part alone
        if forms:
            out[name] = sorted(forms)
    for date in found.get("dates", []):
        out[date] = sorted(_date_spellings(date))
    for value in found.get("other", []):
        if len(value) >= _MIN_LENGTH:
            out[value] = [value]
    return out


_WORD = r"[^\W\d_]+"  # letters only: such a spelling is matched as a whole word


class _Finder:
    """Finds the spellings of identifiers in text, ignoring case: literal spellings anywhere, words as words."""

    def __init__(self, spelled: dict[str, list[str]]):
        self.literals, words = [], {}
        for key, forms in spelled.items():
            for form in forms:
                if re.fullmatch(_WORD, form):
                    words.setdefault(form.lower(), set()).add(key)
                else:
                    self.literals.append((form.lower(), key))
        self.words = words
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        self.word_re = re.compile(rf"(?<![^\W\d_])(?:{alternatives})(?![^\W\d_])", re.IGNORECASE) if words else None

    def __bool__(self):
        return bool(self.literals or self.words)

    def keys(self, text: str) -> set[str]:
        """The identifiers spelled somewhere in ``text``."""
        lower = text.lower()
        found = {key for form, key in self.literals if form in lower}
        if self.word_re is not None:
            for match in self.word_re.finditer(text):
                found |= self.words[match.group(0).lower()]
        return found

    def blank(self, text: str) -> str:
        """``text`` with every spelling of every identifier replaced by as many X."""
        for form in sorted({f for f, _ in self.literals}, key=len, reverse=True):
            text = re.sub(re.escape(form), lambda m: "X" * len(m.group(0)), text, flags=re.IGNORECASE)
        return self.word_re.sub(lambda m: "X" * len(m.group(0)), text) if self.word_re is not None else text


def scan(source, found: dict[str, list[str]]) -> list[str]:
    """Search a DICOM file for identifiers: every element at every depth, and the raw bytes.

    Parameters
    ----------
    source : str, Path, bytes or pydicom.Dataset
        The file to check (a dataset is written to bytes first, as it would be saved).
    found : dict
        The original's identifiers, as :func:`identifiers` returns them.

    Returns
    -------
    list of str
        One line per place an identifier was found (``"ImageComments: Dubois^Ana"``,
        ``"raw bytes: MK6044283"``, ``"private element (0009,1010)"``); empty when none was.
        Introduced in ``13_dicom_and_privacy.ipynb``.
    """
    import pydicom

    if isinstance(source, pydicom.Dataset):
        buffer = io.BytesIO()
        source.save_as(buffer, enforce_file_format=hasattr(source, "file_meta"))
        raw = buffer.getvalue()
    else:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    finder = _Finder(spellings(found))
    hits, parts = [], []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a hostile file's oddities: the scan reports what it finds
            ds = pydicom.dcmread(io.BytesIO(raw), force=True)
            parts = ([ds.file_meta] if hasattr(ds, "file_meta") else []) + [ds]
            list(_elements(ds))
    except Exception as error:
        hits.append(f"unparseable ({type(error).__name__}: {error}): only the raw bytes were searched")
        parts = []
    for part in parts:
        for path, _, element in _elements(part):
            if element.tag.is_private:
                hits.append(f"private element {path}")
            text = _text(element)
            if text:
                hits += [f"{path}: {key}" for key in finder.keys(text)]
    if finder:  # the bytes as Latin-1 and as UTF-8 (names with letters outside ASCII)
        for text in {raw.decode("latin-1"), raw.decode("utf-8", errors="ignore")}:
            hits += [f"raw bytes: {key}" for key in finder.keys(text)]
    return sorted(set(hits))


# --- de-identification --------------------------------------------------------------------------------------------

def _dummy(element):
    """A dummy value consistent with the element's VR (action D)."""
    vr = element.VR
    return {"DA": "19000101", "TM": "000000", "DT": "19000101000000", "AS": "000Y", "DS": "0", "IS": "0",
            "PN": "000000000000000", "CS": "ANONYMIZED", "AE": "ANONYMIZED", "SQ": []}.get(
        vr, b"" if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") else
        0 if vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT") else "ANONYMIZED")


def _empty(element):
    return [] if element.VR == "SQ" else (b"" if element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") else
                                          None if element.VR in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT")
                                          else "")


class _Refuse(Exception):
    pass


def _generalise_age(value: str, bins: tuple[int, ...] | None) -> str:
    """Patient's Age as the start of its bin (``bins``: ascending starts, in years); 90 and over at most ``090Y``."""
    match = re.fullmatch(r"(\d{3})([DWMY])", str(value))
    if not match:
        raise _Refuse(f"Patient's Age {value!r} is not an age string (nnnD, nnnW, nnnM or nnnY)")
    years = int(match.group(1)) if match.group(2) == "Y" else 0
    start = max((b for b in bins if b <= years), default=0) if bins else None
    if start is None:
        return "090Y" if years >= 90 else str(value)  # HIPAA Safe Harbor: ages over 89 in one group
    return f"{min(start, 90):03d}Y"


def _age_bins(age_bins) -> tuple[int, ...] | None:
    """``age_bins`` as ascending bin starts: a width (10: decades from 0) or the starts themselves."""
    if age_bins is None:
        return None
    width = isinstance(age_bins, int) and not isinstance(age_bins, bool)
    if width:
        starts = tuple(range(0, 91, age_bins)) if 1 <= age_bins <= 90 else ()
    else:
        starts = tuple(age_bins) if isinstance(age_bins, (tuple, list)) and all(
            isinstance(b, int) and not isinstance(b, bool) for b in age_bins) else ()
    if not starts or list(starts) != sorted(set(starts)) or starts[0] < 0:
        raise ValueError(f"age_bins must be a width in whole years from 1 to 90 (10 for decades) or ascending bin "
                         f"starts such as (18, 30, 40, 50, 60, 70, 80); got {age_bins!r}.")
    return starts


class _Policy:
    """The profile's table with the options applied to one dataset."""

    def __init__(self, key, shift_dates, characteristics, age_bins, clean_descriptors):
        self.key, self.shift_dates, self.characteristics = key, shift_dates, characteristics
        self.age_bins, self.clean_descriptors = age_bins, clean_descriptors

    def apply(self, ds, changed: set[str], matcher, actions: list[Action], path: str = "") -> None:
        """Every element of ``ds`` and of the sequences it keeps, by the table and the options (recorded)."""
        for element in list(ds):
            name = element.keyword or f"({element.tag.group:04X},{element.tag.element:04X})"
            here = f"{path}{name}"
            if element.tag.is_private:
                del ds[element.tag]
                actions.append(Action(here, "X", "private element removed"))
                continue
            mine = here in changed
            if element.VR == "TM" and element.keyword:  # dicognito shifts a time with its date: a whole number of
                mine |= f"{path}{element.keyword.replace('Time', 'Date')}" in changed  # days leaves it as it was
            if self._one(ds, element, here, mine, matcher, actions) and element.VR == "SQ":
                for i, item in enumerate(element.value or []):
                    self.apply(item, changed, matcher, actions, f"{here}[{i}].")

    def _one(self, ds, element, path, changed, matcher, actions) -> bool:
        """One element; returns whether it is kept (so that a kept sequence's items are gone through too)."""
        from pydicom.uid import generate_uid

        keyword, action = element.keyword, _basic_action(element.tag)
        if element.VR in ("DA", "DT", "TM") and changed and keyword not in ("PatientBirthDate", "PatientBirthTime"):
            if self.shift_dates or action is None:  # an option keeps it shifted, or the table has no action for it
                actions.append(Action(path, "C", "shifted by the patient's offset (dicognito)"))
                return True
        if keyword in _CHARACTERISTICS and self.characteristics:
            if keyword == "PatientAge" and element.value:
                new = _generalise_age(element.value, self.age_bins)
                if new != element.value:
                    element.value = new
                    actions.append(Action(path, "C", f"age generalised to {new}"))
            return True
        if keyword in _DESCRIPTORS and self.clean_descriptors and element.VR != "SQ":
            element.value = matcher.blank(_text(element))
            actions.append(Action(path, "C", "identifiers blanked out"))
            return True
        if action is None:
            return True
        # dicognito gave it a pseudonym or a new UID (a shifted date is not a dummy: the profile's action stands)
        mine = changed and element.VR not in ("DA", "DT", "TM")
        if action == "X" or (action in ("X/Z", "X/D", "X/Z/D") and not mine):
            del ds[element.tag]
            actions.append(Action(path, "X", "removed"))
            return False
        if action == "X/Z/U*":
            actions.append(Action(path, "U", "kept, with the UIDs in it replaced (dicognito)"))
        elif mine:
            actions.append(Action(path, "U" if action == "U" else action[0] if action[0] != "X" else action[2],
                                  "replaced by dicognito" + (" (a pseudonym)" if element.VR in ("PN", "LO", "SH")
                                                              else "")))
        elif action == "U" and element.VR == "UI" and element.value:
            element.value = generate_uid(entropy_srcs=[hmac.new(self.key, str(element.value).encode(),
                                                                hashlib.sha256).hexdigest()])
            actions.append(Action(path, "U", "replaced by a keyed UID"))
        elif action in ("Z", "Z/D", "U") and element.value not in (None, "", b"", []):
            element.value = _empty(element)
            actions.append(Action(path, "Z", "emptied"))
        elif action == "D":
            element.value = _dummy(element)
            actions.append(Action(path, "D", "a dummy value"))
        return True


def _patient_seed(key: bytes, ds) -> str:
    who = str(ds.get("PatientID", "") or "") or f"{ds.get('PatientName', '')}|{ds.get('PatientBirthDate', '')}"
    return hmac.new(key, who.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def _drop_bad_dates(ds, actions):
    """Dates that are not dates (dicognito cannot shift them) are removed."""
    for path, holder, element in list(_elements(ds)):
        if element.VR in ("DA", "DT") and element.value and element.tag in holder:
            values = element.value if not isinstance(element.value, str) else [element.value]
            for v in values:
                try:
                    datetime.datetime.strptime(str(v).replace(".", "")[:8], "%Y%m%d")
                except ValueError:
                    del holder[element.tag]
                    actions.append(Action(path, "X", f"removed: {element.VR} value is not a date"))
                    break


def _pixel_bytes(pixels, bits_allocated: int, little_endian: bool) -> bytes:
    """Decoded pixels as the bytes of an uncompressed Pixel Data element (padded to an even length)."""
    from pydicom.pixels import pack_bits

    if bits_allocated == 1:
        raw = pack_bits(pixels)
    else:
        raw = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<" if little_endian else ">")).tobytes()
    return raw + b"\0" * (len(raw) % 2)


def _check_pixel_length(ds) -> None:
    """Refuse Pixel Data shorter than the header says: pydicom reads a file cut short without an error."""
    if "PixelData" not in ds:
        return
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    raw = ds.PixelData
    if syntax is not None and syntax.is_encapsulated:
        at = 0  # items (FFFE,E000), each with its length, that must end exactly where the value does
        while at + 8 <= len(raw):
            tag, length = raw[at:at + 4], int.from_bytes(raw[at + 4:at + 8], "little")
            if tag != b"\xfe\xff\x00\xe0" or at + 8 + length > len(raw):
                raise _Refuse("its compressed pixel data ends before its last fragment: the file is cut short")
            at += 8 + length
        if at != len(raw):
            raise _Refuse("its compressed pixel data ends inside a fragment header: the file is cut short")
        return
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        samples, frames = int(ds.get("SamplesPerPixel", 1)), int(ds.get("NumberOfFrames", 1) or 1)
        bits = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError) as error:
        raise _Refuse(f"its image header is incomplete ({error})") from None
    if ds.get("PhotometricInterpretation") == "YBR_FULL_422":
        samples = 2  # two chroma samples shared by each pair of pixels
    expected = (rows * columns * samples * frames * bits + 7) // 8
    if len(raw) < expected:
        raise _Refuse(f"its pixel data holds {len(raw)} bytes where its header ({rows} x {columns} px, {frames} "
                      f"frames, {samples} samples, {bits} bits) needs {expected}: the file is cut short")


def _frames_for_display(ds, pixels):
    """Each frame as a viewer shows it, float32 (rows, columns) in [0, 1]: what a pixel cleaner looks at."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    from medkit.data.dicom import read_film

    frames = int(ds.get("NumberOfFrames", 1) or 1)
    colour = int(ds.get("SamplesPerPixel", 1)) > 1
    stack = pixels if frames > 1 else pixels[None]
    skip = {"PixelData", "NumberOfFrames", "PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"}
    for frame in stack:
        if colour:
            f = frame.astype(np.float32).mean(axis=-1)
            yield f / max(float(f.max()), 1.0)
            continue
        one = pydicom.Dataset()  # this frame alone, uncompressed, with the file's LUTs
        for element in ds:
            if element.keyword not in skip:
                one.add(element)
        one.file_meta = pydicom.dataset.FileMetaDataset()
        one.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        one.PixelData = _pixel_bytes(frame, int(ds.BitsAllocated), little_endian=True)
        yield read_film(one)


def _clean_pixels(ds, cleaner, actions, review):
    """Clean Pixel Data: burned-in text found by ``cleaner`` set to the darkest value, pixels rewritten as they were."""
    flag = ds.get("BurnedInAnnotation")
    if "PixelData" not in ds:
        return False
    if cleaner is None:
        if flag == "YES":
            raise _Refuse("Burned In Annotation is YES (text in the pixels) and no pixel cleaner was given: give "
                          "one (clean_pixels=...), or have a person mask the text")
        review.append("Burned In Annotation " + ("absent" if flag is None else f"{flag}, as the file says") +
                      ": the pixels were not searched for burned-in text")
        return False
    syntax = ds.file_meta.get("TransferSyntaxUID")
    try:
        pixels = ds.pixel_array.copy()
    except Exception as error:  # no decoder for this transfer syntax, or damaged pixel data
        raise _Refuse(f"its pixels ({getattr(syntax, 'name', syntax)}) cannot be decoded here, so burned-in text "
                      f"cannot be searched for ({type(error).__name__}: {error}); install a pydicom pixel plugin "
                      "for it (pylibjpeg, pyjpegls) or convert it to an uncompressed transfer syntax") from None
    bits = (int(ds.BitsAllocated), int(ds.BitsStored), int(ds.PixelRepresentation))
    photometric = str(ds.PhotometricInterpretation)
    if photometric not in ("MONOCHROME1", "MONOCHROME2", "RGB") and not photometric.startswith("YBR"):
        raise _Refuse(f"its pixels are {photometric}, whose darkest value this module cannot tell: have a person "
                      "check this file for burned-in text")
    masks = []
    try:
        films = list(_frames_for_display(ds, pixels))
    except ValueError as error:
        raise _Refuse(f"its pixels cannot be shown to the pixel cleaner ({error})") from None
    for film in films:
        mask = np.asarray(cleaner(film), bool)
        if mask.shape != film.shape:
            raise TypeError(f"clean_pixels must return a boolean mask of the film's shape {film.shape}; got {mask.shape}")
        masks.append(mask)
    if not any(m.any() for m in masks):
        if flag == "YES":
            raise _Refuse("Burned In Annotation is YES but the pixel cleaner found nothing: a person must look at it")
        actions.append(Action("PixelData", "K", "searched for burned-in text: none found"))
        return True
    # The darkest value the stored bits can hold: low for MONOCHROME2 and colour, high for MONOCHROME1.
    low, high = (-(2 ** (bits[1] - 1)), 2 ** (bits[1] - 1) - 1) if bits[2] else (0, 2 ** bits[1] - 1)
    darkest = high if photometric == "MONOCHROME1" else low
    stack = pixels if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels[None]
    for frame, mask in zip(stack, masks):
        frame[mask] = darkest
    _write_pixels(ds, pixels, actions)
    n = int(sum(m.sum() for m in masks))
    actions.append(Action("PixelData", "C", f"{n} pixels of burned-in text set to the darkest value in "
                                            f"{sum(m.any() for m in masks)} of {len(masks)} frames"))
    ds.BurnedInAnnotation = "NO"
    return True


def _write_pixels(ds, pixels, actions):
    """Pixel Data from decoded pixels, in the file's own bits, sign and byte order; read back to check it.

    An encapsulated (compressed) original is written uncompressed, losslessly (Explicit VR Little Endian), and a
    YBR colour film as the RGB that pydicom decoded it to; every other element of the Image Pixel module stays.
    """
    from pydicom.uid import ExplicitVRLittleEndian

    syntax = ds.file_meta.get("TransferSyntaxUID")
    bits = (int(ds.BitsAllocated), int(ds.BitsStored), int(ds.PixelRepresentation))
    if syntax is None or syntax.is_compressed:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        actions.append(Action("TransferSyntaxUID", "C", f"{getattr(syntax, 'name', syntax)} -> Explicit VR Little "
                                                        "Endian (pixels rewritten, losslessly)"))
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        if str(ds.PhotometricInterpretation).startswith("YBR"):
            ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0  # pydicom decodes colour pixel by pixel
    ds.PixelData = _pixel_bytes(pixels, bits[0], ds.file_meta.TransferSyntaxUID.is_little_endian)
    if ds["PixelData"].VR not in ("OB", "OW"):
        ds["PixelData"].VR = "OB" if bits[0] <= 8 else "OW"
    again = ds.pixel_array
    if (int(ds.BitsAllocated), int(ds.BitsStored), int(ds.PixelRepresentation)) != bits or \
            not np.array_equal(again, pixels):
        raise _Refuse("the cleaned pixels did not read back as written, so nothing was written")


def _stamp(ds, options, shifted):
    """PS3.15 E.1.1: say what was done, in the file."""
    import dicognito
    from pydicom.dataset import Dataset

    from medkit import __version__

    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = [f"medkit.privacy {__version__}", f"dicognito {dicognito.__version__}",
                                 f"PS3.15 Table E.1-1 ({TABLE_EDITION.split('_')[-1]})"]
    items = []
    for option in options:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = *CODES[option][:1], "DCM", CODES[option][1]
        items.append(item)
    ds.DeidentificationMethodCodeSequence = items
    ds.LongitudinalTemporalInformationModified = "MODIFIED" if shifted else "REMOVED"


def _person_codes(ds, key: bytes, names: dict[str, list[str]], actions) -> None:
    """Every person name becomes a 15-digit code, from an HMAC of the original name under the key.

    dicognito draws its pseudonyms from lists of common names, which can hold a name of the file (the patient's own:
    "Nguyen^Grace" for Nguyen^Grace, in 2 of notebook 13's 400 files); a keyed code cannot, and it stays the same for
    the same person in every file: the same referring physician gets the same code for every patient.
    """
    for path, _, element in _elements(ds):
        if element.VR == "PN" and element.value and path in names:
            codes = [f"{int(hmac.new(key, n.encode('utf-8', 'replace'), hashlib.sha256).hexdigest()[:12], 16):015d}"
                     for n in names[path]]
            element.value = codes if len(codes) > 1 else codes[0]
            actions.append(Action(path, "D", "a keyed code for the person's name"))


def _deidentify_dataset(ds, key, *, shift_dates, characteristics, age_bins, clean_descriptors, clean_pixels):
    """De-identify ``ds`` in place; returns (actions, review, options) or raises _Refuse."""
    import dicognito.anonymizer

    if str(ds.get("SOPClassUID", "")) == "1.2.840.10008.1.3.10" or "DirectoryRecordSequence" in ds:
        raise _Refuse("it is a DICOMDIR (a media directory), which lists patients by name; write a new one for the "
                      "de-identified files instead")
    missing = [k for k in ("SOPClassUID", "SOPInstanceUID") if not ds.get(k)]
    if missing:
        raise _Refuse(f"it has no {' and no '.join(missing)}, which every DICOM instance has: it is a fragment, not a "
                      "file an archive exports")
    if "Image Storage" in getattr(ds.SOPClassUID, "name", "") and not any(
            k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise _Refuse(f"it is a {ds.SOPClassUID.name} instance without pixel data: the file may be cut short")
    _check_pixel_length(ds)
    actions, review = [], []
    original = identifiers(ds)
    matcher = _Finder(spellings(original))
    _drop_bad_dates(ds, actions)
    before = _snapshot(ds.file_meta) if hasattr(ds, "file_meta") else {}
    before_ds = _snapshot(ds)
    names = {path: [str(v) for v in _values(e)] for path, _, e in _elements(ds) if e.VR == "PN" and e.value}
    try:
        dicognito.anonymizer.Anonymizer(seed=_patient_seed(key, ds)).anonymize(ds)
    except Exception as error:
        raise _Refuse(f"dicognito could not process it ({type(error).__name__}: {error})") from None
    after = _snapshot(ds)
    changed = {p for p, v in before_ds.items() if after.get(p, v) != v}
    changed |= {p for p, v in before.items() if _snapshot(ds.file_meta).get(p, v) != v} if before else set()
    for path in sorted(set(before_ds) - set(after)):
        actions.append(Action(path, "X", "removed (dicognito)"))
    _person_codes(ds, key, names, actions)
    changed |= set(names)
    _Policy(key, shift_dates, characteristics, age_bins, clean_descriptors).apply(ds, changed, matcher, actions)
    if any(e.tag.is_private for _, _, e in _elements(ds)):
        raise _Refuse("private elements survived removal")
    options = ["basic"]
    if clean_pixels is not None and _clean_pixels(ds, clean_pixels, actions, review):
        options.append("clean_pixel_data")
    elif clean_pixels is None:
        _clean_pixels(ds, None, actions, review)
    if clean_descriptors:
        options.append("clean_descriptors")
    shifted = any(a.action == "C" and "shifted" in a.detail for a in actions)
    if shift_dates:
        options.append("modified_dates")
    if characteristics:
        options.append("patient_characteristics")
    _stamp(ds, options, shifted)
    _complete_meta(ds)
    left = scan(ds, original)
    if left:
        raise _Refuse("identifiers of the original are still in it after de-identification: " + "; ".join(left[:6]) +
                      (f" (and {len(left) - 6} more)" if len(left) > 6 else ""))
    return actions, review, tuple(CODES[o][1] for o in options)


def _read(path: Path, max_bytes: int):
    """A DICOM file, read only if it is one and its size (inflated, when deflated) is within ``max_bytes``."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    size = path.stat().st_size
    if size > max_bytes:
        raise _Refuse(f"it is {size / 2**20:.0f} MB, more than max_bytes ({max_bytes / 2**20:.0f} MB)")
    try:
        meta = pydicom.filereader.read_file_meta_info(path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as error:
        raise _Refuse(f"it is not a DICOM file (PS3.10: a 128-byte preamble, 'DICM' and a file meta header): "
                      f"{error}") from None
    if meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        raw = path.read_bytes()
        start = 132 + 12 + int(meta.get("FileMetaInformationGroupLength", 0))
        inflater, total = zlib.decompressobj(-zlib.MAX_WBITS), 0
        for i in range(start, len(raw), 1 << 16):
            total += len(inflater.decompress(raw[i:i + (1 << 16)], max_bytes + 1 - total))
            while inflater.unconsumed_tail and total <= max_bytes:
                total += len(inflater.decompress(inflater.unconsumed_tail, max_bytes + 1 - total))
            if total > max_bytes:
                raise _Refuse(f"it is deflated and inflates to more than max_bytes ({max_bytes / 2**20:.0f} MB)")
    try:
        return pydicom.dcmread(path)
    except Exception as error:
        raise _Refuse(f"it cannot be read as DICOM ({type(error).__name__}: {error}); it may be cut short or "
                      "damaged") from None


def deidentify(source, out=None, *, key: bytes, shift_dates: bool = True, keep_patient_characteristics: bool = True,
               age_bins=None, clean_descriptors: bool = False,
               clean_pixels: Callable[[np.ndarray], np.ndarray] | None = None, max_bytes: int = 1 << 30) -> Report:
    """De-identify a DICOM dataset, file or folder by PS3.15's Basic Profile and the options asked for.

    Parameters
    ----------
    source : pydicom.Dataset, str or Path
        A dataset (left unchanged; the de-identified copy is in the report), a file, or a folder whose files
        (at any depth) are all de-identified.
    out : str or Path
        For a file, the output file; for a folder, an output folder. Neither may exist: it is written in full
        (through a temporary name) or not at all. Output files are named by their new SOP Instance UID, since a
        file or folder name may itself identify the patient. Not used for a dataset.
    key : bytes
        The hospital's secret key (at least 16 bytes, from its key store): pseudonyms and date offsets are keyed
        hashes of the Patient ID under it, the same for a patient in every file and every run.
    shift_dates : bool, default True
        *Retain Longitudinal Temporal Information with Modified Dates*: dates and times shifted back by 62 to 730
        days, one offset per patient, so intervals between studies survive. False removes or empties them.
    keep_patient_characteristics : bool, default True
        *Retain Patient Characteristics*: Patient's Age, Sex, Size and Weight kept (the age generalised as
        ``age_bins`` says; 90 and over always ``090Y``, as HIPAA's Safe Harbor asks). False removes them.
    age_bins : int or sequence of int, optional
        Ages in years replaced by the start of their bin, for k-anonymity (notebook 13): a width (10: decades) or
        the bins' starts, e.g. ``(18, 30, 40, 50, 60, 70, 80)`` for 18-29, decades, and 80 and over as ``080Y``.
    clean_descriptors : bool, default False
        *Clean Descriptors*: study and series descriptions, protocol name, comments and histories kept with every
        spelling of the file's identifiers blanked out. By default they are removed: free text can name people
        (a relative, a physician) that no other element of the file names, which no cleaning can find.
    clean_pixels : callable, optional
        *Clean Pixel Data*: called with each frame as a viewer shows it (float32 (rows, columns) in [0, 1], bright
        where dense) and returning a boolean mask of burned-in text. Masked pixels are set to the darkest value.
        Without it, a file whose Burned In Annotation is YES is refused.
    max_bytes : int, default 1 GiB
        Larger files, and deflated files that inflate beyond it, are refused before they are read.

    Returns
    -------
    Report
        ``report.files``: one :class:`FileReport` per input file (every action, what a person should review, the
        output or why it was refused); ``report.summary()`` counts them.

    Raises
    ------
    Refused
        For a single file or dataset that cannot be de-identified safely (the reason says why); nothing is
        written. In a folder, refused files are listed in the report instead and get no output.

    Examples
    --------
    >>> import pydicom
    >>> from pydicom.data import get_testdata_file
    >>> ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    >>> report = deidentify(ds, key=b"a key the hospital keeps in its key store")
    >>> clean = report.files[0].dataset
    >>> clean.PatientIdentityRemoved, str(clean.PatientName) == str(ds.PatientName)
    ('YES', False)
    >>> scan(clean, identifiers(ds))
    []

    Introduced in ``13_dicom_and_privacy.ipynb``.
    """
    import pydicom

    if not isinstance(key, (bytes, bytearray)) or len(key) < 16:
        raise ValueError("key must be the hospital's secret key as bytes, at least 16 of them (e.g. "
                         "secrets.token_bytes(32), kept in a key store); got "
                         f"{type(key).__name__}{' of length ' + str(len(key)) if hasattr(key, '__len__') else ''}.")
    settings = dict(shift_dates=shift_dates, characteristics=keep_patient_characteristics, age_bins=_age_bins(age_bins),
                    clean_descriptors=clean_descriptors, clean_pixels=clean_pixels)
    key = bytes(key)
    if isinstance(source, pydicom.Dataset):
        copy = deepcopy(source)  # Dataset.copy() is shallow: its elements would be the caller's
        try:
            actions, review, options = _deidentify_dataset(copy, key, **settings)
        except _Refuse as why:
            raise Refused("<dataset>", str(why)) from None
        return Report([FileReport("<dataset>", None, actions, review, dataset=copy)], options)
    source = Path(source)
    if out is None:
        raise ValueError("out is needed: the output file (for a file) or folder (for a folder), which must not exist.")
    out = Path(out)
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist; give a DICOM file or a folder of them.")
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file())
        reports, options = [], ()
        with Staging(out, is_dir=True) as tmp:
            for i, path in enumerate(files):
                report, payload, opts, uid = _one(path, key, max_bytes, settings)
                options = options or opts
                if payload is not None:
                    name = f"{uid or i:0>6}.dcm"
                    if (tmp / name).exists():
                        report = FileReport(str(path), refused=f"another file has the same SOP Instance UID ({uid}): "
                                                               "it is a copy, or the archive reused a UID")
                    else:
                        (tmp / name).write_bytes(payload)
                        report.output = out / name
                reports.append(report)
        return Report(reports, options)
    report, payload, options, _ = _one(source, key, max_bytes, settings)
    if payload is None:
        raise Refused(source, report.refused)
    with Staging(out, is_dir=False) as tmp:
        tmp.write_bytes(payload)
    report.output = out
    return Report([report], options)


def _complete_meta(ds) -> None:
    """The file meta's required elements (PS3.10 7.1), from the dataset where the original lacked them."""
    from pydicom.uid import ExplicitVRLittleEndian

    ds.ensure_file_meta()
    meta = ds.file_meta
    for keyword, value in (("MediaStorageSOPClassUID", ds.get("SOPClassUID")),
                           ("MediaStorageSOPInstanceUID", ds.get("SOPInstanceUID"))):
        if value and meta.get(keyword) != value:
            setattr(meta, keyword, value)
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian


def _one(path: Path, key: bytes, max_bytes: int, settings):
    """One file: its report, the de-identified bytes (None when refused), the options applied and its new UID."""
    try:
        ds = _read(path, max_bytes)
        actions, review, options = _deidentify_dataset(ds, key, **settings)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
    except _Refuse as why:
        return FileReport(str(path), refused=str(why)), None, (), None
    except Exception as error:  # the writer refused the result: report it, never write half a file
        return FileReport(str(path), refused=f"it could not be written ({type(error).__name__}: {error})"), None, (), None
    return FileReport(str(path), None, actions, review), buffer.getvalue(), options, str(ds.get("SOPInstanceUID", ""))
