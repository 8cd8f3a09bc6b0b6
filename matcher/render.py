"""Writers for the nightly report: a self-contained HTML page and spreadsheet-safe CSV.

Every value that reaches HTML goes through ``html.escape``; every CSV cell that a spreadsheet
would read as a formula is neutralised. Nothing here reads the store or the network.

The page is built for a coordinator reading it in the morning, on a desk or a phone: what
changed since the last run comes first; each patient's section shows the trial shortlist
(eligible, needs review), with the excluded trials and the options that do not apply folded
away below it. Tables sort by a click on their header; on a narrow screen their rows become
cards.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Sequence

from matcher import DISCLAIMER

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

SHORTLIST = ("eligible", "needs_review")

VERDICT_LABELS = {
    "eligible": "eligible",
    "needs_review": "needs review",
    "excluded": "excluded",
}
OPTION_STATUS_LABELS = {
    "applies": "applies",
    "possibly_applies": "possibly applies",
    "not_applicable": "does not apply",
}


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


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """CSV as a string (for tests and stdout), cells neutralised like :func:`write_csv`."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for row in rows:
        w.writerow([safe_cell(c) for c in row])
    return buf.getvalue()


def site_text(site: dict | None) -> str:
    """``"facility, city, state, country"`` of a site dict (empty for None)."""
    if not site:
        return ""
    return ", ".join(str(site[k]) for k in ("facility", "city", "state", "country") if site.get(k))


# ----------------------------------------------------------------------------- HTML pieces


def _e(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(html.escape(str(v), quote=True) for v in value)
    return html.escape(str(value), quote=True)


def _anchor(patient_id) -> str:
    """An id attribute value for a patient section (escaped; spaces would break the link)."""
    return "p-" + _e(str(patient_id).replace(" ", "_"))


_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;padding:1rem;
color:#1b1b1b;background:#fff;line-height:1.45;max-width:1280px;font-size:15px}
h1{font-size:1.45rem;margin:.2rem 0 .5rem}
h2{font-size:1.2rem;margin:2.2rem 0 .4rem;border-bottom:2px solid #ccc;padding-bottom:.15rem}
h3{font-size:1.02rem;margin:1rem 0 .3rem}
a{color:#0b5cad}
.disclaimer{background:#fff4ce;border:1px solid #d9b648;padding:.5rem .8rem;border-radius:4px;margin:.4rem 0}
.glance{display:flex;flex-wrap:wrap;gap:.5rem;margin:.6rem 0;padding:0;list-style:none}
.glance li{border:1px solid #ccc;border-radius:6px;padding:.35rem .7rem;background:#fafafa}
.glance b{font-size:1.15rem;margin-right:.2rem}
.glance .hot{border-color:#2e8b57;background:#e8f6ec}
.glance .warn{border-color:#c0392b;background:#fdecec}
.stamps{font-size:.82rem;color:#444;margin:.4rem 0}
.stamps dl{display:grid;grid-template-columns:max-content 1fr;gap:.05rem .8rem;margin:.3rem 0}
.stamps dt{font-weight:600}.stamps dd{margin:0;overflow-wrap:anywhere}
.muted{color:#555;font-size:.88rem}
.facts{margin:.3rem 0;padding:0;list-style:none;display:flex;flex-wrap:wrap;gap:.2rem 1rem;font-size:.9rem}
.facts b{font-weight:600;color:#333}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #d4d4d4;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f0f0f0;cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td ul{margin:0;padding-left:1.05rem}td li{margin:.05rem 0}
.v-eligible{color:#0a6b2d;font-weight:700}.v-needs_review{color:#8a5a00;font-weight:700}
.v-excluded{color:#9b1c1c}
.s-applies{color:#0a6b2d;font-weight:700}.s-possibly_applies{color:#8a5a00;font-weight:700}
.s-not_applicable{color:#666}
tr.new td{background:#e8f6ec}
.badge{display:inline-block;font-size:.72rem;font-weight:700;padding:0 .35rem;border-radius:3px;
background:#2e8b57;color:#fff;vertical-align:middle;margin-left:.25rem}
.nct{font-weight:600;white-space:nowrap}
.title{display:block}
.cite{font-size:.8rem;color:#333}
.small{font-size:.8rem}
details{margin:.3rem 0}
details>summary{cursor:pointer;color:#0b5cad}
details.block{border:1px solid #ddd;border-radius:4px;padding:.3rem .6rem;margin:.6rem 0}
details.block>summary{font-weight:600}
.top{font-size:.8rem;float:right;font-weight:400}
.shortlist td:nth-child(2){min-width:13rem}.shortlist td:nth-child(5){min-width:15rem}
.shortlist td:nth-child(6){min-width:15rem}
table.summary td:nth-child(n+3){text-align:right}
footer{margin-top:2.5rem;border-top:1px solid #ccc;padding-top:.5rem}
@media (max-width:700px){
body{padding:.6rem;font-size:14px}
table.cards thead{display:none}
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:100%}
table.cards tr{border:1px solid #ccc;border-radius:6px;margin:0 0 .7rem;padding:.2rem .1rem}
table.cards td{border:none;border-bottom:1px solid #eee;padding:.25rem .5rem}
table.cards td:last-child{border-bottom:none}
table.cards td[data-label]::before{content:attr(data-label) ": ";font-size:.75rem;
font-weight:700;color:#555;text-transform:uppercase;letter-spacing:.02em}
table.cards td .title{margin-top:.1rem}
table.cards td:empty{display:none}
.shortlist td:nth-child(n){min-width:0}
table.summary{font-size:.8rem}table.summary td,table.summary th{padding:.25rem .3rem}
.wrap{overflow-x:auto}
}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.title=(th.title?th.title+': ':'')+'click to sort';
    th.addEventListener('click',function(){
      var dir=th.getAttribute('aria-sort')==='ascending'?'descending':'ascending';
      t.querySelectorAll('th').forEach(function(o){o.removeAttribute('aria-sort')});
      th.setAttribute('aria-sort',dir);
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[i].getAttribute('data-v'),y=b.cells[i].getAttribute('data-v');
        if(x===null)x=a.cells[i].textContent.trim();
        if(y===null)y=b.cells[i].textContent.trim();
        var nx=Number(x),ny=Number(y),c;
        c=(x!==''&&y!==''&&!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
        return dir==='ascending'?c:-c;});
      rows.forEach(function(r){body.appendChild(r)});});});});
"""


def _ul(items, cls: str | None = None) -> str:
    items = [i for i in items or [] if i]
    if not items:
        return ""
    attr = f' class="{_e(cls)}"' if cls else ""
    return f"<ul{attr}>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _fold(label: str, body: str, cls: str | None = None) -> str:
    """A <details> block, folded; nothing when the body is empty."""
    if not body:
        return ""
    attr = f' class="{_e(cls)}"' if cls else ""
    return f"<details{attr}><summary>{_e(label)}</summary>{body}</details>"


class _Col:
    """A table column: its header, and the label shown beside each value on a phone."""

    def __init__(self, head: str, label: str | None = None):
        self.head = head
        self.label = head if label is None else label


def _table(cols: Sequence[_Col | str], rows: Iterable, cls: str = "sortable cards") -> str:
    """``rows``: lists of cells made by :func:`_td`, or ``(row_class, cells)`` tuples."""
    cols = [c if isinstance(c, _Col) else _Col(c) for c in cols]
    head = "".join(
        f'<th scope=col title="{_e(c.label)}">{_e(c.head)}</th>'
        if c.label and c.label != c.head
        else f"<th scope=col>{_e(c.head)}</th>"
        for c in cols
    )
    body = []
    for row in rows:
        row_cls, cells = row if isinstance(row, tuple) else ("", row)
        tds = "".join(
            cell.replace("<td", f'<td data-label="{_e(c.label)}"', 1) if c.label else cell
            for c, cell in zip(cols, cells, strict=True)
        )
        attr = f' class="{_e(row_cls)}"' if row_cls else ""
        body.append(f"<tr{attr}>{tds}</tr>")
    return (
        f'<div class=wrap><table class="{cls}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _td(value, raw: bool = False, sort_value=None, cls: str | None = None) -> str:
    attrs = ""
    if sort_value is not None:
        attrs += f' data-v="{_e(sort_value)}"'
    if cls:
        attrs += f' class="{_e(cls)}"'
    return f"<td{attrs}>{value if raw else _e(value)}</td>"


def _trial_link(nct_id, url, title=None, is_new: bool = False) -> str:
    """NCT id (linked to the registry page), NEW badge, then the title on its own line."""
    link = (
        f'<a class=nct href="{_e(url)}">{_e(nct_id)}</a>'
        if url
        else f"<span class=nct>{_e(nct_id)}</span>"
    )
    badge = " <span class=badge>NEW</span>" if is_new else ""
    title_html = f"<span class=title>{_e(title)}</span>" if title else ""
    return link + badge + title_html


def _registry_url(nct_id) -> str:
    return f"https://clinicaltrials.gov/study/{nct_id}"


def _patient_link(patient_id) -> str:
    return f'<a href="#{_anchor(patient_id)}">{_e(patient_id)}</a>'


# ----------------------------------------------------------------------------- page


def render_html(run: dict, patients: list[dict], errors: list[dict], changes: dict) -> str:
    """The whole report page.

    ``run``: stamps (tool/pack version, data timestamp, run time, counts, settings).
    ``patients``: per patient ``{"patient_id", "diagnosis", "facts": [(label, text)],
    "options": [...], "not_covered_reason", "trials": [...], "notes": [...], "gone": [...]}``,
    options and trials in the ``options --json`` and ``match --json`` shapes (trials with
    ``is_new``).
    ``errors``: ``{"file", "location", "patient_id", "field", "error"}`` (or ``"source"``).
    ``changes``: ``{"new": [...], "gone": [...], "status_changes": [...], "previous_run": ...}``.
    """
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>Trial matching report {_e(run.get('started'))}</title>"
        f"<style>{_CSS}</style></head><body>",
        "<header id=top><h1>Sarcoma trial matching report</h1>",
        f"<p class=disclaimer><strong>{_e(DISCLAIMER)}</strong> Every verdict below says why; "
        "check each item under “to verify” against the patient's record and the registry "
        "page before contacting a trial.</p>",
        _glance(run, patients, errors, changes),
        _stamps(run),
        "</header>",
        _changes_section(changes),
        _summary_section(run, patients, errors),
    ]
    if errors:
        out.append(_errors_section(errors))
    for p in patients:
        out.append(_patient_section(p))
    out.append(
        f"<footer><p class=disclaimer><strong>{_e(DISCLAIMER)}</strong></p>"
        f"<p class=muted>Generated by trialmatch {_e(run.get('tool_version'))}, knowledge pack "
        f"{_e(run.get('pack_version'))}, run {_e(run.get('run_id'))} started "
        f"{_e(run.get('started'))}.</p></footer>"
    )
    out.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(out)


def _glance(run: dict, patients: list[dict], errors: list[dict], changes: dict) -> str:
    n_new = len(changes.get("new", []))
    n_gone = len(changes.get("gone", []))
    n_status = len(changes.get("status_changes", []))
    n_failed = sum(1 for e in errors if e.get("kind", "patient") == "patient")
    shortlisted = sum(
        1 for p in patients if any(t["verdict"] in SHORTLIST for t in p.get("trials", []))
    )
    items = [
        ("", len(patients), "patients matched", "#summary"),
        ("", shortlisted, "with at least one trial to consider", "#summary"),
    ]
    if changes.get("previous_run"):
        items += [
            ("hot" if n_new else "", n_new, "new matches", "#changes"),
            ("", n_gone, "matches gone", "#changes"),
            ("", n_status, "trial status changes", "#changes"),
        ]
    if errors:
        items.append(("warn", n_failed, "patients failed", "#errors"))
    lis = "".join(
        f'<li class="{_e(cls)}"><a href="{href}"><b>{_e(n)}</b></a> {_e(label)}</li>'
        if cls
        else f'<li><a href="{href}"><b>{_e(n)}</b></a> {_e(label)}</li>'
        for cls, n, label, href in items
    )
    return f"<ul class=glance>{lis}</ul>"


STAMP_KEYS = [
    ("Run", "run_id"),
    ("Started (UTC)", "started"),
    ("Finished (UTC)", "finished"),
    ("Tool version", "tool_version"),
    ("Knowledge pack version", "pack_version"),
    ("Registry data timestamp", "data_timestamp"),
    ("Newest trial record update", "newest_record"),
    ("Trials in store", "trials_in_store"),
    ("Trials considered", "n_trials_considered"),
    ("Statuses admitted", "statuses"),
    ("Max miles", "max_miles"),
    ("Ages computed as of", "as_of"),
    ("Engine", "engine"),
    ("Patient list", "patients_source"),
]


def _stamps(run: dict) -> str:
    items = "".join(
        f"<dt>{_e(label)}</dt><dd><code>{_e(run.get(k))}</code></dd>"
        for label, k in STAMP_KEYS
        if run.get(k) is not None
    )
    return (
        "<details class=stamps><summary>Stamps: reproduce this report "
        f"(tool {_e(run.get('tool_version'))}, pack {_e(run.get('pack_version'))}, "
        f"data {_e(run.get('data_timestamp'))})</summary><dl>{items}</dl></details>"
    )


def _summary_section(run: dict, patients: list[dict], errors: list[dict]) -> str:
    rows = []
    for p in patients:
        trials = p.get("trials", [])
        counts = {
            v: sum(1 for t in trials if t["verdict"] == v)
            for v in ("eligible", "needs_review", "excluded")
        }
        applies = sum(1 for o in p.get("options", []) if o["status"] == "applies")
        new = p.get("new_count", 0)
        rows.append(
            (
                "new" if new else "",
                [
                    _td(_patient_link(p["patient_id"]), raw=True, sort_value=p["patient_id"]),
                    _td(p.get("diagnosis")),
                    _td(counts["eligible"], sort_value=counts["eligible"]),
                    _td(counts["needs_review"], sort_value=counts["needs_review"]),
                    _td(counts["excluded"], sort_value=counts["excluded"]),
                    _td(applies, sort_value=applies),
                    _td(new, sort_value=new),
                ],
            )
        )
    n_failed = sum(1 for e in errors if e.get("kind", "patient") == "patient")
    head = (
        f"<h2 id=summary>Patients</h2><p class=muted>{_e(run.get('n_patients_ok', len(patients)))}"
        f" patients matched, {_e(n_failed)} failed; "
        f"{_e(run.get('n_trials_considered', 0))} trials considered. Click a header to sort.</p>"
    )
    if not rows:
        return head
    return head + _table(
        [
            "Patient",
            "Diagnosis",
            _Col("Eligible"),
            _Col("Review", "Needs review"),
            _Col("Excl.", "Excluded"),
            _Col("Options", "Standard options that apply"),
            _Col("New", "New since last run"),
        ],
        rows,
        cls="sortable summary",
    )


def _errors_section(errors: list[dict]) -> str:
    def where(e):
        file = e.get("file") or e.get("source") or ""
        loc = e.get("location") or ""
        return f"{file}, {loc}" if file and loc else file or loc

    rows = [
        [
            _td(e.get("kind", "patient")),
            _td(where(e)),
            _td(e.get("patient_id")),
            _td(e.get("field")),
            _td(e.get("error")),
        ]
        for e in errors
    ]
    return (
        "<h2 id=errors>Could not be processed</h2>"
        "<p class=muted>These were left out of this run (also in errors.csv). Fix the value and "
        "the next run includes them.</p>"
        + _table(["Kind", "Where", "Patient", "Field", "Problem"], rows)
    )


def _changes_section(changes: dict) -> str:
    prev = changes.get("previous_run")
    head = "<h2 id=changes>Changes since the last run</h2>"
    if not prev:
        return head + "<p>First run: nothing to compare with yet.</p>"
    out = [head, f"<p class=muted>Compared with the run started {_e(prev)} (UTC).</p>"]
    new = changes.get("new", [])
    out.append(f"<h3>New matches ({len(new)})</h3>")
    if new:
        out.append(
            _table(
                ["Patient", "Trial", "Verdict", "Why new"],
                (
                    (
                        "new",
                        [
                            _td(
                                _patient_link(c["patient_id"]), raw=True, sort_value=c["patient_id"]
                            ),
                            _td(
                                _trial_link(
                                    c["nct_id"], _registry_url(c["nct_id"]), c.get("title")
                                ),
                                raw=True,
                                sort_value=c["nct_id"],
                            ),
                            _td(
                                VERDICT_LABELS.get(c["verdict"], c["verdict"]),
                                cls=f"v-{c['verdict']}",
                            ),
                            _td(c.get("why")),
                        ],
                    )
                    for c in new
                ),
            )
        )
    else:
        out.append("<p class=muted>None.</p>")
    gone = changes.get("gone", [])
    out.append(f"<h3>Matches that disappeared ({len(gone)})</h3>")
    if gone:
        out.append(
            _table(
                ["Patient", "Trial", "Was", "Now", "Why"],
                (
                    [
                        _td(_patient_link(c["patient_id"]), raw=True, sort_value=c["patient_id"]),
                        _td(
                            _trial_link(c["nct_id"], _registry_url(c["nct_id"]), c.get("title")),
                            raw=True,
                            sort_value=c["nct_id"],
                        ),
                        _td(VERDICT_LABELS.get(c["was"], c["was"])),
                        _td(VERDICT_LABELS.get(c.get("now"), c.get("now"))),
                        _td(c.get("why")),
                    ]
                    for c in gone
                ),
            )
        )
    else:
        out.append("<p class=muted>None.</p>")
    sc = changes.get("status_changes", [])
    out.append(f"<h3>Trial status changes ({len(sc)})</h3>")
    if sc:
        out.append(
            _table(
                ["Trial", "Before", "Now"],
                (
                    [
                        _td(
                            _trial_link(c["nct_id"], _registry_url(c["nct_id"]), c.get("title")),
                            raw=True,
                            sort_value=c["nct_id"],
                        ),
                        _td(c["before"]),
                        _td(c["after"]),
                    ]
                    for c in sc
                ),
            )
        )
    else:
        out.append("<p class=muted>None.</p>")
    return "\n".join(out)


# ----------------------------------------------------------------------------- one patient


def _patient_section(p: dict) -> str:
    pid = p["patient_id"]
    trials = p.get("trials", [])
    shortlist = [t for t in trials if t["verdict"] in SHORTLIST]
    excluded = [t for t in trials if t["verdict"] not in SHORTLIST]
    new = sum(1 for t in trials if t.get("is_new"))
    badge = f" <span class=badge>{_e(new)} NEW</span>" if new else ""
    out = [
        f'<section><h2 id="{_anchor(pid)}">Patient {_e(pid)}: {_e(p.get("diagnosis"))}{badge}'
        '<a class=top href="#top">top ↑</a></h2>'
    ]
    facts = p.get("facts") or []
    if facts:
        out.append(
            "<ul class=facts>"
            + "".join(f"<li><b>{_e(k)}:</b> {_e(v)}</li>" for k, v in facts)
            + "</ul>"
        )
    notes = p.get("notes") or []
    if notes:
        out.append(
            _fold(f"Notes on this patient's data ({len(notes)})", _ul(notes, "small"))
            if len(notes) > 3
            else _ul(notes, "small")
        )

    out.append(f"<h3>Trials to consider ({len(shortlist)})</h3>")
    if shortlist:
        out.append(_shortlist_table(shortlist))
    elif trials:
        out.append(
            "<p class=muted>No trial in the store is open to this patient on what is "
            "recorded; the excluded ones are listed below with the reasons.</p>"
        )
    else:
        out.append("<p class=muted>No trial in the store is relevant to this diagnosis.</p>")
    if excluded:
        out.append(
            _fold(
                f"Excluded trials ({len(excluded)}): the reasons each is closed to this patient",
                _excluded_table(excluded),
                "block",
            )
        )
    gone = p.get("gone") or []
    if gone:
        out.append(
            f"<h3>No longer on the list since the last run ({len(gone)})</h3>"
            + _ul(f"{g['nct_id']}: {g.get('why')}" for g in gone)
        )
    unrelated = p.get("unrelated_count")
    if unrelated:
        out.append(
            f"<p class=muted>{_e(unrelated)} other trials in the store do not name this "
            "diagnosis or a group containing it (not shown).</p>"
        )

    out.append("<h3>Standard options (PDQ) and subtype-targeted agents</h3>")
    if p.get("not_covered_reason"):
        out.append(f"<p><em>{_e(p['not_covered_reason'])}</em></p>")
    opts = p.get("options", [])
    relevant = [o for o in opts if o.get("status") != "not_applicable"]
    rest = [o for o in opts if o.get("status") == "not_applicable"]
    if relevant:
        out.append(_options_table(relevant))
    elif opts:
        out.append("<p class=muted>No encoded option applies on what is recorded.</p>")
    if rest:
        out.append(
            _fold(
                f"Options that do not apply ({len(rest)}): why not",
                _table(
                    ["Option", "Why not"],
                    (
                        [_td(_option_title(o), raw=True), _td(_ul(o.get("reasons")), raw=True)]
                        for o in rest
                    ),
                ),
                "block",
            )
        )
    out.append("</section>")
    return "\n".join(out)


def _shortlist_table(trials: list[dict]) -> str:
    rows = []
    for t in trials:
        met, to_read = t.get("met") or [], t.get("to_review") or []
        # the counts rank.py states in words are replaced by the folds that list them
        said = {
            f"{len(met)} criteria met",
            f"{len(to_read)} criteria lines not machine-checked: read them",
        }
        why = (
            _ul([r for r in t.get("reasons") or [] if r not in said])
            + _fold(f"criteria met ({len(met)})", _ul(met, "small"))
            + _fold(f"criteria lines to read yourself ({len(to_read)})", _ul(to_read, "small"))
        )
        miles = t.get("distance_miles")
        site = site_text(t.get("nearest_site"))
        where = (site + (f" ({miles:g} mi)" if miles is not None else "")) or "not computed"
        rows.append(
            (
                "new" if t.get("is_new") else "",
                [
                    _td(t["rank"], sort_value=t["rank"]),
                    _td(
                        _trial_link(t["nct_id"], t.get("url"), t.get("title"), t.get("is_new")),
                        raw=True,
                        sort_value=t["nct_id"],
                    ),
                    _td(
                        VERDICT_LABELS.get(t["verdict"], t["verdict"]),
                        cls=f"v-{t['verdict']}",
                        sort_value=t["verdict"],
                    ),
                    _td(t["score"], sort_value=t["score"]),
                    _td(why, raw=True),
                    _td(_ul(t.get("verify")), raw=True),
                    _td(where, sort_value=miles if miles is not None else 1e9),
                    _td(
                        f"{t.get('phase') or ''} · {t.get('status') or ''} · "
                        f"updated {t.get('last_update') or 'unknown'}"
                    ),
                ],
            )
        )
    return _table(
        [
            _Col("#", "Rank"),
            "Trial",
            "Verdict",
            "Score",
            "Why",
            "To verify",
            "Nearest open site",
            _Col("Phase · status", "Phase · status · updated"),
        ],
        rows,
        cls="sortable cards shortlist",
    )


def _excluded_table(trials: list[dict]) -> str:
    return _table(
        ["Trial", "Excluded by", "Also to verify", _Col("Status", "Status · updated")],
        (
            (
                "new" if t.get("is_new") else "",
                [
                    _td(
                        _trial_link(t["nct_id"], t.get("url"), t.get("title"), t.get("is_new")),
                        raw=True,
                        sort_value=t["nct_id"],
                    ),
                    _td(_ul(t.get("excluded_by")), raw=True),
                    _td(_ul(t.get("verify")), raw=True),
                    _td(f"{t.get('status') or ''} · updated {t.get('last_update') or 'unknown'}"),
                ],
            )
            for t in trials
        ),
    )


def _option_title(o: dict) -> str:
    label = o.get("label")
    return f"{_e(o.get('title') or o['id'])}" + (
        f"<br><span class=small>{_e(label)}</span>" if label else ""
    )


def _options_table(opts: list[dict]) -> str:
    rows = []
    for o in opts:
        why = _ul(o.get("reasons"))
        extra = []
        if o.get("evidence_level"):
            extra.append(f"level of evidence: {o['evidence_level']}")
        extra += [f"figure: {x}" for x in o.get("outcomes") or []]
        why += _ul(extra, "small")
        caveats = o.get("caveats") or []
        if len(caveats) > 2:  # long lists fold; the count stays visible
            why += _fold(f"caveats ({len(caveats)})", _ul(caveats, "small"))
        else:
            why += _ul([f"caveat: {x}" for x in caveats], "small")
        agents = []
        if o.get("agents_received"):
            agents.append("received: " + ", ".join(o["agents_received"]))
        if o.get("agents_remaining"):
            agents.append("not yet received: " + ", ".join(o["agents_remaining"]))
        if o.get("procedures"):
            agents.append("procedures: " + ", ".join(o["procedures"]))
        rows.append(
            [
                _td(_option_title(o), raw=True, sort_value=o.get("title") or o["id"]),
                _td(
                    OPTION_STATUS_LABELS.get(o["status"], o["status"]),
                    cls=f"s-{o['status']}",
                    sort_value=o["status"],
                ),
                _td(why, raw=True),
                _td(_ul(o.get("verify")), raw=True),
                _td(_ul(agents), raw=True),
                _td(_ul(citation_lines(o.get("citations") or []), "cite"), raw=True),
            ]
        )
    return _table(
        ["Option", "Status", "Why", "To verify", "Agents", "Citations"],
        rows,
    )


def citation_lines(citations: Sequence) -> list[str]:
    """Readable citation lines: a printed reference as ``[n] text (section)``; references whose
    text the source does not print are grouped per section with the note saying so."""
    lines: list[str] = []
    grouped: dict[tuple[str, str], list[str]] = {}
    for c in citations:
        if not isinstance(c, dict):
            lines.append(str(c))
            continue
        section = c.get("section") or c.get("seed") or "source"
        if c.get("text"):
            lines.append(f"[{c.get('ref')}] {c['text']} (PDQ section: {section})")
        elif c.get("ref") is None:
            lines.append(f"PDQ section: {section}" + (f": {c['note']}" if c.get("note") else ""))
        else:
            grouped.setdefault((section, c.get("note") or ""), []).append(str(c["ref"]))
    for (section, note), refs in grouped.items():
        lines.append(
            f"PDQ section: {section}, reference{'s' if len(refs) > 1 else ''} "
            f"{', '.join(refs)}" + (f" ({note})" if note else "")
        )
    return lines
