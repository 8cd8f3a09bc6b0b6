"""Writers for the nightly report: self-contained HTML pages and spreadsheet-safe CSV.

Every value that reaches HTML goes through ``html.escape``; every CSV cell that a spreadsheet
would read as a formula is neutralised. Nothing here reads the store or the network.

The pages are built for a coordinator reading them in the morning, on a desk or a phone. The
index (:func:`render_index`) says what changed since the last run and has one row per
patient; each patient's page (:func:`render_patient`) puts the facts to record first, then
the top open trials with their most important checks, and folds everything else. Words come
from :mod:`matcher.digest`. Tables sort by a click on their header and filter from a small
form (plain inline JS, no network); on a narrow screen their rows become cards; the pictures
are inline SVG with their figures also in text.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from matcher import DISCLAIMER
from matcher.digest import citations, place_text, plain, status_text

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
    return place_text(site) if site else ""


# ----------------------------------------------------------------------------- HTML pieces


@lru_cache(maxsize=262144)  # trial titles, criteria lines and labels recur on every page
def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _e(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(_escape(str(v)) for v in value)
    return _escape(str(value))


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
    # each column's opening tag with its phone label, made once per table ("<td" where a
    # column has none: the replace below leaves its cells as they are)
    labelled = [f'<td data-label="{_e(c.label)}"' if c.label else "<td" for c in cols]
    n = len(cols)
    tds_of, plain_tags, ones = str.replace, ["<td"] * n, [1] * n
    for row in rows:
        row_attrs = ""
        if isinstance(row, tuple) and len(row) == 3:
            row_cls, cells, row_attrs = row
        else:
            row_cls, cells = row if isinstance(row, tuple) else ("", row)
        if not isinstance(cells, (list, tuple)):
            cells = list(cells)
        if len(cells) != n:
            raise ValueError(f"a row of {len(cells)} cells in a table of {n} columns")
        tds = "".join(map(tds_of, cells, plain_tags, labelled, ones))
        attr = f' class="{_e(row_cls)}"' if row_cls else ""
        body.append(f"<tr{attr}{row_attrs}>{tds}</tr>")
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


def _patient_link(change: dict) -> str:
    href = change.get("href")
    if not href:
        return _e(change["patient_id"])
    return f'<a href="{_e(href)}">{_e(change["patient_id"])}</a>'


# ----------------------------------------------------------------------------- page

_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;padding:1rem;
color:#1b1b1b;background:#fff;line-height:1.45;max-width:1280px;font-size:15px;overflow-wrap:break-word}
h1{font-size:1.45rem;margin:.2rem 0 .5rem}
h2{font-size:1.2rem;margin:1.8rem 0 .4rem;border-bottom:2px solid #ccc;padding-bottom:.15rem}
h3{font-size:1.02rem;margin:1rem 0 .3rem}
a{color:#0b5cad}
.disclaimer{background:#fff4ce;border:1px solid #d9b648;padding:.5rem .8rem;border-radius:4px;margin:.4rem 0}
.glance{display:flex;flex-wrap:wrap;gap:.5rem;margin:.6rem 0;padding:0;list-style:none}
.glance li{border:1px solid #ccc;border-radius:6px;padding:.35rem .7rem;background:#fafafa}
.glance b{font-size:1.15rem;margin-right:.2rem}
.glance .hot{border-color:#2e8b57;background:#e8f6ec}
.glance .warn{border-color:#c0392b;background:#fdecec}
.record{border:2px solid #0b5cad;background:#eef5fc;border-radius:6px;padding:.5rem .8rem;margin:.6rem 0}
.record p{margin:.1rem 0}.record ol{margin:.3rem 0;padding-left:1.4rem}
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
.badge.closed{background:#7a7a7a}.badge.flag{background:#b35c00}
.nct{font-weight:600;white-space:nowrap}
.title{display:block}
.cite{font-size:.8rem;color:#333}
.small{font-size:.8rem}
details{margin:.3rem 0}
details>summary{cursor:pointer;color:#0b5cad}
details.block{border:1px solid #ddd;border-radius:4px;padding:.3rem .6rem;margin:.6rem 0}
details.block>summary{font-weight:600}
.filters{display:flex;flex-wrap:wrap;gap:.4rem .8rem;align-items:end;margin:.5rem 0;padding:.4rem .6rem;
background:#f6f6f6;border:1px solid #ddd;border-radius:6px;font-size:.85rem}
.filters label{display:flex;flex-direction:column;gap:.1rem}
.filters input,.filters select{font:inherit;padding:.15rem .3rem;max-width:100%}
.filters input[type=search]{min-width:12rem}
.chart{max-width:100%;height:auto;display:block}
.bar{display:block;width:100%;max-width:420px;height:auto}
.legend{font-size:.8rem;color:#444}
footer{margin-top:2.5rem;border-top:1px solid #ccc;padding-top:.5rem}
@media (max-width:700px){
body{padding:.6rem;font-size:14px}
table.cards thead{display:none}
table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:100%}
table.cards tr{border:1px solid #ccc;border-radius:6px;margin:0 0 .7rem;padding:.2rem .1rem}
table.cards tr[hidden]{display:none}
table.cards td{border:none;border-bottom:1px solid #eee;padding:.25rem .5rem}
table.cards td:last-child{border-bottom:none}
table.cards td[data-label]::before{content:attr(data-label) ": ";font-size:.75rem;
font-weight:700;color:#555;text-transform:uppercase;letter-spacing:.02em}
table.cards td .title{margin-top:.1rem}
table.cards td:empty{display:none}
.filters input[type=search]{min-width:0;width:100%}
.filters label{flex:1 1 40%}
}
"""

# Sorting by a click on a header; filtering rows by the page's filter form. No network.
_JS = """
(function(){
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
var f=document.getElementById('filters');
if(f){
  var rows=Array.prototype.slice.call(document.querySelectorAll('tr[data-f]'));
  var out=document.getElementById('shown');
  var apply=function(){
    var q=(f.q.value||'').toLowerCase().trim(),n=0;
    rows.forEach(function(r){
      var ok=true,d=r.dataset;
      Array.prototype.forEach.call(f.querySelectorAll('select'),function(s){
        if(!s.value||!ok)return;
        if(s.name==='miles'){var m=Number(d.miles);ok=d.miles!==''&&m<=Number(s.value);}
        else ok=(' '+(d[s.name]||'')+' ').indexOf(' '+s.value+' ')>=0;});
      if(ok&&q)ok=r.textContent.toLowerCase().indexOf(q)>=0;
      r.hidden=!ok;if(ok)n++;});
    if(out)out.textContent=n+' of '+rows.length+' shown';
    if(q||Array.prototype.some.call(f.querySelectorAll('select'),function(s){return s.value}))
      document.querySelectorAll('details.filterable').forEach(function(d){d.open=true});};
  f.addEventListener('input',apply);f.addEventListener('change',apply);
  f.addEventListener('submit',function(e){e.preventDefault();});apply();}
document.documentElement.setAttribute('data-ready',Math.round(performance.now()));
})();
"""


def _page(title: str, body: list[str], run: dict) -> str:
    return "\n".join(
        [
            "<!doctype html><html lang=en><head><meta charset=utf-8>",
            '<meta name=viewport content="width=device-width,initial-scale=1">',
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
            *body,
            f"<footer><p class=disclaimer><strong>{_e(DISCLAIMER)}</strong></p>"
            f"<p class=muted>Generated by trialmatch {_e(run.get('tool_version'))}, knowledge "
            f"pack {_e(run.get('pack_version'))}, run {_e(run.get('run_id'))} started "
            f"{_e(run.get('started'))} (UTC).</p></footer>",
            f"<script>{_JS}</script></body></html>",
        ]
    )


def _disclaimer() -> str:
    return (
        f"<p class=disclaimer><strong>{_e(DISCLAIMER)}</strong> Every verdict says why; check "
        "each item under “to verify” against the patient's record and the registry page before "
        "contacting a trial.</p>"
    )


# ----------------------------------------------------------------------------- pictures

VERDICT_COLOURS = (
    ("eligible", "eligible", "#2e8b57"),
    ("needs_review", "needs review", "#d49a00"),
    ("closed", "closed or not recruiting", "#9a9a9a"),
    ("excluded", "excluded", "#c0392b"),
)


def verdict_bar(counts: dict) -> str:
    """A small inline SVG bar of one patient's trials by verdict, with a text legend."""
    total = sum(counts.get(k, 0) for k, _, _ in VERDICT_COLOURS)
    label = ", ".join(f"{counts.get(k, 0)} {w}" for k, w, _ in VERDICT_COLOURS)
    if not total:
        return f"<p class=legend>No trial in the store is relevant ({_e(label)}).</p>"
    x, rects = 0.0, []
    for k, word, colour in VERDICT_COLOURS:
        n = counts.get(k, 0)
        if not n:
            continue
        w = 400 * n / total
        rects.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="14" fill="{colour}">'
            f"<title>{n} {_e(word)}</title></rect>"
        )
        x += w
    return (
        f'<svg class=bar viewBox="0 0 400 14" role=img aria-label="{_e(label)}">'
        + "".join(rects)
        + f"</svg><p class=legend>{_e(label)}</p>"
    )


def bar_chart(title: str, bars: Sequence[tuple[str, int]], colour: str = "#0b5cad") -> str:
    """A horizontal inline SVG bar chart: one bar per ``(label, value)``, values printed."""
    if not bars:
        return ""
    top = max(v for _, v in bars) or 1
    row, width, left = 22, 460, 150
    parts = []
    for i, (label, v) in enumerate(bars):
        y = i * row
        w = (width - left - 40) * v / top
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor=end font-size=12>{_e(label)}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="14" fill="{colour}"></rect>'
            f'<text x="{left + w + 4:.1f}" y="{y + 15}" font-size=12>{v}</text>'
        )
    h = row * len(bars)
    desc = "; ".join(f"{label}: {v}" for label, v in bars)
    return (
        f"<figure><figcaption class=muted>{_e(title)}</figcaption>"
        f'<svg class=chart viewBox="0 0 {width} {h}" width="{width}" role=img '
        f'aria-label="{_e(title)}: {_e(desc)}">' + "".join(parts) + "</svg></figure>"
    )


OPEN_BUCKETS = (("none", 0, 0), ("1", 1, 1), ("2", 2, 2), ("3-5", 3, 5), ("6-10", 6, 10))


def open_trials_buckets(values: Iterable[int]) -> list[tuple[str, int]]:
    """Patients by number of open trials to consider: 0, 1, 2, 3-5, 6-10, more than 10."""
    vals = list(values)
    out = [(label, sum(1 for v in vals if lo <= v <= hi)) for label, lo, hi in OPEN_BUCKETS]
    out.append(("more than 10", sum(1 for v in vals if v > 10)))
    return out


# ----------------------------------------------------------------------------- index page


def render_index(run: dict, patients: list[dict], errors: list[dict], changes: dict) -> str:
    """The index page (``report.html``): what changed, a chart, one row per patient.

    ``patients``: per patient ``{"patient_id", "diagnosis", "href", "counts", "best",
    "facts_sentence", "new_count", "gone_count", "flags"}`` (``best``: the first trial to
    consider, a :func:`matcher.digest.patient_digest` trial view, or None).
    """
    body = [
        "<header id=top><h1>Sarcoma trial matching report</h1>",
        _disclaimer(),
        _glance(run, patients, errors, changes),
        _stamps(run),
        "</header>",
    ]
    if run.get("failure"):
        body.append(
            f"<p class=disclaimer><strong>Nothing was matched in this run:</strong> "
            f"{_e(run['failure'])}</p>"
        )
    body.append(_charts(patients, changes))
    body.append(_changes_section(changes))
    if errors:
        body.append(_errors_section(errors))
    body.append(_patients_table(run, patients, errors))
    return _page(f"Trial matching report {run.get('started') or ''}", body, run)


def _charts(patients: list[dict], changes: dict) -> str:
    if not patients:
        return ""
    opens = [p["counts"].get("eligible", 0) + p["counts"].get("needs_review", 0) for p in patients]
    out = [bar_chart("Patients by number of open trials to consider", open_trials_buckets(opens))]
    if changes.get("previous_run"):
        out.append(
            bar_chart(
                "What changed since the last run",
                [
                    ("new matches", len(changes.get("new", []))),
                    ("matches gone", len(changes.get("gone", []))),
                    ("status changes", len(changes.get("status_changes", []))),
                    (
                        "patients with news",
                        sum(1 for p in patients if p.get("new_count") or p.get("gone_count")),
                    ),
                ],
                "#2e8b57",
            )
        )
    return "<div class=charts>" + "".join(out) + "</div>"


def _glance(run: dict, patients: list[dict], errors: list[dict], changes: dict) -> str:
    n_new = len(changes.get("new", []))
    n_gone = len(changes.get("gone", []))
    n_status = len(changes.get("status_changes", []))
    n_failed = sum(1 for e in errors if e.get("kind", "patient") != "trial record")
    shortlisted = sum(
        1 for p in patients if p["counts"].get("eligible", 0) + p["counts"].get("needs_review", 0)
    )
    items = [
        ("", len(patients), "patients matched", "#summary"),
        ("", shortlisted, "with at least one open trial to consider", "#summary"),
    ]
    if changes.get("previous_run"):
        items += [
            ("hot" if n_new else "", n_new, "new matches", "#changes"),
            ("", n_gone, "matches gone", "#changes"),
            ("", n_status, "trial status changes", "#changes"),
        ]
    if errors:
        items.append(("warn", n_failed, "patients or lists failed", "#errors"))
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
    ("Country filter", "country"),
    ("Trials shown first per patient", "top"),
    ("Ages computed as of", "as_of"),
    ("Engine", "engine"),
    ("Patient list", "patients_source"),
    ("List name (change history)", "list_name"),
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


def _patients_table(run: dict, patients: list[dict], errors: list[dict]) -> str:
    n_failed = sum(1 for e in errors if e.get("kind", "patient") == "patient")
    head = (
        f"<h2 id=summary>Patients</h2><p class=muted>{_e(len(patients))} patients matched, "
        f"{_e(n_failed)} failed; {_e(run.get('n_trials_considered', 0))} trials considered. "
        "Open a patient for the trials to consider and the facts to record. Click a header to "
        "sort.</p>"
    )
    if not patients:
        return head
    form = (
        "<form id=filters class=filters role=search>"
        '<label>Search<input type=search name=q placeholder="patient, diagnosis, trial"></label>'
        "<label>Open trials<select name=has><option value=''>all patients</option>"
        "<option value=open>with open trials to consider</option>"
        "<option value=none>with none</option></select></label>"
        "<label>Changes<select name=changed><option value=''>all</option>"
        "<option value=yes>changed since the last run</option></select></label>"
        "<span id=shown class=muted></span></form>"
    )
    rows = []
    for p in patients:
        c = p["counts"]
        n_open = c.get("eligible", 0) + c.get("needs_review", 0)
        best = p.get("best")
        best_html = (
            _trial_link(best["nct_id"], best.get("url"), best.get("title"))
            + f"<span class=small>{_e(VERDICT_LABELS.get(best['verdict'], best['verdict']))}"
            f" · {_e(best.get('where'))}</span>"
            if best
            else "<span class=muted>none open</span>"
        )
        changed = []
        if p.get("new_count"):
            changed.append(f"{p['new_count']} new")
        if p.get("gone_count"):
            changed.append(f"{p['gone_count']} gone")
        flags = p.get("flags") or []
        attrs = (
            f' data-f=1 data-has="{"open" if n_open else "none"}"'
            f' data-changed="{"yes" if changed else "no"}"'
        )
        rows.append(
            (
                "new" if p.get("new_count") else "",
                [
                    _td(
                        f'<a href="{_e(p["href"])}">{_e(p["patient_id"])}</a>',
                        raw=True,
                        sort_value=p["patient_id"],
                    ),
                    _td(p.get("diagnosis")),
                    _td(
                        f"<b>{n_open}</b><span class=small> ({c.get('eligible', 0)} eligible;"
                        f" {c.get('closed', 0)} closed, {c.get('excluded', 0)} excluded)</span>",
                        raw=True,
                        sort_value=n_open,
                    ),
                    _td(best_html, raw=True, sort_value=best["nct_id"] if best else ""),
                    _td(p.get("facts_sentence") or "nothing missing"),
                    _td(", ".join(changed) or "no change", sort_value=len(changed)),
                    _td(p.get("awaiting", 0), sort_value=p.get("awaiting", 0)),
                    _td(
                        _ul([plain(f) for f in flags[:2]], "small")
                        + _fold(f"{len(flags) - 2} more", _ul(flags[2:], "small"))
                        if flags
                        else "",
                        raw=True,
                        sort_value=len(flags),
                    ),
                ],
                attrs,
            )
        )
    return (
        head
        + form
        + _table(
            [
                "Patient",
                "Diagnosis",
                _Col("Open", "Open trials to consider"),
                _Col("Best trial", "Best trial"),
                _Col("Facts to record", "Facts to record"),
                _Col("Changed", "Changed since the last run"),
                _Col("Awaiting review", "Awaiting review"),
                _Col("Data notes", "Data-quality notes"),
            ],
            rows,
            cls="sortable cards summary",
        )
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
    name = changes.get("list_name")
    of_list = f" of the list “{_e(name)}”" if name else ""
    if not prev:
        return head + f"<p>First run{of_list}: nothing to compare with yet.</p>"
    out = [head, f"<p class=muted>Compared with the run{of_list} started {_e(prev)} (UTC).</p>"]
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
                            _td(_patient_link(c), raw=True, sort_value=c["patient_id"]),
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
                            _td(plain(c.get("why"))),
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
                        _td(_patient_link(c), raw=True, sort_value=c["patient_id"]),
                        _td(
                            _trial_link(c["nct_id"], _registry_url(c["nct_id"]), c.get("title")),
                            raw=True,
                            sort_value=c["nct_id"],
                        ),
                        _td(VERDICT_LABELS.get(c["was"], c["was"])),
                        _td(VERDICT_LABELS.get(c.get("now"), c.get("now"))),
                        _td(plain(c.get("why"))),
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
                        _td(status_text(c["before"])),
                        _td(status_text(c["after"])),
                    ]
                    for c in sc
                ),
            )
        )
    else:
        out.append("<p class=muted>None.</p>")
    return "\n".join(out)


# ----------------------------------------------------------------------------- patient page


def render_patient(run: dict, p: dict) -> str:
    """One patient's page.

    ``p``: ``{"patient_id", "diagnosis", "facts": [(label, text)], "notes": [...],
    "digest": patient_digest(...), "options": [...], "not_covered_reason", "gone": [...],
    "unrelated_count", "seeds": {...}, "top": N}``.
    """
    pid = p["patient_id"]
    d = p["digest"]
    counts = d["counts"]
    n_open = counts["eligible"] + counts["needs_review"]
    body = [
        f"<header id=top><nav class=small>{_nav(p)}</nav>",
        f"<h1>Patient {_e(pid)}: {_e(p.get('diagnosis'))}</h1>",
        _disclaimer(),
        "</header>",
        _record_box(d),
        verdict_bar(counts),
    ]
    facts = p.get("facts") or []
    if facts:
        body.append(
            "<ul class=facts>"
            + "".join(f"<li><b>{_e(k)}:</b> {_e(plain(v))}</li>" for k, v in facts)
            + "</ul>"
        )
    notes = [plain(n) for n in p.get("notes") or []]
    if notes:
        body.append(_fold(f"Notes on this patient's data ({len(notes)})", _ul(notes, "small")))

    body.append(_trial_filters(d))
    top = p.get("top", len(d["top"]))
    body.append(
        f"<h2 id=consider>Open trials to consider ({n_open})</h2>"
        f"<p class=muted>Recruiting, not yet recruiting or enrolling by invitation; eligible or "
        f"needs review. The first {_e(top)} are shown, each with its 3 most important checks.</p>"
    )
    if d["top"]:
        body.append(_trials_table(d["top"]))
    elif n_open == 0:
        body.append(
            "<p class=muted>No open trial in the store fits this patient on what is recorded.</p>"
        )
    if d["more"]:
        body.append(
            _fold(
                f"More open trials to consider ({len(d['more'])})",
                _trials_table(d["more"], full=False),
                "block filterable",
            )
        )
    if d["other_country"]:
        body.append(
            _fold(
                f"Open, but no open site in {run.get('country')} ({len(d['other_country'])})",
                _trials_table(d["other_country"], full=False),
                "block filterable",
            )
        )
    if d["closed"]:
        body.append(
            _fold(
                f"Closed or not recruiting ({len(d['closed'])}): would fit, but cannot take "
                "this patient now",
                _trials_table(d["closed"], full=False),
                "block filterable",
            )
        )
    if d["excluded"]:
        body.append(
            _fold(
                f"Excluded trials ({len(d['excluded'])}): the reasons each is closed to this "
                "patient",
                _excluded_table(d["excluded"]),
                "block filterable",
            )
        )
    if p.get("folded"):
        body.append(_folded_section(p["folded"]))
    gone = p.get("gone") or []
    if gone:
        body.append(
            f"<h3>No longer on the list since the last run ({len(gone)})</h3>"
            + _ul(f"{g['nct_id']}: {plain(g.get('why'))}" for g in gone)
        )
    if p.get("unrelated_count"):
        body.append(
            f"<p class=muted>{_e(p['unrelated_count'])} other trials in the store do not name "
            "this diagnosis or a group containing it (not shown).</p>"
        )
    body.append(_options_section(p))
    return _page(f"Patient {pid}: trial matching report", body, run)


def _nav(p: dict) -> str:
    """Links to the index and to the previous / next patient's page (names in one folder)."""
    links = ['<a href="../report.html">← all patients</a>']
    if p.get("previous"):
        links.append(f'<a href="{_e(p["previous"])}" rel=prev>previous patient</a>')
    if p.get("next"):
        links.append(f'<a href="{_e(p["next"])}" rel=next>next patient →</a>')
    return " · ".join(links)


def _record_box(d: dict) -> str:
    facts = d["facts"]
    if not facts:
        return (
            "<section class=record id=record><p><strong>Facts to record:</strong> none missing "
            "for the open trials to consider.</p></section>"
        )
    items = "".join(
        f"<li><b>{_e(f.fact)}</b>: settles {f.checks} check{'s' if f.checks != 1 else ''} on "
        f"{f.trials} trial{'s' if f.trials != 1 else ''}</li>"
        for f in facts[:5]
    )
    rest = facts[5:]
    more = _fold(
        f"{len(rest)} more",
        _ul(f"{f.fact}: {f.checks} checks on {f.trials} trials" for f in rest),
    )
    return (
        "<section class=record id=record><p><strong>Facts to record first:</strong> "
        f"{_e(d['facts_sentence'])}.</p><ol>{items}</ol>{more}</section>"
    )


def _options_of(d: dict, key: str) -> list[str]:
    seen: dict[str, None] = {}
    for group in ("top", "more", "closed", "excluded", "other_country"):
        for t in d[group]:
            seen[t[key]] = None
    return sorted(seen)


def _trial_filters(d: dict) -> str:
    def select(name: str, label: str, options: Sequence[tuple[str, str]]) -> str:
        opts = "".join(f'<option value="{_e(v)}">{_e(w)}</option>' for v, w in options)
        return f"<label>{_e(label)}<select name={name}><option value=''>all</option>{opts}</select></label>"

    phases = _options_of(d, "phase_words")
    purposes = _options_of(d, "purpose")
    return (
        "<form id=filters class=filters role=search>"
        '<label>Search<input type=search name=q placeholder="trial, drug, word"></label>'
        + select("verdict", "Verdict", [(k, w) for k, w in VERDICT_LABELS.items()])
        + select("status", "Status", [("open", "open"), ("closed", "closed or not recruiting")])
        + select("phase", "Phase", [(_slug(p), p) for p in phases])
        + select("miles", "Distance", [(str(m), f"within {m} mi") for m in (50, 100, 250, 500)])
        + select("purpose", "Purpose", [(_slug(p), p) for p in purposes])
        + "<span id=shown class=muted></span></form>"
    )


def _slug(text: str) -> str:
    return "-".join(str(text).lower().replace("/", "-").split())


def _trial_attrs(t: dict) -> str:
    return (
        _attrs_head(t["verdict"], bool(t.get("open")), t.get("phase_words", ""))
        + _miles_attr(t.get("distance_miles"))
        + _attrs_tail(t.get("purpose", ""))
    )


# The cells of rows that recur from patient to patient (a trial's link, status, exclusions,
# a compact row's why), each made once per distinct value: typed, so 1 and 1.0 stay apart.
_cells = lru_cache(maxsize=65536, typed=True)


@_cells
def _attrs_head(verdict, is_open: bool, phase_words) -> str:
    return (
        f' data-f=1 data-verdict="{_e(verdict)}"'
        f' data-status="{"open" if is_open else "closed"}"'
        f' data-phase="{_e(_slug(phase_words))}"'
    )


@_cells
def _miles_attr(miles) -> str:
    return f' data-miles="{"" if miles is None else _e(miles)}"'


@_cells
def _attrs_tail(purpose) -> str:
    return f' data-purpose="{_e(_slug(purpose))}"'


@_cells
def _link_cell(nct_id, url, title, is_new: bool, badge: str = "") -> str:
    return _td(_trial_link(nct_id, url, title, is_new) + badge, raw=True, sort_value=nct_id)


@_cells
def _text_cell(value, sort_value=None) -> str:
    return _td(value, sort_value=sort_value)


@_cells
def _excluded_cell(reasons: tuple) -> str:
    return _td(
        _ul([plain(x) for x in reasons[:2]])
        + _fold(f"{len(reasons) - 2} more reasons", _ul([plain(x) for x in reasons[2:]], "small")),
        raw=True,
    )


@_cells
def _verdict_cell(verdict, review_status, review_reason, review_changed) -> str:
    t = {"review_status": review_status, "review_reason": review_reason}
    t["review_changed"] = review_changed
    return _td(
        _e(VERDICT_LABELS.get(verdict, verdict)) + review_badge(t),
        raw=True,
        cls=f"v-{verdict}",
        sort_value=verdict,
    )


@_cells
def _compact_why(reasons: tuple, met_count, to_review_count, url) -> str:
    """The why of a compact row (report explain="top"): its one-line why, and how many
    criteria lines are left to read, with the registry link."""
    why = _why_line({"reasons": list(reasons), "met_count": met_count})
    k = to_review_count
    detail = (
        f"<span class='small'>{k} criteria lines to read yourself "
        f'(<a href="{_e(url)}">registry page</a>)</span>'
        if k
        else ""
    )
    return _e(why) + detail


@_cells
def _compact_why_cell(reasons: tuple, met_count, to_review_count, url, score) -> str:
    return _td(_compact_why(reasons, met_count, to_review_count, url), raw=True, sort_value=score)


@_cells
def _where_cell(where, miles) -> str:
    """The nearest-site cell (sorted by miles, no site last)."""
    return _td(where, sort_value=miles if miles is not None else 1e9)


@_cells
def _checks_cell(n) -> str:
    verify = (
        f"<span class=small>{n} check{'s' if n != 1 else ''} to verify; "
        "<code>trialmatch match</code> for this patient lists them</span>"
        if n
        else "<span class=muted>nothing to verify</span>"
    )
    return _td(verify, raw=True, sort_value=n)


def _compact_cells(t: dict) -> list[str]:
    """A compact row's cells (what :func:`_trials_table` writes for it), from the cells
    made once per value."""
    miles = t.get("distance_miles")
    place = t.get("place", t["rank"])
    badge = "" if t.get("open") else f" <span class='badge closed'>{_e(t['status_words'])}</span>"
    return [
        _text_cell(place, place),
        _link_cell(t["nct_id"], t.get("url"), t.get("title"), bool(t.get("is_new")), badge),
        _verdict_cell(
            t["verdict"], t.get("review_status"), t.get("review_reason"), t.get("review_changed")
        ),
        _compact_why_cell(
            tuple(t.get("reasons") or ()),
            t.get("met_count", 0),
            t.get("to_review_count", 0),
            t.get("url"),
            t["score"],
        ),
        _checks_cell(t.get("checks", 0)),
        _where_cell(t.get("where"), miles),
        _text_cell(
            f"{t.get('status_words')} · {t.get('phase_words')} · "
            f"{t.get('purpose')} · updated {t.get('last_update') or 'unknown'}"
        ),
    ]


def _why_line(t: dict) -> str:
    """The one-line why: relevance, then the first alignment reason, then what is met."""
    reasons = [
        r
        for r in t.get("reasons") or []
        if "criteria met" not in r and "not machine-checked" not in r
    ]
    head = plain("; ".join(reasons[:2]))
    met = len(t["met"]) if "met" in t else t.get("met_count", 0)
    return head + (f"; {met} criteria met" if met else "")


def _trials_table(trials: list[dict], full: bool = True) -> str:
    """Trial rows; ``full`` lists the criteria lines to read, else only counts them with a
    link to the registry page (folded groups stay small; matches.json has every line)."""
    rows = []
    for t in trials:
        if t.get("explained") is False and not t.get("groups"):
            cells = _compact_cells(t)  # the cells below, made once per distinct value
        else:
            cells = _trial_cells(t, full)
        rows.append(("new" if t.get("is_new") else "", cells, _trial_attrs(t)))
    return _table(
        [
            _Col("#", "Place"),
            "Trial",
            "Verdict",
            "Why",
            _Col("To verify", "To verify"),
            _Col("Nearest open site", "Nearest open site"),
            _Col("Status · phase", "Status · phase · purpose · updated"),
        ],
        rows,
        cls="sortable cards shortlist",
    )


def _trial_cells(t: dict, full: bool) -> list[str]:
    """One row's cells of :func:`_trials_table`."""
    groups = t.get("groups") or []
    first = _ul([g.line() for g in groups[:3]])
    rest = groups[3:]
    verify = first + _fold(f"{len(rest)} more checks", _ul([g.line() for g in rest], "small"))
    if not groups:
        verify = "<span class=muted>nothing to verify</span>"
    met, to_read = t.get("met") or [], t.get("to_review") or []
    detail = _fold(f"criteria met ({len(met)})", _ul([plain(m) for m in met], "small"))
    if t.get("explained") is False:
        # a compact row (report explain="top"): counts, the detail is one command away
        n, k = t.get("checks", 0), t.get("to_review_count", 0)
        verify = (
            f"<span class=small>{n} check{'s' if n != 1 else ''} to verify; "
            "<code>trialmatch match</code> for this patient lists them</span>"
            if n
            else "<span class=muted>nothing to verify</span>"
        )
        detail = (
            f"<span class='small'>{k} criteria lines to read yourself "
            f'(<a href="{_e(t.get("url"))}">registry page</a>)</span>'
            if k
            else ""
        )
    elif full:
        detail += _fold(f"criteria lines to read yourself ({len(to_read)})", _ul(to_read, "small"))
    elif to_read:
        detail += (
            f"<span class='small'>{len(to_read)} criteria lines to read yourself "
            f'(<a href="{_e(t.get("url"))}">registry page</a>)</span>'
        )
    badge = "" if t.get("open") else f" <span class='badge closed'>{_e(t['status_words'])}</span>"
    miles = t.get("distance_miles")
    return [
        _td(t.get("place", t["rank"]), sort_value=t.get("place", t["rank"])),
        _td(
            _trial_link(t["nct_id"], t.get("url"), t.get("title"), t.get("is_new")) + badge,
            raw=True,
            sort_value=t["nct_id"],
        ),
        _td(
            _e(VERDICT_LABELS.get(t["verdict"], t["verdict"])) + review_badge(t),
            raw=True,
            cls=f"v-{t['verdict']}",
            sort_value=t["verdict"],
        ),
        _td(_e(_why_line(t)) + detail, raw=True, sort_value=t["score"]),
        _td(verify, raw=True, sort_value=t.get("checks", len(groups))),
        _td(t.get("where"), sort_value=miles if miles is not None else 1e9),
        _td(
            f"{t.get('status_words')} · {t.get('phase_words')} · "
            f"{t.get('purpose')} · updated {t.get('last_update') or 'unknown'}"
        ),
    ]


def review_badge(t: dict) -> str:
    """The coordinator's decision on a trial row (nothing while undecided and unchanged)."""
    status = t.get("review_status") or "new"
    out = ""
    if status != "new":
        out = (
            f" <span class='badge review' data-review=\"{_e(status)}\">{_e(status)}"
            f"{' · ' + _e(t.get('review_reason')) if t.get('review_reason') else ''}</span>"
        )
    if t.get("review_changed"):
        out += f" <span class='badge changed'>changed since your decision: {_e(t['review_changed'])}</span>"
    return out


def _folded_section(trials: list[dict]) -> str:
    """Trials the coordinator judged not eligible, nothing changed since: folded, with why."""
    items = [
        f"{_trial_link(t['nct_id'], t.get('url'), t.get('title'))}: {_e(t.get('review_reason'))}"
        f"<span class=small> ({_e(t.get('review_who'))}, {_e(t.get('review_at'))})</span>"
        for t in trials
    ]
    body = "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"
    return _fold(f"Judged not eligible by you ({len(trials)})", body, "block folded-review")


def _excluded_table(trials: list[dict]) -> str:
    return _table(
        ["Trial", "Excluded by", _Col("Status", "Status · phase · updated")],
        (
            (
                "new" if t.get("is_new") else "",
                [
                    _link_cell(t["nct_id"], t.get("url"), t.get("title"), bool(t.get("is_new"))),
                    _excluded_cell(tuple(t.get("excluded_by") or ())),
                    _text_cell(
                        f"{t.get('status_words')} · {t.get('phase_words')} · "
                        f"updated {t.get('last_update') or 'unknown'}"
                    ),
                ],
                _trial_attrs(t),
            )
            for t in trials
        ),
    )


def _options_section(p: dict) -> str:
    out = ["<h2 id=options>Standard options (PDQ) and subtype-targeted agents</h2>"]
    if p.get("not_covered_reason"):
        out.append(f"<p><em>{_e(plain(p['not_covered_reason']))}</em></p>")
    opts = p.get("options", [])
    seeds = p.get("seeds") or {}
    relevant = [o for o in opts if o.get("status") != "not_applicable"]
    rest = [o for o in opts if o.get("status") == "not_applicable"]
    if relevant:
        out.append(_options_table(relevant, seeds))
    elif opts:
        out.append("<p class=muted>No encoded option applies on what is recorded.</p>")
    if rest:
        out.append(
            _fold(
                f"Options that do not apply ({len(rest)}): why not",
                _table(
                    ["Option", "Why not"],
                    (
                        [
                            _td(_option_title(o), raw=True),
                            _td(_ul([plain(r) for r in o.get("reasons") or []]), raw=True),
                        ]
                        for o in rest
                    ),
                ),
                "block",
            )
        )
    return "\n".join(out)


def _option_title(o: dict) -> str:
    label = o.get("label")
    return f"{_e(o.get('title') or plain(o['id']))}" + (
        f"<br><span class=small>{_e(label)}</span>" if label else ""
    )


def _citations_html(cits: Sequence, seeds: dict) -> str:
    items = []
    for c in citations(cits, seeds):
        text = _e(c.line())
        if c.url:
            text = f'<a href="{_e(c.url)}">{text}</a>'
        items.append(f"<li>{text}{_ul(c.texts, 'small')}</li>")
    return f"<ul class=cite>{''.join(items)}</ul>" if items else ""


def _options_table(opts: list[dict], seeds: dict) -> str:
    rows = []
    for o in opts:
        why = _ul([plain(r) for r in o.get("reasons") or []])
        extra = []
        if o.get("evidence_level"):
            extra.append(f"level of evidence: {o['evidence_level']}")
        extra += [f"figure: {x}" for x in o.get("outcomes") or []]
        why += _ul(extra, "small")
        caveats = [plain(c) for c in o.get("caveats") or []]
        if len(caveats) > 2:
            why += _fold(f"caveats ({len(caveats)})", _ul(caveats, "small"))
        else:
            why += _ul([f"caveat: {x}" for x in caveats], "small")
        agents = []
        if o.get("agents_received"):
            agents.append("received: " + ", ".join(o["agents_received"]))
        if o.get("agents_remaining"):
            agents.append("not yet received: " + ", ".join(o["agents_remaining"]))
        if o.get("procedures"):
            agents.append("procedures: " + ", ".join(plain(x) for x in o["procedures"]))
        rows.append(
            [
                _td(_option_title(o), raw=True, sort_value=o.get("title") or o["id"]),
                _td(
                    OPTION_STATUS_LABELS.get(o["status"], o["status"]),
                    cls=f"s-{o['status']}",
                    sort_value=o["status"],
                ),
                _td(why, raw=True),
                _td(_ul([plain(v) for v in o.get("verify") or []]), raw=True),
                _td(_ul(agents), raw=True),
                _td(_citations_html(o.get("citations") or [], seeds), raw=True),
            ]
        )
    return _table(["Option", "Status", "Why", "To verify", "Agents", "PDQ source"], rows)


PATIENT_DIR = "patients"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def patient_page_name(patient_id) -> str:
    """The file name of a patient's page: the id when it is a safe file name, else the id with
    unsafe characters replaced and a short hash of the id (two ids never share a page)."""
    pid = str(patient_id)
    safe = _UNSAFE.sub("_", pid)[:60]
    if safe == pid and not pid.startswith("."):
        return f"{pid}.html"
    return f"{safe.lstrip('.')}-{hashlib.sha256(pid.encode()).hexdigest()[:8]}.html"
