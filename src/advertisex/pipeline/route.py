"""Which source a file holds: by format, and for JSON by the keys of its first record."""

from __future__ import annotations

import json
import re

from advertisex.schemas.sources import SOURCES, Source
from advertisex.sources.batch import Format
from advertisex.sources.files import FileInput, peek_text

_BID_KEYS = {"imp", "auction_details", "user_info", "seatbid", "ad_targeting", "openrtb"}
_EVENT_KEYS = {"conversion_type", "event_type"}
_KEY = re.compile(rb'"(\w+)"\s*:')


def route(fi: FileInput) -> Source:
    if fi.fmt is Format.AVRO:
        return SOURCES["bid_requests"]
    if fi.fmt is Format.CSV:
        return SOURCES["clicks_conversions"]
    return SOURCES[_json_source(peek_text(fi))]


def _json_source(text: bytes) -> str:
    s = text.lstrip(b"\xef\xbb\xbf \t\r\n")
    candidates: list[object] = []
    first_line = s.split(b"\n", 1)[0].rstrip()
    if s.startswith(b"[") or (s.startswith(b"{") and not first_line.endswith(b"}")):
        # A document: the first record may sit past the peeked text; read what is there.
        try:
            doc = json.loads(s)
            candidates = doc if isinstance(doc, list) else [doc]
        except ValueError:
            candidates = []
    if not candidates:
        for line in s.split(b"\n")[:200]:
            try:
                candidates.append(json.loads(line))
            except ValueError:
                continue
    for c in candidates:
        if isinstance(c, dict):
            return _by_keys(set(c))
    # Nothing parses (a broken document): the keys the text names still tell its source.
    return _by_keys({k.decode() for k in _KEY.findall(s)})


def _by_keys(keys: set[str]) -> str:
    if keys & _BID_KEYS:
        return "bid_requests"
    if keys & _EVENT_KEYS:
        return "clicks_conversions"
    return "impressions"
