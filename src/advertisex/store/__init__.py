"""The warehouse: DuckDB by default, its schema, loads and source positions."""

from advertisex.store.duckdb import Store, column_type, one

__all__ = ["Store", "column_type", "one"]
