"""Columnar matching: verdict, score and rank of every relevant pair as numpy arrays.

For a chunk of patients, :meth:`ColumnarMatcher.rows` gives one row per relevant (patient,
trial) pair, ordered by patient then rank: the trial, verdict code, score, rank, whether a
structured gate closed it, and the nearest site.
No suggestion, reason text or site dict is built per pair:

- each criterion's verdict is evaluated once per distinct value of the patient fields it
  reads (``eligibility.Evaluator``: its memo hands back the same verdict object for the same
  facts), and what it adds to a pair (excludes, one unknown, a grouped unknown, the
  line-of-therapy boost) is kept once per verdict object: a pair adds these up. Criteria
  whose verdicts are combined (alternatives, cohorts) are combined once per distinct
  combination of their verdict objects, per trial;
- per trial once: purpose group, purpose gate, local-treatment procedures, sites abroad only;
  per diagnosis once: relevance tier and its score, the trials testing a Table 9 agent;
- gates (status, age, sex), distances, boosts, the unknown penalty, verdicts and scores are
  numpy operations over the pairs of a diagnosis block; ranks one ``lexsort`` per chunk.

:meth:`ColumnarMatcher.explain` builds a patient's full :class:`rank.PatientMatches` on demand
with the same ``rank.judge`` as the one-patient path (the verdicts come from the memo);
:meth:`ColumnarMatcher.briefs` gives every row as a report lists it without its detail
(:class:`Brief`: what ``judge`` would say of it, computed without the suggestion). Rows and explanations equal ``rank.rank_trials`` (tests compare verdict,
score and rank on every fixture patient and trial, and the explained results key for key).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from matcher import rank
from matcher.geo import EARTH_RADIUS_MILES
from matcher.rank import PatientMatches

VERDICTS = ("eligible", "needs_review", "excluded")
ELIGIBLE, NEEDS_REVIEW, EXCLUDED = 0, 1, 2


_GROUPED = {t: 1 << k for k, t in enumerate(rank.GROUPED_UNKNOWNS)}
_GROUPED_COUNTED = [bit for t, bit in _GROUPED.items() if rank.GROUPED_UNKNOWNS[t][1]]


def _contribution(patient, verdicts) -> tuple[bool, int, int, bool]:
    """What criterion verdicts add to a pair, as ``rank.judge`` reads them: (any NOT_MET, plain
    unknowns, bits of the grouped unknown types present, the line-of-therapy boost applies).
    Reads the patient only through the facts the verdicts were judged on."""
    excluded, unknown, grouped = False, 0, 0
    for v in verdicts:
        c = v.criterion
        if c.values.get("source") == "structured" or c.type == "unparsed":
            continue
        if v.verdict == "NOT_MET":
            excluded = True
        elif v.verdict == "UNKNOWN":
            bit = _GROUPED.get(c.type)
            if bit:
                grouped |= bit
            else:
                unknown += 1
    fit = rank.prior_fit_boost(patient, verdicts) is not None
    got = (excluded, unknown, grouped, fit)
    return _SHARED.setdefault(got, got)  # a few distinct values: one tuple each


_SHARED: dict = {}


def _one_contribution(patient, v) -> tuple[bool, int, int, bool]:
    """:func:`_contribution` of one verdict (the same result, without building a list): only a
    required prior therapy can give the line-of-therapy boost."""
    c = v.criterion
    excluded, unknown, grouped = False, 0, 0
    if c.values.get("source") != "structured" and c.type != "unparsed":
        if v.verdict == "NOT_MET":
            excluded = True
        elif v.verdict == "UNKNOWN":
            bit = _GROUPED.get(c.type)
            if bit:
                grouped = bit
            else:
                unknown = 1
    fit = c.type == "prior_therapy_required" and rank.prior_fit_boost(patient, (v,)) is not None
    got = (excluded, unknown, grouped, fit)
    return _SHARED.setdefault(got, got)


_NOTHING = (False, 0, 0, False)


@dataclass
class Rows:
    """One chunk's relevant pairs, ordered by patient then rank (all arrays one per row),
    plus per patient: how many trials were unrelated and how many were dropped by purpose."""

    patients: Sequence
    patient: np.ndarray  # int32: index into ``patients``
    trial: np.ndarray  # int32: index into the parsed trials
    verdict: np.ndarray  # int8: index into VERDICTS
    score: np.ndarray  # float64
    rank: np.ndarray  # int32, from 1 per patient
    gated: np.ndarray  # bool: closed by status, age, sex or distance (criteria not evaluated)
    site: np.ndarray  # int32: the nearest open site (index among the trial's), -1 none
    miles: np.ndarray  # float64: its distance rounded to 0.1, NaN none
    unrelated: np.ndarray  # int32 per patient
    dropped: np.ndarray  # int32 per patient
    starts: np.ndarray  # int64 per patient + 1: rows of patient i are starts[i]:starts[i+1]
    verdicts: dict | None = None  # (patient, trial) -> its criteria's verdicts, for explain

    def __len__(self) -> int:
        return len(self.trial)

    def of(self, i: int) -> slice:
        """The rows of patient ``i``."""
        return slice(int(self.starts[i]), int(self.starts[i + 1]))


@dataclass(frozen=True)
class _TrialInfo:
    first_group: bool  # treatment / purpose not stated: listed first
    purpose_gate: bool  # screening, prevention with healthy volunteers, participants not patients
    local_treatment: bool
    abroad: bool  # every open site outside the United States
    purpose: str


def _distance_penalties(miles: np.ndarray) -> np.ndarray:
    """``-round(min(CAP, miles / 100 * PER_100), 1)`` per value, as ``rank.judge`` computes it
    (the same Python arithmetic, once per distinct distance)."""
    out = np.zeros(miles.shape)
    known = ~np.isnan(miles)
    if known.any():
        values, inverse = np.unique(miles[known], return_inverse=True)
        pen = [
            -round(min(rank.PENALTY_DISTANCE_CAP, m / 100 * rank.PENALTY_DISTANCE_PER_100_MILES), 1)
            for m in values.tolist()
        ]
        out[known] = np.asarray(pen, dtype=float)[inverse]
    return out


def _round1(x: np.ndarray) -> np.ndarray:
    """Python's ``round(value, 1)`` per value (once per distinct value)."""
    if not len(x):
        return x.astype(float)
    values, inverse = np.unique(x, return_inverse=True)
    return np.asarray([round(v, 1) for v in values.tolist()], dtype=float)[inverse]


class ColumnarMatcher:
    """Rows for chunks of patients over one :class:`engine.MatchState` (its parsed trials,
    relevance per diagnosis, site coordinates, context and evaluator)."""

    def __init__(self, state, max_entries: int = 1_000_000):
        self.st = state
        self.max_entries = max_entries
        trials = state.parsed_trials
        ev = state.evaluator
        self._info: list[_TrialInfo | None] = [None] * len(trials)
        self._texts: dict[int, tuple] = {}  # per trial: what every row of it writes
        self._kind: dict[int, tuple] = {}  # per trial: which criteria decide a row's text
        self._site_dicts: dict[tuple, dict] = {}  # (trial, site) -> rank.site_dict
        self._abroad_why: dict[int, str] = {}
        self._split: list[tuple | None] = [None] * len(trials)
        self._combined: list[dict] = [{} for _ in trials]  # per trial: combined parts
        # id(verdict object) -> its contribution. The evaluator's memo keeps the objects
        # alive (so an id is not reused) until it starts afresh, when this is forgotten too.
        self._one: dict = {}
        self._generation = ev.generation
        ids = [pt.trial.nct_id for pt in trials]
        self.nct_pos = np.empty(len(trials), dtype=np.int64)
        self.nct_pos[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
        self._by_diag: dict = {}
        self._bounds: dict[int, tuple] = {}

    # ------------------------------------------------------------------ per trial / diagnosis

    def info(self, j: int) -> _TrialInfo:
        got = self._info[j]
        if got is None:
            pt = self.st.parsed_trials[j]
            ctx = self.st.ctx
            scope = ctx.scope(pt)
            purpose = scope.purpose.lower()
            got = self._info[j] = _TrialInfo(
                purpose in rank.FIRST_GROUP_PURPOSES,
                scope.purpose == "SCREENING"
                or (scope.purpose == "PREVENTION" and bool(scope.healthy_volunteers))
                or bool(scope.participants),  # rank.purpose_gates: caregivers, pharmacists ...
                bool(ctx.local_procedures(pt)),
                bool(rank.sites_abroad_only(pt.trial, "United States")),
                purpose,
            )
        return got

    def diagnosis(self, diag) -> dict:
        """Per diagnosis: relevant trial indices, relevance by index, score and verify counts,
        and the columns whose trial tests a Table 9 agent of the diagnosis."""
        got = self._by_diag.get(diag)
        if got is None:
            relevant = self.st.relevant(diag)
            cols = np.array([j for j, _ in relevant], dtype=np.int32)
            agents = {d for d, _ in self.st.ctx.targeted_agents(diag)} if diag else set()
            table9 = [
                c
                for c, (j, _) in enumerate(relevant)
                if agents and agents & self.st.ctx.trial_drugs(self.st.parsed_trials[j])
            ]
            got = self._by_diag[diag] = {
                "cols": cols,
                "rel": dict(relevant),
                "rel_score": np.array([r.score for _, r in relevant], dtype=np.int64),
                "rel_verify": np.array([len(r.verify) for _, r in relevant], dtype=np.int64),
                "table9": table9,
                # columns whose relevance rests on a marker-defined condition: the patient's
                # recorded marker status may settle or rule it out (rank.marker_check)
                "marker": [
                    c
                    for c, (_, r) in enumerate(relevant)
                    if r.evidence is not None and r.evidence.marker and r.verify
                ],
                # columns whose criteria text widens the registered age range
                "text_ages": [c for c, (j, _) in enumerate(relevant) if self._age_widened(j)],
            }
        return got

    def age_bounds(self, j: int) -> tuple:
        """``rank.age_bounds`` of trial ``j`` (kept per trial)."""
        got = self._bounds.get(j)
        if got is None:
            got = self._bounds[j] = rank.age_bounds(self.st.parsed_trials[j])
        return got

    def _age_widened(self, j: int) -> bool:
        """The criteria text of trial ``j`` widens its registered age range: only there can
        ``rank.age_range_note`` say anything."""
        t = self.st.parsed_trials[j].trial
        return self.age_bounds(j) != (t.min_age_years, t.max_age_years)

    def _parts(self, j: int) -> tuple[list[int], list[int]]:
        """Criteria of trial ``j`` that stand alone, and those combined (groups, cohorts)."""
        got = self._split[j]
        if got is None:
            crits = self.st.parsed_trials[j].criteria
            tied = [i for i, c in enumerate(crits) if c.group or c.cohort]
            alone = [i for i in range(len(crits)) if not (crits[i].group or crits[i].cohort)]
            got = self._split[j] = (alone, tied)
        return got

    def _forget(self) -> None:
        self._one = {}
        self._site_dicts = {}
        self._combined = [{} for _ in self._combined]

    def _combined_verdicts(self, j: int, raw: list) -> list:
        """The pair's verdicts with alternatives and cohorts combined: what
        ``Evaluator.combine(raw)`` returns (only the tied criteria change, and :meth:`pair`
        kept their combination)."""
        _, tied = self._parts(j)
        both = self._combined[j].get(tuple(id(raw[i]) for i in tied)) if tied else None
        if both is None:  # forgotten since (the memo started afresh): combine again
            return self.st.evaluator.combine(raw)
        verdicts = list(raw)
        for i, v in zip(tied, both[1], strict=True):
            verdicts[i] = v
        return verdicts

    def pair(self, patient, j: int, keep: dict | None = None, at=None):
        """What the criteria of trial ``j`` add to the pair (see :func:`_contribution`);
        ``keep[at]`` gets the pair's verdicts (for :meth:`explain`)."""
        ev = self.st.evaluator
        raw, combine = ev.criterion_verdicts(patient, self.st.parsed_trials[j])
        if keep is not None:
            keep[at] = (raw, combine)
        if ev.generation != self._generation:
            # the evaluator's memo started afresh: its verdict objects are new
            self._generation = ev.generation
            self._forget()
        one = self._one
        excluded, unknown, grouped, fit = False, 0, 0, False
        alone, tied = self._parts(j) if combine else (None, ())
        for v in raw if alone is None else [raw[i] for i in alone]:
            got = one.get(id(v))
            if got is None:
                got = one[id(v)] = _one_contribution(patient, v)
            e, u, g, f = got
            excluded |= e
            unknown += u
            grouped |= g
            fit |= f
        if tied:
            sub = [raw[i] for i in tied]
            memo = self._combined[j]
            key = tuple(map(id, sub))
            both = memo.get(key)
            if both is None:
                combined = ev.combine(sub)
                both = memo[key] = (_contribution(patient, combined), combined)
            e, u, g, f = both[0]
            excluded |= e
            unknown += u
            grouped |= g
            fit |= f
        return excluded, unknown, grouped, fit

    # ------------------------------------------------------------------ rows

    def start_chunk(self) -> None:
        """Forget the kept contributions when there are too many (between chunks)."""
        if len(self._one) + sum(map(len, self._combined)) > self.max_entries:
            self._forget()

    def rows(self, patients: Sequence, explainable: bool = True) -> Rows:
        """The relevant pairs of ``patients`` (see :class:`Rows`). ``explainable``: keep each
        pair's verdicts for :meth:`explain` (memory for one chunk's pairs)."""
        from matcher.engine import _patient_frame, gate_mask

        st, config = self.st, self.st.config
        blocks: dict = defaultdict(list)
        for i, p in enumerate(patients):
            blocks[p.diagnosis].append(i)
        parts: list[tuple] = []
        keep: dict = {} if explainable else None
        n_trials = len(st.parsed_trials)
        unrelated = np.zeros(len(patients), dtype=np.int32)
        for diag, members in blocks.items():
            d = self.diagnosis(diag)
            cols = d["cols"]
            unrelated[members] = n_trials - len(cols)
            if not len(cols):
                continue
            block = [patients[i] for i in members]
            nb, nc = len(block), len(cols)
            mask = gate_mask(_patient_frame(block), st.tf.iloc[cols])
            points = [rank.patient_point(p) for p in block]
            miles = np.full((nb, nc), np.nan)
            site = np.full((nb, nc), -1, dtype=np.int32)
            for c, j in enumerate(cols.tolist()):
                self._nearest(points, int(j), miles[:, c], site[:, c])
            ok = mask.copy()
            if config.max_miles is not None:
                with np.errstate(invalid="ignore"):
                    ok &= ~(miles > config.max_miles)
            s_excl = np.zeros((nb, nc), dtype=bool)
            s_unk = np.zeros((nb, nc), dtype=np.int64)
            s_grp = np.zeros((nb, nc), dtype=np.int64)
            s_fit = np.zeros((nb, nc), dtype=bool)
            gate_excl = np.zeros((nb, nc), dtype=bool)
            infos = [self.info(int(j)) for j in cols.tolist()]
            cols_list = cols.tolist()
            pair = self.pair
            for r, p in enumerate(block):
                row_ok = ok[r]
                i = members[r]
                for c in np.flatnonzero(row_ok).tolist():
                    j = cols_list[c]
                    e, u, g, f = pair(p, j, keep, (i, j))
                    if e:
                        s_excl[r, c] = True
                    if u:
                        s_unk[r, c] = u
                    if g:
                        s_grp[r, c] = g
                    if f:
                        s_fit[r, c] = True
                for c in np.flatnonzero(~row_ok).tolist():
                    pt = st.parsed_trials[cols_list[c]]
                    m = miles[r, c]
                    sm = (None, None if np.isnan(m) else float(m))
                    bounds = self.age_bounds(cols_list[c])
                    gate_excl[r, c] = bool(rank.gates(p, pt.trial, config, sm, bounds))
            crit = (s_excl, s_unk, s_grp, s_fit)
            parts.append(self._score_block(members, block, points, d, infos, crit, gate_excl,
                                           ~ok, miles, site))  # fmt: skip
        rows = self._finish_rows(patients, parts, unrelated)
        rows.verdicts = keep
        return rows

    def _nearest(self, points, j: int, miles_out: np.ndarray, site_out: np.ndarray) -> None:
        """Nearest open site and its miles (rounded to 0.1) for each patient point."""
        from matcher.engine import _site_points

        trial = self.st.parsed_trials[j].trial
        cache = self.st.site_cache
        if trial.nct_id not in cache:
            cache[trial.nct_id] = _site_points(trial)
        sites, site_pts, rad = cache[trial.nct_id]
        known = [i for i, p in enumerate(points) if p is not None]
        if not sites or not known:
            return
        pp = np.radians(np.array([points[i] for i in known], dtype=float))
        lat1, lon1 = pp[:, 0:1], pp[:, 1:2]
        lat2, lon2 = rad[None, :, 0], rad[None, :, 1]
        h = (
            np.sin((lat2 - lat1) / 2) ** 2
            + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
        )
        nearest = np.argmin(h, axis=1)  # first minimum: the site the scalar loop keeps
        hmin = h[np.arange(len(known)), nearest]
        approx = 2 * EARTH_RADIUS_MILES * np.arcsin(np.minimum(1.0, np.sqrt(hmin)))
        tenths = approx * 10
        # the rounded figure is the scalar function's unless the value is near a rounding
        # boundary: those few are computed by it
        near = np.abs(tenths - np.floor(tenths) - 0.5) < 1e-6
        rounded = np.round(approx, 1)
        for row in np.flatnonzero(near).tolist():
            i = known[row]
            rounded[row] = round(rank.haversine_miles(points[i], site_pts[int(nearest[row])]), 1)
        idx = np.array(known)
        miles_out[idx] = rounded
        site_out[idx] = nearest

    def _score_block(self, members, block, points, d, infos, crit, gate_excl, gated, miles, site):
        """Verdict and score of every pair of one diagnosis block (see ``rank.judge``)."""
        s_excl, s_unk, s_grp, s_fit = crit
        nb, nc = s_excl.shape
        # grouped unknown types count once each (those that count toward the penalty)
        s_ver = (s_unk > 0) | (s_grp != 0)
        for bit in _GROUPED_COUNTED:
            s_unk = s_unk + ((s_grp & bit) != 0)

        ctx = self.st.ctx
        t9_pts = np.zeros((nb, nc), dtype=np.int64)
        t9_ver = np.zeros((nb, nc), dtype=np.int64)
        for c in d["table9"]:
            pt = self.st.parsed_trials[int(d["cols"][c])]
            for r, p in enumerate(block):
                extra: list[str] = []
                b = rank.table9_boost(p, pt, ctx, extra)
                t9_pts[r, c] = b[1] if b else 0
                t9_ver[r, c] = len(extra)
        mk_excl = np.zeros((nb, nc), dtype=bool)
        mk_ver = np.zeros((nb, nc), dtype=np.int64)
        for c in d["marker"]:
            rel = d["rel"][int(d["cols"][c])]
            for r, p in enumerate(block):
                out, settled = rank.marker_check(p, rel)
                mk_excl[r, c] = out is not None
                mk_ver[r, c] = len(rel.verify) if settled else 0
        rel_verify = d["rel_verify"][None, :] - mk_ver
        # rank.age_range_note: the registered age range contradicted by the criteria text
        for c in d["text_ages"]:
            pt = self.st.parsed_trials[int(d["cols"][c])]
            for r, p in enumerate(block):
                if rank.age_range_note(p, pt) is not None:
                    rel_verify[r, c] += 1
        first = np.array([i.first_group for i in infos], dtype=bool)
        pgate = np.array([i.purpose_gate for i in infos], dtype=bool)
        local = np.array([i.local_treatment for i in infos], dtype=bool)
        abroad = np.array([i.abroad for i in infos], dtype=bool)
        has_diag = np.array([bool(p.diagnosis) for p in block], dtype=bool)[:, None]
        resect = np.array([rank.resection_candidate(p) for p in block], dtype=bool)[:, None]
        us_patient = np.array(
            [bool(p.zip) and pt is not None for p, pt in zip(block, points, strict=True)],
            dtype=bool,
        )[:, None]

        excluded = gate_excl | s_excl | (pgate[None, :] & has_diag) | mk_excl
        # rank.judge: the relevance's verify items, the options', the criteria's (grouped
        # types once each, if they count)
        n_unknown = rel_verify + t9_ver + s_unk
        verify = (rel_verify + t9_ver) > 0
        verify |= s_ver
        verdict = np.where(excluded, EXCLUDED, np.where(verify, NEEDS_REVIEW, ELIGIBLE))
        integer = (
            d["rel_score"][None, :]
            + t9_pts
            + rank.BOOST_PRIOR_THERAPY_FIT * s_fit
            + rank.BOOST_RESECTION * (resect & local[None, :])
            - rank.PENALTY_UNKNOWN * n_unknown
        )
        known = ~np.isnan(miles)
        dist = _distance_penalties(miles)
        dist = np.where(
            ~known & us_patient & abroad[None, :], -float(rank.PENALTY_DISTANCE_CAP), dist
        )
        score = _round1(integer.astype(float) + dist)
        rows_patient = np.repeat(np.asarray(members, dtype=np.int32), nc)
        rows_trial = np.tile(d["cols"], nb)
        return (
            rows_patient,
            rows_trial,
            verdict.astype(np.int8).ravel(),
            score.ravel(),
            gated.ravel(),
            site.ravel(),
            miles.ravel(),
            np.tile(first, nb),
        )

    def _finish_rows(self, patients, parts, unrelated) -> Rows:
        n = len(patients)
        if parts:
            cols = [np.concatenate(x) for x in zip(*parts, strict=True)]
        else:
            cols = [
                np.zeros(0, dtype=t)
                for t in (np.int32, np.int32, np.int8, float, bool, np.int32, float, bool)
            ]
        patient, trial, verdict, score, gated, site, miles, first = cols
        dropped = np.zeros(n, dtype=np.int32)
        purposes = self.st.config.purposes
        if purposes is not None:
            keep = np.array([self.info(int(j)).purpose in purposes for j in trial], dtype=bool)
            np.add.at(dropped, patient[~keep], 1)
            patient, trial, verdict, score, gated, site, miles, first = (
                x[keep] for x in (patient, trial, verdict, score, gated, site, miles, first)
            )
        # rank.order: purpose group, could join before excluded, score high first, NCT id
        order = np.lexsort((self.nct_pos[trial], -score, verdict == EXCLUDED, ~first, patient))
        patient, trial, verdict, score, gated, site, miles = (
            x[order] for x in (patient, trial, verdict, score, gated, site, miles)
        )
        starts = np.searchsorted(patient, np.arange(n + 1), side="left")
        ranks = np.arange(len(patient), dtype=np.int64) - starts[patient] + 1
        return Rows(
            patients,
            patient.astype(np.int32),
            trial.astype(np.int32),
            verdict.astype(np.int8),
            score.astype(float),
            ranks.astype(np.int32),
            gated.astype(bool),
            site.astype(np.int32),
            miles.astype(float),
            unrelated,
            dropped,
            starts,
        )

    # ------------------------------------------------------------------ explanations

    def _inputs(self, rows: Rows, i: int, k: int, p) -> tuple:
        """What ``rank.judge`` takes for row ``k`` (patient ``i``, ``p``): the trial index,
        the parsed trial, (nearest site dict, miles), the gate reasons and the verdicts."""
        return self._inputs_of(
            rows, i, p, int(rows.trial[k]), float(rows.miles[k]), int(rows.site[k]),
            bool(rows.gated[k]),
        )  # fmt: skip

    def _inputs_of(self, rows: Rows, i: int, p, j: int, m: float, s: int, gated: bool):
        """:meth:`_inputs` of a row given its trial ``j``, miles ``m`` (NaN: none), site
        ``s`` and whether it is gated (read from the arrays as Python values)."""
        st = self.st
        pt = st.parsed_trials[j]
        sm = (None, None) if m != m else (self.site_of(j, s), m)
        if gated:
            return j, pt, sm, rank.gates(p, pt.trial, st.config, sm, self.age_bounds(j)), []
        got = rows.verdicts.get((i, j)) if rows.verdicts is not None else None
        if got is None:
            verdicts = st.evaluator.evaluate(p, pt)
        elif got[1]:
            if self._generation != st.evaluator.generation:
                self._generation = st.evaluator.generation
                self._forget()
            verdicts = self._combined_verdicts(j, got[0])
        else:
            verdicts = got[0]
        return j, pt, sm, [], verdicts

    def explain(self, rows: Rows, i: int, only=None) -> PatientMatches:
        """Patient ``i``'s full matches, built by ``rank.judge`` from the stored verdicts
        (equal to ``rank.rank_trials``). ``only``: row positions (within the patient's rows)
        to explain; the default is every row."""
        st = self.st
        p = rows.patients[i]
        d = self.diagnosis(p.diagnosis)
        point = rank.patient_point(p)
        sl = rows.of(i)
        idx = range(sl.start, sl.stop) if only is None else [sl.start + k for k in only]
        out = []
        for k in idx:
            j, pt, sm, gate_reasons, verdicts = self._inputs(rows, i, k, p)
            sug = rank.judge(p, pt, d["rel"][j], gate_reasons, verdicts, st.ctx, sm)
            sug.rank = int(rows.rank[k])
            out.append(sug)
        notes = rank.patient_notes(p, int(rows.dropped[i]), point, st.config)
        return PatientMatches(p.id, out, notes, int(rows.unrelated[i]))

    # ------------------------------------------------------------------ rows not explained

    def _trial_row(self, j: int) -> tuple:
        """Per trial once: (title, phase, status, last update, url, purpose key, the
        purpose's reason or None, its ``TrialScope``), as ``rank.judge`` writes them."""
        got = self._texts.get(j)
        if got is None:
            pt = self.st.parsed_trials[j]
            t = pt.trial
            scope = self.st.ctx.scope(pt)
            if scope.purpose == "NOT_STATED":
                why = "primary purpose not stated in the record (listed with treatment trials)"
            elif scope.purpose != "TREATMENT":
                label = rank.PURPOSE_LABELS.get(scope.purpose, scope.purpose.lower())
                why = f"primary purpose: {label} (listed after treatment trials)"
            else:
                why = None
            phase = "/".join(t.phases) if t.phases else "NA"
            got = (t.title, phase, t.status, t.last_update, t.url, scope.purpose.lower(), why,
                   scope)  # fmt: skip
            self._texts[j] = got
        return got

    def _columns_of(self, d: dict) -> tuple[frozenset, frozenset, frozenset]:
        """Trial indices of a diagnosis whose rows can have a Table 9 boost, a marker check
        or an age note (the other trials' calls return nothing: see :meth:`_score_block`)."""
        got = d.get("checked")
        if got is None:
            cols = d["cols"].tolist()
            got = d["checked"] = tuple(
                frozenset(cols[c] for c in d[key]) for key in ("table9", "marker", "text_ages")
            )
        return got

    def _abroad(self, j: int) -> str:
        """``rank.judge``'s reason for a trial whose open sites are all abroad (per trial)."""
        got = self._abroad_why.get(j)
        if got is None:
            where = rank.sites_abroad_only(self.st.parsed_trials[j].trial, "United States")
            got = self._abroad_why[j] = (
                f"open sites outside the United States only ({', '.join(where)})"
            )
        return got

    def _kinds(self, j: int) -> tuple:
        """Per trial once: the positions of the criteria whose verdict decides what a row
        says (not structured, not unparsed), their types, how many criteria lines are left to
        read (unparsed, not structured: their verdict does not matter) and how many criteria
        there are, and whether one is a required prior therapy (only such a verdict can give
        the line-of-therapy boost: ``rank.prior_fit_boost``)."""
        got = self._kind.get(j)
        if got is None:
            crits = self.st.parsed_trials[j].criteria
            judged = [
                i
                for i, c in enumerate(crits)
                if c.values.get("source") != "structured" and c.type != "unparsed"
            ]
            n_review = sum(
                1 for c in crits if c.values.get("source") != "structured" and c.type == "unparsed"
            )
            got = self._kind[j] = (
                [(i, crits[i].type in rank.GROUPED_UNKNOWNS) for i in judged],
                n_review,
                len(crits),
                any(c.type == "prior_therapy_required" for c in crits),
            )
        return got

    def _partition(self, j: int, verdicts: list) -> _Partition:
        """What ``rank.partition_verdicts(verdicts)`` gives that a row not explained needs
        (exclusions, verify reasons, grouped reasons, counts of criteria met and lines to
        read), reading only the verdicts of the criteria that decide it (:meth:`_kinds`).
        A verdict's criterion is the trial's criterion at its position (the evaluator keeps
        that order), as combined verdicts are too."""
        if not verdicts:
            return _NO_PARTITION
        judged, n_review, n, prior = self._kinds(j)
        if len(verdicts) != n:  # not one verdict per criterion: read every verdict
            part = rank.partition_verdicts(verdicts)
            return _Partition(
                part.excluded, part.verify, part.grouped, len(part.met), len(part.to_review), True
            )
        excluded, verify, grouped, met = [], [], {}, 0
        for i, is_grouped in judged:
            v = verdicts[i]
            said = v.verdict
            if said == "NOT_MET":
                excluded.append(f"{v.criterion.section}: {v.reason}")
            elif said == "UNKNOWN":
                if is_grouped:
                    grouped.setdefault(v.criterion.type, []).append(v.reason)
                else:
                    verify.append(v.reason)
            else:
                met += 1
        return _Partition(excluded, verify, grouped, met, n_review, prior)

    def briefs(self, rows: Rows, i: int) -> Briefs:
        """Patient ``i``'s rows as :class:`Brief` (what a row the report lists without its
        detail shows, computed as ``rank.judge`` computes it, without building the
        suggestion); :meth:`Briefs.explain` gives any of them in full."""
        return self.assemble(rows, i, self.brief_parts(rows, i))

    def brief_parts(self, rows: Rows, i: int) -> list[tuple]:
        """What a :class:`Brief` of each row of patient ``i`` says that needs the pair's
        verdicts: ``(score, reasons, excluded_by, verify, met_count, to_review_count)``
        (the score an ``int`` where ``rank.judge``'s is one). The rest of a brief is per
        trial, per diagnosis or in the arrays (:meth:`assemble`). A Dask worker ships these
        with the arrays, not the briefs."""
        ctx = self.st.ctx
        p = rows.patients[i]
        d = self.diagnosis(p.diagnosis)
        rels = d["rel"]
        table9, marker, text_ages = self._columns_of(d)
        point = rank.patient_point(p)
        us_point = bool(getattr(p, "zip", None)) and point is not None
        sl = rows.of(i)
        out = []
        # the patient's rows as Python values once (not a numpy scalar per row and field)
        cols = zip(
            rows.trial[sl].tolist(), rows.miles[sl].tolist(), rows.site[sl].tolist(),
            rows.gated[sl].tolist(), rows.score[sl].tolist(), strict=True,
        )  # fmt: skip
        inputs_of = self._inputs_of
        for tj, tm, ts, tg, row_score in cols:
            j, pt, (site, miles), gate_reasons, verdicts = inputs_of(rows, i, p, tj, tm, ts, tg)
            rel = rels[j]
            _, _, _, _, _, _, purpose_why, scope = self._trial_row(j)
            part = self._partition(j, verdicts)
            if j in marker:
                marker_out, settled = rank.marker_check(p, rel)
            else:
                marker_out, settled = None, False
            excluded_by = list(gate_reasons) + rank.purpose_gates(p, scope) + part.excluded
            if marker_out:
                excluded_by.append(marker_out)
            verify = ([] if settled else list(rel.verify)) + part.verify
            if j in text_ages and (age_note := rank.age_range_note(p, pt)) is not None:
                verify.append(age_note)
            reasons = [rel.reason]
            if j in table9:
                t9 = rank.table9_boost(p, pt, ctx, verify)  # appends the options' verify items
                if t9 is not None:
                    reasons.append(t9[0])
            for t, items in part.grouped.items():
                verify.append(
                    f"{rank.GROUPED_UNKNOWNS[t][0]} ({len(items)}): "
                    + "; ".join(dict.fromkeys(items))
                )
            abroad = miles is None and us_point and self.info(j).abroad and self._abroad(j)
            if len(reasons) < 2:
                reasons += _second_reason(p, pt, ctx, verdicts, abroad, purpose_why,
                                          gate_reasons, part)  # fmt: skip
            # rank.judge's score is an int unless a float distance part is added to it (a
            # capped distance penalty is the int cap)
            if miles is None:
                score = row_score if abroad else int(row_score)
            else:
                per = miles / 100 * rank.PENALTY_DISTANCE_PER_100_MILES
                capped = type(min(rank.PENALTY_DISTANCE_CAP, per)) is not float
                score = int(row_score) if capped else row_score
            out.append((score, reasons, excluded_by, tuple(verify), part.met, part.to_review))
        return out

    def site_of(self, j: int, s: int) -> dict:
        """``rank.site_dict`` of open site ``s`` of trial ``j`` (one dict per trial site,
        shared by its rows: read, not changed)."""
        key = (j, s)
        site = self._site_dicts.get(key)
        if site is None:
            from matcher.engine import _site_points

            nct = self.st.parsed_trials[j].trial.nct_id
            cache = self.st.site_cache
            if nct not in cache:  # rows made elsewhere (a Dask worker)
                cache[nct] = _site_points(self.st.parsed_trials[j].trial)
            site = self._site_dicts[key] = rank.site_dict(cache[nct][0][s])
        return site

    def assemble(self, rows: Rows, i: int, parts: Sequence[tuple]) -> Briefs:
        """Patient ``i``'s :class:`Briefs` from the arrays and :meth:`brief_parts` (made
        here or on a Dask worker from the same trials and settings)."""
        p = rows.patients[i]
        rels = self.diagnosis(p.diagnosis)["rel"]
        sl = rows.of(i)
        out = []
        # the patient's rows as Python values once (not a numpy scalar per row and field)
        cols = zip(
            rows.trial[sl].tolist(), rows.rank[sl].tolist(), rows.verdict[sl].tolist(),
            rows.miles[sl].tolist(), rows.site[sl].tolist(), parts, strict=True,
        )  # fmt: skip
        parsed, trial_row, site_of = self.st.parsed_trials, self._trial_row, self.site_of
        for j, rank_, v, m, s, (score, reasons, excluded_by, verify, met, to_review) in cols:
            if m != m:  # NaN: no site
                site, miles = None, None
            else:
                site, miles = site_of(j, s), m
            title, phase, status, last_update, url, purpose, _, _ = trial_row(j)
            out.append(
                Brief(
                    parsed[j].trial.nct_id,
                    rank_,
                    score,
                    VERDICTS[v],
                    reasons,
                    excluded_by,
                    site,
                    miles,
                    title,
                    phase,
                    status,
                    last_update,
                    url,
                    rels[j].tier or "unrelated",
                    purpose,
                    verify,
                    met,
                    to_review,
                )
            )
        notes = rank.patient_notes(p, int(rows.dropped[i]), rank.patient_point(p), self.st.config)
        return Briefs(p.id, out, notes, int(rows.unrelated[i]), self, rows, i)


@dataclass(frozen=True)
class _Partition:
    """A row's share of ``rank.VerdictPartition``: texts where a row needs them, counts where
    it shows only how many (``met``, ``to_review``)."""

    excluded: list
    verify: list
    grouped: dict
    met: int
    to_review: int
    prior: bool  # a verdict of a required prior therapy is among them


_NO_PARTITION = _Partition([], [], {}, 0, 0, False)


def _second_reason(p, pt, ctx, verdicts, abroad, purpose_why, gate_reasons, part) -> list[str]:
    """The second of ``rank.judge``'s reasons when no Table 9 boost gave it (at most one)."""
    fit = rank.prior_fit_boost(p, verdicts) if part.prior else None
    if fit is not None:
        return [fit[0]]
    local = rank.resection_boost(p, pt, ctx)
    if local is not None:
        return [local[0]]
    if abroad:
        return [abroad]
    if purpose_why is not None:
        return [purpose_why]
    if gate_reasons:
        return ["criteria not evaluated: closed by status, age, sex or distance"]
    if part.met:
        return [f"{part.met} criteria met"]
    if part.to_review:
        return [f"{part.to_review} criteria lines not machine-checked: read them"]
    return []


class Brief(NamedTuple):
    """One row as a report lists it without its detail: the fields of ``rank.Suggestion``
    that a compact row keeps (``reasons``: the first two only), the verify lines (for the
    checks and the facts to record) and the counts of criteria met and lines to read."""

    nct_id: str
    rank: int
    score: float  # an int where rank.judge's is one
    verdict: str
    reasons: list
    excluded_by: list
    nearest_site: dict | None
    distance_miles: float | None
    title: str
    phase: str
    status: str
    last_update: str | None
    url: str
    relevance: str
    purpose: str
    verify: tuple
    met_count: int
    to_review_count: int


class Briefs:
    """One patient's rows as :class:`Brief` (``trials``, in rank order), the patient's notes
    and unrelated count; :meth:`explain` builds chosen rows in full (``rank.judge``), while
    the chunk's rows are current (before the next patient of the stream is asked for)."""

    def __init__(self, patient_id, trials, notes, unrelated, matcher, rows, i):
        self.patient_id = patient_id
        self.trials = trials
        self.notes = notes
        self.unrelated = unrelated
        self._from = (matcher, rows, i)

    def explain(self, only=None) -> PatientMatches:
        """The full matches of the rows at positions ``only`` (every row by default)."""
        matcher, rows, i = self._from
        return matcher.explain(rows, i, only)
