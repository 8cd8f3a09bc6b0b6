"""What the nightly report gives a coordinator: history keyed by list name, a report whatever
happens, --top and --country, the facts to record in matches.csv / matches.json."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from matcher.cli import cli
from matcher.exitcodes import EXIT_ALL_FAILED, EXIT_OK
from matcher.rank import RankConfig
from matcher.report import ReportConfig, run_report
from matcher.store import Store

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
DEMO_PATIENTS = FIX / "demo" / "patients.csv"
SBRT = FIX / "trials" / "classic-xml-sarcoma" / "NCT02561559.xml"  # sites in Italy only
DEMO_TRIALS = FIX / "demo" / "trials"


@pytest.fixture(autouse=True)
def _no_network(no_network):
    """No test of this module may reach the network (the shared guard)."""


def write_patients(path: Path, ids: list[str]) -> Path:
    with open(DEMO_PATIENTS, newline="", encoding="utf-8") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, list(rows["D01"].keys()))
        w.writeheader()
        for pid in ids:
            w.writerow(rows[pid])
    return path


def cfg(**kw) -> ReportConfig:
    return ReportConfig(rank=RankConfig(), as_of=date(2025, 6, 1), **kw)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run_cli(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_a_dated_export_compares_with_yesterdays(tmp_path):
    db, trials = tmp_path / "db.sqlite", [str(SBRT)]
    r1 = run_report(
        write_patients(tmp_path / "clinic-2026-11-30.csv", ["D01"]),
        tmp_path / "o1",
        db,
        trials,
        cfg(),
    )
    assert r1.changes["list_name"] == "clinic" and r1.changes["previous_run"] is None
    r2 = run_report(
        write_patients(tmp_path / "clinic-2026-12-01.csv", ["D01"]),
        tmp_path / "o2",
        db,
        trials,
        cfg(),
    )
    assert r2.changes["previous_run_id"] == r1.run_id
    # --list names another history: a first run
    r3 = run_report(
        write_patients(tmp_path / "clinic-2026-12-02.csv", ["D01"]),
        tmp_path / "o3",
        db,
        trials,
        cfg(list_name="sarcoma clinic"),
    )
    assert r3.changes["previous_run"] is None and r3.changes["list_name"] == "sarcoma clinic"
    with Store(db) as st:
        names = [r[0] for r in st.connection.execute("SELECT list_name FROM report_runs")]
    assert names == ["clinic", "clinic", "sarcoma clinic"]


def test_runs_recorded_before_list_names_still_compare_by_path(tmp_path):
    db, trials = tmp_path / "db.sqlite", [str(SBRT)]
    src = write_patients(tmp_path / "list.csv", ["D01"])
    r1 = run_report(src, tmp_path / "o1", db, trials, cfg())
    with Store(db) as st, st.transaction():
        st.connection.execute("UPDATE report_runs SET list_name = NULL")
    r2 = run_report(src, tmp_path / "o2", db, trials, cfg())
    assert r2.changes["previous_run_id"] == r1.run_id


def test_first_run_says_so_on_stdout(tmp_path):
    src = write_patients(tmp_path / "patients-20261201.csv", ["D01"])
    args = ["--db", str(tmp_path / "db.sqlite"), "report", str(src), "--trials", str(SBRT)]
    res = run_cli([*args, "--out", str(tmp_path / "o1")])
    assert res.exit_code == EXIT_OK
    assert res.stdout.splitlines()[1] == (
        "First run of the list 'patients': nothing to compare with yet "
        "(use --list NAME to continue another list's history)."
    )
    res = run_cli([*args, "--out", str(tmp_path / "o2")])
    assert len(res.stdout.splitlines()) == 1


def test_a_missing_patient_file_still_writes_a_report_exit_4(tmp_path):
    missing = tmp_path / "nowhere.csv"
    out = tmp_path / "o"
    res = run_cli(["--db", str(tmp_path / "db.sqlite"), "report", str(missing), "--out", str(out)])
    assert res.exit_code == EXIT_ALL_FAILED
    assert res.stderr.splitlines()[0] == f"error: {missing}: file not found"
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Nothing was matched in this run:</strong> " in page
    assert "nowhere.csv: file not found" in page
    rows = read_csv(out / "errors.csv")
    assert [(r["kind"], r["error"]) for r in rows] == [
        ("patient list", f"{missing}: file not found")
    ]


def _demo_report_top2(tmp, *extra: str):
    """``trialmatch report`` of the demo list, any status, ``--top 2``, into ``tmp/out``."""
    res = CliRunner().invoke(
        cli,
        ["--db", str(tmp / "db.sqlite"), "report", str(DEMO_PATIENTS), "--trials",
         str(DEMO_TRIALS), "--status", "any", "--top", "2", *extra, "--out", str(tmp / "out")],
        catch_exceptions=False,
    )  # fmt: skip
    assert res.exit_code == EXIT_OK, res.output
    return tmp / "out"


@pytest.fixture(scope="module")
def demo_top2(tmp_path_factory):
    return _demo_report_top2(tmp_path_factory.mktemp("top2"))


OPEN = {"RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION"}


def test_top_n_open_trials_and_groups_in_matches_csv(demo_top2):
    rows = read_csv(demo_top2 / "matches.csv")
    by_patient: dict[str, list[dict]] = {}
    for r in rows:
        by_patient.setdefault(r["patient_id"], []).append(r)
    for pid, rs in by_patient.items():
        first = [r for r in rs if r["group"] == "to consider (shown first)"]
        consider = [r for r in rs if r["verdict"] != "excluded" and r["status"] in OPEN]
        assert [r["nct_id"] for r in first] == [r["nct_id"] for r in consider[:2]], pid
        for r in rs:
            if r["verdict"] != "excluded" and r["status"] not in OPEN:
                assert r["group"] == "closed or not recruiting"
        # the patient's facts to record are on every row
        assert len({r["facts_to_record"] for r in rs}) == 1
    d01 = by_patient["D01"]
    assert d01[0]["facts_to_record"].startswith("last-dose dates (")
    sbrt = next(r for r in d01 if r["nct_id"] == "NCT02561559")
    assert sbrt["sites"] == "sites outside the US only (Italy)"


def test_only_the_first_trials_are_written_with_their_detail(demo_top2):
    """--top 2 (explain "top", the default): the two trials shown first carry every reason and
    check; every other row is compact (two reasons, no verify items, counts), and an
    excluded row still says why."""
    rows = read_csv(demo_top2 / "matches.csv")
    first = [r for r in rows if r["group"] == "to consider (shown first)"]
    rest = [r for r in rows if r["group"] != "to consider (shown first)"]
    assert first and rest
    assert all(r["explained"] == "yes" for r in first)
    assert all(r["explained"] == "no" and r["verify"] == "" for r in rest)
    assert any(r["verify"] for r in first)
    assert any(int(r["checks"]) > 0 for r in rest)  # what was not listed is still counted
    assert all(r["excluded_by"] for r in rest if r["verdict"] == "excluded")
    data = json.loads((demo_top2 / "matches.json").read_text(encoding="utf-8"))
    compact = [t for p in data for t in p["trials"] if t.get("explained") is False]
    assert compact and all("verify" not in t and "met" not in t for t in compact)
    assert all(len(t["reasons"]) <= 2 and t["checks"] >= 0 for t in compact)
    page = (demo_top2 / "patients" / "D01.html").read_text(encoding="utf-8")
    assert "<code>trialmatch match</code> for this patient lists them" in page


def test_facts_to_record_count_every_trial_whatever_is_explained(tmp_path, demo_top2):
    """The facts to record are counted on every open trial to consider, not only on the
    rows written in full: explain "all" gives the same facts."""
    out = _demo_report_top2(tmp_path, "--explain", "all")
    full = json.loads((out / "matches.json").read_text(encoding="utf-8"))
    top = json.loads((demo_top2 / "matches.json").read_text(encoding="utf-8"))
    assert [p["facts_to_record"] for p in full] == [p["facts_to_record"] for p in top]
    assert not any(t.get("explained") is False for p in full for t in p["trials"])
    assert [[(t["nct_id"], t["verdict"], t["score"]) for t in p["trials"]] for p in full] == [
        [(t["nct_id"], t["verdict"], t["score"]) for t in p["trials"]] for p in top
    ]


def test_facts_to_record_in_matches_json_and_first_on_the_page(demo_top2):
    data = json.loads((demo_top2 / "matches.json").read_text(encoding="utf-8"))
    d01 = next(p for p in data if p["patient_id"] == "D01")
    facts = d01["facts_to_record"]
    assert facts[0]["fact"] == "last-dose dates"
    assert all(set(f) == {"fact", "checks", "trials"} for f in facts)
    checks = [f["checks"] for f in facts]
    assert checks == sorted(checks, reverse=True)
    top3 = sum(checks[:3])
    assert d01["facts_sentence"].startswith(
        f"record {facts[0]['fact']}, {facts[1]['fact']} and {facts[2]['fact']}: resolves {top3} checks on "
    )
    page = (demo_top2 / "patients" / "D01.html").read_text(encoding="utf-8")
    assert page.index("Facts to record first") < page.index("id=consider")
    assert '<a href="D02.html" rel=next>next patient →</a>' in page
    assert "rel=prev" not in page
    d02 = (demo_top2 / "patients" / "D02.html").read_text(encoding="utf-8")
    assert '<a href="D01.html" rel=prev>previous patient</a>' in d02


def test_pages_use_plain_words(demo_top2):
    text = "".join(
        p.read_text(encoding="utf-8")
        for p in [demo_top2 / "report.html", *(demo_top2 / "patients").iterdir()]
    )
    import re

    visible = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)>.*?</\1>", " ", text, flags=re.S))
    for internal in (
        "ACTIVE_NOT_RECRUITING",
        "NOT_YET_RECRUITING",
        "primary_controlled",
        "lung_metastases_count",
        "000_6c70745bc3b10cc6",
        "Full citation strings are not printed",
        "not computed",
        "needs_review",
    ):
        assert internal not in visible, internal
    assert re.findall(r"\b[a-z]+_[a-z0-9_]+\b", visible) == []  # no field names
    assert re.findall(r"\b[A-Z]+_[A-Z_]+\b", visible) == []  # no registry enums
    assert "Active, not recruiting" in visible
    assert "phase: not applicable" in visible
    assert "Adult Soft Tissue Sarcoma Treatment (PDQ®)" in visible


def test_country_filter(tmp_path):
    """SBRT's sites are all in Italy: with --country 'United States' it is not considered."""
    src = write_patients(tmp_path / "p.csv", ["D01"])
    db, trials = tmp_path / "db.sqlite", [str(SBRT)]
    run_report(src, tmp_path / "all", db, trials, cfg())
    run_report(src, tmp_path / "us", db, trials, cfg(country="United States"))

    def groups(out):
        return [r["group"] for r in read_csv(out / "matches.csv")]

    assert groups(tmp_path / "all") == ["to consider (shown first)"]
    assert groups(tmp_path / "us") == ["open, no site in the country"]
    page = (tmp_path / "us" / "patients" / "D01.html").read_text(encoding="utf-8")
    assert "Open, but no open site in United States (1)" in page


def test_an_id_that_is_not_a_file_name_gets_a_safe_page_linked_from_the_index(tmp_path):
    src = tmp_path / "p.csv"
    text = write_patients(tmp_path / "one.csv", ["D01"]).read_text(encoding="utf-8")
    src.write_text(text.replace("\nD01,", '\n"../A 1",'), encoding="utf-8")
    out = tmp_path / "o"
    run_report(src, out, tmp_path / "db.sqlite", [str(SBRT)], cfg())
    (page,) = (out / "patients").iterdir()
    assert page.name.startswith("_A_1-") and page.suffix == ".html"
    index = (out / "report.html").read_text(encoding="utf-8")
    assert f'<a href="patients/{page.name}">../A 1</a>' in index
    # a later run without that patient removes its page
    run_report(write_patients(tmp_path / "p.csv", ["D02"]), out, tmp_path / "db.sqlite", [], cfg())
    assert [p.name for p in (out / "patients").iterdir()] == ["D02.html"]
