"""The warehouse: DuckDB by default, its schema, loads and source positions."""

from advertisex.store.duckdb import BOOKKEEPING, Store, column_type, one

__all__ = ["BOOKKEEPING", "Store", "column_type", "one"]
