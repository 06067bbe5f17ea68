"""The creatives dimension: creative -> campaign -> advertiser, loaded from CSV or JSON.

Versioned by load time: `creatives` holds the latest version of each creative, and
`creative_versions` every version with the time it was loaded. Enrichment joins the latest,
so each event keeps the campaign and advertiser in force when it was ingested.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from advertisex.errors import InputError
from advertisex.store import Store, one

_COLUMNS = (
    "creative_id",
    "campaign_id",
    "advertiser_id",
    "creative_name",
    "campaign_name",
    "advertiser_name",
)


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in _COLUMNS)


def load_creatives(store: Store, path: Path) -> tuple[int, int]:
    """Upsert creatives from a file; returns (rows loaded, rows skipped for missing ids)."""
    if not path.is_file():
        raise InputError(
            f"{path} does not exist; pass the creatives CSV or JSON file", path=str(path)
        )
    name = path.name.lower()
    reader = "read_json_auto" if ".json" in name else "read_csv"
    opts = "" if ".json" in name else ", all_varchar = true, header = true"
    try:
        rel = store.con.execute(f"SELECT * FROM {reader}(?{opts}) LIMIT 0", [str(path)])
        names = [d[0].lower() for d in rel.description or []]
    except duckdb.Error as e:
        raise InputError(f"cannot read dimension file {path}: {e}", path=str(path)) from None
    missing = [c for c in ("creative_id", "campaign_id") if c not in names]
    if missing:
        raise InputError(
            f"{path} has no {' or '.join(missing)} column; a creatives file needs "
            f"creative_id and campaign_id (found: {', '.join(names) or 'no columns'})",
            path=str(path),
        )
    select = ", ".join(
        f"nullif(trim(CAST({c} AS VARCHAR)), '') AS {c}" if c in names else f"NULL AS {c}"
        for c in _COLUMNS
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.transaction() as con:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _dims AS "
            f"SELECT {select}, row_number() OVER () AS _n FROM {reader}(?{opts})",
            [str(path)],
        )
        row = one(
            con, "SELECT count(*) FILTER (creative_id IS NULL OR campaign_id IS NULL) FROM _dims"
        )
        skipped = int(row[0]) if row else 0
        cols = ", ".join(_COLUMNS)
        # The first row of each creative in the file is the one loaded.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _dims_new AS SELECT {cols} FROM _dims "
            "WHERE creative_id IS NOT NULL AND campaign_id IS NOT NULL "
            "QUALIFY row_number() OVER (PARTITION BY creative_id ORDER BY _n) = 1"
        )
        # History: creatives loaded before versions were kept, then every changed one.
        con.execute(
            "INSERT INTO creative_versions SELECT * FROM creatives c WHERE NOT EXISTS "
            "(SELECT 1 FROM creative_versions v WHERE v.creative_id = c.creative_id)"
        )
        con.execute(
            f"""
            INSERT INTO creative_versions
            SELECT {cols}, ? FROM _dims_new n
            WHERE NOT EXISTS (SELECT 1 FROM creatives c WHERE c.creative_id = n.creative_id
                              AND ({_prefixed("c")}) IS NOT DISTINCT FROM ({_prefixed("n")}))
            """,
            [now],
        )
        con.execute(f"INSERT OR REPLACE INTO creatives SELECT {cols}, ? FROM _dims_new", [now])
        con.execute("DROP TABLE _dims_new")
        row = one(
            con,
            "SELECT count(*) FROM _dims WHERE creative_id IS NOT NULL AND campaign_id IS NOT NULL",
        )
        con.execute("DROP TABLE _dims")
    return (int(row[0]) if row else 0), skipped
