"""Exit codes shared by the CLI and the library's batch results (documented in the README)."""

EXIT_OK = 0  # everything succeeded
EXIT_ERROR = 1  # an error the user can fix (bad file, bad option value, trial not found, ...)
EXIT_USAGE = 2  # usage error (unknown option, missing argument): click's own code
EXIT_PARTIAL = 3  # some patients failed; the rest were processed and written
EXIT_ALL_FAILED = 4  # every patient failed, or there was nothing to process
EXIT_LOCKED = 5  # another run holds the lock


def batch_exit_code(n_ok: int, n_failed: int) -> int:
    """Exit code for a batch: 0 all ok, 3 some failed, 4 all failed (or none given)."""
    if n_failed == 0 and n_ok > 0:
        return EXIT_OK
    if n_ok == 0:
        return EXIT_ALL_FAILED
    return EXIT_PARTIAL
