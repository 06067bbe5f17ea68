"""RawBatch: bytes of whole records plus where they came from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Format(StrEnum):
    NDJSON = "ndjson"  # one JSON value per line
    JSON_DOC = "json"  # one JSON document: an array of records or a single record
    CSV = "csv"
    AVRO = "avro"  # object container file (the batch holds header + whole blocks)


@dataclass(frozen=True)
class RawBatch:
    """Whole records of one format from one origin.

    `start_offset` / `first_record` place `data` in its stream (decompressed bytes; 1-based
    line number for text, record index for Avro) so every row can be traced to its source.
    `end_offset` / `end_record` are where a later run resumes once this batch is committed.
    """

    uri: str
    fmt: Format
    data: bytes | memoryview  # a memoryview when it is a slice of a mapped file
    start_offset: int
    first_record: int
    end_offset: int
    end_record: int
    header: bytes = b""  # CSV header line, or Avro container header
    header_lines: int = 0  # lines the CSV header spans (records before data)
    truncated_tail: bytes | None = None  # partial last record of a cut-short stream
    truncation_detail: str = ""
    final: bool = True
    # Avro: (file offset, record count, start in data, length) of each block in data
    blocks: tuple[tuple[int, int, int, int], ...] = ()
