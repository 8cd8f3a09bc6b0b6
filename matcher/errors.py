"""The exception tree. Every error says what failed, for which record, and what to do next."""

from __future__ import annotations


class MatcherError(Exception):
    """Base class: anything the CLI reports as a clean one-line error (no traceback)."""


class InputError(MatcherError):
    """A user-supplied file cannot be read (missing, malformed JSON/CSV/XML/FHIR)."""

    def __init__(self, message: str, *, path: str | None = None, location: str | None = None):
        self.path = path
        self.location = location  # "line 3", "entry 2", "Bundle.entry[4]"
        prefix = ""
        if path:
            prefix = f"{path}"
            if location:
                prefix += f", {location}"
            prefix += ": "
        super().__init__(prefix + message)


class PatientError(MatcherError):
    """One patient's field holds a value that cannot be accepted."""

    def __init__(
        self,
        message: str,
        *,
        patient_id: str | None = None,
        field: str | None = None,
        value: object = None,
        accepted: str | None = None,
        source: str | None = None,
    ):
        self.patient_id = patient_id
        self.field = field
        self.value = value
        self.accepted = accepted
        self.source = source
        self.detail = message
        parts = []
        if source:
            parts.append(source)
        if patient_id is not None:
            parts.append(f"patient {patient_id!r}")
        if field:
            parts.append(f"field {field!r}")
        head = ", ".join(parts)
        text = f"{head}: {message}" if head else message
        if accepted:
            text += f" (accepted: {accepted})"
        super().__init__(text)


class VocabError(MatcherError):
    """A term (diagnosis or drug) does not resolve to a vocabulary entry."""

    def __init__(self, message: str, *, term: str, kind: str, suggestions: list[str] | None = None):
        self.term = term
        self.kind = kind
        self.suggestions = suggestions or []
        super().__init__(message)


class KnowledgeError(MatcherError):
    """The knowledge pack (criteria/*.yaml) is invalid: names the file and the key."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None):
        self.path = path
        self.key = key
        head = path or "criteria"
        if key:
            head += f", key {key!r}"
        super().__init__(f"{head}: {message}")


class RecordError(MatcherError):
    """A trial record (API JSON, export array, classic XML) cannot be read."""

    def __init__(self, message: str, *, path: str | None = None, nct_id: str | None = None):
        self.path = path
        self.nct_id = nct_id
        parts = [p for p in (path, nct_id) if p]
        super().__init__(f"{', '.join(parts)}: {message}" if parts else message)


class ApiError(MatcherError):
    """The ClinicalTrials.gov API answered with an error or could not be reached."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None):
        self.url = url
        self.status = status
        super().__init__(message)


class StoreError(MatcherError):
    """The SQLite trial store cannot be opened, migrated or written."""


class TrialNotFound(MatcherError):
    """An NCT id is not in the store (and was not fetched)."""

    def __init__(self, nct_id: str, hint: str = ""):
        self.nct_id = nct_id
        super().__init__(f"trial {nct_id} not found{': ' + hint if hint else ''}")


class LockError(MatcherError):
    """Another run holds the report lock."""


class ReviewError(MatcherError):
    """A review decision cannot be recorded (bad status, missing reason, unknown pair)."""

    def __init__(
        self,
        message: str,
        *,
        patient_id: str | None = None,
        nct_id: str | None = None,
        field: str | None = None,
    ):
        self.patient_id = patient_id
        self.nct_id = nct_id
        self.field = field
        super().__init__(message)
