"""The ``trialmatch`` command line: thin wrappers over the library.

Each command parses options, calls one library function and turns library errors into
``click.ClickException`` with a message that says what to do next.

Exit codes (the README's table; ``matcher.exitcodes``), the same for every command:
  0  everything succeeded
  1  something outside the input must be fixed first (empty store, network, trial not found)
  2  usage error: unknown option, bad option value, missing file argument (click's code)
  3  partial: some patients (or records) failed, the rest were processed and written
  4  nothing processed: the input file cannot be read, every patient or record failed
  5  another run holds the store's lock

Options that name where things are (``--db``, ``--api-url``, ``--as-of``) and how much to
say (``-q``, ``-v``) are accepted before or after the subcommand.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
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


class CliError(click.ClickException):
    """A library error as one ``Error: ...`` line, with the exit code its kind calls for."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR):
        super().__init__(message)
        self.exit_code = exit_code


def exit_code_for(exc: Exception) -> int:
    """The documented exit code for a library error (see the module docstring)."""
    from matcher.errors import InputError, LockError, RecordError, ReviewError
    from matcher.statuses import StatusError

    if isinstance(exc, LockError):
        return EXIT_LOCKED
    if isinstance(exc, (InputError, RecordError)):
        return EXIT_ALL_FAILED
    if isinstance(exc, (StatusError, ReviewError)):
        return EXIT_USAGE
    return EXIT_ERROR


def handle_errors(func):
    """Turn library errors into one clean line on stderr (never a traceback on user input)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MatcherError as exc:
            raise CliError(str(exc), exit_code_for(exc)) from exc
        except FileNotFoundError as exc:
            raise CliError(f"{exc.filename or exc}: file not found", EXIT_ALL_FAILED) from exc

    return wrapper


# ---- options accepted before or after the subcommand --------------------------------------
def _keep(key: str):
    """Option callback: store a given value in ``ctx.obj`` (a later position wins)."""

    def callback(ctx: click.Context, _param, value):
        obj = ctx.ensure_object(dict)
        if value is not None and value != ():
            obj[key] = value
        return value

    return callback


def _count(key: str, step: int):
    def callback(ctx: click.Context, _param, value):
        obj = ctx.ensure_object(dict)
        if value:
            obj[key] = obj.get(key, 0) + step * int(value)
        return value

    return callback


def place_options(top: bool = False):
    """``--db``, ``--api-url``, ``--as-of``, ``-q``, ``-v``: on the group (``top``, with the
    environment variables) and on every subcommand, so either position works."""

    def decorate(f):
        opts = [
            click.option(
                "--db",
                type=click.Path(dir_okay=False),
                default=None,
                envvar="TRIALMATCH_DB" if top else None,
                expose_value=False,
                callback=_keep("db_path"),
                help="SQLite trial store (default: the user data dir; env TRIALMATCH_DB).",
            ),
            click.option(
                "--api-url",
                default=None,
                envvar="TRIALMATCH_API_URL" if top else None,
                expose_value=False,
                callback=_keep("api_url"),
                help="ClinicalTrials.gov API v2 base URL (env TRIALMATCH_API_URL).",
            ),
            click.option(
                "--as-of",
                type=click.DateTime(formats=["%Y-%m-%d"]),
                default=None,
                expose_value=False,
                callback=_keep("as_of"),
                help="Compute ages at this date (YYYY-MM-DD; default today).",
            ),
            click.option(
                "-q",
                "--quiet",
                is_flag=True,
                default=False,
                expose_value=False,
                callback=_count("verbosity", -1),
                help="Print results and errors only (no warnings, progress or summary).",
            ),
            click.option(
                "-v",
                "--verbose",
                count=True,
                expose_value=False,
                callback=_count("verbosity", 1),
                help="Also print each patient's input warnings (repeatable).",
            ),
        ]
        for opt in reversed(opts):
            f = opt(f)
        return f

    return decorate


def _obj(key: str, default=None):
    ctx = click.get_current_context()
    return (ctx.obj or {}).get(key, default)


def _as_of():
    value = _obj("as_of")
    return value.date() if value is not None else None


def _verbosity() -> int:
    return _obj("verbosity", 0)


def note(message: str) -> None:
    """A warning or progress line on stderr, unless -q."""
    if _verbosity() >= 0:
        click.echo(message, err=True)


def _use_color() -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def echo_input_notes(batch) -> None:
    """File-level warnings (columns not read ...) on stderr; each patient's with -v."""
    for w in batch.warnings:
        note(f"warning: {w}")
    if _verbosity() > 0:
        for p in batch.patients:
            for w in p.warnings:
                click.echo(f"warning: patient {p.id}: {w}", err=True)


def batch_summary(batch) -> str:
    """``"3 patients read, 1 failed, 2 warnings (columns not read: Foo, Bar)"``."""
    n_warn = len(batch.warnings) + sum(len(p.warnings) for p in batch.patients)
    text = (
        f"{len(batch.patients)} patient{'s' if len(batch.patients) != 1 else ''} read, "
        f"{len(batch.errors)} failed, {n_warn} warning{'s' if n_warn != 1 else ''}"
    )
    if batch.columns_not_read:
        text += f" (columns not read: {', '.join(batch.columns_not_read)})"
    return text


def emit_json(data) -> None:
    """Print JSON to stdout, UTF-8, stable key order as built."""
    import json

    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


class WorkersType(click.ParamType):
    """``--workers``: ``auto`` or a whole number >= 1."""

    name = "auto|N"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            got = value
        elif str(value).strip().lower() == "auto":
            return "auto"
        else:
            try:
                got = int(str(value).strip())
            except ValueError:
                got = 0
        if got < 1:
            self.fail(f"{value!r} is not accepted: use 'auto' or a whole number >= 1", param, ctx)
        return got


# Options shared by several commands (one definition each).
status_option = click.option(
    "--status",
    "status_list",
    multiple=True,
    metavar="STATUS",
    help="Trial statuses admitted: 'open' (default: recruiting, not yet recruiting, enrolling "
    "by invitation), 'any', or a comma list of statuses (repeatable).",
)
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for each API reply.",
)
retries_option = click.option(
    "--retries",
    type=click.IntRange(min=0, max=20),
    default=6,
    show_default=True,
    help="Retries after a failed API request (a refused connection or unknown host: at most 1).",
)


def _statuses(values) -> frozenset[str] | None:
    """``--status`` values -> admitted statuses (None = any); a bad word is a usage error."""
    from matcher.statuses import StatusError, parse_statuses

    try:
        return parse_statuses(values)
    except StatusError as exc:
        raise click.BadParameter(str(exc), param_hint="--status") from None


def _client(timeout: float = 30.0, retries: int = 6, min_interval: float = 1.0):
    """An API client whose retries print one line each on stderr (with the wait)."""
    from matcher.ctgov import CtgovClient

    return CtgovClient(
        base_url=_obj("api_url"),
        timeout=timeout,
        max_retries=retries,
        min_interval=min_interval,
        on_retry=lambda line: note(f"retry: {line}"),
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
    help="Patient file format (default: from the content, then the extension; a folder "
    "means FHIR bundles).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="trialmatch")
@place_options(top=True)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Match sarcoma patients to standard options and ClinicalTrials.gov trials.

    Supports coordinator review; not medical advice. --db, --api-url, --as-of, -q and -v
    work before or after the command name. Exit codes: 0 ok, 1 fix something first (empty
    store, network), 2 usage, 3 some failed, 4 nothing processed, 5 locked.
    """
    ctx.ensure_object(dict)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="trialmatch")


# ---- section: normalize (patients) ----
@cli.command("normalize")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=str))
@patient_format_option
@place_options()
@handle_errors
def normalize_cmd(input_path: str, fmt: str | None) -> None:
    """Print normalized patient profiles as JSON, each with its warnings.

    INPUT is a JSON file (one patient or a list), a CSV/TSV spreadsheet, a FHIR Bundle, or a
    folder of FHIR bundles. Patients that fail are reported on stderr, one line each; the
    others are printed. When columns were not read (or with -v), a summary line goes to
    stderr, so stdout stays JSON. Exit code 0: all normalized; 3: some failed; 4: none.
    """
    from matcher.patient import read_patients

    batch = read_patients(input_path, fmt=fmt, as_of=_as_of())
    emit_json([p.to_dict() for p in batch.patients])
    for err in batch.errors:
        click.echo(f"error: {err}", err=True)
    echo_input_notes(batch)
    if batch.warnings or _verbosity() > 0:  # stdout is JSON: the summary goes to stderr
        note(batch_summary(batch))
    code = batch_exit_code(len(batch.patients), len(batch.errors))
    if code:
        sys.exit(code)


# ---- section: options / criteria (knowledge pack) ----
@cli.group("criteria")
def criteria_group() -> None:
    """The knowledge pack in criteria/ (PDQ standard options and Table 9 agents)."""


@criteria_group.command("check")
@place_options()
@handle_errors
def criteria_check_cmd() -> None:
    """Validate the knowledge pack and run every option's cases; one line per option.

    Exit code 0 when the pack is valid and every case passes; 1 with the error otherwise.
    """
    from matcher.knowledge import check_pack, load_pack

    pack = load_pack()
    results = check_pack(pack)
    failed = [r for r in results if not r.ok]
    if _verbosity() >= 0:
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
@patient_format_option
@place_options()
@handle_errors
def options_cmd(patient_file: str, as_json: bool, fmt: str | None) -> None:
    """Show the PDQ standard options and Table 9 agents for each patient in PATIENT_FILE.

    Every option is listed with its status (applies / possibly_applies / not_applicable),
    reasons, agents received and remaining, verify items, caveats and citations. Patients
    that fail to read are reported on stderr; exit code 0 all ok, 3 some failed, 4 all failed.
    """
    from matcher.knowledge import evaluate_options, load_pack
    from matcher.patient import read_patients

    pack = load_pack()
    batch = read_patients(patient_file, fmt=fmt, as_of=_as_of())
    results = [evaluate_options(p, pack) for p in batch.patients]
    if as_json:
        emit_json([r.to_dict() for r in results])
    else:
        for patient, res in zip(batch.patients, results, strict=True):
            click.echo(res.to_text(patient))
            click.echo("")
        if _verbosity() >= 0:
            click.echo(f"knowledge pack {pack.version}: {batch_summary(batch)}")
    for err in batch.errors:
        click.echo(f"error: {err}", err=True)
    echo_input_notes(batch)
    code = batch_exit_code(len(results), len(batch.errors))
    if code:
        sys.exit(code)


# ---- section: sync / import (API client and store) ----
def _open_store():
    from matcher.store import Store

    return Store(_obj("db_path"))


class _SyncBar:
    """A click progress bar (studies; pages in the label) on a terminal, silence otherwise.
    Counts pages and studies either way, so a failure message can say what was kept."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.total = 0
        self.done = 0
        self.pages = 0

    def __call__(self, p) -> None:
        self.pages = p.pages_done
        if not self.enabled:
            self.done = p.studies_done
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

    def kept(self) -> str:
        """What an interrupted run left in the store, said as it is."""
        if not self.pages:
            return "Nothing was fetched; the store is unchanged."
        return (
            f"{self.pages} page{'s' if self.pages != 1 else ''} ({self.done} studies) fetched "
            "before the failure are stored; run the same command again to resume."
        )


@cli.command("sync")
@click.option(
    "--condition",
    "conditions",
    multiple=True,
    metavar="TEXT",
    help="Condition to search (repeatable; default: sarcoma, soft tissue sarcoma and every "
    "soft-tissue subtype in the vocabulary).",
)
@status_option
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
@timeout_option
@retries_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@place_options()
@click.pass_context
@handle_errors
def sync_cmd(
    ctx, conditions, status_list, full, recheck, min_interval, timeout, retries, as_json
) -> None:
    """Fill the trial store from ClinicalTrials.gov (incremental after the first run).

    Asks only for studies updated since the last successful sync unless --full. An
    interrupted sync (network failure, Ctrl-C) keeps every page already fetched; run the
    same command again to resume. Queries carry vocabulary terms only, never patient data.
    Exit code 0 ok, 1 the API could not be reached or refused, 5 another sync holds the lock.
    """
    from matcher.errors import ApiError
    from matcher.lock import RunLock, lock_path
    from matcher.store import default_db_path
    from matcher.sync import sync

    admitted = _statuses(status_list)
    wanted = {"ALL"} if admitted is None else set(admitted)
    client = _client(timeout, retries, min_interval)
    bar = _SyncBar(sys.stderr.isatty() and not as_json and _verbosity() >= 0)
    db = _obj("db_path") or default_db_path()
    lock = RunLock(lock_path(db), "sync").__enter__()
    ctx.call_on_close(lambda: lock.__exit__(None, None, None))
    with _open_store() as st:
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
            raise CliError(f"{exc}. {bar.kept()}") from exc
        except KeyboardInterrupt:
            bar.close()
            click.echo(f"\nInterrupted. {bar.kept()}", err=True)
            sys.exit(EXIT_ERROR)
        bar.close()
        total = st.count()
        path = st.path
    if as_json:
        emit_json(res.to_dict() | {"store": str(path), "trials_in_store": total})
        return
    if _verbosity() < 0:
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
@place_options()
@handle_errors
def import_cmd(paths, as_json) -> None:
    """Import trial records from files or folders into the store.

    Accepts API v2 study JSON, /studies page JSON, website downloads (ctg-studies.json) and
    classic XML (clinical_study). Re-importing the same files changes nothing. Exit code 0: all
    records read; 3: some files or entries failed; 4: nothing could be read (or no record file
    was found).
    """
    from matcher.records import find_record_files
    from matcher.store import import_paths

    empty = [p for p in paths if not find_record_files(p)]
    if len(empty) == len(paths):
        raise CliError(
            f"no record files (*.json, *.xml) found in {', '.join(empty)}; nothing imported",
            EXIT_ALL_FAILED,
        )
    for p in empty:
        note(f"warning: no record files (*.json, *.xml) found in {p}")
    with _open_store() as st:
        res = import_paths(st, paths)
        total = st.count()
        path = st.path
    for err in res.errors:
        click.echo(f"error: {err}", err=True)
    if as_json:
        emit_json(res.to_dict() | {"store": str(path), "trials_in_store": total})
    elif _verbosity() >= 0:
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
@place_options()
@handle_errors
def store_info_cmd(as_json) -> None:
    """Show the store's path, trials by status, the last sync and its dataTimestamp."""
    with _open_store() as st:
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


# ---- section: review (coordinator decisions) and serve ----
def _open_review_store():
    from matcher import review

    review.register()
    return _open_store()


@cli.group("review")
def review_group() -> None:
    """Coordinator decisions per patient and trial, kept across nightly runs."""


_list_option = click.option(
    "--list",
    "list_name",
    default=None,
    help="The patient list (as in 'report --list'); default: the store's only list.",
)
_user_option = click.option("--user", default=None, help="Who decides (default: the OS user name).")


@review_group.command("set")
@click.argument("patient")
@click.argument("nct_id", metavar="NCT")
@click.argument("status", nargs=-1, required=True)
@click.option("--reason", default=None, help="Why (required for 'not eligible').")
@click.option("--note", default=None, help="A free note kept with the decision.")
@_list_option
@_user_option
@place_options()
@handle_errors
def review_set_cmd(patient, nct_id, status, reason, note, list_name, user) -> None:
    """Record STATUS (new, reviewing, contacted, enrolled, not eligible, deferred) for the
    trial NCT of PATIENT; 'not eligible' may be written without quotes."""
    from matcher import review

    with _open_review_store() as st:
        d = review.set_status(
            st,
            patient,
            nct_id,
            " ".join(status),
            list_name=list_name,
            reason=reason,
            note=note,
            who=user,
        )
    if _verbosity() >= 0:
        why = f" ({d.reason})" if d.reason else ""
        click.echo(f"{d.patient_id} {d.nct_id}: {d.status}{why} by {d.who} at {d.decided_at}")


@review_group.command("list")
@click.option("--patient", default=None, help="Only this patient.")
@click.option("--status", "status", default=None, help="Only this review status.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@_list_option
@place_options()
@handle_errors
def review_list_cmd(patient, status, as_json, list_name) -> None:
    """List recorded decisions (every list unless --list)."""
    from matcher import review

    with _open_review_store() as st:
        rows = review.list_decisions(st, list_name, patient, status)
    if as_json:
        emit_json([d.to_dict() for d in rows])
        return
    for d in rows:
        click.echo(
            "\t".join(
                [
                    d.list_name,
                    d.patient_id,
                    d.nct_id,
                    d.status,
                    d.reason or "",
                    d.note or "",
                    d.who,
                    d.decided_at,
                ]
            )
        )
    if _verbosity() >= 0:
        click.echo(f"{len(rows)} decision{'s' if len(rows) != 1 else ''}", err=True)


@review_group.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False))
@_list_option
@_user_option
@place_options()
@handle_errors
def review_import_cmd(csv_file, list_name, user) -> None:
    """Load a report's matches.csv whose review_status column (and review_reason,
    review_note) you edited; nothing is written if any row is wrong."""
    from matcher import review

    with _open_review_store() as st:
        res = review.import_csv(st, csv_file, list_name, user)
    if _verbosity() >= 0:
        click.echo(
            f"{len(res.changed)} decisions recorded, {res.unchanged} rows unchanged "
            f"(list '{res.list_name}')."
        )


@cli.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8642, show_default=True)
@click.option(
    "--host",
    default=None,
    help="Listen on this interface instead of 127.0.0.1 (anyone who can reach it can read"
    " the patients: no login, no TLS).",
)
@_list_option
@_user_option
@place_options()
@handle_errors
def serve_cmd(port, host, list_name, user) -> None:
    """Serve the latest report of the store as a review page on http://127.0.0.1:PORT/."""
    from matcher import serve
    from matcher.store import default_db_path

    if host is not None and not serve.is_loopback(host):
        click.echo(
            f"warning: serving patient data on {host}: anyone who can reach it can read the "
            "patients and change decisions (no login, no TLS).",
            err=True,
        )
    where = host or serve.LOOPBACK
    try:
        server = serve.make_server(
            _obj("db_path") or default_db_path(),
            host=where,
            port=port,
            list_name=list_name,
            user=user,
        )
    except OSError as exc:
        raise CliError(
            f"cannot listen on {where}:{port} ({exc.strerror or exc}): is another program (or "
            "another 'trialmatch serve') using it? Pass --port N"
        ) from None
    click.echo(f"Review page: {server.url} (Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


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
@click.option(
    "--json", "as_json", is_flag=True, help="Emit JSON: typed criteria, verdicts with --patient."
)
@patient_format_option
@place_options()
@handle_errors
def trial_cmd(ref: str, patient_file: str | None, as_json: bool, fmt: str | None) -> None:
    """Show a trial's parsed eligibility criteria, and verdicts with --patient.

    NCTID is read from the local store (run `trialmatch sync` or `import` first); FILE is
    any record file. With several patients in --patient, verdicts are given per patient
    (JSON: a list of objects, each with "patient_id"). Exit code 1 when the trial is not in
    the store, 4 when FILE or the patient file cannot be read, 3 when some patients failed.
    """
    from matcher.eligibility import evaluate, format_criteria, parse_trial, trial_report
    from matcher.trial import load_trial_records

    records = load_trial_records(ref, _obj("db_path"))
    patients: list = []
    n_failed = 0
    if patient_file:
        from matcher.patient import read_patients

        batch = read_patients(patient_file, fmt=fmt, as_of=_as_of())
        for err in batch.errors:
            click.echo(f"error: {err}", err=True)
        echo_input_notes(batch)
        patients, n_failed = batch.patients, len(batch.errors)
        if not patients:
            raise CliError(f"{patient_file}: no patient could be read", EXIT_ALL_FAILED)
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
_VERDICT_COLOURS = {"eligible": "green", "needs_review": "yellow", "excluded": "red"}


def _cut(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    if width <= 1:
        return ""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _site_cell(s) -> str:
    site = s.nearest_site or {}
    place = ", ".join(str(site[k]) for k in ("city", "state") if site.get(k))
    if s.distance_miles is not None:
        return f"{place} ({s.distance_miles:,.0f} mi)" if place else f"{s.distance_miles:,.0f} mi"
    return place or "-"


def top_verify_facts(trials, n: int = 3) -> list[tuple[str, int]]:
    """The facts to check that unlock the most trials: each verify item's fact (the text
    before its first ':'), counted once per trial, most frequent first."""
    from collections import Counter

    counts: Counter[str] = Counter()
    for s in trials:
        counts.update({re.sub(r"\s*\(\d+\)$", "", v.split(":")[0].strip()) for v in s.verify})
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _print_table(pm, top: int, width: int, color: bool) -> None:
    shown = [s for s in pm.trials if s.verdict != "excluded"]
    n_excluded = len(pm.trials) - len(shown)
    click.echo(f"\nPatient {pm.patient_id}")
    if _verbosity() > 0:
        for n in pm.notes:
            click.echo(f"  note: {n}")
    rows = shown[:top]
    if rows:
        sites = [_site_cell(s) for s in rows]
        site_w = min(max(len("nearest site"), *(len(x) for x in sites)), 32)
        fixed = 2 + 3 + 2 + 11 + 2 + 12 + 2 + 5 + 2 + 2 + site_w
        title_w = max(10, width - fixed)
        head = (
            f"  {'#':>3}  {'NCT id':<11}  {'verdict':<12}  {'score':>5}  "
            f"{'title':<{title_w}}  nearest site"
        )
        click.echo(click.style(head, bold=True), color=color)
        for s, site in zip(rows, sites, strict=True):
            verdict = click.style(f"{s.verdict:<12}", fg=_VERDICT_COLOURS.get(s.verdict))
            click.echo(
                f"  {s.rank:>3}  {s.nct_id:<11}  {verdict}  {s.score:>5.1f}  "
                f"{_cut(s.title, title_w):<{title_w}}  {_cut(site, site_w)}",
                color=color,
            )
        facts = top_verify_facts(rows)
        if facts:
            line = "verify first: " + "; ".join(f"{f} ({n})" for f, n in facts)
            click.echo("  " + _cut(line, width - 2))
    else:
        click.echo("  no trial this patient could join in the candidates")
    more = f" ({len(shown) - top} not shown: --top)" if len(shown) > top else ""
    eligible = sum(s.verdict == "eligible" for s in shown)
    click.echo(
        f"  {len(shown)} could join: {eligible} eligible, {len(shown) - eligible} to review"
        f"{more}; {n_excluded} excluded, {pm.unrelated} unrelated (--explain)"
    )


def _print_explained(pm, show_excluded: bool, top: int) -> None:
    from matcher.render import site_text

    click.echo(f"\nPatient {pm.patient_id}")
    for n in pm.notes:
        click.echo(f"  note: {n}")
    shown = [s for s in pm.trials if s.verdict != "excluded"]
    excluded = [s for s in pm.trials if s.verdict == "excluded"]
    if not shown:
        click.echo("  no trial this patient could join in the candidates")
    for s in shown[:top]:
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
    if len(shown) > top:
        click.echo(f"  ... {len(shown) - top} more trials this patient could join (--top)")
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


_CSV_COLUMNS = [
    "patient_id", "nct_id", "rank", "verdict", "score", "distance_miles", "title", "phase",
    "status", "last_update", "reasons", "verify", "excluded_by", "url",
]  # fmt: skip


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
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Trials shown per patient on the terminal (JSON and CSV always hold every trial).",
)
@click.option("--explain", is_flag=True, help="Every reason, verify item, site and link per trial.")
@click.option(
    "--json", "as_json", is_flag=True, help="JSON: a list of {patient_id, trials: [...]}."
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV: one row per patient and trial.")
@click.option("--all", "show_all", is_flag=True, help="With --explain, list every excluded trial.")
@click.option(
    "--purpose",
    "purpose_list",
    default="all",
    show_default=True,
    help="Primary purposes shown, comma-separated (treatment, supportive_care, diagnostic, "
    "screening, prevention, observational, not_stated, ...); 'all' lists every purpose, "
    "treatment trials first.",
)
@patient_format_option
@timeout_option
@retries_option
@place_options()
@handle_errors
def match_cmd(
    patient_file,
    fmt,
    trials_paths,
    live,
    status_list,
    max_miles,
    top,
    explain,
    as_json,
    as_csv,
    show_all,
    purpose_list,
    timeout,
    retries,
):
    """Rank trials for each patient in PATIENT_FILE, every verdict explained.

    The terminal shows a table per patient (rank, NCT id, verdict, score, title, nearest
    site), the facts to verify first and a one-line summary; --explain gives every reason,
    and `trialmatch trial NCTID --patient FILE` every criterion. Exit code 0 ok, 1 empty store
    or API unreachable, 3 some patients failed, 4 no patient or no trial could be read.
    """
    from matcher.engine import match_cohort, parse_records
    from matcher.knowledge import load_pack
    from matcher.live import live_records
    from matcher.parsecache import parse_store
    from matcher.patient import read_patients
    from matcher.rank import RankConfig
    from matcher.records import iter_records
    from matcher.store import Store
    from matcher.vocab import load_vocab

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    if live and trials_paths:
        raise click.UsageError("choose one source: --live or --trials (or neither, for the store)")
    from matcher.rank import parse_purposes

    try:
        purposes = parse_purposes(purpose_list)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--purpose") from None
    config = RankConfig(statuses=_statuses(status_list), max_miles=max_miles, purposes=purposes)
    batch = read_patients(patient_file, fmt=fmt, as_of=_as_of())
    for err in batch.errors:
        click.echo(f"error: {err}", err=True)
    echo_input_notes(batch)
    pack = load_pack()
    vocab = load_vocab()
    results = []
    n_trials = 0
    if live:
        client = _client(timeout, retries)
        for p in batch.patients:
            parsed = parse_records(live_records(p.diagnosis, vocab, client, config.statuses))
            n_trials += len(parsed)
            results += match_cohort([p], parsed, pack, vocab, config)
    else:
        if trials_paths:
            records = []
            n_bad = 0
            for tp in trials_paths:
                for item in iter_records(tp):
                    if item.error is not None:
                        click.echo(f"error: {item.error}", err=True)
                        n_bad += 1
                    else:
                        records.append(item.record)
            if not records:
                raise CliError(
                    f"no trial record could be read from {', '.join(trials_paths)} "
                    f"({n_bad} unreadable); pass API v2 JSON or classic XML records",
                    EXIT_ALL_FAILED,
                )
            parsed = parse_records(records)
        else:
            with Store(_obj("db_path")) as store:
                if store.count() == 0:
                    raise click.ClickException(
                        f"the trial store {store.path} is empty: run 'trialmatch sync' or "
                        "'trialmatch import PATH', or pass --trials PATH"
                    )
                parsed, _counts = parse_store(store, config.statuses)
        n_trials = len(parsed)
        results = match_cohort(batch.patients, parsed, pack, vocab, config)

    if as_json:
        emit_json([r.to_dict() for r in results])
    elif as_csv:
        from matcher.render import csv_text

        rows = [
            [
                r.patient_id, s.nct_id, s.rank, s.verdict, s.score, s.distance_miles, s.title,
                s.phase, s.status, s.last_update, s.reasons, s.verify, s.excluded_by, s.url,
            ]
            for r in results
            for s in r.trials
        ]  # fmt: skip
        click.echo(csv_text(_CSV_COLUMNS, rows), nl=False)
    else:
        click.echo(DISCLAIMER)
        width = shutil.get_terminal_size((110, 24)).columns
        color = _use_color()
        for r in results:
            if explain:
                _print_explained(r, show_all, top)
            else:
                _print_table(r, top, width, color)
        if _verbosity() >= 0:
            click.echo(f"\n{batch_summary(batch)}; {n_trials} candidate trials.")
    code = batch_exit_code(len(batch.patients), len(batch.errors))
    if code:
        sys.exit(code)


# ---- section: report (nightly) ----


@cli.command("report")
# not exists=True: a missing patient file still writes a report saying so (exit 4)
@click.argument("patients", type=click.Path())
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
@click.option(
    "--workers",
    type=WorkersType(),
    default="auto",
    show_default=True,
    help="Local engine: processes that match and write patient partitions. auto: one per "
    "usable core once the list has at least 250 patients per process (1 below that); or a "
    "number, e.g. 1 on a machine whose cores are busy with other work. --engine dask without "
    "--scheduler: the local cluster's worker processes (auto: 2).",
)
@patient_format_option
@place_options()
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Open trials shown first on each patient's page (the rest are folded).",
)
@click.option(
    "--list",
    "list_name",
    default=None,
    help="Name of the patient list for the change history (default: the file name without a"
    " trailing date, so patients-2026-12-01.csv compares with patients-2026-11-30.csv).",
)
@click.option(
    "--country",
    default=None,
    help="Consider only trials with an open site in this country (e.g. 'United States').",
)
@click.option(
    "--explain",
    type=click.Choice(["top", "all"]),
    default="top",
    show_default=True,
    help="top: only the --top trials per patient are written with every reason and check "
    "(the other rows are compact: verdict, score, site, why excluded, counts); all: every "
    "row in full (larger and slower for long lists).",
)
def report_cmd(
    patients,
    out_dir,
    trials_paths,
    status_list,
    max_miles,
    engine,
    scheduler,
    workers,
    fmt,
    top,
    list_name,
    country,
    explain,
):
    """Nightly job: match every patient in PATIENTS and write the report to --out.

    Exit codes: 0 ok, 1 the store cannot be opened, 3 some patients failed, 4 all failed or
    the list cannot be read (the report says so), 5 another run holds the lock.
    """
    from matcher.errors import KnowledgeError, LockError, StoreError
    from matcher.rank import RankConfig
    from matcher.report import ReportConfig, run_report

    config = ReportConfig(
        rank=RankConfig(statuses=_statuses(status_list), max_miles=max_miles),
        engine=engine,
        scheduler=scheduler,
        as_of=_as_of(),
        fmt=fmt,
        top=top,
        list_name=list_name,
        country=country,
        workers=workers,
        # --engine dask without --scheduler: a number is the LocalCluster's worker count
        dask_workers=workers if isinstance(workers, int) else 2,
        explain=explain,
    )
    # progress on a terminal only: quiet under cron
    tty = sys.stderr.isatty() and _verbosity() >= 0
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

    ctx = click.get_current_context()
    try:
        result = run_report(patients, out_dir, _obj("db_path"), trials_paths, config, progress)
    except LockError as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(EXIT_LOCKED)
    except (StoreError, KnowledgeError) as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(EXIT_ERROR)
    except MatcherError as exc:
        click.echo(f"Error: {exc}", err=True)
        ctx.exit(EXIT_ALL_FAILED)
    if tty and seen["patients"]:
        click.echo("", err=True)  # end the progress line
    for w in result.input_warnings:
        note(f"warning: {w}")
    ch = result.changes
    dropped = result.columns_not_read
    cols = f" Columns not read: {', '.join(dropped)}." if dropped else ""
    if _verbosity() >= 0:
        click.echo(
            f"{result.n_patients_ok} patients matched, {result.n_failed} failed, "
            f"{result.n_trials} candidate trials; "
            f"{len(ch['new'])} new, {len(ch['gone'])} gone, {len(ch['status_changes'])} status "
            f"changes since the last run.{cols} Report: {result.out_dir / 'report.html'}"
        )
        if not ch.get("previous_run"):
            click.echo(
                f"First run of the list '{ch.get('list_name')}': nothing to compare with yet"
                " (use --list NAME to continue another list's history)."
            )
    for line in result.errors:
        click.echo(f"error: {line}", err=True)
    if result.n_failed:
        click.echo(
            f"{result.n_failed} patient(s) failed: see {result.out_dir / 'errors.csv'}", err=True
        )
    ctx.exit(result.exit_code)


__all__ = ["cli", "main", "DISCLAIMER", "sys"]
