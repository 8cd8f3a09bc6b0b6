"""JSON text made from pieces encoded once: the same text as the ``json`` encoder's.

The report writes hundreds of thousands of rows whose values recur (a trial's title and URL,
a verdict, a reason, a site): :mod:`matcher.report` and :mod:`matcher.review` assemble
those rows' JSON from each value's text made once, instead of passing a dict per row
through the encoder. Everything here gives what ``json.dumps(value, ensure_ascii=False)``
gives (the tests compare them); a value of another kind goes through the encoder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``, and with the default
# separators (", ", ": ")
dumps_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
dumps = json.JSONEncoder(ensure_ascii=False).encode


class Texts(dict):
    """The JSON of recurring texts (``str`` or None: a number or bool is never a key, since
    ``1 == 1.0 == True`` would share one), each encoded once; anything else raises
    ``TypeError`` (the caller then encodes the whole value). A text's JSON is the same
    with either separators."""

    def __missing__(self, value) -> str:
        if value is not None and type(value) is not str:
            raise TypeError(value)
        if len(self) > 200_000:
            self.clear()
        got = self[value] = dumps_compact(value)
        return got


TEXTS = Texts()


def number(x) -> str:
    """The JSON of an int or float: its repr for an ``int`` or a finite ``float``; anything
    else (NaN, infinities, bools, subclasses such as numpy's) through the encoder."""
    if type(x) is int:
        return int.__repr__(x)
    if type(x) is float and x - x == 0:
        return float.__repr__(x)
    return dumps_compact(x)


def text(value) -> str:
    """The JSON of a text or None (once per value), of anything else through the encoder."""
    if value is None or type(value) is str:
        return TEXTS[value]
    return dumps_compact(value)


def texts(values, sep: str = ",") -> str:
    """The JSON of a list of texts (``sep`` between items: "," compact, ", " default), each
    text's JSON made once; a list with anything else through the encoder."""
    try:
        return "[" + sep.join([TEXTS[v] for v in values]) + "]"
    except TypeError:
        return (dumps_compact if sep == "," else dumps)(values)


class ById(dict):
    """The JSON of objects that recur as the same object and are not changed (a trial
    site's dict, shared by its rows; the review module's undecided fields), keyed by ``id``
    and holding the object, so the id cannot be reused while it is a key."""

    def __init__(self, encode: Callable[[Any], str]):
        super().__init__()
        self.encode = encode

    def text(self, obj) -> str:
        got = self.get(id(obj))
        if got is None:
            if len(self) > 100_000:
                self.clear()
            got = self[id(obj)] = (obj, self.encode(obj))
        return got[1]
