"""The ``trialmatch`` command line: thin wrappers over the library.

Each command parses options, calls one library function and turns library errors into
``click.ClickException`` with a message that says what to do next.

Exit codes (documented in the README):
  0  everything succeeded
  1  an error the user can fix (bad file, bad option value, trial not found, ...)
  2  usage error (unknown option, missing argument) -- click's own code
  3  partial failure: some patients failed, the rest were processed and written
  4  total failure: every patient failed (or nothing could be processed)
  5  another run holds the lock (``report``)
"""

from __future__ import annotations

import functools
import sys

import click

from matcher import DISCLAIMER, __version__
from matcher.errors import MatcherError
from matcher.exitcodes import (  # noqa: F401 - re-exported for commands below
    EXIT_ALL_FAILED,
    EXIT_ERROR,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    batch_exit_code,
)


def handle_errors(func):
    """Turn library errors into one clean line on stderr (never a traceback on user input)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MatcherError as exc:
            raise click.ClickException(str(exc)) from exc
        except FileNotFoundError as exc:
            raise click.ClickException(f"{exc.filename or exc}: file not found") from exc

    return wrapper


def emit_json(data) -> None:
    """Print JSON to stdout, UTF-8, stable key order as built."""
    import json

    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# Options shared by several commands (one definition each).
status_option = click.option(
    "--status",
    "status_list",
    default="",
    help="Overall statuses admitted (default RECRUITING,NOT_YET_RECRUITING; 'any' for all).",
)
max_miles_option = click.option(
    "--max-miles",
    type=click.FloatRange(min=0),
    default=None,
    help="Exclude trials whose nearest open site is farther (miles).",
)
patient_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv", "fhir"]),
    default=None,
    help="Patient file format (default: from the extension and content; a folder means FHIR bundles).",
)
as_of_option = click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Compute ages at this date (YYYY-MM-DD; default today).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trialmatch")
@click.option(
    "--db",
    "db_path",
    envvar="TRIALMATCH_DB",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite trial store (default: the user data dir; env TRIALMATCH_DB).",
)
@click.option(
    "--api-url",
    envvar="TRIALMATCH_API_URL",
    default=None,
    help="ClinicalTrials.gov API v2 base URL (env TRIALMATCH_API_URL).",
)
@click.pass_context
def cli(ctx: click.Context, db_path: str | None, api_url: str | None) -> None:
    """Match sarcoma patients to standard options and ClinicalTrials.gov trials.

    Supports coordinator review; not medical advice.
    """
    ctx.ensure_object(dict)
    ctx.obj["db_path"] = db_path
    ctx.obj["api_url"] = api_url


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="trialmatch")


# ---- section: normalize (patients) ----
@cli.command("normalize")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=str))
@patient_format_option
@as_of_option
@handle_errors
def normalize_cmd(input_path: str, fmt: str | None, as_of) -> None:
    """Print normalized patient profiles as JSON, each with its warnings.

    INPUT is a JSON file (one patient or a list), a CSV file, a FHIR Bundle, or a folder of
    FHIR bundles. Patients that fail are reported on stderr, one line each; the others are
    printed. Exit code 0: all normalized; 3: some failed; 4: all failed.
    """
    from matcher.patient import read_patients

    batch = read_patients(input_path, fmt=fmt, as_of=as_of.date() if as_of else None)
    emit_json([p.to_dict() for p in batch.patients])
    for err in batch.errors:
        click.echo(f"error: {err}", err=True)
    code = batch_exit_code(len(batch.patients), len(batch.errors))
    if code:
        sys.exit(code)


# ---- section: options / criteria (knowledge pack) ----
@cli.group("criteria")
def criteria_group() -> None:
    """The knowledge pack in criteria/ (PDQ standard options and Table 9 agents)."""


@criteria_group.command("check")
@handle_errors
def criteria_check_cmd() -> None:
    """Validate the knowledge pack and run every option's cases; one line per option.

    Exit code 0 when the pack is valid and every case passes; 1 with the error otherwise.
    """
    from matcher.knowledge import check_pack, load_pack

    pack = load_pack()
    results = check_pack(pack)
    failed = [r for r in results if not r.ok]
    for oid, opt in pack.options.items():
        mine = [r for r in results if r.option_id == oid]
        bad = sum(not r.ok for r in mine)
        gaps = sum(r.known_gap is not None for r in mine)
        refs = len(pack.citations(oid))
        state = "ok  " if not bad else "FAIL"
        click.echo(
            f"{state} {oid}  [{opt.kind}, {opt.group}]  {len(mine)} cases "
            f"({gaps} known gap{'s' if gaps != 1 else ''}), "
            f"{refs} citation{'s' if refs != 1 else ''}"
        )
    for r in failed:
        click.echo(f"case failed: {r.option_id}: {r.name!r}: {r.problem}", err=True)
    if failed:
        raise click.ClickException(
            f"{len(failed)} case(s) failed; fix the option or its cases file in criteria/options/"
        )
    click.echo(
        f"knowledge pack {pack.version}: {len(pack.options)} options, {len(results)} cases pass"
    )


@cli.command("options")
@click.argument("patient_file", type=click.Path(exists=True, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Emit a JSON list, one entry per patient.")
@as_of_option
@handle_errors
def options_cmd(patient_file: str, as_json: bool, as_of) -> None:
    """Show the PDQ standard options and Table 9 agents for each patient in PATIENT_FILE.

    Every option is listed with its status (applies / possibly_applies / not_applicable),
    reasons, agents received and remaining, verify items, caveats and citations. Patients
    that fail to read are reported on stderr; exit code 0 all ok, 3 some failed, 4 all failed.
    """
    from matcher.knowledge import evaluate_options, load_pack
    from matcher.patient import read_patients

    pack = load_pack()
    batch = read_patients(patient_file, as_of=as_of.date() if as_of else None)
    results = [evaluate_options(p, pack) for p in batch.patients]
    if as_json:
        emit_json([r.to_dict() for r in results])
    else:
        for patient, res in zip(batch.patients, results, strict=True):
            click.echo(res.to_text(patient))
            click.echo("")
        click.echo(f"knowledge pack {pack.version}: {len(results)} patient(s)")
    for err in batch.errors:
        click.echo(f"error: {err}", err=True)
    code = batch_exit_code(len(results), len(batch.errors))
    if code:
        sys.exit(code)


# ---- section: sync / import (API client and store) ----
def _open_store(ctx: click.Context):
    from matcher.store import Store

    return Store(ctx.obj.get("db_path") if ctx.obj else None)


def _sync_statuses(values: tuple[str, ...]) -> set[str] | None:
    """``--status`` values (repeatable, comma lists allowed; ``all``/``any``) -> sync statuses."""
    from matcher.ctgov import STATUSES

    if not values:
        return None
    out = {s.strip().upper() for v in values for s in v.replace("|", ",").split(",") if s.strip()}
    if out & {"ALL", "ANY"}:
        return {"ALL"}
    bad = sorted(out - set(STATUSES))
    if bad:
        raise click.BadParameter(
            f"unknown status {', '.join(bad)}; accepted: all, or {', '.join(STATUSES)}",
            param_hint="--status",
        )
    return out


class _SyncBar:
    """A click progress bar (studies; pages in the label) on a terminal, silence otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.total = 0
        self.done = 0

    def __call__(self, p) -> None:
        if not self.enabled:
            return
        if p.page == 1 and p.total:
            self.total += p.total
        if self.bar is None:
            self.bar = click.progressbar(
                length=max(self.total, 1), label="Syncing", file=sys.stderr, show_pos=True
            )
            self.bar.__enter__()
        self.bar.length = max(self.total, p.studies_done, 1)
        self.bar.label = f"Syncing: page {p.pages_done}"
        self.bar.update(p.studies_done - self.done)
        self.done = p.studies_done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@cli.command("sync")
@click.option(
    "--condition",
    "conditions",
    multiple=True,
    metavar="TEXT",
    help="Condition to search (repeatable; default: sarcoma, soft tissue sarcoma and every "
    "soft-tissue subtype in the vocabulary).",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    metavar="STATUS",
    help="Overall status to keep (repeatable or comma list; default: RECRUITING, "
    "NOT_YET_RECRUITING, ENROLLING_BY_INVITATION; 'all' keeps every status).",
)
@click.option(
    "--full",
    is_flag=True,
    help="Fetch everything in a fresh run, not only what changed since the last sync.",
)
@click.option(
    "--recheck",
    is_flag=True,
    help="Also re-check every stored open trial by NCT id (done anyway weekly and on --full); "
    "trials the registry no longer returns are marked and no longer offered.",
)
@click.option(
    "--min-interval",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds between API requests.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
@handle_errors
def sync_cmd(ctx, conditions, statuses, full, recheck, min_interval, as_json) -> None:
    """Fill the trial store from ClinicalTrials.gov (incremental after the first run).

    Asks only for studies updated since the last successful sync unless --full. An
    interrupted sync (network failure, Ctrl-C) keeps every page already fetched; run the
    same command again to resume. Queries carry vocabulary terms only, never patient data.
    """
    from matcher.ctgov import CtgovClient
    from matcher.errors import ApiError, LockError
    from matcher.lock import RunLock, lock_path
    from matcher.store import default_db_path
    from matcher.sync import sync

    wanted = _sync_statuses(statuses)
    client = CtgovClient(base_url=ctx.obj.get("api_url"), min_interval=min_interval)
    bar = _SyncBar(sys.stderr.isatty() and not as_json)
    db = (ctx.obj.get("db_path") if ctx.obj else None) or default_db_path()
    try:
        lock = RunLock(lock_path(db), "sync").__enter__()
    except LockError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_LOCKED)
    ctx.call_on_close(lambda: lock.__exit__(None, None, None))
    with _open_store(ctx) as st:
        try:
            res = sync(
                client,
                st,
                conditions=list(conditions) or None,
                statuses=wanted,
                full=full,
                progress=bar,
                recheck=recheck,
            )
        except ApiError as exc:
            bar.close()
            raise click.ClickException(
                f"{exc}. Pages fetched so far are stored; run the same command again to resume."
            ) from exc
        except KeyboardInterrupt:
            bar.close()
            click.echo(
                "\nInterrupted. Pages fetched so far are stored; run the same command again "
                "to resume.",
                err=True,
            )
            sys.exit(EXIT_ERROR)
        bar.close()
        total = st.count()
        path = st.path
    if as_json:
        emit_json(res.to_dict() | {"store": str(path), "trials_in_store": total})
        return
    how = f"{res.mode}{' since ' + res.since if res.since else ''}{', resumed' if res.resumed else ''}"
    click.echo(
        f"Sync ok ({how}): {res.pages} pages, {res.studies} studies: {res.added} added, "
        f"{res.updated} updated, {res.unchanged} unchanged, {res.skipped} skipped "
        f"(status not wanted); {res.requests} requests."
    )
    if res.rechecked:
        click.echo(
            f"Re-checked {res.rechecked} stored open trials by NCT id; {res.missing} no longer "
            "returned by the registry (marked, no longer offered; see 'trialmatch store info')."
        )
    click.echo(f"Data timestamp {res.data_timestamp or 'unknown'}; store {path}: {total} trials.")


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
@handle_errors
def import_cmd(ctx, paths, as_json) -> None:
    """Import trial records from files or folders into the store.

    Accepts API v2 study JSON, /studies page JSON, website downloads (ctg-studies.json) and
    classic XML (clinical_study). Re-importing the same files changes nothing. Exit code 0: all
    records read; 3: some files or entries failed; 4: nothing could be read.
    """
    from matcher.store import import_paths

    with _open_store(ctx) as st:
        res = import_paths(st, paths)
        total = st.count()
        path = st.path
    for err in res.errors:
        click.echo(f"error: {err}", err=True)
    if as_json:
        emit_json(res.to_dict() | {"store": str(path), "trials_in_store": total})
    else:
        click.echo(
            f"Imported {res.records} records: {res.added} added, {res.updated} updated, "
            f"{res.unchanged} unchanged, {res.stale} older than stored (kept the stored one); "
            f"{len(res.errors)} errors."
        )
        click.echo(f"Store {path}: {total} trials.")
    code = batch_exit_code(res.ok, len(res.errors))
    if code:
        sys.exit(code)


@cli.group("store")
def store_group() -> None:
    """The local trial store (SQLite)."""


@store_group.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@handle_errors
def store_info_cmd(ctx, as_json) -> None:
    """Show the store's path, trials by status, the last sync and its dataTimestamp."""
    with _open_store(ctx) as st:
        info = st.info()
        missing = st.missing()
    if as_json:
        emit_json(info | {"missing": missing})
        return
    click.echo(f"Store: {info['path']}")
    click.echo(f"Trials: {info['trials']}")
    for status, n in info["by_status"].items():
        click.echo(f"  {status}: {n}")
    last = info["last_sync"]
    if last:
        click.echo(
            f"Last sync: {last['finished_at']} ({last['mode']}): {last['added']} added, "
            f"{last['updated']} updated, {last['unchanged']} unchanged"
        )
    else:
        click.echo("Last sync: never (run 'trialmatch sync', or 'trialmatch import PATH')")
    click.echo(f"Data timestamp: {info['data_timestamp'] or 'unknown'}")
    click.echo(f"Open trials last re-checked by id: {info['last_recheck'] or 'never'}")
    for row in missing:
        click.echo(
            f"  {row['nct_id']} (last known {row['overall_status']}): {row['missing_reason']}"
        )


# ---- section: trial (eligibility) ----
@cli.command("trial")
@click.argument("ref", metavar="NCTID|FILE")
@click.option(
    "--patient",
    "patient_file",
    type=click.Path(exists=True, path_type=str),
    default=None,
    help="Patient file (JSON/CSV/FHIR): add a verdict per criterion, per patient.",
)
@click.option("--json", "as_json", is_flag=True, help="Emit JSON (see README: trial --json).")
@as_of_option
@click.pass_context
@handle_errors
def trial_cmd(ctx: click.Context, ref: str, patient_file: str | None, as_json: bool, as_of) -> None:
    """Show a trial's parsed eligibility criteria, and verdicts with --patient.

    NCTID is read from the local store (run `trialmatch sync` or `import` first); FILE is
    any record file. With several patients in --patient, verdicts are given per patient
    (JSON: a list of objects, each with "patient_id").
    """
    from matcher.eligibility import evaluate, format_criteria, parse_trial, trial_report
    from matcher.trial import load_trial_records

    records = load_trial_records(ref, ctx.obj.get("db_path") if ctx.obj else None)
    patients: list = []
    n_failed = 0
    if patient_file:
        from matcher.patient import read_patients

        batch = read_patients(patient_file, as_of=as_of.date() if as_of else None)
        for err in batch.errors:
            click.echo(f"error: {err}", err=True)
        patients, n_failed = batch.patients, len(batch.errors)
        if not patients:
            raise click.ClickException(f"{patient_file}: no patient could be read")
    out: list[dict] = []
    texts: list[str] = []
    for record, _source in records:
        parsed = parse_trial(record)
        if not patients:
            out.append(trial_report(parsed))
            texts.append(format_criteria(parsed))
            continue
        for p in patients:
            obj = trial_report(parsed, p)
            if len(patients) > 1:
                obj = {"patient_id": p.id, **obj}
            out.append(obj)
            texts.append(f"Patient {p.id}\n" + format_criteria(parsed, evaluate(p, parsed)))
    if as_json:
        emit_json(out[0] if len(out) == 1 else out)
    else:
        click.echo(("\n\n" + "=" * 72 + "\n\n").join(texts))
        click.echo("\n" + DISCLAIMER)
    if patient_file and n_failed:
        sys.exit(batch_exit_code(len(patients), n_failed))


# ---- section: match (ranking) ----


def _parse_statuses(value: str) -> frozenset[str] | None:
    """``--status`` list: comma-separated v2 statuses, or ``any``."""
    from matcher.rank import DEFAULT_STATUSES

    if not value:
        return DEFAULT_STATUSES
    if value.strip().lower() == "any":
        return None
    known = {
        "ACTIVE_NOT_RECRUITING", "COMPLETED", "ENROLLING_BY_INVITATION", "NOT_YET_RECRUITING",
        "RECRUITING", "SUSPENDED", "TERMINATED", "WITHDRAWN", "AVAILABLE", "NO_LONGER_AVAILABLE",
        "TEMPORARILY_NOT_AVAILABLE", "APPROVED_FOR_MARKETING", "WITHHELD", "UNKNOWN",
    }  # fmt: skip
    out = {s.strip().upper() for s in value.replace("|", ",").split(",") if s.strip()}
    bad = sorted(out - known)
    if bad:
        raise click.BadParameter(
            f"unknown status {', '.join(bad)}; accepted: any, or a comma list of {', '.join(sorted(known))}",
            param_hint="--status",
        )
    return frozenset(out)


def _print_matches(pm, show_excluded: bool) -> None:
    from matcher.render import site_text

    click.echo(f"\nPatient {pm.patient_id}")
    for note in pm.notes:
        click.echo(f"  note: {note}")
    shown = [s for s in pm.trials if s.verdict != "excluded"]
    excluded = [s for s in pm.trials if s.verdict == "excluded"]
    if not shown:
        click.echo("  no trial this patient could join in the candidates")
    for s in shown:
        dist = f"{s.distance_miles:g} mi" if s.distance_miles is not None else "distance n/a"
        click.echo(
            f"  {s.rank:>3}. {s.nct_id}  {s.verdict:<12} score {s.score:>6.1f}  {dist:<12} "
            f"{s.phase:<13} {s.status}"
        )
        click.echo(f"       {s.title}")
        for r in s.reasons:
            click.echo(f"       + {r}")
        for v in s.verify:
            click.echo(f"       ? verify: {v}")
        if s.nearest_site:
            click.echo(f"       @ nearest open site: {site_text(s.nearest_site)}")
        click.echo(f"       {s.url}")
    if excluded:
        click.echo(f"  excluded ({len(excluded)}):")
        for s in excluded if show_excluded else excluded[:10]:
            click.echo(f"    {s.nct_id}: {'; '.join(s.excluded_by)}")
        if not show_excluded and len(excluded) > 10:
            click.echo(f"    ... {len(excluded) - 10} more (use --all to list every one)")
    if pm.unrelated:
        click.echo(
            f"  {pm.unrelated} trial(s) in the candidates are unrelated to this diagnosis (not shown)"
        )


@cli.command("match")
@click.argument("patient_file", type=click.Path(exists=True))
@click.option(
    "--trials",
    "trials_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Match against these record files/folders instead of the store (repeatable).",
)
@click.option("--live", is_flag=True, help="Query the API with the patient's diagnosis terms only.")
@status_option
@max_miles_option
@click.option(
    "--json", "as_json", is_flag=True, help="JSON: a list of {patient_id, trials: [...]}."
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV: one row per patient and trial.")
@click.option("--all", "show_all", is_flag=True, help="List every excluded trial on the terminal.")
@as_of_option
@click.pass_context
@handle_errors
def match_cmd(
    ctx, patient_file, trials_paths, live, status_list, max_miles, as_json, as_csv, show_all, as_of
):
    """Rank trials for each patient in PATIENT_FILE, every verdict explained."""
    from matcher.ctgov import CtgovClient
    from matcher.engine import match_cohort, parse_records
    from matcher.knowledge import load_pack
    from matcher.live import live_records
    from matcher.parsecache import parse_store
    from matcher.patient import read_patients
    from matcher.rank import RankConfig
    from matcher.records import iter_records
    from matcher.store import Store

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    if live and trials_paths:
        raise click.UsageError("choose one source: --live or --trials (or neither, for the store)")
    config = RankConfig(statuses=_parse_statuses(status_list), max_miles=max_miles)
    batch = read_patients(patient_file, as_of=as_of.date() if as_of else None)
    for err in batch.errors:
        click.echo(f"error: {err}", err=True)
    pack = load_pack()
    from matcher.vocab import load_vocab

    vocab = load_vocab()
    results = []
    if live:
        client = CtgovClient(base_url=ctx.obj["api_url"])
        for p in batch.patients:
            parsed = parse_records(live_records(p.diagnosis, vocab, client, config.statuses))
            results += match_cohort([p], parsed, pack, vocab, config)
    else:
        if trials_paths:
            records = []
            for tp in trials_paths:
                for item in iter_records(tp):
                    if item.error is not None:
                        click.echo(f"error: {item.error}", err=True)
                    else:
                        records.append(item.record)
        else:
            with Store(ctx.obj["db_path"]) as store:
                if store.count() == 0:
                    raise click.ClickException(
                        f"the trial store {store.path} is empty: run 'trialmatch sync' or "
                        "'trialmatch import PATH', or pass --trials PATH"
                    )
                parsed, _counts = parse_store(store, config.statuses)
        if trials_paths:
            parsed = parse_records(records)
        results = match_cohort(batch.patients, parsed, pack, vocab, config)

    if as_json:
        emit_json([r.to_dict() for r in results])
    elif as_csv:
        from matcher.render import csv_text

        rows = [
            [
                r.patient_id,
                s.nct_id,
                s.rank,
                s.verdict,
                s.score,
                s.distance_miles,
                s.title,
                s.phase,
                s.status,
                s.last_update,
                s.reasons,
                s.verify,
                s.excluded_by,
                s.url,
            ]
            for r in results
            for s in r.trials
        ]
        click.echo(
            csv_text(
                [
                    "patient_id",
                    "nct_id",
                    "rank",
                    "verdict",
                    "score",
                    "distance_miles",
                    "title",
                    "phase",
                    "status",
                    "last_update",
                    "reasons",
                    "verify",
                    "excluded_by",
                    "url",
                ],
                rows,
            ),
            nl=False,
        )
    else:
        click.echo(DISCLAIMER)
        for r in results:
            _print_matches(r, show_all)
    ctx.exit(batch_exit_code(len(batch.patients), len(batch.errors)))


# ---- section: report (nightly) ----


@cli.command("report")
@click.argument("patients", type=click.Path(exists=True))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for report.html, matches.csv/json, options.json, errors.csv.",
)
@click.option(
    "--trials",
    "trials_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Import these record files/folders into the store first (repeatable; idempotent).",
)
@status_option
@max_miles_option
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option(
    "--scheduler",
    default=None,
    help="Dask scheduler address (tcp://host:8786); default: a LocalCluster.",
)
@patient_format_option
@as_of_option
@click.pass_context
def report_cmd(
    ctx, patients, out_dir, trials_paths, status_list, max_miles, engine, scheduler, fmt, as_of
):
    """Nightly job: match every patient in PATIENTS and write the report to --out.

    Exit codes: 0 ok, 3 some patients failed, 4 all failed, 5 another run holds the lock.
    """
    from matcher.errors import LockError
    from matcher.rank import RankConfig
    from matcher.report import ReportConfig, run_report

    config = ReportConfig(
        rank=RankConfig(statuses=_parse_statuses(status_list), max_miles=max_miles),
        engine=engine,
        scheduler=scheduler,
        as_of=as_of.date() if as_of else None,
        fmt=fmt,
    )
    tty = sys.stderr.isatty()  # progress on a terminal only: quiet under cron
    seen = {"trials": 0, "patients_total": 0, "patients": 0}

    def progress(kind: str, n: int) -> None:
        if not tty:
            return
        if kind == "patients":
            seen["patients"] += n
            done, total = seen["patients"], seen["patients_total"]
            if done == total or done % max(1, total // 100) == 0:
                click.echo(f"\r  {done}/{total} patients", err=True, nl=False)
            return
        seen[kind] = n
        if kind == "patients_total":
            click.echo(
                f"matching {n} patients against {seen['trials']} candidate trials ...", err=True
            )

    try:
        result = run_report(patients, out_dir, ctx.obj["db_path"], trials_paths, config, progress)
    except LockError as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(EXIT_LOCKED)
    except MatcherError as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(EXIT_ALL_FAILED)
    if tty and seen["patients"]:
        click.echo("", err=True)  # end the progress line
    ch = result.changes
    click.echo(
        f"{result.n_patients_ok} patients matched, {result.n_failed} failed, "
        f"{result.n_trials} candidate trials; "
        f"{len(ch['new'])} new, {len(ch['gone'])} gone, {len(ch['status_changes'])} status changes "
        f"since the last run. Report: {result.out_dir / 'report.html'}"
    )
    for line in result.errors:
        click.echo(f"error: {line}", err=True)
    if result.n_failed:
        click.echo(
            f"{result.n_failed} patient(s) failed: see {result.out_dir / 'errors.csv'}", err=True
        )
    ctx.exit(result.exit_code)


__all__ = ["cli", "main", "DISCLAIMER", "sys"]
