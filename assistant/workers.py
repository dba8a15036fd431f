"""Workers: `newsqa serve` — uvicorn in this process, or N worker processes each calling `make_app`.

uvicorn starts N>1 workers as fresh (spawned) processes that import `assistant.workers:make_app`, so the
Settings the CLI resolved (flags, environment, `.env`) travel to them as JSON in the environment variable
SETTINGS_ENV, which `export_settings` sets in the parent before uvicorn starts. Every response of a worker
carries its process id in WORKER_HEADER, so a client (or a test) can see which worker answered.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from fastapi import FastAPI

from assistant.settings import Settings

log = logging.getLogger("newsqa.api")
SETTINGS_ENV = "NEWSQA_SERVE_SETTINGS_JSON"
WORKER_HEADER = "x-newsqa-worker"


def export_settings(settings: Settings) -> None:
    """Put `settings` (every field, as resolved now) where the spawned workers read them."""
    os.environ[SETTINGS_ENV] = settings.model_dump_json()


def imported_settings() -> Settings:
    """The Settings the serving parent exported (no `.env` or other NEWSQA_* variable may change them)."""
    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        raise RuntimeError(f"{SETTINGS_ENV} is not set: start the workers with `newsqa serve --workers N`")
    values = json.loads(raw)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]  # every field given: env cannot win


class WorkerHeader:
    """ASGI middleware: add this process's id to every HTTP response (`x-newsqa-worker: PID`)."""

    def __init__(self, app: Any) -> None:
        self.app, self.value = app, str(os.getpid()).encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def tagged(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (WORKER_HEADER.encode(),
                                                                                  self.value)]}
            await send(message)

        await self.app(scope, receive, tagged)


def make_app() -> FastAPI:
    """One worker's app over the exported settings (called by uvicorn in each worker process)."""
    from assistant.api import create_app

    app = create_app(imported_settings())
    app.add_middleware(WorkerHeader)
    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the app with uvicorn until interrupted: in this process, or in `workers` worker processes.

    Several workers need a Chroma server (`chroma_host`): a local store is opened by one process only.
    Each worker's embedder gets cores / workers threads unless NEWSQA_EMBED_THREADS is set.
    The derived indexes are brought in step with the store once here, before the workers start, so they
    load the saved copy instead of each building it (a failure is only logged: each worker retries)."""
    import uvicorn

    # keep-alive longer than most clients' idle expiry, so they drop idle connections before the server does
    if workers <= 1:
        from assistant.api import create_app

        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", timeout_keep_alive=30)
        return
    if not settings.chroma_host:
        raise ValueError(f"--workers {workers} needs a Chroma server (NEWSQA_CHROMA_HOST): a local store "
                         "must not be opened by several processes; use --workers 1")
    from assistant.indexes import Indexes
    from assistant.service import open_store

    try:
        Indexes.open(open_store(settings), settings.data_dir)
    except Exception as err:  # e.g. the Chroma server is not up yet: the workers open it when it is
        log.warning("indexes not prepared before starting the workers: %s: %s", type(err).__name__, err)
    if not settings.embed_threads:  # all cores for each worker's embedder would oversubscribe them
        settings = settings.model_copy(update={"embed_threads": max(1, (os.cpu_count() or 1) // workers)})
    export_settings(settings)
    # a worker busy loading or rebuilding big indexes may answer the supervisor's ping late: not "hung"
    uvicorn.run("assistant.workers:make_app", factory=True, workers=workers, host=host, port=port,
                log_level="info", timeout_keep_alive=30, timeout_worker_healthcheck=30)
