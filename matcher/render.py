"""Writers for the nightly report: a self-contained HTML page and spreadsheet-safe CSV.

Every value that reaches HTML goes through ``html.escape``; every CSV cell that a spreadsheet
would read as a formula is neutralised. Nothing here reads the store or the network.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Sequence

from matcher import DISCLAIMER

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """A CSV cell a spreadsheet will show as text: a leading ``=``, ``+``, ``-``, ``@``, tab or
    carriage return gets a leading apostrophe (the OWASP-recommended neutralisation)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        # real numbers are data, not formulas (a score of -3 stays -3)
        return str(int(value)) if float(value).is_integer() else str(value)
    text = "; ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def write_csv(path, header: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Write rows with every cell passed through :func:`safe_cell`; return the row count."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow([safe_cell(c) for c in row])
            n += 1
    return n


def _e(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(html.escape(str(v)) for v in value)
    return html.escape(str(value), quote=True)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:1rem;
color:#1b1b1b;background:#fff;line-height:1.4;max-width:1200px}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.15rem;margin-top:2rem;border-bottom:2px solid #ddd}
h3{font-size:1rem;margin:.8rem 0 .3rem}
.disclaimer{background:#fff4ce;border:1px solid #e0c060;padding:.5rem .8rem;border-radius:4px}
.stamps,.summary{font-size:.85rem;color:#444}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #ddd;padding:.3rem .4rem;text-align:left;vertical-align:top}
th{background:#f2f2f2;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
.v-eligible{color:#0a6b2d;font-weight:600}.v-needs_review{color:#8a5a00;font-weight:600}
.v-excluded{color:#9b1c1c}.s-applies{color:#0a6b2d;font-weight:600}
.s-possibly_applies{color:#8a5a00;font-weight:600}.s-not_applicable{color:#666}
.wrap{overflow-x:auto}ul{margin:.2rem 0 .2rem 1.1rem;padding:0}
.new{background:#e8f6ec}.gone{background:#fdecec}
details summary{cursor:pointer}
@media (max-width:640px){body{padding:.5rem}table{font-size:.8rem}td,th{padding:.25rem}}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var dir=th.getAttribute('aria-sort')==='ascending'?'descending':'ascending';
      t.querySelectorAll('th').forEach(function(o){o.removeAttribute('aria-sort')});
      th.setAttribute('aria-sort',dir);
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[i].getAttribute('data-v')||a.cells[i].textContent,
            y=b.cells[i].getAttribute('data-v')||b.cells[i].textContent;
        var nx=parseFloat(x),ny=parseFloat(y),c;
        c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
        return dir==='ascending'?c:-c;});
      rows.forEach(function(r){body.appendChild(r)});});});});
"""


def _ul(items) -> str:
    items = [i for i in items or [] if i]
    if not items:
        return ""
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "sortable") -> str:
    head = "".join(f"<th scope=col>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(rows_cells) + "</tr>" for rows_cells in rows)
    return f'<div class=wrap><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _td(value, raw: bool = False, sort_value=None, cls: str | None = None) -> str:
    attrs = ""
    if sort_value is not None:
        attrs += f' data-v="{_e(sort_value)}"'
    if cls:
        attrs += f' class="{_e(cls)}"'
    return f"<td{attrs}>{value if raw else _e(value)}</td>"


def render_html(run: dict, patients: list[dict], errors: list[dict], changes: dict) -> str:
    """The whole report page.

    ``run``: stamps (tool/pack version, data timestamp, run time, counts).
    ``patients``: per patient ``{"patient_id", "diagnosis", "options": [...], "trials": [...],
    "notes": [...]}`` in the ``options --json`` and ``match --json`` shapes.
    ``errors``: ``{"source", "patient_id", "error"}``.
    ``changes``: ``{"new": [...], "gone": [...], "status_changes": [...], "previous_run": ...}``.
    """
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>trialmatch report {_e(run.get('started'))}</title><style>{_CSS}</style></head><body>",
        "<h1>Sarcoma trial matching report</h1>",
        f"<p class=disclaimer><strong>{_e(DISCLAIMER)}</strong> Every verdict below says why; "
        "verify each item marked “verify” against the patient's record and the registry page.</p>",
        _stamps(run),
        _summary_section(run, patients, errors),
        _changes_section(changes),
    ]
    if errors:
        out.append("<h2 id=errors>Patients that could not be processed</h2>")
        out.append(
            _table(
                ["Source", "Patient", "Error"],
                (
                    [_td(e.get("source")), _td(e.get("patient_id")), _td(e.get("error"))]
                    for e in errors
                ),
            )
        )
    for p in patients:
        out.append(_patient_section(p))
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out)


def _stamps(run: dict) -> str:
    keys = [
        ("Run started", "started"),
        ("Run finished", "finished"),
        ("Tool version", "tool_version"),
        ("Knowledge pack version", "pack_version"),
        ("Registry data timestamp", "data_timestamp"),
        ("Trials in store", "trials_in_store"),
        ("Statuses admitted", "statuses"),
        ("Engine", "engine"),
    ]
    items = "".join(
        f"<li>{_e(label)}: <code>{_e(run.get(k))}</code></li>"
        for label, k in keys
        if run.get(k) is not None
    )
    return f"<div class=stamps><ul>{items}</ul></div>"


def _summary_section(run: dict, patients: list[dict], errors: list[dict]) -> str:
    rows = []
    for p in patients:
        trials = p.get("trials", [])
        counts = {
            v: sum(1 for t in trials if t["verdict"] == v)
            for v in ("eligible", "needs_review", "excluded")
        }
        applies = sum(1 for o in p.get("options", []) if o["status"] == "applies")
        rows.append(
            [
                _td(
                    f'<a href="#p-{_e(p["patient_id"])}">{_e(p["patient_id"])}</a>',
                    raw=True,
                    sort_value=p["patient_id"],
                ),
                _td(p.get("diagnosis")),
                _td(counts["eligible"], sort_value=counts["eligible"]),
                _td(counts["needs_review"], sort_value=counts["needs_review"]),
                _td(counts["excluded"], sort_value=counts["excluded"]),
                _td(applies, sort_value=applies),
                _td(p.get("new_count", 0), sort_value=p.get("new_count", 0)),
            ]
        )
    head = (
        f"<h2 id=summary>Run summary</h2><p class=summary>{_e(run.get('n_patients_ok', 0))} patients matched, "
        f"{_e(len(errors))} failed; {_e(run.get('n_trials_considered', 0))} trials considered.</p>"
    )
    return head + _table(
        [
            "Patient",
            "Diagnosis",
            "Eligible",
            "Needs review",
            "Excluded",
            "Standard options that apply",
            "New since last run",
        ],
        rows,
    )


def _changes_section(changes: dict) -> str:
    prev = changes.get("previous_run")
    if not prev:
        return "<h2 id=changes>Changes since the last run</h2><p>First run: nothing to compare with.</p>"
    out = [
        f"<h2 id=changes>Changes since the last run</h2><p class=summary>Compared with the run of {_e(prev)}.</p>"
    ]
    new = changes.get("new", [])
    out.append(f"<h3>New matches ({len(new)})</h3>")
    if new:
        out.append(
            _table(
                ["Patient", "Trial", "Verdict", "Title"],
                (
                    [
                        _td(c["patient_id"]),
                        _td(c["nct_id"]),
                        _td(c["verdict"], cls=f"v-{c['verdict']}"),
                        _td(c.get("title")),
                    ]
                    for c in new
                ),
            )
        )
    gone = changes.get("gone", [])
    out.append(f"<h3>Matches that disappeared ({len(gone)})</h3>")
    if gone:
        out.append(
            _table(
                ["Patient", "Trial", "Was", "Why"],
                (
                    [_td(c["patient_id"]), _td(c["nct_id"]), _td(c["was"]), _td(c["why"])]
                    for c in gone
                ),
            )
        )
    sc = changes.get("status_changes", [])
    out.append(f"<h3>Trial status changes ({len(sc)})</h3>")
    if sc:
        out.append(
            _table(
                ["Trial", "Before", "Now"],
                ([_td(c["nct_id"]), _td(c["before"]), _td(c["after"])] for c in sc),
            )
        )
    return "\n".join(out)


def _patient_section(p: dict) -> str:
    pid = p["patient_id"]
    out = [
        f'<h2 id="p-{_e(pid)}">Patient {_e(pid)}</h2>',
        f"<p>Diagnosis: <strong>{_e(p.get('diagnosis'))}</strong></p>",
    ]
    if p.get("not_covered_reason"):
        out.append(f"<p><em>Standard options: {_e(p['not_covered_reason'])}</em></p>")
    if p.get("notes"):
        out.append(_ul(p["notes"]))
    opts = p.get("options", [])
    if opts:
        out.append("<h3>Standard options (PDQ) and subtype-targeted agents</h3>")
        out.append(
            _table(
                [
                    "Option",
                    "Status",
                    "Reasons",
                    "Verify",
                    "Agents received",
                    "Agents remaining",
                    "Citations",
                ],
                (
                    [
                        _td(o.get("title") or o["id"]),
                        _td(o["status"], cls=f"s-{o['status']}"),
                        _td(_ul(o.get("reasons")), raw=True),
                        _td(_ul(o.get("verify")), raw=True),
                        _td(o.get("agents_received")),
                        _td(o.get("agents_remaining")),
                        _td(
                            "<details><summary>"
                            + _e(f"{len(o.get('citations') or [])} citation(s)")
                            + "</summary>"
                            + _ul(_citation_text(c) for c in o.get("citations") or [])
                            + "</details>",
                            raw=True,
                        ),
                    ]
                    for o in opts
                ),
            )
        )
    trials = p.get("trials", [])
    out.append(f"<h3>Trials ({len(trials)})</h3>")
    if trials:
        out.append(
            _table(
                [
                    "Rank",
                    "Trial",
                    "Verdict",
                    "Score",
                    "Why",
                    "Verify / excluded by",
                    "Nearest site",
                    "Miles",
                    "Phase",
                    "Status",
                    "Updated",
                ],
                (
                    [
                        _td(t["rank"], sort_value=t["rank"]),
                        _td(
                            f'<a href="{_e(t.get("url"))}">{_e(t["nct_id"])}</a><br>{_e(t.get("title"))}'
                            + (" <strong>(new)</strong>" if t.get("is_new") else ""),
                            raw=True,
                            sort_value=t["nct_id"],
                        ),
                        _td(t["verdict"], cls=f"v-{t['verdict']}"),
                        _td(t["score"], sort_value=t["score"]),
                        _td(_ul(t.get("reasons")), raw=True),
                        _td(_ul((t.get("excluded_by") or []) + (t.get("verify") or [])), raw=True),
                        _td(_site_text(t.get("nearest_site"))),
                        _td(
                            "" if t.get("distance_miles") is None else t["distance_miles"],
                            sort_value=t.get("distance_miles")
                            if t.get("distance_miles") is not None
                            else 1e9,
                        ),
                        _td(t.get("phase")),
                        _td(t.get("status")),
                        _td(t.get("last_update")),
                    ]
                    for t in trials
                ),
            )
        )
    else:
        out.append("<p>No relevant trial in the store for this diagnosis.</p>")
    return "\n".join(out)


def _citation_text(c) -> str:
    if isinstance(c, dict):
        return " ".join(str(c.get(k)) for k in ("ref", "text", "source") if c.get(k))
    return str(c)


def _site_text(site: dict | None) -> str:
    if not site:
        return ""
    return ", ".join(str(site[k]) for k in ("facility", "city", "state", "country") if site.get(k))


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """CSV as a string (for tests and stdout), cells neutralised like :func:`write_csv`."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for row in rows:
        w.writerow([safe_cell(c) for c in row])
    return buf.getvalue()
