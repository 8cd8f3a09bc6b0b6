"""``trialmatch serve``: the latest report of a store as a local review page.

Flask, because the store is synchronous SQLite and the pages are server-rendered forms:
a WSGI app with Werkzeug's server needs no extra server process, no async layer and no
build step, and Jinja2 escapes every value by default. No script runs on these pages and
nothing is fetched from elsewhere (the Content-Security-Policy allows only this server).

Safety: the server listens on 127.0.0.1 unless told otherwise. Every request must name an
allowed Host (a page on another site that rebinds its DNS name to 127.0.0.1 gets 400). Every
write is a POST that must carry the session's token (a random value kept in a signed,
HttpOnly, SameSite=Strict cookie and in each form) and, when the browser says where it comes
from (Origin, Sec-Fetch-Site), come from this server; otherwise it is refused with 403.
Each status change is one transaction in the store, with its history row.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
from pathlib import Path
from urllib.parse import quote, urlencode

from flask import Flask, abort, redirect, render_template, request, session
from jinja2 import DictLoader
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server as _werkzeug_server

from matcher import DISCLAIMER, review
from matcher.digest import STATUS_WORDS, VERDICT_WORDS, group_verify
from matcher.errors import ReviewError
from matcher.store import Store

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8642

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:72em;padding:0 1em;color:#1a1a1a}
.disclaimer{background:#fff4ce;border:1px solid #d9b100;padding:.4em .7em}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.35em;
text-align:left;vertical-align:top}.muted,.small{color:#555;font-size:.9em}
.badge{border-radius:.3em;padding:0 .35em;background:#e8eef7;font-size:.85em}
.changed{background:#fde2e1}.flash{background:#e3f4e1;padding:.4em .7em}
.error{background:#fde2e1;padding:.4em .7em}form.decide{display:flex;flex-wrap:wrap;gap:.3em}
form.decide input[type=text]{min-width:14em}button{cursor:pointer}
form.decide label{flex:1 1 100%;min-width:0}form.decide select{width:100%}h2{font-size:1.1em;margin:1.2em 0 .2em}section.trial{border-top:1px solid #ccc}
"""

BASE = """<!doctype html><html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width,initial-scale=1">
<title>{% block title %}{% endblock %} · trialmatch review</title>
<link rel=stylesheet href="{{ url_for('style') }}"></head><body>
<p class=disclaimer>{{ disclaimer }}</p>
{% if flash %}<p class=flash role=status>{{ flash }}</p>{% endif %}
{% block body %}{% endblock %}
<p class=small>Reviewing as {{ user }} · list “{{ list_name }}” · decisions are kept in the
store, with their history.</p></body></html>"""

INDEX = """{% extends "base.html" %}{% block title %}Patients{% endblock %}{% block body %}
<h1>Review: {{ patients|length }} patients</h1>
{% if lists|length > 1 %}<p>Lists: {% for n in lists %}<a href="{{ url_for('index', list=n) }}">{{ n }}</a>
{% endfor %}</p>{% endif %}
<form method=get class=filters><input type=hidden name=list value="{{ list_name }}">
<label>Show patients with <select name=status><option value="">any status</option>
<option value=awaiting {% if status == 'awaiting' %}selected{% endif %}>trials awaiting review</option>
{% for s in statuses %}<option value="{{ s }}" {% if status == s %}selected{% endif %}>a trial marked {{ s }}</option>
{% endfor %}</select></label> <button>Filter</button></form>
<table id=patients><thead><tr><th>Patient</th><th>Diagnosis</th><th>Open to consider</th>
<th>Awaiting review</th><th>Decided</th></tr></thead><tbody>
{% for p in patients %}<tr data-patient="{{ p.patient_id }}"><td><a href="{{ p.href }}">{{ p.patient_id }}</a></td>
<td>{{ p.diagnosis }}</td><td>{{ p.n_open }}</td><td>{{ p.awaiting }}</td>
<td>{% for s, n in p.decided.items() %}{{ s }}: {{ n }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
{% else %}<tr><td colspan=5>No patient{% if status %} with that status{% endif %}.
{% if not lists %}Run <code>trialmatch report</code> on this store first.{% endif %}</td></tr>
{% endfor %}</tbody></table>{% endblock %}"""

PATIENT = """{% extends "base.html" %}{% block title %}Patient {{ p.patient_id }}{% endblock %}
{% block body %}<p><a href="{{ url_for('index', list=list_name) }}">← all patients</a></p>
<h1>Patient <span id=pid>{{ p.patient_id }}</span>: {{ p.diagnosis }}</h1>
{% if error %}<p class=error role=alert>{{ error }}</p>{% endif %}
<form method=get><input type=hidden name=id value="{{ p.patient_id }}">
<input type=hidden name=list value="{{ list_name }}">
<label>Show trials <select name=status><option value="">all</option>
{% for s in statuses %}<option value="{{ s }}" {% if status == s %}selected{% endif %}>{{ s }}</option>
{% endfor %}</select></label> <button>Filter</button></form>
{% for t in trials %}<section class=trial id="{{ t.nct_id }}" data-review="{{ t.review_status }}">
<h2><a href="{{ t.url }}" rel=noreferrer>{{ t.nct_id }}</a> <span class=title>{{ t.title }}</span></h2>
<p>{{ t.verdict_words }} · {{ t.status_words }} · {{ t.group_words }}{% if t.where %} · {{ t.where }}{% endif %}</p>
<p>Review status: <b class=review-status>{{ t.review_status }}</b>
{% if t.review_reason %} · reason: <span class=review-reason>{{ t.review_reason }}</span>{% endif %}
{% if t.review_note %} · note: {{ t.review_note }}{% endif %}
{% if t.review_who %}<span class=small>({{ t.review_who }}, {{ t.review_at }})</span>{% endif %}
{% if looked and t.review_new %}<span class="badge new">new since you last looked</span>{% endif %}
{% if t.review_changed %}<span class="badge changed">changed since your decision: {{ t.review_changed }}</span>{% endif %}</p>
<form method=post action="{{ url_for('decide') }}" class=decide>
<input type=hidden name=token value="{{ token }}"><input type=hidden name=list value="{{ list_name }}">
<input type=hidden name=patient value="{{ p.patient_id }}"><input type=hidden name=nct value="{{ t.nct_id }}">
<label>Reason <select name=reason><option value="">(none, or type one)</option>
{% for r in t.reasons %}<option>{{ r }}</option>{% endfor %}</select></label>
<input type=text name=reason_text placeholder="your reason" aria-label="your reason">
<input type=text name=note placeholder="note" aria-label="note" value="{{ t.review_note }}">
{% for s in statuses %}<button name=status value="{{ s }}" {% if s == t.review_status %}aria-pressed=true{% endif %}>{{ s }}</button>
{% endfor %}</form>
{% if t.history %}<details class=history><summary>History ({{ t.history|length }})</summary><ol>
{% for h in t.history %}<li>{{ h.at }} {{ h.who }}: {{ h.previous_status or 'new' }} → {{ h.status }}
{% if h.reason %}({{ h.reason }}){% endif %}{% if h.note %} · {{ h.note }}{% endif %} <span class=small>via {{ h.source }}</span></li>
{% endfor %}</ol></details>{% endif %}</section>
{% else %}<p>No trial{% if status %} with that status{% endif %}.</p>{% endfor %}{% endblock %}"""

GROUP_WORDS = {
    "top": "to consider (shown first)",
    "more": "to consider",
    "other_country": "open, no site in the country",
    "closed": "closed or not recruiting",
    "folded": "judged not eligible by you",
}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _allowed_hosts(host: str, port: int) -> set[str]:
    """The ``Host`` values a request may carry: the address served, and for a wildcard
    address (0.0.0.0, ::) this machine's names and addresses too."""
    names = {host}
    if host in ("0.0.0.0", "::", ""):
        import socket

        names |= {socket.gethostname(), socket.getfqdn(), "127.0.0.1", "localhost", "::1"}
        with contextlib.suppress(OSError):
            names |= set(socket.gethostbyname_ex(socket.gethostname())[2])
    if is_loopback(host):
        names |= {"127.0.0.1", "localhost", "::1"}
    return {f"[{n}]:{port}" if ":" in n else f"{n}:{port}" for n in names if n}


def create_app(
    db_path: str | Path,
    *,
    list_name: str | None = None,
    user: str | None = None,
    host: str = LOOPBACK,
    port: int = DEFAULT_PORT,
) -> Flask:
    """The review app over the store at ``db_path``; requests must name ``host:port``."""
    review.register()
    with Store(db_path):
        pass  # create / migrate once, so requests only read and write
    app = Flask("trialmatch.serve")
    app.jinja_loader = DictLoader({"base.html": BASE, "index.html": INDEX, "patient.html": PATIENT})
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),  # a new session with every server start
        SESSION_COOKIE_NAME="trialmatch_review",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        ALLOWED=_allowed_hosts(host, port),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    who = review.current_user(user)

    def store() -> Store:
        return Store(db_path, migrate=False)

    def token() -> str:
        if "token" not in session:
            session["token"] = secrets.token_urlsafe(32)
        return session["token"]

    def chosen_list(st: Store) -> tuple[str, list[str]]:
        names = review.list_names(st)
        wanted = request.values.get("list") or list_name
        if wanted:
            return wanted, names
        return (names[0] if names else ""), names

    def context(**kw):
        return {"disclaimer": DISCLAIMER, "user": who, "flash": request.args.get("done"), **kw}

    @app.before_request
    def check_host():
        if request.host not in app.config["ALLOWED"]:
            abort(400, "unexpected Host header")

    @app.after_request
    def headers(resp):
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/style.css")
    def style():
        return STYLE, 200, {"Content-Type": "text/css; charset=utf-8"}

    @app.get("/")
    def index():
        status = request.args.get("status") or ""
        with store() as st:
            name, names = chosen_list(st)
            pages = review.load_pages(st, name, summary=True) if name else []
            decided = {}
            for d in review.list_decisions(st, name) if name else []:
                decided.setdefault(d.patient_id, {})[(d.nct_id)] = d
            _seen, shown = review.seen_pairs(st, name) if name else (set(), set())
        rows = []
        for p in pages:
            trials = _annotated(p, decided.get(p["patient_id"], {}), shown, reasons=False)
            counts: dict[str, int] = {}
            for t in trials:
                if t["review_status"] != review.NEW:
                    counts[t["review_status"]] = counts.get(t["review_status"], 0) + 1
            consider = [t for t in trials if t["group"] in ("top", "more")]
            row = {
                "patient_id": p["patient_id"],
                "diagnosis": p.get("diagnosis"),
                "href": "/patient?" + urlencode({"id": p["patient_id"], "list": name}),
                "n_open": len(consider),
                "awaiting": review.awaiting(consider),
                "decided": counts,
            }
            if status == "awaiting" and not row["awaiting"]:
                continue
            wanted = status and status != "awaiting"
            if wanted and status not in counts and not (status == review.NEW and row["awaiting"]):
                continue
            rows.append(row)
        token()
        return render_template(
            "index.html",
            **context(
                patients=rows,
                lists=names,
                list_name=name,
                status=status,
                statuses=review.STATUSES,
            ),
        )

    def patient_page(pid: str, error: str | None = None, code: int = 200):
        status = request.values.get("status_filter") or request.args.get("status") or ""
        with store() as st:
            name, _names = chosen_list(st)
            page = review.load_page(st, name, pid) if name else None
            if page is None:
                abort(404, "no such patient in the latest report")
            decided = {d.nct_id: d for d in review.list_decisions(st, name, pid)}
            hist: dict[str, list[dict]] = {}
            for h in review.history(st, name, pid):
                hist.setdefault(h["nct_id"], []).append(h)
            seen, shown = review.seen_pairs(st, name)
            looked = pid in seen
            # only a page the coordinator opened here counts as looked at, not one fetched
            # from another site's page
            if request.headers.get("Sec-Fetch-Site", "none") in ("same-origin", "none"):
                review.mark_seen(st, name, pid, who)
        trials = _annotated(page, decided, shown)
        for t in trials:
            t["history"] = hist.get(t["nct_id"], [])
        if status and request.method == "GET":
            trials = [t for t in trials if t["review_status"] == status]
        body = render_template(
            "patient.html",
            **context(
                p=page,
                trials=trials,
                list_name=name,
                status=status if request.method == "GET" else "",
                statuses=review.STATUSES,
                token=token(),
                error=error,
                looked=looked,
            ),
        )
        return body, code

    @app.get("/patient")
    def patient():
        pid = request.args.get("id")
        if not pid:
            abort(404)
        return patient_page(pid)

    @app.post("/decide")
    def decide():
        _check_origin(app.config["ALLOWED"])
        sent = request.form.get("token", "")
        if not sent or not secrets.compare_digest(sent, session.get("token", "")):
            abort(403, "missing or wrong form token: reload the page and try again")
        pid = request.form.get("patient", "")
        nct = request.form.get("nct", "")
        reason = (request.form.get("reason_text") or "").strip() or request.form.get("reason")
        try:
            with store() as st:
                name, _ = chosen_list(st)
                d = review.set_status(
                    st,
                    pid,
                    nct,
                    request.form.get("status", ""),
                    list_name=name,
                    reason=reason,
                    note=request.form.get("note"),
                    who=who,
                    source="serve",
                )
        except ReviewError as exc:
            return patient_page(pid, error=str(exc), code=422)
        done = f"{d.nct_id}: {d.status}"
        url = "/patient?" + urlencode({"id": pid, "list": name, "done": done})
        return redirect(f"{url}#{d.nct_id}", code=303)

    return app


def _check_origin(allowed: set[str]) -> None:
    """Refuse a write a browser says came from another site (Origin, Sec-Fetch-Site)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        abort(403, "cross-site request refused")
    origin = request.headers.get("Origin")
    if origin is not None and origin.removeprefix("http://") not in allowed:
        abort(403, "cross-site request refused")


def _annotated(
    page: dict, decided: dict, shown: set | frozenset = frozenset(), reasons: bool = True
) -> list[dict]:
    """The page's trials with their live review fields (and the reason choices: the trial's
    verify items, read only for a patient's page)."""
    out = []
    for t in page.get("trials", []):
        d = decided.get(t["nct_id"])
        new = (page["patient_id"], t["nct_id"]) not in shown
        f = review.fields(d, page.get("patient_hash"), t.get("criteria_hash"), t.get("status"), new)
        out.append(
            {
                **t,
                **f,
                "verdict_words": VERDICT_WORDS.get(t.get("verdict"), t.get("verdict")),
                "status_words": STATUS_WORDS.get(t.get("status"), t.get("status") or ""),
                "group_words": GROUP_WORDS.get(t.get("group"), t.get("group")),
                "reasons": [g.line() for g in group_verify(t.get("verify") or [])]
                if reasons
                else [],
                # built here, never taken from a record: a link can only go to the registry
                "url": "https://clinicaltrials.gov/study/" + quote(str(t["nct_id"])),
            }
        )
    return out


class _QuietHandler(WSGIRequestHandler):
    """No access log: its lines would carry patient ids (URLs) into terminals and log files."""

    def log_request(self, code="-", size="-") -> None:
        pass


class ReviewServer:
    """A running review server: ``url``, ``serve_forever()``, ``shutdown()``, ``server_close()``."""

    def __init__(self, app: Flask, host: str, port: int):
        self._server = _werkzeug_server(
            host, port, app, threaded=True, request_handler=_QuietHandler
        )
        self.port = self._server.server_port
        self.host = host
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def shutdown(self) -> None:
        self._server.shutdown()

    def server_close(self) -> None:
        self._server.server_close()


def make_server(
    db_path: str | Path | None,
    *,
    host: str = LOOPBACK,
    port: int = DEFAULT_PORT,
    list_name: str | None = None,
    user: str | None = None,
) -> ReviewServer:
    """Bind the review server (port 0: a free port) over the store at ``db_path``; raises
    OSError when the address cannot be bound (a port in use)."""
    from matcher.store import default_db_path

    db_path = db_path or default_db_path()
    # bind a probe first: port 0 becomes a real free port (the Host check needs it), and a
    # port in use raises OSError here (Werkzeug would print and exit instead)
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        port = s.getsockname()[1]
    app = create_app(db_path, list_name=list_name, user=user, host=host, port=port)
    return ReviewServer(app, host, port)


__all__ = ["DEFAULT_PORT", "LOOPBACK", "ReviewServer", "create_app", "is_loopback", "make_server"]
