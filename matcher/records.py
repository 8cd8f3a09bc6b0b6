"""Read trial records from files: API v2 JSON (single study, ``/studies`` page, website export
array) and classic ``clinical_study`` XML, all turned into the same internal record.

The internal record is the API v2 study dict (``{"protocolSection": {...}, "derivedSection":
{...}, "hasResults": ...}``). Classic XML is mapped into that shape with v2 field names and
enum values, so everything downstream (store, trial model, eligibility) reads one shape.

A bad file or entry never stops the rest: :func:`iter_records` yields an item carrying a
:class:`~matcher.errors.RecordError` for it and goes on.
"""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from matcher.errors import RecordError

NCT_ID_RE = re.compile(r"^NCT\d{8}$")
RECORD_SUFFIXES = (".json", ".xml")


@dataclass(frozen=True)
class RecordItem:
    """One record read from a file: ``record`` (v2 study dict) or ``error``, and where it came from."""

    record: dict | None
    source: str
    error: RecordError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.record is not None


# ---------------------------------------------------------------------------------------------
# small accessors on the v2 record


def _get(record: dict, *keys: str):
    node = record
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def record_nct_id(record: dict) -> str | None:
    """Return ``protocolSection.identificationModule.nctId`` (upper-cased) or None."""
    value = _get(record, "protocolSection", "identificationModule", "nctId")
    return value.strip().upper() if isinstance(value, str) and value.strip() else None


def record_last_update(record: dict) -> str | None:
    """Return the last-update-posted date (``yyyy-MM-dd`` or a partial ``yyyy-MM``) or None."""
    value = _get(record, "protocolSection", "statusModule", "lastUpdatePostDateStruct", "date")
    return value if isinstance(value, str) and value else None


def record_status(record: dict) -> str | None:
    """Return ``statusModule.overallStatus`` (a v2 Status enum such as ``RECRUITING``) or None."""
    value = _get(record, "protocolSection", "statusModule", "overallStatus")
    return value if isinstance(value, str) and value else None


def check_record(record: object, source: str) -> dict:
    """Validate that ``record`` looks like a v2 study with a well-formed NCT id; return it.

    Raises RecordError naming ``source`` when it does not.
    """
    if not isinstance(record, dict):
        raise RecordError(f"expected a study object, got {type(record).__name__}", path=source)
    if "protocolSection" not in record:
        raise RecordError(
            "not a ClinicalTrials.gov v2 study: no 'protocolSection' "
            "(accepted: a v2 study, a /studies page, an export array, classic XML)",
            path=source,
        )
    nct = record_nct_id(record)
    if nct is None:
        raise RecordError("study has no protocolSection.identificationModule.nctId", path=source)
    if not NCT_ID_RE.match(nct):
        raise RecordError(
            f"nctId {nct!r} is not a valid NCT id (expected NCT followed by 8 digits)",
            path=source,
        )
    return record


# ---------------------------------------------------------------------------------------------
# file reading


def find_record_files(path: str | Path) -> list[Path]:
    """The files :func:`iter_records` reads under ``path``: the file itself, or a folder's
    ``*.json`` and ``*.xml`` files (recursively, sorted); empty when there are none."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        return []
    return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in RECORD_SUFFIXES)


def iter_records(path: str | Path) -> Iterator[RecordItem]:
    """Yield every record in ``path`` (a file, or a folder searched recursively).

    Files: v2 single-study JSON, ``/studies`` page JSON (``studies`` envelope), website
    export arrays (``ctg-studies.json``, a bare array), classic XML ``clinical_study``.
    In a folder only ``*.json`` and ``*.xml`` files are read, in sorted order. Each item has
    ``.record`` (v2 dict) or ``.error`` (RecordError naming file and entry) and ``.source``
    (``"file"`` or ``"file, entry N"``, N counted from 1).
    """
    p = Path(path)
    if p.is_dir():
        for f in find_record_files(p):
            yield from _iter_file(f)
    elif p.is_file():
        yield from _iter_file(p)
    else:
        yield RecordItem(None, str(p), RecordError("file or folder not found", path=str(p)))


def _iter_file(path: Path) -> Iterator[RecordItem]:
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        yield RecordItem(None, source, RecordError(f"cannot read: {exc.strerror}", path=source))
        return
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"\xff", b"\xfe") or data[:2] in (b"\x00<", b"<\x00"):
        head = b"<"  # UTF-16 XML, with or without a BOM: expat decodes it
    if head == b"<":
        try:
            yield RecordItem(classic_xml_to_v2(data, source), source)
        except RecordError as exc:
            yield RecordItem(None, source, exc)
        return
    if head not in (b"{", b"["):
        yield RecordItem(
            None,
            source,
            RecordError(
                "not a trial record: expected JSON (v2 study, /studies page, export array) "
                "or classic XML (<clinical_study>)",
                path=source,
            ),
        )
        return
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        yield RecordItem(
            None, source, RecordError(f"not UTF-8 text (byte {exc.start})", path=source)
        )
        return
    except json.JSONDecodeError as exc:
        yield RecordItem(
            None,
            source,
            RecordError(
                f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                path=source,
            ),
        )
        return
    except (RecursionError, ValueError) as exc:
        yield RecordItem(None, source, RecordError(_json_limit_message(exc), path=source))
        return
    yield from _iter_json_doc(doc, source)


def _json_limit_message(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply to be a trial record (thousands of levels of [ or {)"
    return f"JSON holds a value that cannot be read ({exc})"  # e.g. a 5,000-digit integer


def _iter_json_doc(doc: object, source: str) -> Iterator[RecordItem]:
    if isinstance(doc, dict) and "protocolSection" in doc:
        yield _checked(doc, source)
        return
    if isinstance(doc, dict) and isinstance(doc.get("studies"), list):
        entries = doc["studies"]
    elif isinstance(doc, list):
        entries = doc
    else:
        keys = ", ".join(sorted(doc)[:6]) if isinstance(doc, dict) else type(doc).__name__
        yield RecordItem(
            None,
            source,
            RecordError(
                f"not a ClinicalTrials.gov record (found {keys}); accepted: a v2 study with "
                "'protocolSection', a /studies page with 'studies', or an export array",
                path=source,
            ),
        )
        return
    for n, entry in enumerate(entries, start=1):
        yield _checked(entry, f"{source}, entry {n}")


def _checked(record: object, source: str) -> RecordItem:
    try:
        return RecordItem(check_record(record, source), source)
    except RecordError as exc:
        return RecordItem(None, source, exc)


def read_json_records(data: bytes | str, source: str = "<memory>") -> list[RecordItem]:
    """Parse JSON text holding any accepted JSON shape; return its items (errors included)."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [RecordItem(None, source, RecordError(f"malformed JSON: {exc}", path=source))]
    except (RecursionError, ValueError) as exc:
        return [RecordItem(None, source, RecordError(_json_limit_message(exc), path=source))]
    return list(_iter_json_doc(doc, source))


# ---------------------------------------------------------------------------------------------
# classic XML -> v2

_MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        start=1,
    )
}

# Classic labels whose v2 enum is not just the label upper-cased with "_" for separators.
_ENUM_SPECIAL = {
    "n/a": "NA",
    "unknown status": "UNKNOWN",
    "u.s. fed": "FED",
    "parallel assignment": "PARALLEL",
    "single group assignment": "SINGLE_GROUP",
    "crossover assignment": "CROSSOVER",
    "factorial assignment": "FACTORIAL",
    "sequential assignment": "SEQUENTIAL",
    "anticipated": "ESTIMATED",
    "estimate": "ESTIMATED",
    "estimated": "ESTIMATED",
    "actual": "ACTUAL",
    "outcomes assessor": "OUTCOMES_ASSESSOR",
}


def classic_enum(value: str | None) -> str | None:
    """Map a classic label to the v2 enum: ``Active, not recruiting`` -> ``ACTIVE_NOT_RECRUITING``."""
    if value is None:
        return None
    text = " ".join(value.split())
    if not text:
        return None
    special = _ENUM_SPECIAL.get(text.lower())
    if special:
        return special
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()


def classic_phases(value: str | None) -> list[str] | None:
    """``Phase 1/Phase 2`` -> ``["PHASE1", "PHASE2"]``; ``Early Phase 1`` -> ``["EARLY_PHASE1"]``;
    ``N/A`` -> ``["NA"]``; empty -> None."""
    if not value or not value.strip():
        return None
    if value.strip().upper() == "N/A":
        return ["NA"]
    out = []
    for part in value.split("/"):
        part = " ".join(part.split()).lower()
        m = re.fullmatch(r"(early )?phase ?(\d)", part)
        if m:
            out.append(("EARLY_" if m.group(1) else "") + f"PHASE{m.group(2)}")
        elif part:
            out.append(classic_enum(part))
    return out or None


def classic_date(value: str | None) -> str | None:
    """``June 10, 2015`` -> ``2015-06-10``; ``December 2022`` -> ``2022-12``; ISO kept."""
    if not value:
        return None
    text = " ".join(value.replace(",", " ").split())
    m = re.fullmatch(r"([A-Za-z]+) (\d{1,2}) (\d{4})", text)
    if m and m.group(1).lower() in _MONTHS:
        return f"{m.group(3)}-{_MONTHS[m.group(1).lower()]:02d}-{int(m.group(2)):02d}"
    m = re.fullmatch(r"([A-Za-z]+) (\d{4})", text)
    if m and m.group(1).lower() in _MONTHS:
        return f"{m.group(2)}-{_MONTHS[m.group(1).lower()]:02d}"
    if re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", text):
        return text
    return None


def classic_age(value: str | None) -> str | None:
    """``18 Years`` kept; ``N/A`` or anything unparseable -> None (no bound)."""
    if not value:
        return None
    text = " ".join(value.split())
    m = re.fullmatch(r"(\d+) (year|month|week|day|hour|minute)s?", text, re.IGNORECASE)
    if not m:
        return None
    n = int(m.group(1))
    unit = m.group(2).capitalize() + ("" if n == 1 else "s")
    return f"{n} {unit}"


def _text(el: ET.Element | None) -> str | None:
    """Element text with CRLF/CR normalised and outer whitespace stripped; None if empty."""
    if el is None:
        return None
    raw = "".join(el.itertext()).replace("\r\n", "\n").replace("\r", "\n")
    raw = raw.strip()
    return raw or None


def _textblock(el: ET.Element | None) -> str | None:
    """A ``<textblock>``: dedented, line endings normalised, trailing spaces dropped."""
    if el is None:
        return None
    tb = el.find("textblock")
    node = tb if tb is not None else el
    raw = "".join(node.itertext()).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in raw.split("\n")]
    text = textwrap.dedent("\n".join(lines)).strip("\n")
    return text or None


def _date_struct(el: ET.Element | None) -> dict | None:
    if el is None:
        return None
    date = classic_date(_text(el))
    if date is None:
        return None
    out = {"date": date}
    kind = classic_enum(el.get("type"))
    if kind:
        out["type"] = kind
    return out


def _put(d: dict, key: str, value) -> None:
    """Set ``d[key]`` only when value is meaningful (v2 omits absent fields)."""
    if value is None or value == [] or value == {}:
        return
    d[key] = value


def _parse_xml(raw: bytes, source: str) -> ET.Element:
    """Parse with defusedxml: a DOCTYPE, entity declaration or external reference is refused by
    the parser itself, after expat has decoded the document, so no encoding (UTF-16 without a
    BOM, a declaration after a long comment) slips one past a byte-level check."""
    try:
        return DefusedET.fromstring(raw, forbid_dtd=True, forbid_entities=True)
    except DefusedXmlException:
        raise RecordError(
            "XML with a DOCTYPE or ENTITY declaration is refused (classic clinical_study files "
            "have none); remove the declaration",
            path=source,
        ) from None
    except ET.ParseError as exc:
        line, col = exc.position
        raise RecordError(f"malformed XML at line {line}, column {col}", path=source) from None
    except RecursionError:
        raise RecordError("XML nested too deeply to be a trial record", path=source) from None


def classic_xml_to_v2(data: bytes | str, source: str = "<memory>") -> dict:
    """Map one classic ``<clinical_study>`` XML document to a v2 study dict.

    ``data``: the file's bytes (or text). Returns a dict with ``protocolSection``,
    ``derivedSection`` (MeSH browse terms, when present) and ``hasResults``. Enums and names
    follow v2 (``Recruiting`` -> ``RECRUITING``, ``Phase 1/Phase 2`` -> ``["PHASE1","PHASE2"]``,
    ``N/A`` ages -> absent, ``Both`` -> ``ALL``). Raises RecordError naming ``source``.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    root = _parse_xml(raw, source)
    if root.tag != "clinical_study":
        raise RecordError(
            f"root element is <{root.tag}>, expected <clinical_study> (classic XML)",
            path=source,
        )
    nct = _text(root.find("id_info/nct_id"))
    if not nct or not NCT_ID_RE.match(nct.upper()):
        raise RecordError(f"missing or invalid <id_info><nct_id> ({nct!r})", path=source)
    nct = nct.upper()

    ident: dict = {"nctId": nct}
    org_id = _text(root.find("id_info/org_study_id"))
    if org_id:
        ident["orgStudyIdInfo"] = {"id": org_id}
    _put(
        ident,
        "secondaryIdInfos",
        [{"id": t} for e in root.findall("id_info/secondary_id") if (t := _text(e))],
    )
    _put(ident, "nctIdAliases", [t for e in root.findall("id_info/nct_alias") if (t := _text(e))])
    _put(ident, "briefTitle", _text(root.find("brief_title")))
    _put(ident, "officialTitle", _text(root.find("official_title")))
    _put(ident, "acronym", _text(root.find("acronym")))

    status: dict = {}
    verified = classic_date(_text(root.find("verification_date")))
    _put(status, "statusVerifiedDate", verified)
    _put(status, "overallStatus", classic_enum(_text(root.find("overall_status"))))
    _put(status, "lastKnownStatus", classic_enum(_text(root.find("last_known_status"))))
    _put(status, "whyStopped", _text(root.find("why_stopped")))
    _put(status, "startDateStruct", _date_struct(root.find("start_date")))
    _put(status, "primaryCompletionDateStruct", _date_struct(root.find("primary_completion_date")))
    _put(status, "completionDateStruct", _date_struct(root.find("completion_date")))
    _put(status, "studyFirstSubmitDate", classic_date(_text(root.find("study_first_submitted"))))
    _put(status, "studyFirstPostDateStruct", _date_struct(root.find("study_first_posted")))
    _put(status, "lastUpdateSubmitDate", classic_date(_text(root.find("last_update_submitted"))))
    last = _date_struct(root.find("last_update_posted"))
    if last is None:
        # Older AllPublicXML files carry only <lastchanged_date>.
        last = _date_struct(root.find("lastchanged_date"))
    _put(status, "lastUpdatePostDateStruct", last)

    sponsor: dict = {}
    lead = root.find("sponsors/lead_sponsor")
    if lead is not None:
        lead_d: dict = {}
        _put(lead_d, "name", _text(lead.find("agency")))
        _put(lead_d, "class", classic_enum(_text(lead.find("agency_class"))))
        _put(sponsor, "leadSponsor", lead_d)
    collabs = []
    for c in root.findall("sponsors/collaborator"):
        cd: dict = {}
        _put(cd, "name", _text(c.find("agency")))
        _put(cd, "class", classic_enum(_text(c.find("agency_class"))))
        if cd:
            collabs.append(cd)
    _put(sponsor, "collaborators", collabs)

    description: dict = {}
    _put(description, "briefSummary", _textblock(root.find("brief_summary")))
    _put(description, "detailedDescription", _textblock(root.find("detailed_description")))

    conditions: dict = {}
    _put(conditions, "conditions", [t for e in root.findall("condition") if (t := _text(e))])
    _put(conditions, "keywords", [t for e in root.findall("keyword") if (t := _text(e))])

    design: dict = {}
    _put(design, "studyType", classic_enum(_text(root.find("study_type"))))
    _put(design, "phases", classic_phases(_text(root.find("phase"))))
    info = root.find("study_design_info")
    if info is not None:
        di: dict = {}
        _put(di, "allocation", classic_enum(_text(info.find("allocation"))))
        _put(di, "interventionModel", classic_enum(_text(info.find("intervention_model"))))
        _put(
            di,
            "interventionModelDescription",
            _text(info.find("intervention_model_description")),
        )
        _put(di, "primaryPurpose", classic_enum(_text(info.find("primary_purpose"))))
        _put(di, "observationalModel", classic_enum(_text(info.find("observational_model"))))
        _put(di, "timePerspective", classic_enum(_text(info.find("time_perspective"))))
        masking = _text(info.find("masking"))
        if masking:
            m = re.match(r"\s*([A-Za-z]+)(?:\s*\((.*)\))?", masking)
            mi: dict = {}
            if m:
                mi["masking"] = classic_enum(m.group(1))
                if m.group(2) and "open label" not in m.group(2).lower():
                    _put(mi, "whoMasked", [classic_enum(w) for w in m.group(2).split(",")])
            _put(di, "maskingInfo", mi)
        _put(design, "designInfo", di)
    enroll = root.find("enrollment")
    if enroll is not None and (t := _text(enroll)) and t.isdigit():
        ei: dict = {"count": int(t)}
        _put(ei, "type", classic_enum(enroll.get("type")))
        design["enrollmentInfo"] = ei

    arms: dict = {}
    groups = []
    for g in root.findall("arm_group"):
        gd: dict = {}
        _put(gd, "label", _text(g.find("arm_group_label")))
        _put(gd, "type", classic_enum(_text(g.find("arm_group_type"))))
        _put(gd, "description", _text(g.find("description")))
        if gd:
            groups.append(gd)
    interventions = []
    for iv in root.findall("intervention"):
        ivd: dict = {}
        itype = classic_enum(_text(iv.find("intervention_type")))
        _put(ivd, "type", itype)
        name = _text(iv.find("intervention_name"))
        _put(ivd, "name", name)
        _put(ivd, "description", _text(iv.find("description")))
        _put(ivd, "armGroupLabels", [t for e in iv.findall("arm_group_label") if (t := _text(e))])
        _put(ivd, "otherNames", [t for e in iv.findall("other_name") if (t := _text(e))])
        if ivd:
            interventions.append(ivd)
        if name and itype:
            label_type = _text(iv.find("intervention_type"))
            for gd in groups:
                if gd.get("label") in ivd.get("armGroupLabels", []):
                    gd.setdefault("interventionNames", []).append(f"{label_type}: {name}")
    _put(arms, "armGroups", groups)
    _put(arms, "interventions", interventions)

    outcomes: dict = {}
    for tag, key in (
        ("primary_outcome", "primaryOutcomes"),
        ("secondary_outcome", "secondaryOutcomes"),
        ("other_outcome", "otherOutcomes"),
    ):
        items = []
        for o in root.findall(tag):
            od: dict = {}
            _put(od, "measure", _text(o.find("measure")))
            _put(od, "description", _text(o.find("description")))
            _put(od, "timeFrame", _text(o.find("time_frame")))
            if od:
                items.append(od)
        _put(outcomes, key, items)

    elig: dict = {}
    el = root.find("eligibility")
    if el is not None:
        _put(elig, "eligibilityCriteria", _textblock(el.find("criteria")))
        hv = _text(el.find("healthy_volunteers"))
        if hv:
            elig["healthyVolunteers"] = hv.lower().startswith("accepts") or hv.lower() == "yes"
        gender = _text(el.find("gender"))
        if gender:
            elig["sex"] = "ALL" if gender.lower() in ("all", "both") else classic_enum(gender)
        gb = _text(el.find("gender_based"))
        if gb:
            elig["genderBased"] = gb.lower() == "yes"
        _put(elig, "genderDescription", _textblock(el.find("gender_description")))
        _put(elig, "minimumAge", classic_age(_text(el.find("minimum_age"))))
        _put(elig, "maximumAge", classic_age(_text(el.find("maximum_age"))))
        _put(elig, "studyPopulation", _textblock(el.find("study_pop")))
        _put(elig, "samplingMethod", classic_enum(_text(el.find("sampling_method"))))

    contacts: dict = {}
    locations = []
    for loc in root.findall("location"):
        ld: dict = {}
        _put(ld, "facility", _text(loc.find("facility/name")))
        _put(ld, "status", classic_enum(_text(loc.find("status"))))
        _put(ld, "city", _text(loc.find("facility/address/city")))
        _put(ld, "state", _text(loc.find("facility/address/state")))
        _put(ld, "zip", _text(loc.find("facility/address/zip")))
        _put(ld, "country", _text(loc.find("facility/address/country")))
        if ld:
            locations.append(ld)
    _put(contacts, "locations", locations)
    officials = []
    for o in root.findall("overall_official"):
        od = {}
        _put(od, "name", _text(o.find("last_name")))
        _put(od, "affiliation", _text(o.find("affiliation")))
        _put(od, "role", classic_enum(_text(o.find("role"))))
        if od:
            officials.append(od)
    _put(contacts, "overallOfficials", officials)

    refs = []
    for tag, kind in (("reference", "BACKGROUND"), ("results_reference", "RESULT")):
        for r in root.findall(tag):
            rd: dict = {}
            _put(rd, "pmid", _text(r.find("PMID")))
            rd["type"] = kind
            _put(rd, "citation", _text(r.find("citation")))
            refs.append(rd)

    protocol: dict = {}
    for key, module in (
        ("identificationModule", ident),
        ("statusModule", status),
        ("sponsorCollaboratorsModule", sponsor),
        ("descriptionModule", description),
        ("conditionsModule", conditions),
        ("designModule", design),
        ("armsInterventionsModule", arms),
        ("outcomesModule", outcomes),
        ("eligibilityModule", elig),
        ("contactsLocationsModule", contacts),
        ("referencesModule", {"references": refs} if refs else {}),
    ):
        _put(protocol, key, module)

    derived: dict = {}
    for tag, key in (
        ("condition_browse", "conditionBrowseModule"),
        ("intervention_browse", "interventionBrowseModule"),
    ):
        terms = [t for e in root.findall(f"{tag}/mesh_term") if (t := _text(e))]
        if terms:
            # Classic XML names MeSH terms without ids; v2 "meshes" entries carry id + term.
            derived[key] = {"meshes": [{"term": t} for t in terms]}
    download = _text(root.find("required_header/download_date"))
    if download:
        m = re.search(r"on (.+)$", download)
        version = classic_date(m.group(1)) if m else None
        if version:
            derived["miscInfoModule"] = {"versionHolder": version}

    record: dict = {"protocolSection": protocol}
    if derived:
        record["derivedSection"] = derived
    record["hasResults"] = root.find("clinical_results") is not None
    return record


def mesh_id_key(mesh_id: str | None) -> str | None:
    """Normalise a MeSH id to one width: ``D000008175`` and ``D008175`` -> ``D008175``.

    Real records mix 7- and 10-character ids (``D002289`` and ``D000008175``, also ``C``
    supplementary ids); compare ids through this.
    """
    if not mesh_id:
        return None
    m = re.fullmatch(r"([A-Za-z])0*(\d+)", mesh_id.strip())
    if not m:
        return mesh_id.strip()
    return f"{m.group(1).upper()}{int(m.group(2)):06d}"
