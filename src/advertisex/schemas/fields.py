"""The field paths a source's contract knows: every alias path and each of its prefixes."""

from __future__ import annotations

import re
from functools import cache

from advertisex.schemas.sources import Source


@cache
def known_paths(source: Source) -> tuple[str, ...]:
    """Every alias path of the source and its prefixes, sorted: for `imp[0].ext.creative_id`,
    `imp`, `imp[0]`, `imp[0].ext` and itself. A record's field whose path is not among them is
    one the contract does not know (schema drift: a rename or an added field)."""
    out: set[str] = set()
    for col in source.columns:
        for path in col.paths:
            out.update(path[: m.start()] for m in re.finditer(r"\.|\[|$", path) if m.start())
    return tuple(sorted(out))
