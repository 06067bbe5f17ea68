"""The stages' SQL helpers (pipeline/macros.sql) on a fresh in-memory DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb

from advertisex.config import load_settings
from advertisex.store.duckdb import configure

# Every ASCII character and the Unicode spaces DuckDB's trim removes, at either end or both,
# around ASCII and non-ASCII text; empty, spaces only, NULL.
_EDGES = [chr(c) for c in range(1, 128)] + ["\u00a0", "\u2003", "\u3000", "\u202f", "\ufeff"]
_CASES = (
    [e + "101" for e in _EDGES]
    + ["101" + e for e in _EDGES]
    + [e + "caf\u00e9" + e for e in _EDGES]
    + ["", " ", "   ", "a b", "\u00e9", "\u00e9 ", None]
)


def test_advx_trim_answers_as_trim_does_on_every_kind_of_edge() -> None:
    con = duckdb.connect()
    configure(con, load_settings(db=Path(":memory:")))
    rows = con.execute(
        "SELECT s, advx_trim(s), trim(s) FROM (SELECT unnest(?::VARCHAR[]) AS s)", [_CASES]
    ).fetchall()
    assert len(rows) == len(_CASES)
    assert [(s, fast) for s, fast, _ in rows] == [(s, slow) for s, _, slow in rows]
    # the space is trimmed, a tab is not (trim's own rule, kept)
    assert dict((s, fast) for s, fast, _ in rows)[" 101"] == "101"
    assert dict((s, fast) for s, fast, _ in rows)["\t101"] == "\t101"
