"""The dashboard in a real browser: headless Chromium (Debian's `chromium` package) driven by Playwright, against
the dashboard served by uvicorn on the real stack (throwaway databases, topics and consumer group).

- Topics shows non-zero end offsets after events are produced, and the lag falls to zero as a consumer catches up;
- Jobs lists what `cdc jobs --json` lists;
- an error appears on Errors (live) and disappears after clicking Retry;
- a screenshot of each page goes to `test-artifacts/dashboard/`; the Topics one also to `docs/dashboard.png` when
  that file is missing or `CDC_UPDATE_DOCS_SCREENSHOT=1`.

Skipped when the Python package `playwright` or the Chromium binary (`CDC_CHROMIUM`, default /usr/bin/chromium) is
missing. Never runs `playwright install`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdc.capture.slot import slot_name
from cdc.monitoring.server import DashboardOptions, serve_dashboard
from cdc.state import couplings, job_errors, jobs, record_log
from tests.integration.dashboard_fixtures import World

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
DOCS_SCREENSHOT = ROOT / "docs" / "dashboard.png"
CHROMIUM = Path(os.environ.get("CDC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 20_000

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="the Python package `playwright` is not installed (pip install -e '.[browser]')")
EXECUTABLE = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
if EXECUTABLE is None:
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CDC_CHROMIUM)", allow_module_level=True)

pytestmark = [pytest.mark.integration, pytest.mark.acceptance]
expect = playwright_api.expect
expect.set_options(timeout=20_000)  # live pages on a loaded 2-core CI machine; each wait ends as soon as it holds


@pytest.fixture
async def dashboard(world: World) -> AsyncIterator[str]:
    """The dashboard served by uvicorn on a free loopback port, sampling twice a second; its base URL."""
    stop = asyncio.Event()
    started: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(serve_dashboard(world.settings, stop, DashboardOptions(
        host="127.0.0.1", port=0, interval=0.5, history_minutes=2), started=started))
    done, _ = await asyncio.wait([server, started], timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if server in done:
        server.result()  # raises what stopped it
    host, port = started.result()
    try:
        yield f"http://{host}:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(server, 20)


@pytest.fixture
async def page(dashboard: str) -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=EXECUTABLE, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
            found = await context.new_page()
            found.set_default_timeout(TIMEOUT_MS)
            found.problems = []  # type: ignore[attr-defined]
            found.on("console", lambda m: m.type == "error" and found.problems.append(m.text))  # type: ignore[attr-defined]
            found.on("pageerror", lambda e: found.problems.append(str(e)))  # type: ignore[attr-defined]
            yield found
        finally:
            await browser.close()


async def _shot(page, name: str, *, full_page: bool = True) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path


async def test_dashboard_in_a_browser(world: World, dashboard: str, page) -> None:  # type: ignore[no-untyped-def]
    customer, account = world.topic("erp", "customer"), world.topic("crm", "account")
    item = world.topic("erp", "item")

    # A replication slot on the ERP (no capture running): the Capture page shows how far it trails.
    slot = slot_name(world.settings, "erp")
    await world.admin(lambda conn: conn.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot),
                      world.databases["erp"])

    # Signing in: the token in the URL becomes a cookie and leaves the address bar.
    await page.goto(f"{dashboard}/topics?token={world.token}")
    assert "token=" not in page.url
    await expect(page.locator("h1")).to_contain_text("Topics")

    # ---- Topics: non-zero offsets after producing, live (no reload).
    sizes = {(customer, 0): 60, (customer, 1): 45, (account, 0): 30, (account, 1): 20, (item, 0): 15}
    for (topic, partition), n in sizes.items():
        await world.produce(topic, n, partition=partition)
    row = page.locator(f'tbody[data-topic="{customer}"] tr.total')
    await expect(row.locator('[data-field="end"]')).to_have_text("105")
    await expect(row.locator('[data-field="lag"]')).to_have_text("105")
    await expect(page.locator('[data-field="lag-total"]')).to_have_text("170")
    partition_row = page.locator(f'tbody[data-topic="{customer}"] tr[data-partition="0"]')
    await expect(partition_row.locator('[data-field="end"]')).to_have_text("60")
    await asyncio.sleep(1.5)  # a few samples with the backlog, for the chart

    # ---- A consumer catches up, in steps: the lag falls to zero.
    for fraction in (0.3, 0.6, 0.85):
        await world.commit({tp: int(n * fraction) for tp, n in sizes.items()})
        await asyncio.sleep(1.2)
    await world.catch_up()
    await expect(page.locator('[data-field="lag-total"]')).to_have_text("0")
    await expect(row.locator('[data-field="lag"]')).to_have_text("0")
    await expect(row.locator('[data-field="end"]')).to_have_text("105")  # offsets stay
    await asyncio.sleep(1.2)  # the chart shows the fall
    await expect(page.locator(f'[data-chart="topic-lag"][data-topic="{customer}"] polyline')).to_have_count(2)
    topics_shot = await _shot(page, "topics")
    if not DOCS_SCREENSHOT.exists() or os.environ.get("CDC_UPDATE_DOCS_SCREENSHOT") == "1":
        await page.screenshot(path=str(DOCS_SCREENSHOT), full_page=False)
    assert topics_shot.stat().st_size > 10_000

    # ---- Jobs: what `cdc jobs --json` says.
    async def seed_jobs(conn) -> None:  # type: ignore[no-untyped-def]
        full = await jobs.start_job(conn, "CUSTOMER", "full", "to_crm", message="initial load")
        await jobs.add_counts(conn, full.id, {"inserted": 105, "coupled": 105, "failed": 2})
        await jobs.finish_job(conn, full.id, "failed", "2 records failed")
        modified = await jobs.start_job(conn, "CURRENCY", "modified", "to_crm")
        await jobs.add_counts(conn, modified.id, {"modified": 4, "unchanged": 11})
        await jobs.finish_job(conn, modified.id, "succeeded")
        live = await jobs.live_job(conn, "CONTACTS", "to_erp", datetime.now(UTC), 3600)
        await jobs.add_counts(conn, live, {"inserted": 3, "modified": 9})

    await world.db("state", seed_jobs)
    listed = await asyncio.to_thread(world.cdc, "jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    expected = json.loads(listed.stdout)
    await page.goto(f"{dashboard}/jobs")
    rows = page.locator("tr[data-job-id]")
    await expect(rows).to_have_count(len(expected))
    for n, job in enumerate(expected):
        shown = rows.nth(n)
        assert await shown.get_attribute("data-job-id") == job["id"]
        await expect(shown.locator('[data-field="status"]')).to_have_text(job["status"])
        for counter in jobs.COUNTERS:
            await expect(shown.locator(f'[data-counter="{counter}"]')).to_have_text(f"{job[counter]:,}")
    await _shot(page, "jobs")
    await page.goto(f"{dashboard}/jobs?kind=full")
    await expect(page.locator("tr[data-job-id]")).to_have_count(1)
    await page.locator("tr[data-job-id] a").first.click()
    await expect(page.locator("h1")).to_contain_text("Job")
    await expect(page.locator("dl.facts")).to_contain_text("2 records failed")

    # ---- Errors: one appears (live), Retry makes it go.
    await page.goto(f"{dashboard}/errors")
    await expect(page.locator('[data-empty="errors"]')).to_be_visible()

    async def seed_error(conn) -> job_errors.JobError:  # type: ignore[no-untyped-def]
        return await job_errors.record_error(
            conn, None, "CUSTOMER", "erp", "C100", "crm", "00000000-0000-0000-0000-00000000a001",
            "credit limit 1e12 does not fit numeric(19,4)", "numeric field overflow",
            {"op": "u", "key": "C100", "after": {"credit_limit": "1e12"}})

    error = await world.db("state", seed_error)
    shown = page.locator(f'tr[data-error-id="{error.id}"]')
    await expect(shown).to_be_visible()
    await expect(shown).to_contain_text("credit limit 1e12")
    await expect(shown).to_contain_text("ERP C100")
    await _shot(page, "errors")
    await shown.locator('button[data-action="retry"]').click()
    await expect(page.locator(".notice.ok")).to_contain_text(f"Retried error #{error.id}")
    await expect(page.locator(f'tr[data-error-id="{error.id}"]')).to_have_count(0)
    remaining = await world.db("state", lambda conn: job_errors.list_errors(conn, open_only=True))
    assert remaining == []

    # ---- The other pages.
    await world.db("erp", lambda conn: conn.execute(
        "INSERT INTO currency (code, description) SELECT 'X' || n, repeat('x', 40) FROM generate_series(1, 500) n"))
    await page.goto(f"{dashboard}/capture")
    erp = page.locator('section[data-system="erp"]')
    await expect(erp).to_contain_text(slot)
    await expect(erp.locator('[data-field="lag-bytes"]')).to_have_text(re.compile(r"^\d+(\.\d)? (B|KiB|MiB|GiB)$"))
    await asyncio.sleep(1.5)
    await _shot(page, "capture")
    await page.goto(f"{dashboard}/mappings")
    await expect(page.locator('tr[data-mapping="CUSTOMER"]')).to_contain_text("blocked ne 'all'")
    await _shot(page, "mappings")
    account = "00000000-0000-0000-0000-00000000a001"
    await world.db("erp", lambda conn: conn.execute(
        "INSERT INTO customer (no, name, city, credit_limit) VALUES ('C100', 'Tailspin Toys', 'Utrecht', 2500)"))
    await world.db("crm", lambda conn: conn.execute(
        "INSERT INTO account (accountid, accountnumber, name, address1_city, creditlimit) "
        "VALUES ($1, 'C100', 'Tailspin Toys BV', 'Utrecht', 2500)", account))

    async def couple(conn) -> None:  # type: ignore[no-untyped-def]
        await couplings.upsert_many(conn, [couplings.Coupling(
            "CUSTOMER", "C100", account, erp_values={"name": "Tailspin Toys", "city": "Utrecht"},
            crm_values={"name": "Tailspin Toys", "address1_city": "Utrecht"}, last_result_to_crm="success")])
        await record_log.append_many(conn, [
            record_log.LogEntry("CUSTOMER", "erp", "C100", "created", account, "erp:0/1A2B3C:0", "c",
                                "no partner matched: created CRM account"),
            record_log.LogEntry("CUSTOMER", "crm", account, "applied", "C100", "crm:0/1A2B9F:0", "u",
                                "name changed in the CRM: newest wins"),
        ])

    await world.db("state", couple)
    await page.goto(f"{dashboard}/record?system=erp&key=C100")
    match = page.locator('section[data-mapping="CUSTOMER"]')
    await expect(match).to_contain_text("Tailspin Toys BV")  # the partner, read from the CRM
    await expect(match.locator("table.log")).to_contain_text("name changed in the CRM")
    await _shot(page, "record")

    assert page.problems == []  # no script errors, no blocked resources (CSP)
