"""The dashboard against the real stack: throwaway databases, topics, consumer group and a role with its own
password (see dashboard_fixtures). Offsets, lag, rates, capture lag, mappings, jobs, errors and their actions,
record lookup, `/metrics`, `/readyz`, `cdc status`, the token, the bind check and secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import structlog.testing
from prometheus_client.parser import text_string_to_metric_families

from cdc.capture.progress import Progress, progress_path, write_progress
from cdc.capture.slot import slot_name
from cdc.errors import ConfigError
from cdc.mapping.order import dependency_order
from cdc.monitoring.security import CSRF_COOKIE
from cdc.monitoring.server import DashboardOptions, serve_dashboard
from cdc.monitoring.snapshot import Collector
from cdc.state import couplings, job_errors, jobs, mapping_settings, parking, record_log
from tests.integration.dashboard_fixtures import World, app_client, throwaway_world

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- the snapshot

async def test_offsets_lag_and_rates(world: World) -> None:
    topic = world.topic("erp", "customer")
    await world.produce(topic, 5, partition=0)
    await world.produce(topic, 3, partition=1)
    await world.produce(world.settings.dead_letter_topic, 2)
    await world.commit({(topic, 0): 2, (topic, 1): 3})
    await world.track({(topic, 0): 4})  # the state database is ahead of Kafka's commit: it is the truth

    async with Collector(world.settings) as collector:
        first = await collector.collect()
        stats = first.topic(topic)
        assert stats is not None and stats.exists
        p0, p1 = stats.partitions
        assert (p0.end, p0.retained, p0.committed, p0.committed_source, p0.lag) == (5, 5, 4, "state", 1)
        assert (p1.end, p1.retained, p1.committed, p1.committed_source, p1.lag) == (3, 3, 3, "kafka", 0)
        assert p0.rate is None  # one sample: no rate yet
        assert first.dead_letter is not None and first.dead_letter.retained == 2
        assert first.dead_letter.lag is None
        assert first.lag_total == 1
        assert all(t.exists for t in first.topics) and first.problems == []
        assert all(check.ok for check in first.services.values())

        await world.produce(topic, 10, partition=0)
        second = await collector.collect()
        p0 = second.topic(topic).partitions[0]  # type: ignore[union-attr]
        seconds = (second.taken_at - first.taken_at).total_seconds()
        assert p0.end == 15 and p0.lag == 11
        assert p0.rate == pytest.approx(10 / seconds, rel=0.01)
        assert second.topic(topic).partitions[1].rate == 0  # type: ignore[union-attr]

        await world.catch_up()
        third = await collector.collect()
        assert third.lag_total == 0


async def test_a_service_down_is_a_problem_not_a_failure(world: World) -> None:
    broken = world.settings.model_copy(update={"crm_database": "cdc_test_dash_no_such_db",
                                               "kafka_bootstrap": "127.0.0.1:1"})
    async with Collector(broken, timeout=1.5) as collector:
        started = time.monotonic()
        snapshot = await collector.collect()
        assert time.monotonic() - started < 10
    assert snapshot.services["erp"].ok and snapshot.services["state"].ok
    assert not snapshot.services["crm"].ok and "cdc_test_dash_no_such_db" in (snapshot.services["crm"].error or "")
    assert not snapshot.services["kafka"].ok and snapshot.lag_total is None
    assert snapshot.capture[1].error is not None
    for text in [*snapshot.problems, snapshot.model_dump_json()]:
        assert world.password not in text


async def test_mappings_with_flags_counts_and_order(world: World) -> None:
    async def seed(conn) -> None:  # type: ignore[no-untyped-def]
        await mapping_settings.set_sync_only_coupled(conn, ["CUSTOMER"], False)
        await mapping_settings.mark_synced(conn, "CURRENCY", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
        await couplings.couple(conn, "CUSTOMER", "C1", "00000000-0000-0000-0000-000000000001")
        await couplings.couple(conn, "CUSTOMER", "C2", "00000000-0000-0000-0000-000000000002")
        await couplings.skip(conn, "CUSTOMER", "erp", "C2")

    await world.db("state", seed)
    async with Collector(world.settings) as collector:
        snapshot = await collector.collect()
    rows = {m.name: m for m in snapshot.mappings}
    order = [m.name for m in dependency_order(collector.mapping_file)]  # type: ignore[arg-type]
    assert [m.name for m in snapshot.mappings] == order
    customer = rows["CUSTOMER"]
    assert customer.sync_only_coupled is False and customer.sync_only_coupled_overridden
    assert (customer.couplings, customer.skipped) == (2, 1)
    assert customer.erp_filter == "blocked ne 'all'"
    assert customer.crm_filter == "statecode eq 0 and customertypecode eq 3"
    assert customer.depends_on[:2] == ["SALESPEOPLE", "CURRENCY"]
    assert rows["CURRENCY"].last_synced_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert rows["CURRENCY"].sync_only_coupled is False and not rows["CURRENCY"].sync_only_coupled_overridden


async def test_capture_lag_of_a_slot(world: World) -> None:
    slot = slot_name(world.settings, "erp")

    async def create_slot(conn) -> None:  # type: ignore[no-untyped-def]
        await conn.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot)

    async def drop_slot(conn) -> None:  # type: ignore[no-untyped-def]
        await conn.execute("SELECT pg_drop_replication_slot($1)", slot)

    await world.admin(create_slot, world.databases["erp"])
    try:
        await world.db("erp", lambda conn: conn.execute(
            "INSERT INTO currency (code, description) SELECT 'C' || n, repeat('x', 40) FROM generate_series(1, 200) n"))
        now = time.time()
        write_progress(progress_path(world.settings, slot), Progress(
            system="erp", slot=slot, updated_at=now, published_at=now - 3, last_commit_at=now - 4,
            pending_since=now - 2.0, events=17))
        async with Collector(world.settings) as collector:
            snapshot = await collector.collect()
        erp, crm = snapshot.capture
        assert erp.slot == slot and erp.slot_exists and not erp.slot_active
        assert erp.lag_bytes is not None and erp.lag_bytes > 0
        assert erp.capture_running and erp.age_source == "capture"
        assert erp.lag_seconds == pytest.approx(2.0, abs=1.5)
        assert erp.last_event_at is not None and erp.heartbeat_at is not None and erp.events_published == 17
        assert not crm.slot_exists and crm.lag_bytes is None and crm.error is None

        async with app_client(world.settings) as client:
            page = (await client.get("/capture")).text
            assert slot in page and "capturing" in page
            shown = (await client.get("/api/snapshot")).json()["capture"][0]["lag_bytes"]
            metrics = _metrics((await client.get("/metrics")).text)
            assert shown >= erp.lag_bytes  # the WAL only grows
            assert metrics[("cdc_capture_lag_bytes", (("system", "erp"),))] == shown
    finally:
        await world.admin(drop_slot, world.databases["erp"])


# ---------------------------------------------------------------- /metrics and /readyz

def _metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_equal_the_snapshot(world: World) -> None:
    topic = world.topic("crm", "account")
    await world.produce(topic, 4, partition=0)
    await world.produce(topic, 6, partition=1)
    await world.commit({(topic, 1): 2})

    async def seed(conn) -> None:  # type: ignore[no-untyped-def]
        job = await jobs.start_job(conn, "CUSTOMER", "full", "to_crm")
        await jobs.add_counts(conn, job.id, {"inserted": 4, "failed": 1})
        live = await jobs.live_job(conn, "CUSTOMER", "to_crm", datetime.now(UTC), 3600)
        await jobs.add_counts(conn, live, {"inserted": 2, "modified": 3})
        await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "C9", "crm", None, "boom")

    await world.db("state", seed)
    async with app_client(world.settings) as client:
        snapshot = (await client.get("/api/snapshot")).json()
        metrics = _metrics((await client.get("/metrics")).text)
    lags = {(t["name"], str(p["partition"])): p["lag"] for t in snapshot["topics"] for p in t["partitions"]
            if p["lag"] is not None}
    exposed = {(dict(labels)["topic"], dict(labels)["partition"]): value
               for (name, labels), value in metrics.items() if name == "cdc_consumer_lag"}
    assert exposed == lags
    assert exposed[(topic, "0")] == 4 and exposed[(topic, "1")] == 4
    assert sum(exposed.values()) == snapshot["summary"]["lag_total"] == 8
    assert metrics[("cdc_errors_open", ())] == snapshot["errors_open"] == 1
    assert metrics[("cdc_events_processed_total", (("decision", "inserted"), ("mapping", "CUSTOMER")))] == 6
    assert metrics[("cdc_job_records", (("counter", "modified"), ("kind", "live"), ("mapping", "CUSTOMER")))] == 3
    assert metrics[("cdc_dead_letter_messages", ())] == 0
    assert metrics[("cdc_service_up", (("service", "kafka"),))] == 1


async def test_readyz(world: World) -> None:
    async with app_client(world.settings) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["ready"] is True
        assert (await client.get("/healthz")).json() == {"status": "ok"}

    await world.produce(world.topic("erp", "item"), 3)
    strict = world.settings.model_copy(update={"dashboard_ready_max_lag": 2})
    async with app_client(strict) as client:
        behind = await client.get("/readyz")
    assert behind.status_code == 503
    assert behind.json()["consumer_lag"] == 3 and "3 messages behind" in behind.json()["reasons"][0]

    broken = world.settings.model_copy(update={"state_database": "cdc_test_dash_no_such_db"})
    async with app_client(broken) as client:
        down = await client.get("/readyz")
    assert down.status_code == 503
    body = down.json()
    assert body["checks"]["state"]["ok"] is False
    assert "cdc_test_dash_no_such_db" in body["checks"]["state"]["detail"]
    assert world.password not in down.text


# ---------------------------------------------------------------- pages and actions

async def _seed_errors(world: World) -> tuple[jobs.Job, list[job_errors.JobError]]:
    async def work(conn) -> tuple[jobs.Job, list[job_errors.JobError]]:  # type: ignore[no-untyped-def]
        job = await jobs.start_job(conn, "CUSTOMER", "full", "to_crm")
        await jobs.add_counts(conn, job.id, {"inserted": 1, "failed": 2})
        await jobs.finish_job(conn, job.id, "failed", "2 records failed")
        await couplings.couple(conn, "CUSTOMER", "C2", "00000000-0000-0000-0000-0000000000c2")
        found = [
            await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "C1", "crm", None,
                                          "credit limit exceeds 1e9", "numeric field overflow",
                                          {"op": "u", "key": "C1"}),
            await job_errors.record_error(conn, job.id, "CUSTOMER", "erp", "C2", "crm",
                                          "00000000-0000-0000-0000-0000000000c2", "name too long", None,
                                          {"op": "u", "key": "C2"}),
        ]
        return job, found

    return await world.db("state", work)


def _csrf(response: httpx.Response, client: httpx.AsyncClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert found is not None
    assert client.cookies.get(CSRF_COOKIE) == found.group(1)
    return found.group(1)


async def test_errors_page_retry_and_skip(world: World) -> None:
    job, (first, second) = await _seed_errors(world)
    async with app_client(world.settings) as client:
        page = await client.get("/errors")
        assert page.status_code == 200
        for e in (first, second):
            assert f'data-error-id="{e.id}"' in page.text
        assert "credit limit exceeds 1e9" in page.text and "ERP C1" in page.text
        assert "CRM 00000000-0000-0000-0000-0000000000c2" in page.text
        csrf = _csrf(page, client)

        refused = await client.post(f"/errors/{first.id}/retry", data={"back": "/errors"})
        assert refused.status_code == 403
        done = await client.post(f"/errors/{first.id}/retry", data={"csrf": csrf, "back": "/errors"})
        assert done.status_code == 303
        after = await client.get(done.headers["location"])
        assert f'data-error-id="{first.id}"' not in after.text and f'data-error-id="{second.id}"' in after.text
        assert f"Retried error #{first.id}" in after.text
        assert await world.db("state", lambda conn: parking.count(conn, "CUSTOMER")) == 1

        skipped = await client.post(f"/errors/{second.id}/skip", data={"csrf": csrf})
        assert skipped.status_code == 303
        coupling = await world.db("state", lambda conn: couplings.fetch_one(conn, "CUSTOMER", "erp", "C2"))
        assert coupling is not None and coupling.skipped
        empty = await client.get("/errors")
        assert 'data-empty="errors"' in empty.text

        nothing = await client.post("/errors/retry-all", data={"csrf": csrf})
        assert "done=missing" in nothing.headers["location"]
        job_page = await client.get(f"/jobs/{job.id}")
        assert job_page.status_code == 200
        assert "2 records failed" in job_page.text and f'data-error-id="{second.id}"' in job_page.text


async def test_retry_all_of_one_mapping(world: World) -> None:
    _, errors = await _seed_errors(world)
    await world.db("state", lambda conn: job_errors.record_error(conn, None, "CONTACTS", "crm", "k", None, None, "x"))
    async with app_client(world.settings) as client:
        csrf = _csrf(await client.get("/errors?mapping=CUSTOMER"), client)
        done = await client.post("/errors/retry-all", data={"csrf": csrf, "mapping": "CUSTOMER",
                                                            "back": "/errors?mapping=CUSTOMER"})
        assert done.status_code == 303 and "n=2" in done.headers["location"]
        assert "mapping=CUSTOMER" in done.headers["location"]
    remaining = await world.db("state", lambda conn: job_errors.list_errors(conn, open_only=True))
    assert [e.mapping for e in remaining] == ["CONTACTS"]


async def test_errors_page_shows_parked_changes_and_resolves_a_conflict_with_its_keep_buttons(world: World) -> None:
    """Issue #13, items 3-4: a parked change shows what it waits for, since when and how often it was tried; a
    conflict has Keep ERP / Keep CRM buttons (CSRF-checked) that queue its resolution for the worker."""
    account = "00000000-0000-0000-0000-0000000000c7"

    async def seed(conn) -> tuple[job_errors.JobError, job_errors.JobError]:  # type: ignore[no-untyped-def]
        await couplings.couple(conn, "CUSTOMER", "C7", account)
        conflict, _ = await job_errors.record_conflict(
            conn, None, "CUSTOMER", "C7", account, "conflict on city ↔ address1_city: ERP 'Bergen' (changed "
            "2026-01-01 10:00:00 UTC) vs CRM 'Trondheim' (changed 2026-01-01 10:00:05 UTC), last synced 'Oslo'",
            "detail", {"op": "u", "after": {"no": "C7"}, "source": {"table": "customer"}, "system": "erp"})
        await parking.park(conn, "CONTACTS", "erp", "K9", {"op": "c", "after": {"no": "K9"}}, "waits",
                           timedelta(minutes=5))
        parked = await job_errors.record_error(conn, None, "CONTACTS", "erp", "K9", "crm", None,
                                               "waiting for ERP customer 'C9' (CUSTOMER) to be coupled",
                                               state="parked")
        return conflict, parked

    conflict, parked = await world.db("state", seed)
    async with app_client(world.settings) as client:
        page = await client.get("/errors")
        assert page.status_code == 200
        assert '<b data-field="open-count">1</b>' in page.text and '<b data-field="parked-count">1</b>' in page.text
        row = page.text.split(f'data-error-id="{parked.id}"')[1].split("</tr>")[0]
        assert "waiting for ERP customer &#39;C9&#39; (CUSTOMER) to be coupled" in row
        assert "waiting since" in row and "tried 1×" in row and "next try" in row
        assert 'data-action="retry"' not in row  # the worker retries it by itself
        row = page.text.split(f'data-error-id="{conflict.id}"')[1].split("</tr>")[0]
        assert 'data-action="keep-erp"' in row and 'data-action="keep-crm"' in row and 'data-action="retry"' not in row
        only_parked = await client.get("/errors?state=parked")
        assert f'data-error-id="{parked.id}"' in only_parked.text
        assert f'data-error-id="{conflict.id}"' not in only_parked.text
        csrf = _csrf(page, client)

        refused = await client.post(f"/errors/{conflict.id}/resolve", data={"keep": "erp", "back": "/errors"})
        assert refused.status_code == 403
        wrong = await client.post(f"/errors/{conflict.id}/resolve", data={"csrf": csrf, "keep": "both"})
        assert wrong.status_code == 400
        done = await client.post(f"/errors/{conflict.id}/resolve", data={"csrf": csrf, "keep": "erp",
                                                                          "back": "/errors"})
        assert done.status_code == 303
        after = await client.get(done.headers["location"])
        assert (f"Conflict #{conflict.id}: the ERP&#39;s values are queued to be written to the CRM" in after.text)
        not_a_conflict = await client.post(f"/errors/{parked.id}/resolve", data={"csrf": csrf, "keep": "crm"})
        assert "done=unresolvable" in not_a_conflict.headers["location"]
    queued = await world.db("state", lambda conn: conn.fetch(
        "SELECT source_system, source_key, keep FROM cdc.parked_events WHERE mapping = 'CUSTOMER'"))
    assert [tuple(r) for r in queued] == [("erp", "C7", "erp")]


async def test_jobs_page_filters(world: World) -> None:
    async def seed(conn) -> list[jobs.Job]:  # type: ignore[no-untyped-def]
        a = await jobs.start_job(conn, "CUSTOMER", "full", "to_crm")
        b = await jobs.start_job(conn, "CURRENCY", "modified", "to_crm")
        await jobs.add_counts(conn, b.id, {"modified": 12})
        await jobs.finish_job(conn, b.id, "succeeded")
        return [a, b]

    a, b = await world.db("state", seed)
    async with app_client(world.settings) as client:
        everything = (await client.get("/jobs")).text
        assert f'data-job-id="{a.id}"' in everything and f'data-job-id="{b.id}"' in everything
        only = (await client.get("/jobs?mapping=CURRENCY&kind=modified")).text
        assert f'data-job-id="{a.id}"' not in only and f'data-job-id="{b.id}"' in only
        assert re.search(r'data-counter="modified">12<', only)
        assert (await client.get("/jobs/00000000-0000-4000-8000-000000000000")).status_code == 404
        stream = await client.get("/events?page=jobs&mapping=CURRENCY&max=1")
        data = json.loads(stream.text.split("data: ", 1)[1].split("\n", 1)[0])
        assert f'data-job-id="{b.id}"' in data["html"] and f'data-job-id="{a.id}"' not in data["html"]


async def test_record_lookup_side_by_side(world: World) -> None:
    account = "00000000-0000-0000-0000-00000000a001"
    await world.db("erp", lambda conn: conn.execute(
        "INSERT INTO customer (no, name, city, credit_limit) VALUES ('C100', 'Tailspin Toys', 'Utrecht', 2500)"))
    await world.db("crm", lambda conn: conn.execute(
        "INSERT INTO account (accountid, accountnumber, name, address1_city) "
        "VALUES ($1, 'C100', 'Tailspin Toys BV', 'Utrecht')", account))

    async def seed(conn) -> None:  # type: ignore[no-untyped-def]
        await couplings.upsert_many(conn, [couplings.Coupling(
            "CUSTOMER", "C100", account, erp_values={"name": "Tailspin Toys"}, crm_values={"name": "Tailspin Toys"},
            last_result_to_crm="success")])
        await record_log.append_many(conn, [
            record_log.LogEntry("CUSTOMER", "erp", "C100", "applied", account, "ev-1", "u", "name changed"),
            record_log.LogEntry("CUSTOMER", "crm", account, "conflict", "C100", "ev-2", "u", "newest wins: ERP"),
        ])

    await world.db("state", seed)
    async with app_client(world.settings) as client:
        page = (await client.get("/record", params={"system": "erp", "key": "C100"})).text
        assert 'data-mapping="CUSTOMER"' in page
        assert "Tailspin Toys" in page and "Tailspin Toys BV" in page  # both rows, side by side
        assert "name changed" in page and "newest wins: ERP" in page  # decisions about either record
        assert "2500.00" in page
        from_crm = (await client.get("/record", params={"system": "crm", "key": account, "mapping": "CUSTOMER"})).text
        assert "Tailspin Toys BV" in from_crm and "C100" in from_crm
        missing = (await client.get("/record", params={"system": "erp", "key": "NOPE"})).text
        assert "No ERP record with key" in missing
        invalid = (await client.get("/record", params={"system": "crm", "key": "not-a-uuid",
                                                       "mapping": "CUSTOMER"})).text
        assert "is not a valid uuid key" in invalid


# ---------------------------------------------------------------- token, bind, secrets

async def test_token_required_on_every_path(world: World) -> None:
    async with app_client(world.settings) as client:
        for path in ("/topics", "/errors", "/metrics", "/readyz", "/healthz", "/api/snapshot", "/events?page=topics"):
            denied = await client.get(path, headers={"authorization": ""})
            assert denied.status_code == 401, path
            assert world.token not in denied.text
        assert (await client.get("/topics")).status_code == 200  # the client sends the bearer token


async def test_non_loopback_without_token_refuses(world: World) -> None:
    open_settings = world.settings.model_copy(update={"dashboard_token": None})
    with pytest.raises(ConfigError, match="not a loopback address"):
        await serve_dashboard(open_settings, asyncio.Event(), DashboardOptions(host="0.0.0.0", port=0))
    result = await asyncio.to_thread(world.cdc, "dashboard", "--host", "0.0.0.0", "--port", "0",
                                     drop=("CDC_DASHBOARD_TOKEN",), timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: refusing to serve the dashboard on 0.0.0.0"), result.stderr
    assert "Traceback" not in result.stderr


async def test_served_dashboard_stops_with_open_event_streams(world: World) -> None:
    stop = asyncio.Event()
    started: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_dashboard(world.settings, stop, DashboardOptions(port=0, interval=0.5),
                                               started=started))
    host, port = await asyncio.wait_for(started, 10)
    headers = {"authorization": f"Bearer {world.token}"}
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", headers=headers, timeout=10) as client:
        assert (await client.get("/healthz")).status_code == 200
        async with client.stream("GET", "/events?page=topics") as stream:
            lines = stream.aiter_lines()
            while not (await anext(lines)).startswith("event: update"):
                pass
            stop.set()
            started_stop = time.monotonic()
            await asyncio.wait_for(task, 15)
    assert time.monotonic() - started_stop < 10


async def test_secrets_never_appear(world: World, capsys: pytest.CaptureFixture[str],
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _, errors = await _seed_errors(world)
    texts: list[str] = []
    broken = world.settings.model_copy(update={"crm_database": "cdc_test_dash_no_such_db"})
    with structlog.testing.capture_logs() as events:
        await _visit_everything(world, errors, (world.settings, broken), texts)
    texts.append(json.dumps(events, default=str))
    assert any(e.get("component") == "dashboard" for e in events)  # the actions were logged
    # The command line too.
    status = await asyncio.to_thread(world.cdc, "status", "--json", env={
        "CDC_CRM_DATABASE": "cdc_test_dash_no_such_db"})
    texts += [status.stdout, status.stderr]
    captured = capsys.readouterr()
    # Every log record but those of the test's own HTTP client (which logs the URLs it requests).
    texts += [captured.out, captured.err, *(caplog.handler.format(r) for r in caplog.records
                                             if not r.name.startswith(("httpx", "httpcore")))]
    assert any("cdc_test_dash_no_such_db" in t for t in texts)  # the failure was shown ...
    for secret in world.secrets:
        for text in texts:
            assert secret not in text  # ... without a password, token or DSN


async def _visit_everything(world: World, errors: list[job_errors.JobError], variants: tuple,  # type: ignore[type-arg]
                            texts: list[str]) -> None:
    for settings in variants:
        async with app_client(settings) as client:
            for path in ("/", "/topics", "/capture", "/jobs", f"/jobs/{errors[0].job_id}", "/errors", "/mappings",
                         "/record?system=erp&key=C1", "/record?system=crm&key=x&mapping=CUSTOMER", "/api/snapshot",
                         "/api/history", "/metrics", "/readyz", "/healthz", "/events?page=capture&max=1",
                         "/nope", f"/topics?token={world.token}"):
                response = await client.get(path)
                texts += [response.text, json.dumps(dict(response.headers))]
            texts.append((await client.get("/topics", headers={"authorization": "Bearer wrong"})).text)
            page = await client.get("/errors")
            csrf = client.cookies.get(CSRF_COOKIE) or ""
            for action in (f"/errors/{errors[0].id}/retry", f"/errors/{errors[1].id}/skip", "/errors/retry-all",
                           "/errors/999999/retry"):
                texts.append((await client.post(action, data={"csrf": csrf})).text)
            texts.append((await client.post("/errors/1/retry", data={})).text)
            texts.append(page.text)


# ---------------------------------------------------------------- cdc status

async def test_status_command(world: World) -> None:
    async def seed(conn) -> None:  # type: ignore[no-untyped-def]
        job = await jobs.start_job(conn, "CURRENCY", "full", "to_crm")
        await jobs.add_counts(conn, job.id, {"inserted": 7})

    await world.db("state", seed)
    ready = await asyncio.to_thread(world.cdc, "status", "--json")
    assert ready.returncode == 0, ready.stderr
    data = json.loads(ready.stdout)
    assert data["ready"] is True and data["consumer_lag"] == 0 and data["errors_open"] == 0
    assert [c["system"] for c in data["capture"]] == ["erp", "crm"]
    assert data["jobs"][0]["mapping"] == "CURRENCY" and data["jobs"][0]["counts"]["inserted"] == 7

    await world.produce(world.topic("erp", "currency"), 2)
    behind = await asyncio.to_thread(world.cdc, "status", env={"CDC_DASHBOARD_READY_MAX_LAG": "1"})
    assert behind.returncode == 1
    assert "not ready" in behind.stdout and "2 messages behind" in behind.stdout
    assert "CURRENCY" in behind.stdout  # the last jobs

    down = await asyncio.to_thread(world.cdc, "status", env={"CDC_KAFKA_BOOTSTRAP": "127.0.0.1:1"})
    assert down.returncode == 1 and "kafka" in down.stdout.lower()


async def test_throwaway_world_cleans_up(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with throwaway_world(settings, tmp_path) as w:
        names = list(w.databases.values())
    remaining = await World(w.settings, {}, w.admin_dsn, "", "", {}).admin(
        lambda conn: conn.fetch("SELECT datname FROM pg_database WHERE datname = ANY($1::text[])", names))
    assert remaining == []
