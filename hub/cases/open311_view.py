"""What an Open311 request shows, to whom, and in which form (GeoReport v2 JSON or XML).

Open311 request lists are public by design, so the public view is chosen field by
field (:data:`PUBLIC_FIELDS`): service, public status, status notes written for
residents, a coarse location and times. Everything else is held back
(:data:`HELD_BACK`). The full view (:data:`FULL_FIELDS` added) is for the resident
who filed the request and for staff who may see the case.

Which cases the public sees at all is :class:`PublicPolicy`: resident-filed
requests, plus device- and operator-raised cases of the categories a hub setting
(``open311_public_categories``) names; none by default.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from xml.etree import ElementTree

from sqlalchemy import ColumnElement, or_

from hub.cases.models import CaseRow
from hub.ingest.ratelimit import DeviceRateLimiter

RESIDENT_SOURCE: Final = "resident"
#: Decimal places of a public coordinate: 0.001° is ~110 m of latitude, ~85 m of longitude at 40°N.
PUBLIC_DECIMALS: Final = 3
#: Fields anyone may read, in GeoReport v2 order.
PUBLIC_FIELDS: Final = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address_id",
    "lat",
    "long",
)
#: Fields only the filer (and staff who may see the case) read: what the resident wrote, exactly where.
FULL_FIELDS: Final = ("description", "address", "zipcode", "media_url")
#: What the public view never shows (named in docs/security.md).
HELD_BACK: Final = (
    "description (free text; device cases name device ids)",
    "address (the resident's address_string)",
    "exact lat/long (rounded to 3 decimals, ~100 m; device cases: their grid's centroid)",
    "title, severity, incident ids, device ids",
    "internal notes of the audit trail (only notes staff wrote as public_note are shown)",
    "who reported it (e-mail, phone, name, account, person id), assignees, handler, verifier",
    "device- and operator-raised cases outside open311_public_categories",
)
DEFAULT_POSTS_PER_HOUR: Final = 30.0
DEFAULT_POST_BURST: Final = 10


@dataclass
class PublicPolicy:
    """Which cases anonymous readers see, and how fast one address may file anonymously."""

    public_categories: frozenset[str] = frozenset()
    posts_per_hour: float = DEFAULT_POSTS_PER_HOUR
    post_burst: int = DEFAULT_POST_BURST
    limiter: DeviceRateLimiter | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.posts_per_hour > 0:
            self.limiter = DeviceRateLimiter(self.posts_per_hour / 3600, self.post_burst, max_devices=50_000)

    def listed(self, row: CaseRow) -> bool:
        """True when anonymous readers may see this case (the Python twin of :meth:`where`)."""
        return row.source == RESIDENT_SOURCE or row.category in self.public_categories

    def where(self) -> ColumnElement[bool]:
        """SQL filter of the cases anonymous readers may see."""
        return or_(CaseRow.source == RESIDENT_SOURCE, CaseRow.category.in_(sorted(self.public_categories)))

    def admit_post(self, address: str) -> bool:
        """Charge one anonymous POST from ``address``; False when it is over its rate."""
        return self.limiter is None or self.limiter.admit(address, 0, time.monotonic()).allowed

    def retry_after_s(self) -> int:
        """Seconds until an address over its rate may file one more request."""
        return max(1, round(3600 / self.posts_per_hour)) if self.posts_per_hour > 0 else 1


def coarse(value: float | None) -> float | None:
    """A coordinate rounded for the public (~100 m)."""
    return None if value is None else round(value, PUBLIC_DECIMALS)


def centroid(polygon: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """Mean of a polygon's (lon, lat) vertices; None for no polygon."""
    if not polygon:
        return None
    return sum(p[0] for p in polygon) / len(polygon), sum(p[1] for p in polygon) / len(polygon)


def public_location(row: CaseRow, grid_polygon: Sequence[tuple[float, float]]) -> tuple[float | None, float | None]:
    """(lat, long) for the public: the rounded point, or the rounded centroid of its grid when it has none."""
    if row.lat is not None and row.lon is not None:
        return coarse(row.lat), coarse(row.lon)
    middle = centroid(grid_polygon)
    return (None, None) if middle is None else (coarse(middle[1]), coarse(middle[0]))


def status_notes(base: str, public_notes: Iterable[str]) -> str:
    """The state's standard sentence, followed by the latest note staff wrote for residents."""
    latest = [n for n in public_notes if n][-1:]
    return " ".join([base, *latest])


def shape(view: Mapping[str, Any], full: bool) -> dict[str, Any]:
    """Keep the public fields (and, for ``full``, the filer's fields) of a rendered request."""
    names = PUBLIC_FIELDS + FULL_FIELDS if full else PUBLIC_FIELDS
    return {name: view.get(name) for name in names}


# ------------------------------------------------------------------------- XML


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_xml(root: str, item: str, rows: Iterable[Mapping[str, Any]]) -> bytes:
    """GeoReport v2 XML: ``<root><item><field>value</field>...</item>...</root>``."""
    top = ElementTree.Element(root)
    for row in rows:
        element = ElementTree.SubElement(top, item)
        for key, value in row.items():
            ElementTree.SubElement(element, key).text = _text(value)
    document: bytes = ElementTree.tostring(top, encoding="utf-8", xml_declaration=True)
    return document


#: The XML root and item element of each GeoReport v2 document.
XML_SHAPES: Final[dict[str, tuple[str, str]]] = {
    "services": ("services", "service"),
    "requests": ("service_requests", "request"),
    "errors": ("errors", "error"),
}
