"""The one enumerated list of reasons a row can be quarantined for."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a row (or an unreadable piece of a file) went to rejects."""

    # decode: the bytes are not a record of the expected format
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    MALFORMED_CSV = "malformed_csv"
    BAD_AVRO_BLOCK = "bad_avro_block"
    TRUNCATED_FILE = "truncated_file"
    UNREADABLE_FILE = "unreadable_file"
    # validate: a record of the right format that breaks the source's contract
    MISSING_FIELD = "missing_field"
    INVALID_VALUE = "invalid_value"
    INVALID_TIMESTAMP = "invalid_timestamp"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    UNKNOWN_CONVERSION_TYPE = "unknown_conversion_type"
