"""Matching many patients at once: the same answers as ``rank.rank_trials``, less work.

The local engine
- parses each trial once (``eligibility.parse_trial`` caches by NCT id and record version);
- blocks by diagnosis: relevance is computed once per distinct diagnosis and trial, and a
  patient only meets the trials relevant to their diagnosis;
- evaluates the structured gates (status, age, sex) vectorised with pandas/numpy over the
  patients x candidate trials of each block, and distances to every site as one numpy array
  per trial;
- evaluates typed criteria only for pairs that pass the gates;
- computes verdicts, scores and ranks as columns (:mod:`matcher.columnar`).

Each pair's suggestion is then built on demand by the same ``rank.judge`` as the
straightforward path, so the results are identical (tests compare them).

The Dask engine runs the local engine over patient partitions on a ``dask.distributed``
cluster (a ``LocalCluster`` by default, or an existing scheduler). Trials are parsed once here
and shared with the workers; they are never re-parsed per partition. The report's stream
(:func:`iter_match_dask_briefs`) ships compact rows back, not explained suggestions.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd

from matcher import rank
from matcher.rank import PatientMatches, RankConfig


def parse_records(records) -> list:
    """Parse trial records once (deduplicated by NCT id, the last one wins)."""
    from matcher.eligibility import parse_trial

    by_id = {}
    for rec in records:
        parsed = parse_trial(rec)
        by_id[parsed.trial.nct_id] = parsed
    return [by_id[k] for k in sorted(by_id)]


def _trial_frame(parsed_trials, config: RankConfig) -> pd.DataFrame:
    rows = []
    for pt in parsed_trials:
        t = pt.trial
        lo, hi = rank.age_bounds(pt)  # registered, widened where the text states its own
        rows.append(
            {
                "status_ok": config.statuses is None or t.status in config.statuses,
                "min_age": np.nan if lo is None else float(lo),
                "max_age": np.nan if hi is None else float(hi),
                "sex": (t.sex or "ALL").upper(),
            }
        )
    return pd.DataFrame(rows)


def _patient_frame(patients) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [np.nan if p.age is None else float(p.age) for p in patients],
            "sex": [(p.sex or "").upper() for p in patients],
        }
    )


def gate_mask(pf: pd.DataFrame, tf: pd.DataFrame) -> np.ndarray:
    """Boolean matrix (patients x trials): True where status, age and sex all pass.

    Unknown patient age or sex never closes a trial (unknown is not ineligible).
    """
    age = pf["age"].to_numpy()[:, None]
    lo = tf["min_age"].to_numpy()[None, :]
    hi = tf["max_age"].to_numpy()[None, :]
    with np.errstate(invalid="ignore"):
        age_ok = ~((age < lo) | (age > hi))  # comparisons with NaN are False: unknown passes
    psex = pf["sex"].to_numpy()[:, None]
    tsex = tf["sex"].to_numpy()[None, :]
    sex_ok = (tsex == "ALL") | (psex == "") | (psex == tsex)
    status_ok = tf["status_ok"].to_numpy()[None, :]
    return age_ok & sex_ok & status_ok


def _site_points(trial) -> tuple[list, list, np.ndarray]:
    """The open sites of a trial that have coordinates, their points, and the points in radians."""
    sites, pts = [], []
    for loc in trial.locations:
        pt = rank.open_site_point(loc)
        if pt is not None:
            sites.append(loc)
            pts.append(pt)
    return sites, pts, np.radians(np.array(pts, dtype=float)).reshape(-1, 2)


class MatchState:
    """What one run derives once and reuses for every patient: the trial frame, per-diagnosis
    relevance, site coordinates, knowledge-pack caches and the evaluator's memo.

    A Dask worker keeps one per scattered trial list, so partitions after the first reuse it.
    Needs no store: relevance is computed on first use per diagnosis, unless a caller filled
    ``relevant_by_diag`` beforehand (the nightly report loads it from the store's cache,
    :mod:`matcher.relcache`, with the same results).
    """

    def __init__(self, parsed_trials: Sequence, pack, vocab, config: RankConfig):
        from matcher.eligibility import Evaluator

        self.parsed_trials = parsed_trials
        self.config = config
        self.ctx = rank.MatchContext(pack, vocab)
        self.evaluator = Evaluator(vocab)  # memoized per (criterion, the patient facts it reads)
        self.tf = _trial_frame(parsed_trials, config)
        self.relevant_by_diag: dict = {}
        self.site_cache: dict = {}
        self._columnar = None

    def columnar(self):
        """The run's :class:`matcher.columnar.ColumnarMatcher` (made once)."""
        if self._columnar is None:
            from matcher.columnar import ColumnarMatcher

            self._columnar = ColumnarMatcher(self)
        return self._columnar

    def relevant(self, diag) -> list:
        """(trial index, Relevance) for every trial relevant to ``diag``."""
        if diag not in self.relevant_by_diag:
            rels = (
                (j, rank.relevance(diag, pt, self.ctx)) for j, pt in enumerate(self.parsed_trials)
            )
            self.relevant_by_diag[diag] = [(j, r) for j, r in rels if r.tier is not None]
        return self.relevant_by_diag[diag]


def iter_match_local(
    patients: Sequence,
    parsed_trials: Sequence,
    pack,
    vocab,
    config: RankConfig | None = None,
    chunk_size: int = 1000,
    state: MatchState | None = None,
) -> Iterator[PatientMatches]:
    """Yield each patient's matches, in input order (see module docstring).

    Patients are taken ``chunk_size`` at a time, so memory stays bounded by one chunk's
    rows however large the cohort: the chunk's verdicts, scores and ranks are computed as
    columns (:mod:`matcher.columnar`), then each patient's suggestions are built by
    ``rank.judge`` from the stored verdicts.
    """
    yield from _each_patient(
        patients, parsed_trials, pack, vocab, config, chunk_size, state, "explain"
    )


def _each_patient(patients, parsed_trials, pack, vocab, config, chunk_size, state, what: str):
    """The columnar rows chunk by chunk, then ``ColumnarMatcher.<what>(rows, i)`` per patient."""
    config = config or RankConfig()
    st = state or MatchState(parsed_trials, pack, vocab, config)
    cm = st.columnar()
    per_patient = getattr(cm, what)
    for start in range(0, len(patients), chunk_size):
        chunk = patients[start : start + chunk_size]
        cm.start_chunk()
        rows = cm.rows(chunk)
        for i in range(len(chunk)):
            yield per_patient(rows, i)


def iter_match_briefs(
    patients: Sequence,
    parsed_trials: Sequence,
    pack,
    vocab,
    config: RankConfig | None = None,
    chunk_size: int = 1000,
    state: MatchState | None = None,
):
    """Like :func:`iter_match_local`, but each patient comes as
    :class:`matcher.columnar.Briefs`: every row as it is listed without its detail, and
    ``explain(only)`` for the rows shown in full (call it before asking for the next
    patient). The nightly report's stream."""
    yield from _each_patient(
        patients, parsed_trials, pack, vocab, config, chunk_size, state, "briefs"
    )


def iter_match_rows(
    patients: Sequence,
    parsed_trials: Sequence,
    pack,
    vocab,
    config: RankConfig | None = None,
    chunk_size: int = 1000,
    state: MatchState | None = None,
    explainable: bool = True,
):
    """Yield ``(ColumnarMatcher, Rows)`` per chunk of ``chunk_size`` patients: verdicts,
    scores and ranks as arrays, nothing explained (call ``matcher.explain(rows, i)`` for the
    patients whose text is needed before asking for the next chunk). ``explainable=False``
    keeps no per-pair verdicts (arrays only: less memory, no explanations)."""
    config = config or RankConfig()
    st = state or MatchState(parsed_trials, pack, vocab, config)
    cm = st.columnar()
    for start in range(0, len(patients), chunk_size):
        cm.start_chunk()
        yield cm, cm.rows(patients[start : start + chunk_size], explainable)


def match_local(
    patients: Sequence,
    parsed_trials: Sequence,
    pack,
    vocab,
    config: RankConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[PatientMatches]:
    """Every patient's matches as a list, in input order (see :func:`iter_match_local`)."""
    out = []
    for pm in iter_match_local(patients, parsed_trials, pack, vocab, config):
        out.append(pm)
        if progress:
            progress(1)
    return out


_WORKER_STATES: dict = {}


def _match_partition(patients, parsed_trials, config):
    """Worker-side: run the local engine on one partition.

    The pack and vocabulary load once per worker process (both are cached), and the
    :class:`MatchState` is kept per scattered trial list and settings, so relevance, site
    coordinates and the evaluator's memo carry over from one partition to the next.
    """
    from matcher.knowledge import load_pack
    from matcher.vocab import load_vocab

    key = (id(parsed_trials), repr(config))
    if key not in _WORKER_STATES:
        _WORKER_STATES.clear()  # one run at a time per worker
        _WORKER_STATES[key] = MatchState(parsed_trials, load_pack(), load_vocab(), config)
    st = _WORKER_STATES[key]
    return list(
        iter_match_local(patients, parsed_trials, st.ctx.pack, st.ctx.vocab, config, state=st)
    )


def _brief_partition(patients, parsed_trials, config, relevance):
    """Worker-side: one partition's rows as compact columns, not explained suggestions.

    Returns ``(arrays, parts)``: the :class:`matcher.columnar.Rows` arrays of the partition
    (numpy, without the patients and the per-pair verdicts) and, per patient, each row's
    :meth:`ColumnarMatcher.brief_parts` (the score and the few texts that need the pair's
    verdicts). Trial texts and site dicts are not shipped: the client has the same trials.
    ``relevance``: the client's relevance per diagnosis (so no worker computes it again).
    """
    from matcher.knowledge import load_pack
    from matcher.vocab import load_vocab

    key = (id(parsed_trials), repr(config), "briefs")
    if key not in _WORKER_STATES:
        _WORKER_STATES.clear()  # one run at a time per worker
        _WORKER_STATES[key] = MatchState(parsed_trials, load_pack(), load_vocab(), config)
    st = _WORKER_STATES[key]
    for diag, rel in relevance.items():
        st.relevant_by_diag.setdefault(diag, rel)
    cm = st.columnar()
    cm.start_chunk()
    rows = cm.rows(patients)
    parts = [_shared_texts(cm.brief_parts(rows, i)) for i in range(len(patients))]
    arrays = {name: getattr(rows, name) for name in _ROW_ARRAYS}
    return arrays, parts


def _shared_texts(parts: list[tuple], seen: dict | None = None) -> list[tuple]:
    """The same rows with equal texts (and equal verify tuples) as one object each, so the
    pickle sent back holds each once (a grouped-unknown line or an exclusion made per pair
    recurs across patients)."""
    seen = {} if seen is None else seen
    one = seen.setdefault
    out = []
    for score, reasons, excluded_by, verify, met, to_review in parts:
        reasons = [one(t, t) for t in reasons]
        excluded_by = [one(t, t) for t in excluded_by]
        verify = one(verify, tuple(one(t, t) for t in verify))
        out.append((score, reasons, excluded_by, verify, met, to_review))
    return out


_ROW_ARRAYS = ("patient", "trial", "verdict", "score", "rank", "gated", "site", "miles",
               "unrelated", "dropped", "starts")  # fmt: skip


def _dask_client(scheduler, n_workers):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        from matcher.errors import MatcherError

        raise MatcherError(
            "the Dask engine needs dask.distributed: pip install 'trialmatch[dask]' "
            "(or run with --engine local)"
        ) from exc
    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(cluster), cluster


def _in_order(client, fn, patients, size, workers, *args):
    """Submit ``fn(partition, *args)`` per partition of ``size`` patients, at most two per
    worker in flight; yield ``(partition, result)`` in input order."""
    starts = list(range(0, len(patients), size))
    window = 2 * workers
    pending: list = []
    for k, i in enumerate(starts):
        part = list(patients[i : i + size])
        pending.append((part, client.submit(fn, part, *args, pure=False)))
        if len(pending) >= window or k == len(starts) - 1:
            while pending and (len(pending) >= window or k == len(starts) - 1):
                part, fut = pending.pop(0)
                yield part, fut.result()
                fut.release()


def iter_match_dask_briefs(
    patients: Sequence,
    parsed_trials: Sequence,
    config: RankConfig | None = None,
    scheduler: str | None = None,
    partition_size: int | None = None,
    n_workers: int = 2,
    state: MatchState | None = None,
):
    """Like :func:`iter_match_briefs`, over patient partitions on dask.distributed: each
    patient as :class:`matcher.columnar.Briefs`, in input order.

    Workers ship compact rows (the arrays and each row's few verdict-dependent texts,
    :func:`_brief_partition`), not explained suggestions; a brief's per-trial text and
    sites are filled in here from the same parsed trials, and ``Briefs.explain(only)``
    builds the rows shown in full here (``rank.judge``, the verdicts evaluated again for
    those rows only). ``state``: this side's :class:`MatchState` for these trials and
    settings (e.g. with relevance loaded from the store); its relevance per diagnosis is
    computed here for the cohort's diagnoses where missing and sent to the workers once.
    """
    from matcher.columnar import Rows

    config = config or RankConfig()
    if state is None:
        from matcher.knowledge import load_pack
        from matcher.vocab import load_vocab

        state = MatchState(parsed_trials, load_pack(), load_vocab(), config)
    for diag in dict.fromkeys(p.diagnosis for p in patients):
        state.relevant(diag)
    cm = state.columnar()
    with _dask_session(scheduler, n_workers, patients, partition_size, parsed_trials) as (
        client,
        size,
        workers,
        trials_future,
    ):
        rel_future = client.scatter(dict(state.relevant_by_diag), broadcast=True)
        for part, (arrays, parts) in _in_order(
            client, _brief_partition, patients, size, workers, trials_future, config, rel_future
        ):
            rows = Rows(part, **arrays)
            for i, row_parts in enumerate(parts):
                yield cm.assemble(rows, i, row_parts)


def iter_match_dask(
    patients: Sequence,
    parsed_trials: Sequence,
    config: RankConfig | None = None,
    scheduler: str | None = None,
    partition_size: int | None = None,
    n_workers: int = 2,
) -> Iterator[PatientMatches]:
    """Run the local engine over patient partitions on dask.distributed; yield in input order.

    ``scheduler``: address of an existing scheduler (``tcp://host:8786``); None starts a
    ``LocalCluster`` with ``n_workers`` single-threaded worker processes. The parsed trials
    are scattered to every worker once. At most two partitions per worker are in flight, so
    memory stays bounded on the workers and here, however large the cohort.
    """
    config = config or RankConfig()
    with _dask_session(scheduler, n_workers, patients, partition_size, parsed_trials) as (
        client,
        size,
        workers,
        trials_future,
    ):
        for _, got in _in_order(
            client, _match_partition, patients, size, workers, trials_future, config
        ):
            yield from got


@contextmanager
def _dask_session(scheduler, n_workers, patients, partition_size, parsed_trials):
    """A client (and its local cluster, when no scheduler is given), the partition size for
    this cohort, the worker count, and the parsed trials scattered to every worker once;
    closed on leaving."""
    client, cluster = _dask_client(scheduler, n_workers)
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})) or n_workers)
        size = partition_size or max(50, min(1000, -(-len(patients) // (workers * 4))))
        trials_future = client.scatter(list(parsed_trials), broadcast=True)
        yield client, size, workers, trials_future
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def match_dask(
    patients: Sequence,
    parsed_trials: Sequence,
    config: RankConfig | None = None,
    scheduler: str | None = None,
    partition_size: int | None = None,
    n_workers: int = 2,
) -> list[PatientMatches]:
    """Every patient's matches as a list (see :func:`iter_match_dask`)."""
    return list(
        iter_match_dask(patients, parsed_trials, config, scheduler, partition_size, n_workers)
    )


def iter_match_cohort(
    patients: Sequence,
    parsed_trials: Sequence,
    pack,
    vocab,
    config: RankConfig | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    state: MatchState | None = None,
) -> Iterator[PatientMatches]:
    """Yield each patient's matches in input order with the chosen engine (``local`` or
    ``dask``): a caller that writes as it goes holds one patient's results at a time.
    ``state``: a :class:`MatchState` prepared for these trials and settings (local engine;
    e.g. with relevance loaded by :func:`matcher.relcache.load_relevance`)."""
    if engine == "local":
        return iter_match_local(patients, parsed_trials, pack, vocab, config, state=state)
    if engine == "dask":
        return iter_match_dask(patients, parsed_trials, config, scheduler)
    raise ValueError(f"unknown engine {engine!r}: use 'local' or 'dask'")


def match_cohort(
    patients: Sequence,
    parsed_trials: Sequence,
    pack,
    vocab,
    config: RankConfig | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[PatientMatches]:
    """Match a cohort with the chosen engine (``local`` or ``dask``)."""
    if engine == "local":
        return match_local(patients, parsed_trials, pack, vocab, config, progress)
    if engine == "dask":
        return match_dask(patients, parsed_trials, config, scheduler)
    raise ValueError(f"unknown engine {engine!r}: use 'local' or 'dask'")


@contextmanager
def collector_out_of_the_way() -> Iterator[None]:
    """While a run matches and writes: no full garbage collections.

    Everything loaded so far (parsed trials, vocabularies, patients) is moved to the
    collector's permanent generation (``gc.freeze``), so no collection walks it again, and the
    oldest generation is never collected inside the block: the memo and the results grow
    without each growth step triggering a walk over every live object. Young generations are
    still collected (a cycle made per pair does not pile up). Settings are restored on exit.
    Forked worker processes also keep the frozen objects' pages shared (no collector writes).
    """
    old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 1_000_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
