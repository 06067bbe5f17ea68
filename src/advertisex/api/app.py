"""The ASGI app factory and the server that runs it (uvicorn)."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI
from prometheus_client import make_asgi_app

from advertisex.api.cache import AnswerCache, ServeCached
from advertisex.api.collector import router
from advertisex.api.dashboard import mount_dashboard
from advertisex.api.jobs import Jobs
from advertisex.api.query import CACHED, Reader, install_errors
from advertisex.api.query import health as health_router
from advertisex.api.query import router as query_router
from advertisex.api.trackers import Trackers, TrackerSpool
from advertisex.config import Settings
from advertisex.errors import ConfigError
from advertisex.pipeline.forward import KafkaForwarder
from advertisex.pipeline.gauges import set_queue_depth
from advertisex.pipeline.microbatch import MicroBatcher
from advertisex.sources.confluent import registry_from
from advertisex.sources.spool import Spool
from advertisex.store import Store


def create_app(settings: Settings, *, kafka: str | None = None) -> Trackers:
    """The app: the store and its micro-batcher live as long as the app (its lifespan).

    The trackers answer in front of the FastAPI app (`.app`). With `kafka` (bootstrap
    servers) the collector produces events to Kafka instead.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if kafka is not None:
            forwarder = KafkaForwarder(settings, kafka)
            app.state.batcher = forwarder
            try:
                yield
            finally:
                forwarder.close()
            return
        store = Store.open(settings)
        spool = None
        if str(settings.db) != ":memory:":
            folder = settings.collector_spool_dir or Path(f"{settings.db}.spool")
            spool = Spool(
                folder, settings.collector_spool_rotate_bytes, fsync=settings.collector_spool_fsync
            )
        batcher = MicroBatcher(store, settings, on_depth=set_queue_depth, spool=spool)
        app.state.batcher = batcher
        if spool is not None:
            app.state.spool = TrackerSpool(batcher)
        app.state.reader = Reader(store, settings)
        answers.open(store, settings)
        jobs = Jobs(store, settings) if settings.serve_jobs_seconds > 0 else None
        app.state.jobs = jobs
        try:
            yield
        finally:
            if jobs is not None:
                jobs.close()
            answers.close()
            app.state.reader.close()
            if app.state.spool is not None:
                app.state.spool.close()  # its last hits go into the batcher's queue
                app.state.spool = None
            batcher.close()  # the last requests flush and commit before the store closes
            store.close()
            if spool is not None:
                spool.close()

    answers = AnswerCache(CACHED, settings)
    app = FastAPI(title="advertisex", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(ServeCached, cache=answers)
    app.state.settings = settings
    app.state.registry = registry_from(settings.schema_dir, settings.schema_registry_url)
    app.include_router(router)
    app.state.spool = None  # tracker hits' group writes to the spool, once the store is open
    app.state.reader = None  # the query routes' cursors, once the store is open
    app.include_router(health_router)
    app.include_router(query_router)
    install_errors(app)
    app.mount("/metrics", make_asgi_app())
    mount_dashboard(app)
    return Trackers(app)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Stop accepting, finish requests, flush, exit 0 (uvicorn would re-raise the signal).
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


def serve(
    settings: Settings,
    host: str,
    port: int,
    say: Callable[[str], None] = print,
    kafka: str | None = None,
) -> None:
    """Run the collector until SIGTERM or SIGINT."""
    if not settings.collector_api_keys and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} with no API keys; set collector_api_keys "
            "(ADVX_COLLECTOR_API_KEYS) or listen on 127.0.0.1"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {e.strerror}; pick another --port"
        ) from None
    bound = sock.getsockname()[1]
    if kafka is None:
        Store.open(settings).close()  # a locked or misplaced store: one plain line, now
    app = create_app(settings, kafka=kafka)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    if not settings.collector_api_keys:
        say("no API keys configured: listening on loopback only")
    sink = f"Kafka {kafka}" if kafka else f"store {settings.db}"
    say(f"serving on http://{host}:{bound} ({sink})")
    sys.stdout.flush()
    _Server(config).run(sockets=[sock])
