"""The coordinator's digest of one patient's matches: plain words, verify items grouped by the
fact they ask about, the facts worth recording, open versus closed trials, and where the
sites are.

Pure functions over the ``match --json`` trial dicts (plus a per-trial site summary made from
the parsed trial): nothing here reads the store, the network or the clock. ``render`` turns
the digest into pages; ``report`` puts its lists into ``matches.csv`` / ``matches.json``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# Only these trial statuses are "to consider": a coordinator can refer a patient to them.
OPEN_STATUSES = ("RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION")

STATUS_WORDS = {
    "RECRUITING": "Recruiting",
    "NOT_YET_RECRUITING": "Not yet recruiting",
    "ENROLLING_BY_INVITATION": "Enrolling by invitation",
    "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
    "COMPLETED": "Completed",
    "TERMINATED": "Terminated",
    "SUSPENDED": "Suspended",
    "WITHDRAWN": "Withdrawn",
    "UNKNOWN": "Unknown status",
    "AVAILABLE": "Expanded access: available",
    "NO_LONGER_AVAILABLE": "Expanded access: no longer available",
    "TEMPORARILY_NOT_AVAILABLE": "Expanded access: temporarily not available",
    "APPROVED_FOR_MARKETING": "Approved for marketing",
    "WITHHELD": "Withheld",
}

PHASE_WORDS = {
    "NA": "not applicable",
    "EARLY_PHASE1": "early phase 1",
    "PHASE1": "1",
    "PHASE2": "2",
    "PHASE3": "3",
    "PHASE4": "4",
}

PURPOSE_WORDS = {
    "TREATMENT": "treatment",
    "SUPPORTIVE_CARE": "supportive care",
    "DIAGNOSTIC": "diagnostic",
    "PREVENTION": "prevention",
    "SCREENING": "screening",
    "HEALTH_SERVICES_RESEARCH": "health services research",
    "BASIC_SCIENCE": "basic science",
    "DEVICE_FEASIBILITY": "device feasibility",
    "ECT": "educational / counselling / training",
    "OTHER": "other",
}

VERDICT_WORDS = {"eligible": "eligible", "needs_review": "needs review", "excluded": "excluded"}

# Field names and option ids that reach the page inside reasons, in words. Anything else
# written in snake_case loses its underscores (see :func:`plain`).
FIELD_WORDS = {
    "primary_controlled": "primary tumour controlled",
    "lung_metastases_count": "number of lung metastases",
    "metastatic_sites": "metastatic sites",
    "prior_therapies": "prior therapies",
    "agents_remaining": "agents not yet received",
    "agents_received": "agents received",
    "brain_metastases": "brain metastases",
    "measurable_disease": "measurable disease",
    "needs_review": "needs review",
    "possibly_applies": "possibly applies",
    "not_applicable": "does not apply",
    "not_covered_reason": "why not covered",
}

_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_ENUM = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
_STATUS_WORD = re.compile(
    r"\b(?:" + "|".join(k for k in STATUS_WORDS if k != "UNKNOWN" and "_" not in k) + r")\b"
)


def status_text(status: str | None) -> str:
    """``"ACTIVE_NOT_RECRUITING"`` -> ``"Active, not recruiting"``; ``None`` -> ``"not stated"``."""
    if not status:
        return "not stated"
    return STATUS_WORDS.get(status, status.replace("_", " ").capitalize())


def is_open(status: str | None) -> bool:
    """True for the statuses a patient can be referred to (:data:`OPEN_STATUSES`)."""
    return status in OPEN_STATUSES


def phase_text(phase: str | None) -> str:
    """``"PHASE1/PHASE2"`` -> ``"phase 1/2"``; ``"NA"`` or empty -> ``"phase: not applicable"``."""
    parts = [p for p in (phase or "NA").split("/") if p]
    words = [PHASE_WORDS.get(p, p.replace("_", " ").lower()) for p in parts]
    if words == ["not applicable"]:
        return "phase: not applicable"
    return "phase " + "/".join(w.removeprefix("phase ") for w in words)


def purpose_text(purpose: str | None) -> str:
    """``"SUPPORTIVE_CARE"`` -> ``"supportive care"``; ``None`` -> ``"not stated"``."""
    if not purpose:
        return "not stated"
    return PURPOSE_WORDS.get(purpose, purpose.replace("_", " ").lower())


def plain(text: str | None) -> str:
    """Text for a coordinator: field names and status enums as words, ``<=`` as ``≤``."""
    if not text:
        return ""
    return _plain(str(text))


@lru_cache(maxsize=262144)  # a trial's lines recur for every patient it is judged for
def _plain(text: str) -> str:
    out = _SNAKE.sub(lambda m: FIELD_WORDS.get(m[0], m[0].replace("_", " ")), text)
    out = _ENUM.sub(lambda m: STATUS_WORDS.get(m[0], m[0]).lower(), out)
    out = _STATUS_WORD.sub(lambda m: STATUS_WORDS[m[0]].lower(), out)
    out = out.replace("<=", "≤").replace(">=", "≥").replace(" -- ", ": ")
    out = re.sub(r"(\d) x ULN", r"\1 × ULN", out)
    out = re.sub(r"x ?10\^?9/l\b", "× 10⁹/L", out, flags=re.IGNORECASE)
    out = re.sub(r"\bx109/l\b", "× 10⁹/L", out, flags=re.IGNORECASE)
    return out


# ----------------------------------------------------------------------------- verify items


@dataclass(frozen=True)
class VerifyItem:
    """One verify line read for the fact it asks about.

    ``fact``: a short key-like label ("ALT", "last-dose dates"); ``missing``: the patient file
    lacks the fact (recording it settles the item); ``details``: what the trial asks, in words;
    ``count``: how many criteria lines the item stands for (a washout group counts each line).
    """

    fact: str
    missing: bool
    details: tuple[str, ...]
    count: int = 1


def _split_group(body: str, tail: str = "") -> tuple[str, ...]:
    items = [s.strip() for s in body.split("; ") if s.strip()]
    if tail:
        items = [s.removesuffix(tail).strip() for s in items]
    return tuple(dict.fromkeys(plain(s) for s in items))


_GROUPED = re.compile(r"^(?P<label>.+?) \((?P<n>\d+)\): (?P<body>.*)$")
_NOT_RECORDED = re.compile(r"^(?P<fact>[^:;]+?) not recorded: verify(?: \((?P<detail>.*)\))?$")
_PROGRESSION = re.compile(r"^had (?P<what>.+?); progression on it is not recorded: verify$")
_SUBTYPE = re.compile(
    r"^trial is for (?P<what>.+); patient's subtype not recorded: verify histology$"
)
_EXTENT = re.compile(
    r"^(?P<have>[^;]*(?:metastatic|disease)[^;]*); trial (?P<rule>requires|excludes) "
    r"(?P<what>[^:;]+)(?::|;) ?(?P<rest>.*)$"
)
_BRAIN = re.compile(r"^(?P<have>(?:no )?brain metastases recorded); (?P<rest>.*)$")
_COHORT = re.compile(r" is not among .+ required by the trial")
_THERAPY = re.compile(r"^(?:had |no prior |\d+ prior drug)")
_PERFORMANCE = re.compile(r"^(?:ECOG|Karnofsky|Lansky) ")
_OPTION = re.compile(r"^(?P<opt>[a-z0-9]+(?:-[a-z0-9]+)+): (?P<rest>.*)$")
# the few facts whose label reads better in other words
FACT_WORDS = {
    "brain metastases status": "brain metastases",
    "ECOG": "performance status (ECOG)",
}


@lru_cache(maxsize=65536)  # the same lines recur across trials and patients
def read_verify(item: str) -> VerifyItem:
    """Read one verify line (as ``rank`` writes it) for the fact it asks about."""
    text = item.strip()
    m = _GROUPED.match(text)
    if m and m["label"].startswith("washout periods"):
        details = _split_group(m["body"], ": last-dose dates not recorded, verify")
        return VerifyItem("last-dose dates", True, details, int(m["n"]))
    if m and m["label"].startswith("contraception"):
        return VerifyItem(
            "contraception (confirm at consent)", False, _split_group(m["body"]), int(m["n"])
        )
    m = _NOT_RECORDED.match(text)
    if m:
        fact = FACT_WORDS.get(m["fact"], m["fact"])
        detail = plain(m["detail"]).replace("prior prior", "prior") if m["detail"] else ""
        if detail.startswith("required "):
            detail = "trial requires " + detail.removeprefix("required ")
        elif detail and not detail.startswith("trial "):
            detail = f"trial asks {detail}"
        return VerifyItem(fact, True, (detail,) if detail else ())
    m = _PROGRESSION.match(text)
    if m:
        return VerifyItem("progression on prior therapy", True, (f"had {plain(m['what'])}",))
    m = _SUBTYPE.match(text)
    if m:
        return VerifyItem("histologic subtype", True, (f"trial is for {m['what']}",))
    m = _BRAIN.match(text)
    if m:
        return VerifyItem("brain metastases (treated, stable?)", False, (plain(text),))
    m = _EXTENT.match(text)
    if m:
        return VerifyItem(
            "disease extent and resectability",
            False,
            (f"{m['have']}; trial {m['rule']} {m['what']}",),
        )
    if _COHORT.search(text):
        return VerifyItem("diagnosis against the trial's cohorts", False, (plain(text),))
    if _THERAPY.match(text):
        return VerifyItem("prior therapy (kind, setting, lines)", False, (plain(text),))
    if _PERFORMANCE.match(text):
        return VerifyItem("performance status against the trial's scale", False, (plain(text),))
    m = _OPTION.match(text)
    if m:
        return VerifyItem("standard option check", False, (plain(text),))
    return VerifyItem("other checks", False, (plain(text),))


@dataclass
class VerifyGroup:
    """Every verify item about one fact, de-duplicated (what a coordinator checks once)."""

    fact: str
    missing: bool
    details: list[str] = field(default_factory=list)
    count: int = 0  # criteria lines behind the group

    def line(self) -> str:
        """``"ALT: not recorded (trial asks ALT ≤ 3 × ULN)"`` and the like."""
        head = f"{self.fact}: not recorded" if self.missing else self.fact
        if not self.details:
            return head
        return f"{head} ({'; '.join(self.details)})"


def group_verify(items: Iterable[str]) -> list[VerifyGroup]:
    """Verify lines grouped by fact, details de-duplicated, in first-seen order (the groups
    are shared by every caller with the same lines: read them, do not change them)."""
    return list(_grouped(tuple(items)))


def verify_group_count(items: Iterable[str]) -> int:
    """``len(group_verify(items))`` without the list: the checks a row counts."""
    return len(_grouped(tuple(items)))


@lru_cache(maxsize=65536)  # a trial's verify lines recur for every patient with the same facts
def _grouped(items: tuple[str, ...]) -> tuple[VerifyGroup, ...]:
    groups: dict[str, VerifyGroup] = {}
    for raw in items:
        v = read_verify(raw)
        g = groups.setdefault(v.fact, VerifyGroup(v.fact, v.missing))
        g.count += v.count
        for d in v.details:
            if d and d not in g.details:
                g.details.append(d)
    return tuple(groups.values())


@dataclass
class FactToRecord:
    """A missing patient fact, and how many checks on how many trials recording it settles."""

    fact: str
    checks: int
    trials: int

    def to_dict(self) -> dict:
        return {"fact": self.fact, "checks": self.checks, "trials": self.trials}


def _verify_lines(t: dict) -> Sequence[str]:
    return t.get("verify") or []


def facts_to_record(trials: Sequence[dict], lines=_verify_lines) -> list[FactToRecord]:
    """The missing facts behind the verify items of ``trials`` (those to consider), the ones
    that settle the most checks first (then the most trials, then by name). ``lines``: a
    trial's verify lines (its ``verify`` unless told)."""
    checks: dict[str, int] = {}
    on: dict[str, set] = {}
    for t in trials:
        for g in _grouped(tuple(lines(t))):
            if not g.missing:
                continue
            checks[g.fact] = checks.get(g.fact, 0) + g.count
            on.setdefault(g.fact, set()).add(t["nct_id"])
    out = [FactToRecord(f, checks[f], len(on[f])) for f in checks]
    out.sort(key=lambda f: (-f.checks, -f.trials, f.fact))
    return out


def _and(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def facts_sentence(
    facts: Sequence[FactToRecord], trials: Sequence[dict], n: int = 3, lines=_verify_lines
) -> str:
    """``"record ANC, ALT and creatinine clearance: resolves 37 checks on 14 trials"``, from
    the first ``n`` facts; empty when nothing is missing (``lines``: see
    :func:`facts_to_record`)."""
    top = list(facts[:n])
    if not top:
        return ""
    names = {f.fact for f in top}
    n_checks = sum(f.checks for f in top)
    n_trials = sum(
        1 for t in trials if any(g.missing and g.fact in names for g in group_verify(lines(t)))
    )
    checks = "check" if n_checks == 1 else "checks"
    on = "trial" if n_trials == 1 else "trials"
    return f"record {_and([f.fact for f in top])}: resolves {n_checks} {checks} on {n_trials} {on}"


def ranked_groups(verify: Iterable[str], order: Sequence[str]) -> list[VerifyGroup]:
    """A trial's verify groups, most important first: missing facts in the patient's
    facts-to-record ``order``, then the other missing facts, then the judgement calls."""
    pos = {f: i for i, f in enumerate(order)}
    groups = group_verify(verify)
    return sorted(
        groups,
        key=lambda g: (0 if g.missing else 1, pos.get(g.fact, len(pos))),
    )


# ----------------------------------------------------------------------------- sites


@dataclass(frozen=True)
class Sites:
    """Where a trial's sites are: every country, and whether any site is in the US."""

    n_sites: int
    countries: tuple[str, ...]
    open_countries: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "n_sites": self.n_sites,
            "countries": list(self.countries),
            "open_countries": list(self.open_countries),
        }


def sites_of(trial) -> Sites:
    """Summarise a :class:`matcher.trial.Trial`'s locations (open = open or status not stated)."""
    countries: dict[str, None] = {}
    open_c: dict[str, None] = {}
    for loc in trial.locations:
        c = loc.country or "country not stated"
        countries[c] = None
        status = (loc.status or "").upper()
        if not status or status in OPEN_STATUSES:
            open_c[c] = None
    return Sites(len(trial.locations), tuple(countries), tuple(open_c))


_PLACES: dict[int, tuple[dict, str]] = {}  # id(site) -> (site, place_text(site))


def place_text(site: dict) -> str:
    """``"facility, city, state, country"`` of a site dict (the fields it has), made once per
    dict: a trial site's dict is shared by every row that names it and not changed once
    made (``rank.site_dict``); the cache holds the dict, so its id is not reused."""
    got = _PLACES.get(id(site))
    if got is not None:
        return got[1]
    text = ", ".join(str(site[k]) for k in ("facility", "city", "state", "country") if site.get(k))
    if len(_PLACES) > 20_000:
        _PLACES.clear()
    _PLACES[id(site)] = (site, text)
    return text


def site_text(site: dict | None, miles: float | None, sites: Sites | None) -> str:
    """Where the patient would go, in words: the nearest open site (city, state, country,
    miles), else why there is none ("sites outside the US only (Italy)", "no sites listed")."""
    if site:
        place = place_text(site) or "site"
        return place + (f" ({miles:g} mi)" if miles is not None else "")
    if sites is None:
        return "sites not known"
    if sites.n_sites == 0:
        return "no sites listed"
    if not sites.open_countries:
        return "no open site listed"
    if "United States" not in sites.open_countries:
        return f"sites outside the US only ({', '.join(sites.open_countries)})"
    return "open US sites; distance not computed (no ZIP or location recorded)"


def in_country(sites: Sites | None, country: str | None) -> bool:
    """True when ``country`` is None or the trial lists an open site there (case-insensitive)."""
    if not country:
        return True
    if sites is None:
        return False
    want = country.strip().lower()
    aliases = {"us", "usa", "united states of america"}
    if want in aliases:
        want = "united states"
    return any(c.lower() == want for c in sites.open_countries)


# ----------------------------------------------------------------------------- one patient


# what a compact row (a trial the report does not explain) keeps of a ``match --json`` entry
COMPACT_DROPPED = ("verify", "met", "to_review", "score_parts", "relevance_evidence")
_COMPACT_DROPPED = frozenset(COMPACT_DROPPED)


def compact_row(t: dict) -> dict:
    """A trial row the report lists but does not explain: verdict, score, rank, place and why
    it is excluded stay; its verify items, criteria met and lines to read become counts
    (``checks``: the verify groups a coordinator would work through) and only the first two
    reasons are kept (the page's one-line why). ``explained`` is False. A row that is compact
    already is returned as it is."""
    if t.get("explained") is False:
        return t
    out = {k: v for k, v in t.items() if k not in _COMPACT_DROPPED}
    out["reasons"] = list(t.get("reasons") or [])[:2]
    out["checks"] = verify_group_count(t.get("verify") or ())
    out["met_count"] = len(t.get("met") or [])
    out["to_review_count"] = len(t.get("to_review") or [])
    out["explained"] = False
    return out


@lru_cache(maxsize=4096)  # a few statuses, phases and purposes recur on every row
def _trial_words(status: str | None, phase: str | None, purpose: str | None) -> tuple:
    """``(is_open, status_text, phase_text, purpose_text)`` of a trial row's fields."""
    return is_open(status), status_text(status), phase_text(phase), purpose_text(purpose)


def patient_digest(
    trials: Sequence[dict],
    sites: dict[str, Sites] | None = None,
    purposes: dict[str, str | None] | None = None,
    top: int = 5,
    country: str | None = None,
    explain: str = "all",
    lines=_verify_lines,
    placed: bool = False,
) -> dict:
    """Sort one patient's trials (``match --json`` dicts, ranked) into what a coordinator reads.

    Returns ``{"top", "more", "closed", "excluded", "other_country", "facts",
    "facts_sentence", "counts", "compact"}``: ``top`` = the first ``top`` open trials to consider
    (eligible or needs review, status open, a site in ``country`` when given), ``more`` = the
    other open ones, ``closed`` = eligible or needs review but not recruiting, ``excluded`` =
    excluded (any status), ``other_country`` = open but no open site in ``country``. Each trial
    dict is copied with ``open``, ``status_words``, ``phase_words``, ``purpose``, ``where``
    and ``groups`` (its verify groups, most important first). ``facts`` are
    :class:`FactToRecord` over the open trials to consider.

    ``explain="top"``: only the ``top`` trials keep their detail; every other trial is a
    :func:`compact_row` (the facts to record still count every open trial to consider).
    A trial may come compact already (``explained`` False); ``lines`` then gives its verify
    lines (see :func:`facts_to_record`).

    ``placed=True``: a compact trial that has ``groups`` comes as this function would copy
    it (the keys above added in that order, ``groups`` empty) and is used as it is, not
    copied: the report builds its compact rows so (the tests compare the two ways).
    """
    sites = sites or {}
    purposes = purposes or {}
    as_placed = placed
    consider, closed, excluded, elsewhere = [], [], [], []
    for t in trials:
        if t["verdict"] == "excluded":
            excluded.append(t)
        elif not is_open(t.get("status")):
            closed.append(t)
        elif not in_country(sites.get(t["nct_id"]), country):
            elsewhere.append(t)
        else:
            consider.append(t)
    facts = facts_to_record(consider, lines)
    order = [f.fact for f in facts]

    def placed(t: dict, row: dict, groups: list) -> dict:
        nct = t["nct_id"]
        is_open_, status_words, phase_words, purpose = _trial_words(
            t.get("status"), t.get("phase"), purposes.get(nct)
        )
        return {
            **row,
            "open": is_open_,
            "status_words": status_words,
            "phase_words": phase_words,
            "purpose": purpose,
            "where": site_text(t.get("nearest_site"), t.get("distance_miles"), sites.get(nct)),
            "groups": groups,
        }

    def view(t: dict) -> dict:
        row = {**t, "explained": True} if explain == "top" else t
        return placed(t, row, ranked_groups(t.get("verify") or [], order))

    compact: dict[str, dict] = {}

    def brief(t: dict) -> dict:
        if as_placed and t.get("explained") is False and "groups" in t:
            compact[t["nct_id"]] = t
            return t
        compact[t["nct_id"]] = row = compact_row(t)
        return placed(t, row, [])

    def views(group: list[dict], start: int = 0, full: bool = explain != "top") -> list[dict]:
        out = [(view if full else brief)(t) for t in group]
        for i, t in enumerate(out, start + 1):
            t["place"] = i  # position in its group (rank counts every trial)
        return out

    n = max(0, top)
    shown = views(consider[:n], full=True) + views(consider[n:], n)
    return {
        "top": shown[:n],
        "more": shown[n:],
        "closed": views(closed),
        "excluded": views(excluded),
        "other_country": views(elsewhere),
        "facts": facts,
        "facts_sentence": facts_sentence(facts, consider, lines=lines),
        "compact": compact,  # nct_id -> compact_row of each trial not explained
        "counts": {
            "eligible": sum(1 for t in consider if t["verdict"] == "eligible"),
            "needs_review": sum(1 for t in consider if t["verdict"] == "needs_review"),
            "closed": len(closed),
            "excluded": len(excluded),
            "other_country": len(elsewhere),
        },
    }


# ----------------------------------------------------------------------------- list name

_TRAILING_DATE = re.compile(
    r"[-_. ]*(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}_\d{2}_\d{2}|\d{2}-\d{2}-\d{4})(?:[T_-]?\d{4,6})?$"
)


def default_list_name(path: str | Path) -> str:
    """The history key of a patient list: its file stem without a trailing date
    (``patients-2026-12-01.csv`` -> ``patients``), so a dated export compares with yesterday's."""
    stem = Path(str(path).rstrip("/")).stem or str(path)
    name = _TRAILING_DATE.sub("", stem)
    return name or stem


# ----------------------------------------------------------------------------- citations

# Where the PDQ summaries behind the seeds live on cancer.gov (health professional versions).
PDQ_PAGES = {
    "adult_sts": (
        "Adult Soft Tissue Sarcoma Treatment (PDQ®), Health Professional Version",
        "https://www.cancer.gov/types/soft-tissue-sarcoma/hp/adult-soft-tissue-treatment-pdq",
    ),
    "child_nrsts": (
        "Childhood Soft Tissue Sarcoma Treatment (PDQ®), Health Professional Version",
        "https://www.cancer.gov/types/soft-tissue-sarcoma/hp/child-soft-tissue-treatment-pdq",
    ),
}


@dataclass(frozen=True)
class Citation:
    """One PDQ section cited by an option: summary title, link, section, reference numbers."""

    title: str
    url: str | None
    section: str
    refs: tuple[str, ...]
    texts: tuple[str, ...]

    def line(self) -> str:
        refs = ""
        if self.refs:
            refs = f", reference{'s' if len(self.refs) > 1 else ''} {', '.join(self.refs)}"
        return f"{self.title}, section “{self.section}”{refs}"


def citations(cits: Sequence, seeds: dict[str, dict] | None) -> list[Citation]:
    """An option's citations grouped by summary and section, named by title (never the seed
    file name); printed reference texts are kept."""
    seeds = seeds or {}
    grouped: dict[tuple[str, str], tuple[str, str | None, list, list]] = {}
    for c in cits:
        if not isinstance(c, dict):
            grouped.setdefault((str(c), ""), (str(c), None, [], []))
            continue
        seed = seeds.get(c.get("seed") or "", {})
        title, url = PDQ_PAGES.get(seed.get("summary", ""), (seed.get("title") or "PDQ", None))
        section = c.get("section") or "summary"
        entry = grouped.setdefault((title, section), (title, url, [], []))
        if c.get("ref") is not None and str(c["ref"]) not in entry[2]:
            entry[2].append(str(c["ref"]))
        if c.get("text") and c["text"] not in entry[3]:
            entry[3].append(f"[{c.get('ref')}] {c['text']}")
    return [
        Citation(title, url, section, tuple(refs), tuple(texts))
        for (title, section), (title, url, refs, texts) in grouped.items()
    ]


__all__ = [
    "OPEN_STATUSES",
    "Citation",
    "FactToRecord",
    "Sites",
    "VerifyGroup",
    "VerifyItem",
    "citations",
    "default_list_name",
    "facts_sentence",
    "facts_to_record",
    "group_verify",
    "in_country",
    "is_open",
    "patient_digest",
    "phase_text",
    "plain",
    "purpose_text",
    "ranked_groups",
    "read_verify",
    "site_text",
    "sites_of",
    "status_text",
    "verify_group_count",
]
