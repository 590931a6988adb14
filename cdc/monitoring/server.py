"""Running the dashboard under uvicorn as one asyncio task among others (`cdc dashboard`, the `cdc run`
supervisor): it binds before it starts (a taken port is a one-line error, not an exit), leaves signal handling to
the caller, and stops when `stop` is set — live pages first, so no open event stream holds the shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Generator
from dataclasses import dataclass

import structlog
import uvicorn

from cdc.errors import ConfigError, ServiceUnavailable
from cdc.monitoring.app import create_app
from cdc.monitoring.security import check_bind, token_of
from cdc.settings import Settings

log = structlog.get_logger(component="dashboard")


@dataclass(frozen=True)
class DashboardOptions:
    host: str | None = None  # None: settings.dashboard_host
    port: int | None = None  # None: settings.dashboard_port; 0: any free port
    interval: float = 2.0  # seconds between snapshots
    history_minutes: float = 10.0  # how far back the charts go


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to its caller."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServiceUnavailable(f"dashboard: port {port} on {host} is already in use (set CDC_DASHBOARD_PORT "
                                     "or --port)") from None
        raise ConfigError(f"dashboard: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def address(settings: Settings, options: DashboardOptions | None = None) -> tuple[str, int]:
    """Where the dashboard will listen; ConfigError (one line) when the settings do not let it serve there (a
    non-loopback host without a token, a token too short). What `cdc run` and `cdc demo` check before they start
    anything: a dashboard refusing its configuration would otherwise be restarted for ever."""
    options = options or DashboardOptions()
    host = options.host or settings.dashboard_host
    check_bind(host, token_of(settings))
    return host, settings.dashboard_port if options.port is None else options.port


def url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


async def serve_dashboard(settings: Settings, stop: asyncio.Event, options: DashboardOptions | None = None,
                          *, started: asyncio.Future[tuple[str, int]] | None = None) -> None:
    """Serve the dashboard until `stop` is set. ConfigError before binding when a non-loopback host has no
    token; `started` (if given) receives the (host, port) actually bound."""
    options = options or DashboardOptions()
    host, port = address(settings, options)
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    app = create_app(settings, interval=options.interval, history_seconds=options.history_minutes * 60)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", proxy_headers=False,
                            server_header=False, timeout_graceful_shutdown=5, ws="none")
    server = _Server(config)

    async def watch() -> None:
        await stop.wait()
        await app.state.monitor.sampler.close()  # ends the event streams
        server.should_exit = True

    watcher = asyncio.create_task(watch())
    log.info("dashboard listening", url=url(host, bound_port), token_required=token_of(settings) is not None)
    if started is not None and not started.done():
        started.set_result((host, bound_port))
    try:
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        sock.close()
        log.info("dashboard stopped")
