"""serve's timer: the jobs over the store while the collector loads.

Every `serve_jobs_seconds`: fold the new batches into attribution and rollups, then run the
quality checks and advance the alerts. They run on a cursor of the serving store of their own
(DuckDB lets one process hold the file; its transactions keep the jobs and the collector's
writer apart), so the dashboard, its alerts panel and /metrics follow what arrives.
"""

from __future__ import annotations

import logging
import threading

import duckdb

from advertisex.analytics import refresh
from advertisex.config import Settings
from advertisex.errors import AdvertisexError
from advertisex.quality import run_cycle
from advertisex.store import Store
from advertisex.store.duckdb import configure

log = logging.getLogger("advertisex.serve")


class Jobs:
    """A thread running the jobs on a timer until `close`."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._settings = settings
        cursor = store.con.cursor()
        configure(cursor, settings)
        self._store = Store(cursor, store.path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="advx-jobs", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._settings.serve_jobs_seconds):
            self.run_once()

    def run_once(self) -> None:
        try:
            refresh(self._store, self._settings)
        except (AdvertisexError, duckdb.Error) as e:  # the next tick tries again
            log.error("serve jobs: rollup refresh failed: %s", e)
        try:
            run_cycle(self._store, self._settings)
        except (AdvertisexError, duckdb.Error) as e:
            log.error("serve jobs: check cycle failed: %s", e)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(60)
        self._store.close()
