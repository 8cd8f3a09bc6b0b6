"""One run at a time per store: an exclusive lock file beside the SQLite file.

``report`` and ``sync`` both take it, so a nightly sync and the report that follows it never
write the store at the same time. The lock is an ``fcntl`` advisory lock: the operating
system releases it when the holding process ends, however it ends (POSIX systems).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from matcher.errors import LockError


def lock_path(db_path) -> Path:
    """The lock file for a store: ``<db>.lock``."""
    return Path(str(db_path) + ".lock")


class RunLock:
    """An exclusive, non-blocking lock on ``path``; ``what`` names the run in messages."""

    def __init__(self, path: Path, what: str = "report"):
        self.path = Path(path)
        self.what = what
        self._fh = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the run
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise LockError(
                f"{self.path}: another run holds the lock ({holder}); wait for it to "
                "finish (the lock is released as soon as that process ends) or use another --db"
            ) from None
        fh.seek(0)
        fh.truncate()
        now = datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        fh.write(f"{self.what}, pid {os.getpid()} since {now}")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
