"""Extract: decoded records -> one text column per canonical field (c_<name>), plus decode reasons.

The canonical fields and where they may be found come from `schemas.sources`; the same dotted
paths are read as JSON paths from JSON text, as column names from CSV headers and as struct
access from Avro records.
"""

from __future__ import annotations

import re

import pyarrow as pa

from advertisex.schemas.reasons import Reason
from advertisex.schemas.sources import Source

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _steps(path: str) -> list[str | int]:
    return [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _STEP.finditer(path)]


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def extract_sql(source: Source, kind: str, relation: str, schema: pa.Schema | None = None) -> str:
    """SELECT that yields _record, _offset, _dreason, _dfield, _ddetail and c_<field>.

    The raw text is not carried along: the few rows that end in rejects fetch it from the
    input by _record, which keeps the batch's working copy small.
    """
    if kind == "json":
        return _extract_json(source, relation)
    if kind == "columns":
        assert schema is not None
        return _extract_columns(source, relation, schema)
    assert schema is not None
    return _extract_struct(source, relation, schema)


def _extract_json(source: Source, relation: str) -> str:
    paths: list[str] = []
    exprs: list[str] = []
    for col in source.columns:
        idx = []
        for p in col.paths:
            jp = "$." + ".".join(
                f"[{s}]" if isinstance(s, int) else _json_key(s) for s in _steps(p)
            ).replace(".[", "[")
            paths.append(jp)
            idx.append(len(paths))
        exprs.append(
            "nullif(coalesce(" + ", ".join(f"_j[{i}]" for i in idx) + "), '') AS c_" + col.name
        )
    path_list = "[" + ", ".join(_lit(p) for p in paths) + "]"
    # json_valid is a fast check without building a document; the one full parse is the
    # extraction, and only valid objects get it. (try() around a parse is far slower: an
    # error makes DuckDB redo the whole vector row by row.) `_lead` is the first non-blank
    # byte, -1 for a blank line (no record at all); 123 is an object's opening brace.
    return f"""
SELECT _record, _offset, _dreason, NULL::VARCHAR AS _dfield, _ddetail, {", ".join(exprs)}
FROM (
  SELECT _record, _offset,
    CASE WHEN NOT _ok THEN '{Reason.MALFORMED_JSON}'
         WHEN NOT _obj THEN '{Reason.NOT_AN_OBJECT}' END AS _dreason,
    CASE WHEN NOT _ok THEN 'not valid JSON'
         WHEN NOT _obj THEN 'a JSON ' || lower(json_type(_raw)) || ', not an object'
    END AS _ddetail,
    CASE WHEN _obj THEN json_extract_string(_raw, {path_list}) END AS _j
  FROM (
    SELECT *, _ok AND _lead = 123 AS _obj
    FROM (SELECT _record, _offset, _raw, _lead, json_valid(_raw) AS _ok FROM {relation}
          WHERE _lead >= 0)
  )
)"""


def _json_key(key: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return key
    return '"' + key.replace('"', '\\"') + '"'


def _extract_columns(source: Source, relation: str, schema: pa.Schema) -> str:
    """CSV: each field from the first alias the header has; cells are trimmed."""
    names = set(schema.names)
    found = {
        col.name: [_q(p) for p in col.paths if "." not in p and "[" not in p and p in names][:1]
        for col in source.columns
    }
    return _select_fields(source, relation, found)


def _extract_struct(source: Source, relation: str, schema: pa.Schema) -> str:
    """Avro: each field from the first struct path the writer schema has."""
    found = {
        col.name: [e for e in (_struct_path(p, schema) for p in col.paths) if e is not None]
        for col in source.columns
    }
    return _select_fields(source, relation, found)


def _select_fields(source: Source, relation: str, found: dict[str, list[str]]) -> str:
    """The extract SELECT for typed inputs: c_<field> is the first non-null place, trimmed."""
    exprs = [
        f"nullif(advx_trim(coalesce({', '.join(found[c.name])})), '') AS c_{c.name}"
        if found[c.name]
        else f"NULL::VARCHAR AS c_{c.name}"
        for c in source.columns
    ]
    return f"""
SELECT _record, _offset, NULL::VARCHAR AS _dreason,
       NULL::VARCHAR AS _dfield, NULL::VARCHAR AS _ddetail, {", ".join(exprs)}
FROM {relation}"""


def raw_sql(kind: str, relation: str, schema: pa.Schema, records: str) -> str:
    """The records numbered in `records` (a relation with _record) as text, for rejects.

    Text inputs give their line (without its terminator); Avro records are given as JSON.
    """
    if kind == "struct":
        fields = ", ".join(
            f"{_q(n)} := {_q(n)}" for n in schema.names if n not in ("_record", "_offset")
        )
        raw = f"to_json(struct_pack({fields}))::VARCHAR"
    else:
        raw = "rtrim(_raw, chr(13) || chr(10))"
    return (
        f"SELECT _record, {raw} AS _raw FROM {relation} "
        f"WHERE _record IN (SELECT _record FROM {records})"
    )


def _struct_path(path: str, schema: pa.Schema) -> str | None:
    """DuckDB access expression for a dotted path in an Arrow schema, as text; None if absent."""
    steps = _steps(path)
    typ: pa.DataType | None = None
    expr = ""
    for i, step in enumerate(steps):
        if i == 0:
            if not isinstance(step, str) or step not in schema.names:
                return None
            typ = schema.field(step).type
            expr = _q(step)
            continue
        assert typ is not None
        if isinstance(step, int):
            if not (pa.types.is_list(typ) or pa.types.is_large_list(typ)):
                return None
            typ = typ.value_type
            expr = f"{expr}[{step + 1}]"
        else:
            if not pa.types.is_struct(typ) or typ.get_field_index(step) < 0:
                return None
            typ = typ.field(step).type
            expr = f"{expr}.{_q(step)}"
    assert typ is not None
    if pa.types.is_timestamp(typ):
        # Avro timestamp-millis/micros are UTC instants: pass them as epoch milliseconds.
        return f"epoch_ms({expr})::VARCHAR"
    if pa.types.is_struct(typ) or pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return f"to_json({expr})::VARCHAR"
    return f"{expr}::VARCHAR"
