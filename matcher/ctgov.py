"""Client for the ClinicalTrials.gov API v2 (``https://clinicaltrials.gov/api/v2``).

Polite by construction: at most one request per ``min_interval`` seconds, a User-Agent that
names the project, timeouts on every request, retries with exponential backoff and jitter on
429, 5xx, timeouts, connection resets, HTML error pages and truncated JSON. 400 and 404 are
not retried: their plain-text body is put in the ApiError message.

Privacy: this module only ever receives query terms built from the vocabulary; it has no
notion of a patient.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import requests

from matcher import __version__
from matcher.errors import ApiError, TrialNotFound

DEFAULT_BASE_URL = "https://clinicaltrials.gov/api/v2"
API_URL_ENV = "TRIALMATCH_API_URL"
USER_AGENT = (
    f"trialmatch/{__version__} (sarcoma clinical trial eligibility matcher; python-requests)"
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The v2 ``Status`` enum (overallStatus, filter.overallStatus), spec 2.0.5.
STATUSES = (
    "ACTIVE_NOT_RECRUITING",
    "COMPLETED",
    "ENROLLING_BY_INVITATION",
    "NOT_YET_RECRUITING",
    "RECRUITING",
    "SUSPENDED",
    "TERMINATED",
    "WITHDRAWN",
    "AVAILABLE",
    "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE",
    "APPROVED_FOR_MARKETING",
    "WITHHELD",
    "UNKNOWN",
)
MAX_PAGE_SIZE = 1000
# Everything the matcher reads (protocol + MeSH browse), without the bulky results section.
SYNC_FIELDS = ("ProtocolSection", "DerivedSection", "HasResults")


@dataclass
class Page:
    """One ``/studies`` page: ``studies`` (v2 dicts), ``next_token`` (None on the last page),
    ``total`` (only when countTotal was asked, first page), ``url`` requested, ``number`` (1-based)."""

    studies: list[dict]
    next_token: str | None
    total: int | None
    url: str
    number: int
    token: str | None = None  # the pageToken this page was requested with (None for the first)


class _Retryable(Exception):
    """Internal: a failure worth another attempt. ``unreachable``: the host refused the
    connection or its name did not resolve (offline, wrong --api-url): retried once, quickly."""

    def __init__(self, message: str, status: int | None = None, unreachable: bool = False):
        self.status = status
        self.unreachable = unreachable
        super().__init__(message)


# How urllib3/requests word "nobody is there": refused, or the name does not resolve.
_REFUSED = ("connection refused", "errno 111", "winerror 10061", "newconnectionerror")
_NO_NAME = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "failed to resolve",
    "nameresolutionerror",
    "getaddrinfo failed",
    "no address associated",
)
UNREACHABLE_RETRIES = 1  # one more try: a flapping Wi-Fi gets a second chance, offline does not
UNREACHABLE_WAIT = 2.0  # seconds before that one retry


def _unreachable_reason(exc: Exception) -> str | None:
    """ "connection refused" / "name did not resolve" for an unreachable host, else None."""
    text = f"{exc!r} {exc}".lower()
    if any(k in text for k in _NO_NAME):
        return "name did not resolve"
    if any(k in text for k in _REFUSED):
        return "connection refused"
    return None


class CtgovClient:
    """ClinicalTrials.gov API v2 client. Makes no network call until a method is used.

    ``session``: a ``requests.Session`` (one is built if None). ``base_url``: argument, else env
    ``TRIALMATCH_API_URL``, else the public API. ``min_interval``: seconds between requests.
    ``sleep`` / ``clock``: injectable so tests run instantly. ``max_retries``: further
    attempts after a retryable failure (a refused connection or an unresolved name gets at
    most ``UNREACHABLE_RETRIES``). ``on_retry``: called with one line per retry, saying what
    failed and how long the wait is (the CLI prints it on stderr).
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        base_url: str | None = None,
        timeout: float = 30,
        min_interval: float = 1.0,
        max_retries: int = 6,
        backoff_base: float = 1.0,
        backoff_cap: float = 30,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_retry: Callable[[str], None] | None = None,
    ):
        self.session = session if session is not None else requests.Session()
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        if self.session.headers.get("User-Agent", "").startswith("python-requests"):
            self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers.setdefault("Accept", "application/json")
        self.base_url = (base_url or os.environ.get(API_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.min_interval = max(0.0, float(min_interval))
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep or (lambda seconds: time.sleep(seconds))  # looked up per call
        self._clock = clock
        self._rng = rng or random.Random()
        self._last_request: float | None = None
        self.on_retry = on_retry
        self.requests_sent = 0  # every HTTP attempt, retries included
        self.urls_sent: list[str] = []

    # -- public API ---------------------------------------------------------------------------

    def search(
        self,
        cond: str | None = None,
        term: str | None = None,
        intr: str | None = None,
        statuses: Iterable[str] | None = None,
        advanced: str | None = None,
        geo: str | None = None,
        fields: Iterable[str] | None = None,
        page_size: int = MAX_PAGE_SIZE,
        count_total: bool = False,
        page_token: str | None = None,
    ) -> Iterator[Page]:
        """Yield ``/studies`` pages until the last one.

        Stops when a page has no ``nextPageToken``, repeats the token it was requested with
        (or an earlier one), or is empty. ``page_token`` starts from a saved token (resume).
        """
        params = self.search_params(
            cond=cond,
            term=term,
            intr=intr,
            statuses=statuses,
            advanced=advanced,
            geo=geo,
            fields=fields,
            page_size=page_size,
            count_total=count_total,
        )
        yield from self.pages(params, page_token=page_token)

    @staticmethod
    def search_params(
        cond: str | None = None,
        term: str | None = None,
        intr: str | None = None,
        statuses: Iterable[str] | None = None,
        advanced: str | None = None,
        geo: str | None = None,
        fields: Iterable[str] | None = None,
        page_size: int = MAX_PAGE_SIZE,
        count_total: bool = False,
    ) -> dict[str, str]:
        """The ``/studies`` query parameters for these arguments (stable order)."""
        params: dict[str, str] = {"format": "json"}
        if cond:
            params["query.cond"] = cond
        if term:
            params["query.term"] = term
        if intr:
            params["query.intr"] = intr
        if statuses:
            params["filter.overallStatus"] = ",".join(sorted({s.upper() for s in statuses}))
        if advanced:
            params["filter.advanced"] = advanced
        if geo:
            params["filter.geo"] = geo
        if fields:
            params["fields"] = ",".join(fields)
        params["pageSize"] = str(max(1, min(int(page_size), MAX_PAGE_SIZE)))
        if count_total:
            params["countTotal"] = "true"
        return params

    def pages(self, params: dict[str, str], page_token: str | None = None) -> Iterator[Page]:
        """Yield pages for prepared ``params`` (see :meth:`search_params`), following tokens."""
        seen: set[str] = set()
        token = page_token
        number = 0
        while True:
            query = dict(params)
            if token:
                query["pageToken"] = token
                query.pop("countTotal", None)
                seen.add(token)
            doc = self._get_json("/studies", query)
            if not isinstance(doc, dict) or not isinstance(doc.get("studies", []), list):
                raise ApiError(
                    "unexpected /studies reply: expected an object with a 'studies' list",
                    url=self._url("/studies", query),
                )
            studies = doc.get("studies") or []
            nxt = doc.get("nextPageToken") or None
            number += 1
            total = doc.get("totalCount")
            yield Page(
                studies=studies,
                next_token=nxt,
                total=total if isinstance(total, int) else None,
                url=self._url("/studies", query),
                number=number,
                token=token,
            )
            if not nxt or not studies or nxt in seen:
                return
            token = nxt

    def fetch_study(self, nct_id: str, fields: Iterable[str] | None = None) -> dict:
        """GET ``/studies/{nctId}``: one study dict. An alias id's 301 is followed.

        Raises TrialNotFound on 404 (with the server's text), ApiError on other failures.
        """
        nct = nct_id.strip().upper()
        query = {"format": "json"}
        if fields:
            query["fields"] = ",".join(fields)
        try:
            doc = self._get_json(f"/studies/{nct}", query)
        except ApiError as exc:
            if exc.status == 404:
                body = getattr(exc, "body", "") or "404 Not Found"
                raise TrialNotFound(nct, f"ClinicalTrials.gov says: {body}") from None
            raise
        if not isinstance(doc, dict) or "protocolSection" not in doc:
            raise ApiError(
                f"unexpected reply for {nct}: no 'protocolSection'",
                url=self._url(f"/studies/{nct}", query),
            )
        return doc

    def version(self) -> dict:
        """GET ``/version``: ``{"apiVersion": ..., "dataTimestamp": "yyyy-MM-ddTHH:mm:ss"}``."""
        doc = self._get_json("/version", {})
        if not isinstance(doc, dict):
            raise ApiError(
                "unexpected /version reply (not an object)", url=self._url("/version", {})
            )
        return doc

    # -- plumbing -----------------------------------------------------------------------------

    def _url(self, path: str, params: dict[str, str]) -> str:
        url = self.base_url + path
        return url + ("?" + urlencode(params) if params else "")

    def _pace(self) -> None:
        if self._last_request is not None and self.min_interval > 0:
            wait = self.min_interval - (self._clock() - self._last_request)
            if wait > 0:
                self._sleep(wait)
        self._last_request = self._clock()

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_cap, self.backoff_base * (2**attempt))
        return max(0.0, delay * (1 + self._rng.uniform(-0.25, 0.25)))

    def _get_json(self, path: str, params: dict[str, str]):
        url = self._url(path, params)
        last: _Retryable | None = None
        attempts = 0
        while True:
            attempts += 1
            try:
                return self._attempt(url)
            except _Retryable as exc:
                last = exc
            allowed = (
                min(self.max_retries, UNREACHABLE_RETRIES) if last.unreachable else self.max_retries
            )
            if attempts > allowed:
                break
            wait = UNREACHABLE_WAIT if last.unreachable else self._backoff(attempts - 1)
            if self.on_retry is not None:
                self.on_retry(
                    f"{last}; retrying in {wait:.0f} s (attempt {attempts + 1} of {allowed + 1})"
                )
            self._sleep(wait)
        if last.unreachable:
            raise ApiError(
                f"cannot reach {self.base_url}: {last} (tried {attempts} time"
                f"{'s' if attempts != 1 else ''}); check the network connection or --api-url",
                url=url,
            )
        if last.status == 429:
            hint = (
                "ClinicalTrials.gov is throttling requests (HTTP 429); wait about a minute and "
                "run the command again (or raise --min-interval)"
            )
        else:
            hint = "the API may be down or a proxy is failing; try again later or check --api-url"
        raise ApiError(
            f"gave up after {attempts} attempts: {last}; {hint}",
            url=url,
            status=last.status,
        )

    def _attempt(self, url: str):
        self._pace()
        self.requests_sent += 1
        self.urls_sent.append(url)
        try:
            resp = self.session.get(url, timeout=self.timeout, allow_redirects=True)
        except requests.Timeout:
            raise _Retryable(f"timed out after {self.timeout:g} s") from None
        except (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            # Refused or unresolved: nobody is there, fail fast. Reset or cut off mid-stream:
            # worth the full retry policy.
            reason = _unreachable_reason(exc)
            if reason is not None:
                raise _Retryable(reason, unreachable=True) from None
            raise _Retryable(f"connection failed ({type(exc).__name__})") from None
        status = resp.status_code
        if status in RETRY_STATUSES:
            raise _Retryable(f"HTTP {status} {resp.reason or ''}".strip(), status)
        if status in (400, 404) or (400 <= status < 500 and status != 429):
            body = _plain_body(resp)
            err = ApiError(
                f"ClinicalTrials.gov rejected the request (HTTP {status}): {body}",
                url=url,
                status=status,
            )
            err.body = body
            raise err
        if status >= 500:
            raise _Retryable(f"HTTP {status}", status)
        text = resp.text
        ctype = resp.headers.get("Content-Type", "")
        head = text.lstrip()[:100].lower()
        if "html" in ctype.lower() or head.startswith("<!doctype") or head.startswith("<html"):
            raise _Retryable(f"HTML page instead of JSON (HTTP {status})", status)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise _Retryable(
                f"truncated or invalid JSON ({exc.msg} at char {exc.pos} of {len(text)})", status
            ) from None
        except (RecursionError, ValueError) as exc:  # nested too deeply; a 5,000-digit number
            raise _Retryable(f"unreadable JSON ({type(exc).__name__})", status) from None


def _plain_body(resp: requests.Response) -> str:
    text = (resp.text or "").strip()
    if len(text) > 500:
        text = text[:500] + "..."
    return text or resp.reason or "(empty body)"
