"""The dashboard: server-rendered pages that update live through server-sent events, the JSON behind them,
`/metrics`, `/healthz` and `/readyz`.

Pages: Topics, Capture, Jobs (and one job), Errors (Retry, Retry all, Skip, Keep ERP / Keep CRM for a conflict),
Mappings, Record lookup. Every request
passes `security.Guard` (token, loopback Host, CSRF cookie, security headers); every POST checks the CSRF token.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cdc.errors import CdcError
from cdc.monitoring import health, metrics, pages
from cdc.monitoring.history import point
from cdc.monitoring.records import lookup
from cdc.monitoring.sampler import Sampler
from cdc.monitoring.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    Guard,
    csrf_ok,
    reason,
    same_origin,
    token_of,
)
from cdc.monitoring.snapshot import Collector, SectionFailed
from cdc.pair import SYSTEMS
from cdc.settings import Settings
from cdc.state import job_errors

log = structlog.get_logger(component="dashboard")

STATIC = Path(__file__).parent / "static"
KEEPALIVE_SECONDS = 15.0
MAX_FORM_BYTES = 16 * 1024
MAX_EVENTS = 1_000_000  # `/events?max=`: the most events a bounded stream is asked for


@dataclass
class Monitor:
    """Everything the routes share, kept on `app.state.monitor`."""

    settings: Settings
    collector: Collector
    sampler: Sampler
    data: pages.PageData
    env: Any
    registry: Any
    max_lag: int
    history_seconds: float

    @property
    def redact(self) -> Callable[[str], str]:
        return self.collector.redact


def create_app(settings: Settings, *, interval: float = 2.0, history_seconds: float = 600.0,
               collector: Collector | None = None, sample_in_background: bool = True) -> Starlette:
    """The dashboard application. `sample_in_background=False` leaves sampling to the caller (tests)."""
    collector = collector or Collector(settings)
    sampler = Sampler(collector, interval=interval, history_seconds=history_seconds)
    monitor = Monitor(settings=settings, collector=collector, sampler=sampler,
                      data=pages.PageData(sampler, collector), env=pages.environment(),
                      registry=metrics.registry(lambda: sampler.latest), max_lag=health.ready_max_lag(settings),
                      history_seconds=history_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if sample_in_background:
            sampler.start()
        try:
            yield
        finally:
            await sampler.close()
            await collector.close()

    routes = [
        Route("/", home),
        Route("/topics", _page("topics", "Topics")),
        Route("/capture", _page("capture", "Capture")),
        Route("/jobs", _page("jobs", "Jobs")),
        Route("/jobs/{id}", _page("job", "Job", active="jobs")),
        Route("/errors", _page("errors", "Errors")),
        Route("/mappings", _page("mappings", "Mappings")),
        Route("/record", record_page),
        Route("/errors/retry-all", retry_all, methods=["POST"]),
        Route("/errors/{id:int}/retry", retry_one, methods=["POST"]),
        Route("/errors/{id:int}/skip", skip_one, methods=["POST"]),
        Route("/errors/{id:int}/resolve", resolve_one, methods=["POST"]),
        Route("/events", events),
        Route("/api/snapshot", api_snapshot),
        Route("/api/history", api_history),
        Route("/metrics", metrics_endpoint),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[
        Middleware(Guard, token=token_of(settings), allowed_hosts=[settings.dashboard_host])])  # type: ignore[arg-type]
    app.state.monitor = monitor
    return app


async def home(request: Request) -> Response:
    return RedirectResponse("/topics", 303)


def _monitor(request: Request) -> Monitor:
    return request.app.state.monitor


# ---------------------------------------------------------------- rendering

def _render(request: Request, template: str, context: dict[str, Any], *, page: str, title: str,
            active: str | None = None, status: int = 200) -> HTMLResponse:
    monitor = _monitor(request)
    params = dict(request.query_params)
    if page == "job":
        params["id"] = request.path_params.get("id", "")
    events = "/events?" + urlencode({"page": page, **{k: v for k, v in params.items() if k not in ("page", "done",
                                                                                                  "n", "error")}})
    html = monitor.env.get_template(template).render(
        **context, page=page, title=title, nav=pages.NAV, active=active or page, csrf=_csrf(request),
        live=page in pages.LIVE_PAGES, events_url=events, history_minutes=int(monitor.history_seconds // 60))
    return HTMLResponse(html, status_code=status)


def _csrf(request: Request) -> str:
    return request.scope.get("state", {}).get("csrf", "")


def _problem(request: Request, exc: BaseException, status: int = 500) -> HTMLResponse:
    monitor = _monitor(request)
    text = monitor.redact(reason(exc))
    log.error("request failed", path=request.url.path, error=text)
    snapshot = monitor.sampler.latest
    return _render(request, "problem.html", {"snapshot": snapshot, "message": text}, page="problem",
                   title="Problem", status=status)


def _page(page: str, title: str, active: str | None = None) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        monitor = _monitor(request)
        params = dict(request.query_params)
        if page == "job":
            params["id"] = request.path_params["id"]
        try:
            context = await pages.BUILDERS[page](monitor.data, params)
        except Exception as exc:  # noqa: BLE001 - shown as a problem page, redacted
            return _problem(request, exc)
        status = 404 if page == "job" and context.get("job") is None and context.get("problem") is None else 200
        return _render(request, f"{page}.html", context, page=page, title=title, active=active, status=status)

    return endpoint


async def record_page(request: Request) -> Response:
    monitor = _monitor(request)
    params = request.query_params
    system = params.get("system") if params.get("system") in SYSTEMS else "erp"
    key = (params.get("key") or "").strip()
    mapping_file = monitor.collector.mapping_file
    names = [m.name for m in mapping_file.mappings] if mapping_file else []
    mapping = params.get("mapping") if params.get("mapping") in names else None
    matches, problems = [], []
    if key and mapping_file is not None:
        try:
            matches, problems = await lookup(monitor.collector, mapping_file, system, key, mapping)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001
            return _problem(request, exc)
    context = {"snapshot": monitor.sampler.latest, "system": system, "key": key, "mapping": mapping or "",
               "mappings": names, "systems": SYSTEMS, "matches": matches, "problems": problems,
               "searched": bool(key)}
    return _render(request, "record.html", context, page="record", title="Record lookup")


# ---------------------------------------------------------------- actions (POST, CSRF-checked)

async def _form(request: Request) -> dict[str, str] | Response:
    """The urlencoded form of a POST after the CSRF and same-origin checks, or the 403 response."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return Response("form too large\n", status_code=413, media_type="text/plain")
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        form = {}
    submitted = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    headers = request.headers
    if not same_origin(headers.get("origin"), headers.get("referer"), headers.get("host"),
                       headers.get("sec-fetch-site")):
        return Response("forbidden: cross-site request\n", status_code=403, media_type="text/plain")
    if not csrf_ok(_csrf(request), submitted):
        return Response("forbidden: missing or wrong CSRF token; reload the page and try again\n", status_code=403,
                        media_type="text/plain")
    return form


def _back(form: dict[str, str], **outcome: str | int) -> RedirectResponse:
    """Back to the page the action came from (a local path only), with the outcome codes."""
    target = form.get("back") or "/errors"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/errors"
    path, _, query = target.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query) if k not in ("done", "n", "error")]
    kept += [(k, str(v)) for k, v in outcome.items()]
    return RedirectResponse(path + "?" + urlencode(kept), status_code=303)


async def _act(request: Request, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    monitor = _monitor(request)

    async def in_transaction(conn: asyncpg.Connection) -> Any:
        async with conn.transaction():
            return await work(conn)

    result = await monitor.collector.run("state", in_transaction)
    monitor.collector.forget_slow_parts()
    monitor.sampler.sample_soon()  # the live pages show the outcome without waiting for the next sample
    return result


async def retry_one(request: Request) -> Response:
    form = await _form(request)
    if isinstance(form, Response):
        return form
    error_id = request.path_params["id"]
    if not 0 < error_id <= job_errors.MAX_ID:
        return _no_such_error()
    try:
        retried = await _act(request, lambda conn: job_errors.retry(conn, [error_id]))
    except (SectionFailed, CdcError) as exc:
        return _problem(request, exc, 503)
    log.info("error retried", error=error_id, found=bool(retried))
    if not retried:
        return _back(form, done="missing", error=error_id)
    return _back(form, done="retry", error=error_id)


def _no_such_error() -> Response:
    return Response("no such error: an error id is a number from 1 to 2^63-1\n", status_code=404,
                    media_type="text/plain")


async def retry_all(request: Request) -> Response:
    form = await _form(request)
    if isinstance(form, Response):
        return form
    mapping_file = _monitor(request).collector.mapping_file
    names = [m.name for m in mapping_file.mappings] if mapping_file else []
    mapping = form.get("mapping") if form.get("mapping") in names else None

    async def work(conn: asyncpg.Connection) -> list[job_errors.JobError]:
        return await job_errors.retry(conn, await job_errors.open_ids(conn, mapping))

    try:
        retried = await _act(request, work)
    except (SectionFailed, CdcError) as exc:
        return _problem(request, exc, 503)
    log.info("errors retried", count=len(retried), mapping=mapping)
    if not retried:
        return _back(form, done="missing")
    return _back(form, done="retry", n=len(retried))


async def skip_one(request: Request) -> Response:
    form = await _form(request)
    if isinstance(form, Response):
        return form
    error_id = request.path_params["id"]
    if not 0 < error_id <= job_errors.MAX_ID:
        return _no_such_error()
    try:
        outcome = await _act(request, lambda conn: job_errors.skip(conn, error_id))
    except (SectionFailed, CdcError) as exc:
        return _problem(request, exc, 503)
    log.info("error skipped", error=error_id, found=outcome is not None)
    return _back(form, done="skip" if outcome is not None else "missing", error=error_id)


async def resolve_one(request: Request) -> Response:
    """Keep one side's values of a conflict (`cdc resolve`): queued for the worker, which writes them to the other
    side and closes the error."""
    form = await _form(request)
    if isinstance(form, Response):
        return form
    error_id = request.path_params["id"]
    keep = form.get("keep")
    if keep not in SYSTEMS:
        return Response("bad request: keep is erp or crm\n", status_code=400, media_type="text/plain")

    async def work(conn: asyncpg.Connection) -> str:
        try:
            queued = await job_errors.resolve(conn, error_id, keep)  # type: ignore[arg-type]
        except job_errors.NotResolvable:
            return "unresolvable"  # nothing was written
        return f"keep-{keep}" if queued is not None else "missing"

    try:
        outcome = await _act(request, work)
    except (SectionFailed, CdcError) as exc:
        return _problem(request, exc, 503)
    log.info("conflict resolution", error=error_id, keep=keep, outcome=outcome)
    return _back(form, done=outcome, error=error_id)


# ---------------------------------------------------------------- live updates

async def events(request: Request) -> Response:
    """Server-sent events for one page: its live part re-rendered for every new snapshot.

    `?page=<page>` and the page's own parameters; `max=N` ends the stream after N events (tests, scripts).
    """
    monitor = _monitor(request)
    params = dict(request.query_params)
    page = params.pop("page", "")
    if page not in pages.LIVE_PAGES:
        return JSONResponse({"error": f"no live page {page!r}"}, status_code=404)
    limit = pages.count_param(params.get("max"), 0, MAX_EVENTS)
    if "max" in params and not limit:
        return Response(f"bad request: max is a number of events from 1 to {MAX_EVENTS:,}\n", status_code=400,
                         media_type="text/plain")
    csrf = _csrf(request)
    sampler = monitor.sampler

    async def stream() -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        sent, version = 0, -1
        while not sampler.closed:
            if sampler.version > version or version < 0:
                await sampler.current()
                version = sampler.version
                yield "event: update\ndata: " + json.dumps(await _update(monitor, page, params, csrf)) + "\n\n"
                sent += 1
                if limit and sent >= limit:
                    return
            if not await sampler.wait_newer(version, KEEPALIVE_SECONDS) and not sampler.closed:
                yield ": keepalive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


async def _update(monitor: Monitor, page: str, params: dict[str, str], csrf: str) -> dict[str, Any]:
    try:
        context = await pages.BUILDERS[page](monitor.data, params)
        html = monitor.env.get_template(f"live/{page}.html").render(**context, csrf=csrf, page=page)
    except Exception as exc:  # noqa: BLE001 - the page keeps its last content and shows the problem
        text = monitor.redact(reason(exc))
        log.error("live update failed", page=page, error=text)
        html = None
    snapshot = monitor.sampler.latest
    status = monitor.env.get_template("live/status.html").render(snapshot=snapshot)
    sample = monitor.sampler.latest_sample
    return {"version": monitor.sampler.version, "html": html, "status": status,
            "point": point(sample) if sample is not None else None}


# ---------------------------------------------------------------- JSON, metrics, health

async def api_snapshot(request: Request) -> Response:
    snapshot = await _monitor(request).sampler.current()
    return JSONResponse(snapshot.as_json())


async def api_history(request: Request) -> Response:
    monitor = _monitor(request)
    seconds = pages.count_param(request.query_params.get("seconds"), int(monitor.history_seconds),
                                int(monitor.history_seconds))
    return JSONResponse(monitor.sampler.history.series(seconds))


async def metrics_endpoint(request: Request) -> Response:
    monitor = _monitor(request)
    await monitor.sampler.current()
    return Response(metrics.render(monitor.registry), media_type=metrics.CONTENT_TYPE)


async def healthz(request: Request) -> Response:
    return JSONResponse(health.healthz())


async def readyz(request: Request) -> Response:
    monitor = _monitor(request)
    snapshot = await monitor.collector.collect(full=False, track=False)
    readiness = health.assess(snapshot, monitor.max_lag)
    return JSONResponse(readiness.as_dict(), status_code=200 if readiness.ready else 503)
