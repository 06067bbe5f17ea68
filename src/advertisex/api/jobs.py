"""The jobs `serve` runs on a timer over what it loaded: rollups, then checks and alerts.

They run on a thread of their own, on a connection of their own to the same database (DuckDB
serves one thread per connection); the collector's writer goes on meanwhile. A failing run is
logged and the next one tries again: a job never stops the collector.
"""

from __future__ import annotations

import logging
import threading

from advertisex.config import Settings
from advertisex.quality.sinks import Notifier, sinks_from
from advertisex.store import Store
from advertisex.store.duckdb import configure

log = logging.getLogger("advertisex.serve")


class Jobs:
    """Every `settings.serve_jobs_seconds`: analytics.refresh, then quality.run_cycle."""

    def __init__(self, store: Store, settings: Settings) -> None:
        con = store.con.cursor()
        configure(con, settings)
        self._store = Store(con, store.path)
        self._settings = settings
        # alert deliveries (and their retries) on a thread of their own: the job goes on
        self._notifier = Notifier(sinks_from(settings))
        self._stop = threading.Event()
        self.runs = 0
        self._thread = threading.Thread(target=self._loop, name="advx-jobs", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._settings.serve_jobs_seconds):
            self.run_once()

    def run_once(self) -> None:
        from advertisex.analytics import refresh
        from advertisex.quality import run_cycle

        try:
            refresh(self._store, self._settings)
            run_cycle(self._store, self._settings, self._notifier)
        except Exception:  # logged; the next run tries again
            log.exception("serve: the rollup/check job failed")
        self.runs += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._notifier.close()
        self._store.close()
