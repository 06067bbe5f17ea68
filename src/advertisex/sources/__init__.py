"""Sources turn files, HTTP bodies and Kafka messages into RawBatches."""

from advertisex.sources.batch import Format, RawBatch
from advertisex.sources.files import FileInput, expand_paths, read_file_batches, sniff_file

__all__ = ["FileInput", "Format", "RawBatch", "expand_paths", "read_file_batches", "sniff_file"]
