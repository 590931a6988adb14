"""The manual methods: full sync, sync modified records, sync one mapping, coupling commands, dry run, verify.

The orchestrator never writes into the ERP or the CRM itself: it replays rows as change events into the topics
capture writes (`replay.py`), and the worker applies them with the same decisions as live changes. What it writes
is bookkeeping in the state database: replay runs, jobs, watermarks, couplings made by hand.
"""
