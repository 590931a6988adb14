-- Error states an operator can trust: a change waiting (a lookup not coupled yet, a delete the destination
-- refuses while something still refers to the record) is an error in state 'parked', retried by the worker; an
-- error whose record later synced cleanly closes by itself ('resolved'). A record holds at most one open or
-- parked error per message.
ALTER TABLE cdc.job_errors DROP CONSTRAINT job_errors_state_check;
ALTER TABLE cdc.job_errors ADD CONSTRAINT job_errors_state_check
    CHECK (state IN ('open', 'parked', 'resolved', 'retried', 'ignored'));
DROP INDEX cdc.job_errors_open_once;
CREATE UNIQUE INDEX job_errors_open_once
    ON cdc.job_errors (mapping, source_system, source_key, md5(message)) WHERE state IN ('open', 'parked');
