"""Offline distances: US ZIP codes to coordinates (the ``zipcodes`` package ships its data),
and great-circle miles between points. No network, ever."""

from __future__ import annotations

import math
import re
from functools import lru_cache

EARTH_RADIUS_MILES = 3958.7613

_ZIP_RE = re.compile(r"^\s*(\d{5})(?:-\d{4})?\s*$")


@lru_cache(maxsize=65536)
def zip_to_point(zip_code: str) -> tuple[float, float] | None:
    """Return ``(lat, lon)`` for a US ZIP (``10065`` or ``10065-1234``), or ``None`` if unknown."""
    m = _ZIP_RE.match(str(zip_code or ""))
    if not m:
        return None
    import zipcodes  # imported lazily: loading its table takes a fraction of a second

    try:
        found = zipcodes.matching(m.group(1))
    except (ValueError, TypeError):
        return None
    if not found:
        return None
    try:
        return float(found[0]["lat"]), float(found[0]["long"])
    except (KeyError, TypeError, ValueError):
        return None


def haversine_miles(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in miles between two ``(lat, lon)`` points in degrees."""
    lat1, lon1 = map(math.radians, a)
    lat2, lon2 = map(math.radians, b)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(h)))
