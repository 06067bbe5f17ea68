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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
    numbers: list[int]


def container_header(schema: bytes) -> bytes:
    meta = {b"avro.schema": schema, b"avro.codec": b"null"}
    parts = [MAGIC, _encode_long(len(meta))]
    for k, v in meta.items():
        parts += [_encode_long(len(k)), k, _encode_long(len(v)), v]
    parts += [_encode_long(0), _SYNC]
    return b"".join(parts)


def wire_batch(
    uri: str, schema: bytes, bodies: Sequence[memoryview | bytes], numbers: Sequence[int]
) -> WireBatch:
    """Avro bodies of one schema -> one container batch, a block per message.

    Records are numbered 1..n in the batch; `numbers` (Kafka offsets, ...) give their origins.
    """
    parts: list[bytes | memoryview] = []
    blocks: list[tuple[int, int, int, int]] = []
    size = 0
    for number, body in zip(numbers, bodies, strict=True):
        head = b"\x02" + _encode_long(len(body))  # one record
        blocks.append((number, 1, size, len(head) + len(body) + len(_SYNC)))
        parts += [head, body, _SYNC]
        size += blocks[-1][3]
    data = b"".join(parts)
    batch = RawBatch(
        uri,
        Format.AVRO,
        data,
        0,
        1,
        len(data),
        len(bodies),
        header=container_header(schema),
        blocks=tuple(blocks),
    )
    return WireBatch(batch, list(numbers))


def registry_from(schema_dir: Path | None, url: str | None) -> SchemaRegistry:
    """The registry the settings describe (ADVX_SCHEMA_DIR, ADVX_SCHEMA_REGISTRY_URL)."""
    return SchemaRegistry(Path(os.path.expanduser(schema_dir)) if schema_dir else None, url)
