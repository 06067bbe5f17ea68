"""Avro messages in the Confluent wire format (magic 0, schema id, Avro body) -> RawBatch.

Messages that share a schema become one small Avro container, one block per message, so the
existing Avro decoder reads them in native code and a message that does not decode is
isolated as its own `bad_avro_block` reject.
"""

from __future__ import annotations

import json
import os
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advertisex.errors import ConfigError, InputError
from advertisex.sources.avro_blocks import MAGIC, _encode_long
from advertisex.sources.batch import Format, RawBatch

WIRE_MAGIC = 0
_SYNC = b"advertisex-sync!"  # any 16 bytes: these containers never leave the process


class SchemaRegistry:
    """Avro schemas by Confluent schema id: a folder of `<id>.avsc` files and/or a registry URL."""

    def __init__(self, folder: Path | None = None, url: str | None = None) -> None:
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"schema folder {folder} does not exist; fix schema_dir")
        self.folder = folder
        self.url = url.rstrip("/") if url else None
        self._cache: dict[int, bytes] = {}

    def schema(self, schema_id: int) -> bytes:
        """The schema's JSON text; InputError if no source knows the id."""
        if schema_id in self._cache:
            return self._cache[schema_id]
        text: bytes | None = None
        if self.folder is not None:
            path = self.folder / f"{schema_id}.avsc"
            if path.is_file():
                text = path.read_bytes()
        if text is None and self.url is not None:
            text = self._fetch(schema_id)
        if text is None:
            raise InputError(f"unknown Avro schema id {schema_id}", schema_id=schema_id)
        try:
            json.loads(text)
        except ValueError:
            raise InputError(f"Avro schema {schema_id} is not JSON", schema_id=schema_id) from None
        self._cache[schema_id] = text
        return text

    def _fetch(self, schema_id: int) -> bytes | None:
        url = f"{self.url}/schemas/ids/{schema_id}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise InputError(f"schema registry {url} answered {e.code}", url=url) from None
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read schema {schema_id} from {url}: {e}", url=url) from None
        schema = body.get("schema") if isinstance(body, dict) else None
        return schema.encode() if isinstance(schema, str) else None


def split_wire(value: bytes) -> tuple[int, memoryview]:
    """Schema id and Avro body of one wire-format message; ValueError if it is not one."""
    if len(value) < 5 or value[0] != WIRE_MAGIC:
        head = bytes(value[:8]).hex(" ")
        raise ValueError(f"not a Confluent wire-format Avro message (first bytes {head})")
    (schema_id,) = struct.unpack(">I", value[1:5])
    return schema_id, memoryview(value)[5:]


@dataclass(frozen=True)
class WireBatch:
    """Messages of one schema as a container batch; `numbers[i]` is block i's origin number."""

    batch: RawBatch
    numbers: np.ndarray


def container_header(schema: bytes) -> bytes:
    meta = {b"avro.schema": schema, b"avro.codec": b"null"}
    parts = [MAGIC, _encode_long(len(meta))]
    for k, v in meta.items():
        parts += [_encode_long(len(k)), k, _encode_long(len(v)), v]
    parts += [_encode_long(0), _SYNC]
    return b"".join(parts)


def _spans(size: int, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """A mask of `size` bytes, true inside each [start, start + len)."""
    edges = np.zeros(size + 1, dtype=np.int8)
    edges[starts] = 1
    edges[starts + lens] -= 1
    return np.cumsum(edges[:-1], dtype=np.int8).astype(bool)


def wire_batch(
    uri: str,
    schema: bytes,
    data: np.ndarray,
    starts: np.ndarray,
    lens: np.ndarray,
    numbers: np.ndarray,
) -> WireBatch:
    """Avro bodies of one schema (`data[starts[i]:][:lens[i]]`) -> one container, a block each.

    Built with numpy, no Python step per message: each block is a record count of 1, the
    body's length (zigzag varint), the body and the sync marker. Records are numbered 1..n
    in the batch; `numbers` (Kafka offsets, ...) give their origins.
    """
    lens = np.asarray(lens, dtype=np.int64)
    zigzag = lens * 2
    varint = np.ones_like(zigzag)  # bytes of the varint: 7 bits each
    for k in range(1, 5):
        varint += zigzag >= 1 << (7 * k)
    size = 1 + varint + lens + len(_SYNC)
    at = np.cumsum(size) - size
    out = np.empty(int(size.sum()), dtype=np.uint8)
    out[at] = 2  # one record
    for k in range(int(varint.max(initial=1))):
        has = varint > k
        more = (varint[has] > k + 1).astype(np.int64) << 7
        out[at[has] + 1 + k] = ((zigzag[has] >> (7 * k)) & 0x7F) | more
    body = at + 1 + varint
    out[_spans(out.size, body, lens)] = data[_spans(data.size, np.asarray(starts), lens)]
    sync = np.frombuffer(_SYNC, dtype=np.uint8)
    out[(body + lens)[:, None] + np.arange(sync.size)] = sync
    nums = np.asarray(numbers, dtype=np.int64)
    blocks = tuple(zip(nums.tolist(), [1] * nums.size, at.tolist(), size.tolist(), strict=True))
    raw = out.tobytes()
    batch = RawBatch(
        uri,
        Format.AVRO,
        raw,
        0,
        1,
        len(raw),
        int(nums.size),
        header=container_header(schema),
        blocks=blocks,
    )
    return WireBatch(batch, nums)


def registry_from(schema_dir: Path | None, url: str | None) -> SchemaRegistry:
    """The registry the settings describe (ADVX_SCHEMA_DIR, ADVX_SCHEMA_REGISTRY_URL)."""
    return SchemaRegistry(Path(os.path.expanduser(schema_dir)) if schema_dir else None, url)
