-- A conflict (both systems changed a field carried both ways) is one error per coupled pair, whichever side's
-- event found it: kind 'conflict', recorded on the pair's ERP record, one open at a time (its message names the
-- fields and the competing values, and changes with them). A parked event may carry an operator's resolution of a
-- conflict: the side whose values are kept. An open error whose record waits for a lookup that its own sync never
-- couples names those lookups ('MAPPING:system:key'): when one is coupled after all, the record is tried again.
ALTER TABLE cdc.job_errors ADD COLUMN kind text NOT NULL DEFAULT 'failure' CHECK (kind IN ('failure', 'conflict'));
ALTER TABLE cdc.job_errors ADD COLUMN waiting_for text[];
CREATE UNIQUE INDEX job_errors_conflict_once
    ON cdc.job_errors (mapping, source_key) WHERE kind = 'conflict' AND state IN ('open', 'parked');
CREATE INDEX job_errors_state ON cdc.job_errors (state, updated_at DESC) WHERE state IN ('open', 'parked');
CREATE INDEX job_errors_waiting_for ON cdc.job_errors USING gin (waiting_for) WHERE state = 'open';
ALTER TABLE cdc.parked_events ADD COLUMN keep text CHECK (keep IN ('erp', 'crm'));
