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

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_ALL_FAILED = 4
EXIT_LOCKED = 5


def batch_exit_code(n_ok: int, n_failed: int) -> int:
    """Exit code for a batch: 0 all ok, 3 some failed, 4 all failed (or none given)."""
    if n_failed == 0 and n_ok > 0:
        return EXIT_OK
    if n_ok == 0:
        return EXIT_ALL_FAILED
    return EXIT_PARTIAL


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

# ---- section: options / criteria (knowledge pack) ----

# ---- section: sync / import (API client and store) ----

# ---- section: trial (eligibility) ----

# ---- section: match (ranking) ----

# ---- section: report (nightly) ----

__all__ = ["cli", "main", "DISCLAIMER", "sys"]
