"""Columnar matching: verdict, score and rank of every relevant pair as numpy arrays.

For a chunk of patients, :meth:`ColumnarMatcher.rows` gives one row per relevant (patient,
trial) pair, ordered by patient then rank: the trial, verdict code, score, rank, whether a
structured gate closed it, the nearest site, and the id of the *verdict summary* behind it.
No suggestion, reason text or site dict is built per pair:

- each trial's criteria read a few patient fields (``eligibility.FIELDS_BY_TYPE``); a patient
  is a vector of fact ids, one per field group (``Evaluator.fact_ids``). Per trial, the
  verdicts are evaluated once per distinct combination of the fact ids its criteria read, and
  kept as a summary: the combined verdicts, their :class:`rank.VerdictPartition` (the texts,
  kept once) and the counts the verdict and score need (exclusions, unknowns, the
  line-of-therapy boost);
- per trial once: purpose group, purpose gate, local-treatment procedures, sites abroad only;
  per diagnosis once: relevance tier and its score, the trials testing a Table 9 agent;
- gates (status, age, sex), distances, boosts, the unknown penalty, verdicts and scores are
  numpy operations over the pairs of a diagnosis block; ranks one ``lexsort`` per chunk.

:meth:`ColumnarMatcher.explain` builds a patient's full :class:`rank.PatientMatches` on demand
with the same ``rank.judge`` as the one-patient path, from the stored verdicts (nothing is
evaluated again). Rows and explanations equal ``rank.rank_trials`` (tests compare verdict,
score and rank on every fixture patient and trial, and the explained results key for key).
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matcher import rank
from matcher.geo import EARTH_RADIUS_MILES
from matcher.rank import PatientMatches

VERDICTS = ("eligible", "needs_review", "excluded")
ELIGIBLE, NEEDS_REVIEW, EXCLUDED = 0, 1, 2


@dataclass(frozen=True)
class Summary:
    """The verdicts of one trial's criteria for one combination of the facts they read."""

    verdicts: list
    partition: rank.VerdictPartition
    excluded: bool  # a criterion is NOT_MET
    n_unknown: int  # toward the penalty (rank.VerdictPartition.n_unknown)
    verify: bool  # any item to verify (grouped ones too)
    prior_fit: bool  # the line-of-therapy boost applies


_EMPTY = Summary([], rank.partition_verdicts([]), False, 0, False, False)


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
    summary: np.ndarray  # int32: the ColumnarMatcher summary behind the row
    site: np.ndarray  # int32: the nearest open site (index among the trial's), -1 none
    miles: np.ndarray  # float64: its distance rounded to 0.1, NaN none
    unrelated: np.ndarray  # int32 per patient
    dropped: np.ndarray  # int32 per patient
    starts: np.ndarray  # int64 per patient + 1: rows of patient i are starts[i]:starts[i+1]

    def __len__(self) -> int:
        return len(self.trial)

    def of(self, i: int) -> slice:
        """The rows of patient ``i``."""
        return slice(int(self.starts[i]), int(self.starts[i + 1]))


@dataclass(frozen=True)
class _TrialInfo:
    key: object  # fact ids -> the memo key of this trial's summaries
    first_group: bool  # treatment / purpose not stated: listed first
    purpose_gate: bool  # screening, or prevention with healthy volunteers
    local_treatment: bool
    abroad: bool  # every open site outside the United States
    purpose: str


def _key_getter(groups: list[int]):
    if not groups:
        return lambda fids: ()
    return operator.itemgetter(*groups)


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

    def __init__(self, state, max_summaries: int = 500_000):
        self.st = state
        self.max_summaries = max_summaries
        trials = state.parsed_trials
        ev = state.evaluator
        self._groups = [ev.trial_groups(pt) for pt in trials]  # registers every field group
        self._info: list[_TrialInfo | None] = [None] * len(trials)
        self._memo: list[dict] = [{} for _ in trials]
        self.summaries: list[Summary] = [_EMPTY]
        self._generation = ev.generation
        ids = [pt.trial.nct_id for pt in trials]
        self.nct_pos = np.empty(len(trials), dtype=np.int64)
        self.nct_pos[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
        self._by_diag: dict = {}

    # ------------------------------------------------------------------ per trial / diagnosis

    def info(self, j: int) -> _TrialInfo:
        got = self._info[j]
        if got is None:
            pt = self.st.parsed_trials[j]
            ctx = self.st.ctx
            scope = ctx.scope(pt)
            purpose = scope.purpose.lower()
            got = self._info[j] = _TrialInfo(
                _key_getter(self._groups[j]),
                purpose in rank.FIRST_GROUP_PURPOSES,
                scope.purpose == "SCREENING"
                or (scope.purpose == "PREVENTION" and bool(scope.healthy_volunteers)),
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
            }
        return got

    def _summary(self, patient, j: int) -> int:
        pt = self.st.parsed_trials[j]
        verdicts = self.st.evaluator.evaluate(patient, pt)
        part = rank.partition_verdicts(verdicts)
        s = Summary(
            verdicts,
            part,
            bool(part.excluded),
            part.n_unknown,
            bool(part.verify or part.grouped),
            rank.prior_fit_boost(patient, verdicts) is not None,
        )
        self.summaries.append(s)
        return len(self.summaries) - 1

    # ------------------------------------------------------------------ rows

    def start_chunk(self) -> None:
        """Forget the summaries when there are too many (call between chunks only: rows of
        an earlier chunk refer to them)."""
        if len(self.summaries) > self.max_summaries:
            self.summaries = [_EMPTY]
            self._memo = [{} for _ in self._memo]

    def rows(self, patients: Sequence) -> Rows:
        """The relevant pairs of ``patients`` (see :class:`Rows`)."""
        from matcher.engine import _patient_frame, gate_mask

        st, config = self.st, self.st.config
        ev = st.evaluator
        blocks: dict = defaultdict(list)
        for i, p in enumerate(patients):
            blocks[p.diagnosis].append(i)
        parts: list[tuple] = []
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
            sid = np.zeros((nb, nc), dtype=np.int32)
            gate_excl = np.zeros((nb, nc), dtype=bool)
            infos = [self.info(int(j)) for j in cols.tolist()]
            cols_list = cols.tolist()
            for r, p in enumerate(block):
                fids = ev.fact_ids(p)
                row_ok = ok[r]
                srow = sid[r]
                for c in np.flatnonzero(row_ok).tolist():
                    j = cols_list[c]
                    memo = self._memo[j]
                    k = infos[c].key(fids)
                    s = memo.get(k)
                    if s is None:
                        s = self._summary(p, j)
                        if ev.generation != self._generation:
                            # the evaluator started afresh: its fact ids are renumbered
                            self._generation = ev.generation
                            self._memo = [{} for _ in self._memo]
                            memo = self._memo[j]
                            fids = ev.fact_ids(p)
                            k = infos[c].key(fids)
                        memo[k] = s
                    srow[c] = s
                for c in np.flatnonzero(~row_ok).tolist():
                    pt = st.parsed_trials[cols_list[c]]
                    m = miles[r, c]
                    sm = (None, None if np.isnan(m) else float(m))
                    gate_excl[r, c] = bool(rank.gates(p, pt.trial, config, sm))
            parts.append(self._score_block(members, block, points, d, infos, sid, gate_excl,
                                           ~ok, miles, site))  # fmt: skip
        return self._finish_rows(patients, parts, unrelated)

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

    def _score_block(self, members, block, points, d, infos, sid, gate_excl, gated, miles, site):
        """Verdict and score of every pair of one diagnosis block (see ``rank.judge``)."""
        nb, nc = sid.shape
        summ = self.summaries
        flat = sid.ravel()
        uniq, inv = np.unique(flat, return_inverse=True)
        us = [summ[int(s)] for s in uniq.tolist()]
        s_excl = np.array([s.excluded for s in us], dtype=bool)[inv].reshape(nb, nc)
        s_unk = np.array([s.n_unknown for s in us], dtype=np.int64)[inv].reshape(nb, nc)
        s_ver = np.array([s.verify for s in us], dtype=bool)[inv].reshape(nb, nc)
        s_fit = np.array([s.prior_fit for s in us], dtype=bool)[inv].reshape(nb, nc)

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

        excluded = gate_excl | s_excl | (pgate[None, :] & has_diag)
        # rank.judge: the relevance's verify items, the options', the criteria's (grouped
        # types once each, if they count)
        n_unknown = d["rel_verify"][None, :] + t9_ver + s_unk
        verify = (d["rel_verify"][None, :] + t9_ver) > 0
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
            flat,
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
                for t in (np.int32, np.int32, np.int8, float, bool, np.int32, np.int32, float, bool)
            ]
        patient, trial, verdict, score, gated, summary, site, miles, first = cols
        dropped = np.zeros(n, dtype=np.int32)
        purposes = self.st.config.purposes
        if purposes is not None:
            keep = np.array([self.info(int(j)).purpose in purposes for j in trial], dtype=bool)
            np.add.at(dropped, patient[~keep], 1)
            patient, trial, verdict, score, gated, summary, site, miles, first = (
                x[keep]
                for x in (patient, trial, verdict, score, gated, summary, site, miles, first)
            )
        # rank.order: purpose group, could join before excluded, score high first, NCT id
        order = np.lexsort((self.nct_pos[trial], -score, verdict == EXCLUDED, ~first, patient))
        patient, trial, verdict, score, gated, summary, site, miles = (
            x[order] for x in (patient, trial, verdict, score, gated, summary, site, miles)
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
            summary.astype(np.int32),
            site.astype(np.int32),
            miles.astype(float),
            unrelated,
            dropped,
            starts,
        )

    # ------------------------------------------------------------------ explanations

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
            j = int(rows.trial[k])
            pt = st.parsed_trials[j]
            m = float(rows.miles[k])
            if np.isnan(m):
                sm = (None, None)
            else:
                sites = st.site_cache[pt.trial.nct_id][0]
                sm = (rank.site_dict(sites[int(rows.site[k])]), m)
            s = self.summaries[int(rows.summary[k])]
            gate_reasons = rank.gates(p, pt.trial, st.config, sm) if rows.gated[k] else []
            sug = rank.judge(p, pt, d["rel"][j], gate_reasons, s.verdicts, st.ctx, sm, s.partition)
            sug.rank = int(rows.rank[k])
            out.append(sug)
        notes = rank.patient_notes(p, int(rows.dropped[i]), point, st.config)
        return PatientMatches(p.id, out, notes, int(rows.unrelated[i]))
