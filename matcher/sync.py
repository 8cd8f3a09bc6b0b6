"""Keep the trial store current from the ClinicalTrials.gov API, page by page, resumably.

``sync()`` asks ``/studies`` for the sarcoma conditions (vocabulary terms only, combined into
few ``query.cond`` OR-expressions), 1000 studies a page. The first run for a query is *full*;
later runs are *incremental* (``filter.advanced=AREA[LastUpdatePostDate]RANGE[<date>,MAX]``,
the date of the last successful run). Each page and the run's resume state are written in
one transaction, so an interrupted run (network failure, Ctrl-C, crash) leaves the store
consistent and the next run continues from the saved page token (or restarts that one
query when the token is no longer valid, i.e. the API data was refreshed since).

Status handling: a full run asks only for the wanted statuses (default: open ones), then
re-checks stored open trials it did not see (by ``filter.ids``) so closures are noticed.
An incremental run asks for every status, so a trial that closed is updated; studies not
yet stored whose status is not wanted are skipped. An incremental run also re-checks every
stored open trial by id when asked (``recheck=True``) or when the last re-check is older than
``RECHECK_DAYS``. A trial a completed re-check asked for and did not get back (withdrawn from
the API) is marked missing in the store with the reason, and no longer offered; a later run
that returns it clears the mark. ``full=True`` always starts a fresh run.

Privacy: queries are built from vocabulary terms and NCT ids in the store; no patient data
ever reaches this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from matcher.ctgov import SYNC_FIELDS, CtgovClient
from matcher.errors import ApiError, MatcherError
from matcher.records import check_record, record_nct_id, record_status
from matcher.store import OPEN_STATUSES, RECHECK_META, Store, now_iso

BASE_CONDITIONS = ("soft tissue sarcoma", "sarcoma")
MAX_EXPRESSION_CHARS = 900  # per query.cond OR-expression (keeps URLs far below proxy limits)
RECHECK_CHUNK = 100  # NCT ids per filter.ids re-check request
RECHECK_DAYS = 7  # an incremental run re-checks stored open trials by id at least this often
ALL = "ALL"


@dataclass
class SyncResult:
    """What a sync did. ``requests`` counts HTTP attempts (retries included)."""

    run_id: int
    mode: str  # "full" | "incremental"
    since: str | None
    resumed: bool
    queries: list[str]
    pages: int = 0
    studies: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    rechecked: int = 0
    missing: int = 0  # open trials the re-check did not get back: newly marked, not offered
    data_timestamp: str | None = None
    requests: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class SyncProgress:
    """Passed to the ``progress`` callback after each page."""

    request_index: int
    requests_total: int
    page: int
    pages_done: int
    studies_done: int
    total: int | None  # totalCount of the current query, when known


# ---------------------------------------------------------------------------------------------
# query building (vocabulary terms only)


def default_conditions(vocab=None) -> list[str]:
    """Sarcoma + soft tissue sarcoma + every soft-tissue sarcoma subtype name in the vocabulary."""
    if vocab is None:
        from matcher.vocab import load_vocab

        vocab = load_vocab()
    names = list(BASE_CONDITIONS)
    for diag in vocab.diagnoses.values():
        if getattr(diag, "category", None) == "soft_tissue" and getattr(diag, "family", None) == (
            "sarcoma"
        ):
            names.append(diag.name)
    return names


def _clean_term(term: str) -> str:
    # Essie syntax characters ([ ] ( ) " : \) in a name would change the query; drop them.
    text = re.sub(r"[^\w\s'\-/.,+]", " ", term, flags=re.UNICODE)
    return " ".join(text.split())


def _split_term(term: str) -> list[str]:
    """``"Perivascular epithelioid cell tumor (PEComa)"`` -> the name and ``PEComa``; a
    plain-word parenthetical (``(extrarenal)``) is dropped: a phrase with it would rarely match."""
    out = []
    inner = re.findall(r"\(([^()]*)\)", term)
    outer = re.sub(r"\([^()]*\)", " ", term)
    out.append(_clean_term(outer))
    for part in inner:
        part = _clean_term(part)
        if part and " " not in part and any(c.isupper() for c in part[1:]):
            out.append(part)
    return [t for t in out if t]


def build_cond_expressions(
    terms: Iterable[str], max_chars: int = MAX_EXPRESSION_CHARS
) -> list[str]:
    """Combine condition terms into as few ``query.cond`` OR-expressions as fit ``max_chars``.

    Terms are cleaned of Essie syntax, de-duplicated case-insensitively, and a multi-word term
    is dropped when one of its words is itself a single-word term (``sarcoma`` already finds
    ``pleomorphic sarcoma``). Each term is quoted as a phrase.
    """
    cleaned: dict[str, str] = {}
    for t in terms:
        for c in _split_term(t):
            if c.lower() not in cleaned:
                cleaned[c.lower()] = c
    singles = {k for k in cleaned if " " not in k and "-" not in k}
    kept = [
        v
        for k, v in cleaned.items()
        if k in singles or not (set(re.split(r"[\s\-/]+", k)) & singles)
    ]
    kept.sort(key=str.lower)
    out: list[str] = []
    current: list[str] = []
    for term in kept:
        piece = f'"{term}"'
        trial = " OR ".join([*current, piece])
        if current and len(trial) > max_chars:
            out.append(" OR ".join(current))
            current = [piece]
        else:
            current.append(piece)
    if current:
        out.append(" OR ".join(current))
    return out


def _statuses(statuses: Iterable[str] | None) -> list[str] | None:
    """None -> the open statuses; a set containing "ALL" -> None (no status filter)."""
    if statuses is None:
        return sorted(OPEN_STATUSES)
    wanted = sorted({s.strip().upper() for s in statuses if s.strip()})
    if not wanted or ALL in wanted:
        return None
    return wanted


def _since_date(run) -> str:
    dates = [run.started_at[:10]]
    if run.data_timestamp:
        dates.append(run.data_timestamp[:10])
    return min(dates)


# ---------------------------------------------------------------------------------------------
# the sync


def sync(
    client: CtgovClient,
    store: Store,
    conditions: Iterable[str] | None = None,
    statuses: Iterable[str] | None = None,
    full: bool = False,
    progress: Callable[[SyncProgress], None] | None = None,
    *,
    recheck: bool = False,
    vocab=None,
    page_size: int = 1000,
    fields: Iterable[str] | None = SYNC_FIELDS,
) -> SyncResult:
    """Bring ``store`` up to date from ``client``; return a :class:`SyncResult`.

    ``conditions``: condition terms (default :func:`default_conditions`). ``statuses``: wanted
    overall statuses (default the open ones; ``{"ALL"}`` for every status). ``full``: ignore
    the last successful run and fetch everything, in a fresh run. ``recheck``: an incremental
    run also re-checks every stored open trial by id (done anyway every ``RECHECK_DAYS``, and
    by every full run). An unfinished earlier run with the same conditions/statuses is
    resumed unless ``full``. Raises ApiError (after retries) or KeyboardInterrupt; the
    run is then recorded as failed/interrupted and the next call resumes it.
    """
    cond_terms = list(conditions) if conditions else default_conditions(vocab)
    expressions = build_cond_expressions(cond_terms)
    if not expressions:
        raise MatcherError("no usable condition terms to search for (after removing symbols)")
    wanted = _statuses(statuses)
    signature = {"conditions": expressions, "statuses": wanted or ALL}
    fields = list(fields) if fields else None

    sent_before = client.requests_sent
    try:
        version = client.version()
    except ApiError as exc:
        if exc.status != 404:
            raise
        version = {}  # a mirror or proxy without /version: sync anyway, timestamp unknown
    data_ts = version.get("dataTimestamp") if isinstance(version, dict) else None

    previous = store.resumable_sync_run(signature)
    if previous is not None and full:
        # --full means from scratch: the unfinished run is closed, not continued.
        if previous.status == "running":
            store.finish_sync_run(previous.id, "interrupted", "superseded by a --full run")
        previous = None
    if previous is not None:
        state = dict(previous.state)
        if previous.data_timestamp != data_ts and state.get("token"):
            # Page tokens are tied to the data version: restart this query from its first page.
            state["token"] = None
            state["restarted"] = state.get("restarted", 0) + 1
        run_id = previous.id
        store.update_sync_state(run_id, state, data_timestamp=data_ts, status="running")
        result = SyncResult(
            run_id=run_id,
            mode=previous.mode,
            since=previous.since,
            resumed=True,
            queries=expressions,
            pages=previous.pages,
            studies=previous.studies,
            added=previous.added,
            updated=previous.updated,
            unchanged=previous.unchanged,
            skipped=previous.skipped,
            data_timestamp=data_ts,
        )
    else:
        last_ok = None if full else store.last_sync_run(signature, status="ok")
        mode = "incremental" if last_ok is not None else "full"
        since = _since_date(last_ok) if last_ok is not None else None
        requests_list = []
        for expr in expressions:
            params = client.search_params(
                cond=expr,
                statuses=wanted if mode == "full" else None,
                advanced=f"AREA[LastUpdatePostDate]RANGE[{since},MAX]" if since else None,
                fields=fields,
                page_size=page_size,
                count_total=True,
            )
            requests_list.append(params)
        state = {
            "requests": requests_list,
            "index": 0,
            "token": None,
            "recheck": mode == "full" or recheck or _recheck_due(store),
            "recheck_added": False,
        }
        run_id = store.start_sync_run(signature, mode, since, data_ts, state)
        result = SyncResult(
            run_id=run_id,
            mode=mode,
            since=since,
            resumed=False,
            queries=expressions,
            data_timestamp=data_ts,
        )

    try:
        _run(client, store, result, state, wanted, fields, page_size, progress)
    except KeyboardInterrupt:
        store.finish_sync_run(run_id, "interrupted", "interrupted by the user")
        raise
    except MatcherError as exc:
        store.finish_sync_run(run_id, "failed", str(exc))
        raise
    except BaseException as exc:
        store.finish_sync_run(run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        result.requests = client.requests_sent - sent_before
    store.finish_sync_run(run_id, "ok")
    return result


def _recheck_due(store: Store, days: int = RECHECK_DAYS) -> bool:
    """True when stored open trials were never re-checked by id, or not in ``days`` days."""
    from datetime import datetime, timedelta, timezone

    last = store.meta(RECHECK_META)
    if not last:
        return True
    try:
        when = datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return True
    return datetime.now(timezone.utc) - when >= timedelta(days=days)


def _run(client, store, result, state, wanted, fields, page_size, progress) -> None:
    wanted_set = set(wanted) if wanted else None
    # Runs saved before the re-check schedule existed carry no "recheck": full ones re-checked.
    wants_recheck = state.get("recheck", result.mode == "full" and wanted_set is not None)
    while True:
        requests_list = state["requests"]
        if state["index"] >= len(requests_list):
            if wants_recheck and not state.get("recheck_added"):
                extra = _recheck_requests(
                    client,
                    store,
                    result.run_id,
                    wanted_set or set(OPEN_STATUSES),
                    fields,
                    page_size,
                )
                state = {**state, "requests": requests_list + extra, "recheck_added": True}
                store.update_sync_state(result.run_id, state)
                result.rechecked = sum(len(p["filter.ids"].split(",")) for p in extra)
                continue
            if state.get("recheck_added") and not state.get("missing_marked"):
                _mark_missing(store, result, requests_list)
                state = {**state, "missing_marked": True}
                store.update_sync_state(result.run_id, state)
            return
        params = requests_list[state["index"]]
        is_recheck = "filter.ids" in params
        try:
            for page in client.pages(params, page_token=state.get("token")):
                keep, skipped = [], 0
                for study in page.studies:
                    try:
                        check_record(study, page.url)
                    except MatcherError as exc:
                        result.errors.append(str(exc))
                        skipped += 1
                        continue
                    nct = record_nct_id(study)
                    if (
                        wanted_set is None
                        or is_recheck
                        or record_status(study) in wanted_set
                        or store.has(nct)
                    ):
                        keep.append(study)
                    else:
                        skipped += 1
                last = not page.next_token or not page.studies or page.next_token == page.token
                new_state = (
                    {**state, "index": state["index"] + 1, "token": None}
                    if last
                    else {**state, "token": page.next_token}
                )
                counts = store.write_sync_page(
                    result.run_id, keep, f"api: {_short(page.url)}", new_state, skipped=skipped
                )
                state = new_state
                result.pages += 1
                result.studies += len(page.studies)
                result.added += counts.added
                result.updated += counts.updated
                result.unchanged += counts.unchanged + counts.stale
                result.skipped += skipped
                if progress is not None:
                    progress(
                        SyncProgress(
                            request_index=state["index"],
                            requests_total=len(state["requests"]),
                            page=page.number,
                            pages_done=result.pages,
                            studies_done=result.studies,
                            total=page.total,
                        )
                    )
                if last:
                    break
            else:
                # The generator stopped on a repeated token: this query is done.
                if state["index"] < len(state["requests"]) and state.get("token"):
                    state = {**state, "index": state["index"] + 1, "token": None}
                    store.update_sync_state(result.run_id, state)
        except ApiError as exc:
            if exc.status == 400 and state.get("token"):
                # The saved token was refused (expired): restart this query cleanly.
                state = {**state, "token": None, "restarted": state.get("restarted", 0) + 1}
                store.update_sync_state(result.run_id, state)
                continue
            raise


def _mark_missing(store: Store, result: SyncResult, requests_list: list[dict]) -> None:
    """After every re-check request of this run has been answered: the ids asked for and not
    returned are no longer in the registry (as far as the API says). Mark them, with why."""
    asked = [i for p in requests_list if "filter.ids" in p for i in p["filter.ids"].split(",")]
    gone = store.unseen_ids_among(result.run_id, asked)
    when = now_iso()
    reason = (
        f"not returned by ClinicalTrials.gov when re-checked by NCT id (sync run "
        f"{result.run_id}, {when[:10]}); withdrawn from the API or removed"
    )
    result.missing = store.mark_missing(gone, reason) if gone else 0
    store.set_meta(RECHECK_META, when)


def _recheck_requests(client, store, run_id, wanted_set, fields, page_size) -> list[dict]:
    """filter.ids requests for stored trials with a wanted status that this full run did not see."""
    stale = store.unseen_ids(run_id, wanted_set)
    out = []
    for i in range(0, len(stale), RECHECK_CHUNK):
        params = client.search_params(fields=fields, page_size=page_size)
        params["filter.ids"] = ",".join(stale[i : i + RECHECK_CHUNK])
        out.append(params)
    return out


def _short(url: str) -> str:
    return url if len(url) <= 300 else url[:297] + "..."
