"""Workers: the app factory that `newsqa serve --workers N` hands to uvicorn, one call per worker process.

uvicorn starts N>1 workers as fresh (spawned) processes that import `assistant.workers:make_app`, so the
Settings the CLI resolved (flags, environment, `.env`) travel to them as JSON in the environment variable
SETTINGS_ENV, which `export_settings` sets in the parent before uvicorn starts. Every response of a worker
carries its process id in WORKER_HEADER, so a client (or a test) can see which worker answered.
"""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI

from assistant.settings import Settings

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
