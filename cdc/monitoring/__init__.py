"""Monitoring: a typed snapshot of the pipeline (topics, lag, capture, jobs, errors, mappings), its recent history,
Prometheus metrics, health checks, and the dashboard that shows them live.

| module | what it is |
|---|---|
| `offsets` | pure arithmetic: consumer lag, retained messages, rates from offset deltas |
| `model` | the typed snapshot (pydantic) |
| `kafka` | reading end / beginning / committed offsets from the broker, with bounded timeouts |
| `snapshot` | collecting one snapshot from Kafka and the three databases, each part bounded in time |
| `history` | a bounded ring of samples for the charts |
| `sampler` | the background loop that samples, keeps history and wakes the live pages |
| `metrics` | the Prometheus registry (`/metrics`) and `observe_apply_latency` |
| `health` | `/healthz`, `/readyz` and the readiness `cdc status` prints |
| `security` | bind check, token, CSRF, redaction of secrets |
| `records` | record lookup: a record, its coupling, its partner and their recent decisions |
| `pages` | what each page shows (template contexts) |
| `app` | the starlette application |
| `server` | running it under uvicorn as a task (`serve_dashboard`) |
"""
