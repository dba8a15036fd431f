"""API: the HTTP interface (`newsqa serve`) — ask, stream, browse articles, health, ingest, the UI pages.

Thin routes over one shared `Service` (opened on first use); the indexes are refreshed at most every
few seconds, and right after an ingest, so other processes' ingests show up. Request bodies are
limited (Content-Length and streamed bytes), errors are JSON without tracebacks, and POST /ingest needs
the bearer token NEWSQA_API_TOKEN (no token configured: ingest over HTTP is off).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from assistant.api_holder import ServiceHolder
from assistant.api_models import (
    STREAM_RESPONSE,
    ArticleDetail,
    ArticleItem,
    ArticleList,
    AskRequest,
    ChunkInfo,
    Health,
    UrlIngest,
    error_responses,
)
from assistant.api_security import BodyLimit, RateLimiter, SecurityHeaders, retry_after
from assistant.api_stream import answer_events
from assistant.resources import resource_dir
from assistant.schema import Answer, IsoDate
from assistant.service import Service
from assistant.settings import Settings
from assistant.store import INDEXED
from ingest.models import IngestReport

log = logging.getLogger("newsqa.api")
EXAMPLES = ["What did Qureshi say about Russia?", "What did Lavrov discuss with Imran Khan?",
            "What are the latest reports about artificial intelligence?",
            "Which companies did TechCrunch report on in October 2023?"]
MAX_UPLOAD_FILES = 50


def _holder(request: Request) -> ServiceHolder:
    return request.app.state.holder


Holder = Annotated[ServiceHolder, Depends(_holder)]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


AppSettings = Annotated[Settings, Depends(_settings)]


BEARER = HTTPBearer(auto_error=False, description="NEWSQA_API_TOKEN (POST /ingest only)")


def _require_token(settings: AppSettings,
                   bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
    """POST /ingest's guard: 403 when no token is configured, 401 when the bearer token is missing/wrong."""
    if not settings.api_token:
        raise HTTPException(403, "ingest over HTTP is disabled (set NEWSQA_API_TOKEN)")
    given = bearer.credentials if bearer is not None else ""
    if not hmac.compare_digest(given.strip().encode(), settings.api_token.encode()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


Authorized = Annotated[None, Depends(_require_token)]


def _rate_limit(request: Request) -> None:
    """/ask's guard: 429 with Retry-After when this client asked more than its share (per address)."""
    client = request.client.host if request.client else "unknown"
    wait = request.app.state.limiter.take(client)
    if wait > 0:
        raise HTTPException(429, f"too many questions from {client}; retry in {retry_after(wait)} s",
                            headers={"Retry-After": retry_after(wait)})


RateLimited = Annotated[None, Depends(_rate_limit)]


def _validation_error(field: str, message: str, kind: str = "value_error") -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": kind}])


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in exc.errors()]
    message = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors)
    return JSONResponse({"detail": jsonable_encoder(errors), "message": message}, 422)


async def _on_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error"}, 500)


def _web_dirs() -> tuple[Path, Path]:
    try:
        web = resource_dir("web")
    except FileNotFoundError:
        web = Path(__file__).resolve().parent.parent / "web"
    for sub in ("templates", "static"):
        with contextlib.suppress(OSError):  # a read-only install: served as missing
            (web / sub).mkdir(parents=True, exist_ok=True)
    return web / "templates", web / "static"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.holder.warm()  # store, embedder, indexes and model client load while the server starts
    yield


def create_app(settings: Settings, service: Service | None = None) -> FastAPI:
    """The newsqa web app over `settings`' store (or over `service`, e.g. one built in a test)."""
    app = FastAPI(title="newsqa", version="0.1.0", lifespan=_lifespan,
                  description="Answers questions about news articles, with citations a reader can check.")
    app.state.settings, app.state.holder = settings, ServiceHolder(settings, service)
    app.state.limiter = RateLimiter(settings.ask_rate_per_minute, settings.ask_rate_burst)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_error)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:  # closed by default: no CORS headers, so browsers keep other sites out
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "Authorization"], max_age=600)
    app.add_middleware(SecurityHeaders)  # outermost: also on 413s and 500s
    templates_dir, static_dir = _web_dirs()
    templates = Jinja2Templates(directory=str(templates_dir))
    app.mount("/static", StaticFiles(directory=str(static_dir), check_dir=False), name="static")

    def page(request: Request, name: str) -> HTMLResponse:
        try:
            return templates.TemplateResponse(request, name, {"request": request, "examples": EXAMPLES})
        except Exception as err:  # a missing or broken template: clean JSON, details in the log
            log.error("cannot render %s", name, exc_info=err)
            return JSONResponse({"detail": f"page unavailable: cannot render {name}"}, 500)  # type: ignore[return-value]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        return page(request, "index.html")

    @app.get("/browse", response_class=HTMLResponse, include_in_schema=False)
    def browse(request: Request) -> HTMLResponse:
        return page(request, "articles.html")

    def checked(body: AskRequest) -> AskRequest:
        if len(body.question) > settings.max_question_chars:
            raise _validation_error("question", f"question is too long ({len(body.question)} characters; "
                                    f"at most {settings.max_question_chars})", "string_too_long")
        return body

    @app.post("/ask", response_model=Answer, responses=error_responses(400, 413, 422, 429))
    def ask(body: AskRequest, holder: Holder, _: RateLimited) -> Answer:
        """Answer a question from the articles, with verified citations."""
        body = checked(body)
        service = holder.fresh()
        return service.answerer.ask(body.question, body.history, body.filters, body.k or settings.top_k)

    @app.post("/ask/stream", response_class=StreamingResponse,
              responses={**STREAM_RESPONSE, **error_responses(400, 413, 422, 429)})
    def ask_stream(body: AskRequest, holder: Holder, _: RateLimited) -> StreamingResponse:
        """The answer as Server-Sent Events: sources, token…, answer, done (error before done on failure)."""
        body = checked(body)
        service = holder.fresh()
        events = answer_events(service.answerer, body.question, body.history, body.filters,
                               body.k or settings.top_k)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/articles", response_model=ArticleList)
    def articles(holder: Holder, q: str = "", source: str = "",
                 since: Annotated[IsoDate | None, Query(description="earliest date, YYYY-MM-DD")] = None,
                 until: Annotated[IsoDate | None, Query(description="latest date, YYYY-MM-DD")] = None,
                 offset: Annotated[int, Query(ge=0)] = 0,
                 limit: Annotated[int, Query(ge=1, le=100)] = 20) -> ArticleList:
        """Indexed articles, newest first; `q` matches titles (case-insensitive)."""
        records = holder.records()
        rows = [ArticleItem.from_record(i, m) for i, m in records
                if m.get("status") == INDEXED and (q.casefold() in str(m.get("title", "")).casefold())
                and (not source or source.casefold() == str(m.get("source", "")).casefold())
                and _in_range(str(m.get("published_at") or ""), since, until)]
        ts = {i: m.get("published_ts") for i, m in records}
        rows.sort(key=lambda r: (ts.get(r.id) is not None, ts.get(r.id) or 0, r.id), reverse=True)
        return ArticleList(total=len(rows), items=rows[offset : offset + limit])

    @app.get("/articles/{article_id}", response_model=ArticleDetail, responses=error_responses(404))
    def article(article_id: str, holder: Holder) -> ArticleDetail:
        """One article: metadata, body and chunk boundaries."""
        service = holder.get()
        store = service.store
        meta = store.records([article_id]).get(article_id)
        body = store.body(article_id) if meta is not None else None
        if meta is None or body is None:
            raise HTTPException(404, f"no article with id {article_id!r}")
        pairs = service.indexes.chunks_of(article_id, str(meta.get("content_hash") or ""))
        if pairs is None:  # not (yet) in the indexes, or another version: Chroma's own chunks
            got = store.chunks.get(where={"article_id": article_id}, include=["metadatas"])
            pairs = list(zip(got["ids"], got["metadatas"], strict=True))
        chunks = sorted((ChunkInfo.from_meta(cid, cm) for cid, cm in pairs), key=lambda c: c.index)
        return ArticleDetail(**ArticleItem.from_record(article_id, meta).model_dump(exclude={"status"}),
                             author=str(meta.get("author") or ""), body=body, chunks=chunks)

    @app.get("/health", response_model=Health,
             responses={503: {"model": Health, "description": "The store is unavailable."}})
    def health(holder: Holder) -> Health | JSONResponse:
        """Whether the store answers, and how much this process serves from it (its indexes, which follow
        the store within seconds; counting the store itself meant reading every article record and, for
        the chunk count, loading Chroma's vector index into the process: 2 GB at 1M chunks)."""
        try:
            service = holder.fresh()
            service.store.generation()  # one small read: the store answers
            stats = service.indexes.counts()
        except Exception as err:
            log.warning("health check failed: %s", err)
            reason = f"store unavailable: {type(err).__name__}"
            return JSONResponse(Health(status="unavailable", reason=reason).model_dump(), 503)
        model = getattr(service.answerer.llm, "name", None) if service.answerer.llm is not None else None
        return Health(status="ok", articles=stats["articles"], chunks=stats["chunks"], model=model,
                      embedder=service.embedder.name)

    @app.post("/ingest", response_model=IngestReport, responses=error_responses(400, 401, 403, 413, 415, 422),
              openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["files"], "properties": {"files": {
            "type": "array", "minItems": 1, "maxItems": MAX_UPLOAD_FILES,
            "items": {"type": "string", "format": "binary"}}}}},
        "application/json": {"schema": UrlIngest.model_json_schema()}}}})
    async def ingest_route(request: Request, _: Authorized, holder: Holder) -> IngestReport:
        """Ingest uploaded files (multipart `files`) or `{"urls": [...]}` (http/https only)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            async with request.form(max_files=MAX_UPLOAD_FILES) as form:
                files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
                if not files:
                    raise _validation_error("files", "upload one or more files in the `files` field")
                with tempfile.TemporaryDirectory(prefix="newsqa-upload-") as tmp:
                    for n, upload in enumerate(files):
                        name = Path(upload.filename or "").name.lstrip(".") or "upload.txt"
                        folder = Path(tmp) / str(n)
                        folder.mkdir()
                        (folder / name).write_bytes(await upload.read())
                    return await run_in_threadpool(_ingest, holder, [tmp])
        if ctype == "application/json":
            try:
                body = UrlIngest.model_validate_json(await request.body())
            except ValidationError as err:
                errors = [{**e, "loc": ("body", *e["loc"])} for e in err.errors()]
                raise RequestValidationError(errors) from None
            return await run_in_threadpool(_ingest, holder, body.urls)
        raise HTTPException(415, "send multipart/form-data with `files`, or JSON {\"urls\": [...]}")

    return app


def _in_range(published_at: str, since: date | None, until: date | None) -> bool:
    """Whether an ISO date(time) is within [since, until] by calendar date (unknown: only if no range)."""
    if since is None and until is None:
        return True
    try:
        day = date.fromisoformat(published_at[:10])
    except ValueError:
        return False
    return (since is None or day >= since) and (until is None or day <= until)


def _ingest(holder: ServiceHolder, targets: list[str]) -> IngestReport:
    from ingest.pipeline import ingest

    service = holder.get()
    with holder.ingest_lock:
        report = ingest(targets, service.store, service.embedder, service.settings,
                        allow_private=service.settings.allow_private_urls)
        holder.fresh(force=True)
    for failure in report.failed:  # temp upload paths mean nothing to the client: keep the file name
        failure.path = Path(failure.path).name if not failure.path.startswith("http") else failure.path
    return report
