"""Decoders: RawBatch bytes -> Arrow tables of records plus decode rejects."""

from advertisex.formats.decoded import Decoded, decode

__all__ = ["Decoded", "decode"]
