"""Fuzz targets over the two doors data comes in by: patient normalization and trial records.

Each runs a bounded number of Hypothesis examples (CI time stays in seconds, no wall-clock
assert). The contract: a named error (``PatientError``, ``InputError``, a ``RecordItem`` error)
or a valid value, never a traceback. Raise ``FUZZ_EXAMPLES`` locally for a longer run.
"""

from __future__ import annotations

import json
import math
import os
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.eligibility import parse_trial
from matcher.errors import InputError, PatientError
from matcher.patient import RECORD_KEYS, normalize_record, read_patients
from matcher.records import iter_records
from matcher.trial import Trial

AS_OF = date(2026, 6, 1)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

NASTY_TEXT = st.sampled_from(
    [
        "NaN",
        "inf",
        "-Infinity",
        "1e400",
        "9" * 400,
        "",
        " ",
        "\u200b",
        "e\u0301",
        "\u0440",
        "\ufeff",
        "\x00",
        "💥",
        "IV\n",
        '"',
        "1,5",
        "-0",
        "0x10",
        "١٢",
        "KPS 80",
        "18 months",
        "lung; liver",
        "yes",
        "N/A",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    NASTY_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from([*RECORD_KEYS, "zip", "lat", "lon", "anc", "name", "extra"])


@FUZZ
@given(raw=st.dictionaries(KEYS, VALUES, max_size=10), pid=st.one_of(SCALARS, NASTY_TEXT))
def test_normalize_gives_a_valid_patient_or_a_patient_error(raw, pid):
    raw = {**raw, "id": pid}
    try:
        p = normalize_record(raw, source="fuzz", as_of=AS_OF)
    except PatientError:
        return
    assert p.id and p.id == p.id.strip()
    assert p.ecog is None or p.ecog in range(5)
    assert p.karnofsky is None or p.karnofsky in range(10, 101)
    assert p.lansky is None or p.lansky in range(10, 101)
    assert p.age is None or 0 <= p.age <= 120
    for x in (p.lat, p.lon, *p.labs.values()):
        assert x is None or math.isfinite(x)
    json.dumps(p.to_dict(), allow_nan=False)  # every value is plain, finite JSON


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.lists(st.lists(st.one_of(st.text(max_size=12), NASTY_TEXT), max_size=6), max_size=6).map(
            lambda rows: "\n".join(",".join(r) for r in rows).encode("utf-8", "surrogatepass")
        ),
    ),
    ext=st.sampled_from(["csv", "json", "fhir.json", "tsv"]),
)
def test_reading_any_patient_file_gives_a_batch_or_an_input_error(tmp_path_factory, body, ext):
    path = tmp_path_factory.mktemp("fuzz") / f"p.{ext}"
    try:
        path.write_bytes(b"id,age,stage,ecog\n" + body if ext in ("csv", "tsv") else body)
    except UnicodeEncodeError:  # pragma: no cover - surrogates are written with surrogatepass
        return
    try:
        batch = read_patients(path, as_of=AS_OF)
    except InputError:
        return
    for p in batch.patients:
        assert p.ecog is None or p.ecog in range(5)
    assert all(str(e) for e in batch.errors)


def _record_tree():
    geo = st.fixed_dictionaries({"lat": SCALARS, "lon": SCALARS})
    location = st.fixed_dictionaries(
        {}, optional={"geoPoint": st.one_of(geo, VALUES), "zip": SCALARS, "status": SCALARS}
    )
    return st.fixed_dictionaries(
        {
            "protocolSection": st.fixed_dictionaries(
                {"identificationModule": st.fixed_dictionaries({"nctId": st.just("NCT00000001")})},
                optional={
                    "statusModule": st.dictionaries(st.sampled_from(["overallStatus"]), VALUES),
                    "eligibilityModule": st.fixed_dictionaries(
                        {},
                        optional={
                            "minimumAge": SCALARS,
                            "maximumAge": SCALARS,
                            "sex": SCALARS,
                            "eligibilityCriteria": st.one_of(st.text(max_size=200), NASTY_TEXT),
                        },
                    ),
                    "contactsLocationsModule": st.fixed_dictionaries(
                        {}, optional={"locations": st.lists(location, max_size=3)}
                    ),
                    "conditionsModule": st.dictionaries(
                        st.sampled_from(["conditions", "keywords"]), VALUES
                    ),
                    "armsInterventionsModule": st.dictionaries(
                        st.sampled_from(["interventions"]), VALUES
                    ),
                    "designModule": VALUES,
                },
            ),
            "derivedSection": VALUES,
        }
    )


@FUZZ
@given(record=_record_tree())
def test_a_trial_model_is_built_from_any_record_shape(record):
    trial = Trial.from_record(record)
    for loc in trial.locations:
        assert loc.lat is None or (math.isfinite(loc.lat) and -90 <= loc.lat <= 90)
        assert loc.lon is None or (math.isfinite(loc.lon) and -180 <= loc.lon <= 180)
    for bound in (trial.min_age_years, trial.max_age_years):
        assert bound is None or math.isfinite(bound)
    parsed = parse_trial(record)  # the criteria text, parsed as `trialmatch trial` does
    assert parsed.trial.nct_id == "NCT00000001"
    assert all(c.section in ("inclusion", "exclusion") for c in parsed.criteria)


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=300),
        _record_tree().map(lambda r: json.dumps(r).encode()),
        st.text(max_size=200).map(lambda t: f"<clinical_study>{t}</clinical_study>".encode()),
    )
)
def test_reading_any_record_file_gives_records_or_named_errors(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "r.json"
    path.write_bytes(data)
    for item in iter_records(path):
        assert item.ok or str(item.error).startswith(str(path))
