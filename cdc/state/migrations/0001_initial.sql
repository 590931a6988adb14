-- The state database: couplings, jobs and their errors, parked events, the worker's tracked offsets,
-- runtime mapping settings, the per-record decision log and the orchestrator's runs.

CREATE TABLE cdc.couplings (
    mapping            text        NOT NULL,
    erp_key            text        NOT NULL,
    crm_key            text        NOT NULL,
    erp_values         jsonb,
    crm_values         jsonb,
    erp_modified_on    timestamptz,
    crm_modified_on    timestamptz,
    erp_position       bigint,
    crm_position       bigint,
    last_result_to_crm text CHECK (last_result_to_crm IN ('success', 'failure')),
    last_result_to_erp text CHECK (last_result_to_erp IN ('success', 'failure')),
    last_error         text,
    failure_count      integer     NOT NULL DEFAULT 0 CHECK (failure_count >= 0),
    skipped            boolean     NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mapping, erp_key),
    CONSTRAINT couplings_one_erp_record_per_crm_record UNIQUE (mapping, crm_key)
);
CREATE INDEX couplings_skipped ON cdc.couplings (mapping) WHERE skipped;
CREATE INDEX couplings_failing ON cdc.couplings (mapping) WHERE failure_count > 0 AND NOT skipped;

CREATE TABLE cdc.replay_runs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind           text        NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    status         text        NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    saved_settings jsonb
);

CREATE TABLE cdc.jobs (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id       uuid,
    mapping      text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('live', 'full', 'modified', 'manual', 'coupling')),
    direction    text CHECK (direction IN ('to_crm', 'to_erp')),
    status       text        NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    window_start timestamptz,
    inserted     bigint NOT NULL DEFAULT 0,
    modified     bigint NOT NULL DEFAULT 0,
    deleted      bigint NOT NULL DEFAULT 0,
    unchanged    bigint NOT NULL DEFAULT 0,
    skipped      bigint NOT NULL DEFAULT 0,
    failed       bigint NOT NULL DEFAULT 0,
    coupled      bigint NOT NULL DEFAULT 0,
    uncoupled    bigint NOT NULL DEFAULT 0,
    message      text,
    CONSTRAINT jobs_live_has_window CHECK (kind <> 'live' OR (window_start IS NOT NULL AND direction IS NOT NULL))
);
CREATE UNIQUE INDEX jobs_live_window ON cdc.jobs (mapping, direction, window_start) WHERE kind = 'live';
CREATE INDEX jobs_started ON cdc.jobs (started_at DESC);
CREATE INDEX jobs_run ON cdc.jobs (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE cdc.job_errors (
    id                 bigserial PRIMARY KEY,
    job_id             uuid REFERENCES cdc.jobs (id) ON DELETE CASCADE,
    mapping            text        NOT NULL,
    source_system      text        NOT NULL CHECK (source_system IN ('erp', 'crm')),
    source_key         text        NOT NULL,
    destination_system text CHECK (destination_system IN ('erp', 'crm')),
    destination_key    text,
    message            text        NOT NULL,
    detail             text,
    event              jsonb,
    state              text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'retried', 'ignored')),
    occurrences        integer     NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- One open error per record and message: a repeat counts an occurrence instead of adding a row.
CREATE UNIQUE INDEX job_errors_open_once
    ON cdc.job_errors (mapping, source_system, source_key, md5(message)) WHERE state = 'open';
CREATE INDEX job_errors_job ON cdc.job_errors (job_id);
CREATE INDEX job_errors_updated ON cdc.job_errors (updated_at);

CREATE TABLE cdc.parked_events (
    id              bigserial PRIMARY KEY,
    mapping         text        NOT NULL,
    source_system   text        NOT NULL CHECK (source_system IN ('erp', 'crm')),
    source_key      text        NOT NULL,
    event           jsonb       NOT NULL,
    reason          text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parked_events_due ON cdc.parked_events (next_attempt_at);
CREATE INDEX parked_events_record ON cdc.parked_events (mapping, source_system, source_key);

CREATE TABLE cdc.tracked_offsets (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    next_offset    bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

CREATE TABLE cdc.mapping_settings (
    mapping           text PRIMARY KEY,
    sync_only_coupled boolean,
    erp_watermark     timestamptz,
    crm_watermark     timestamptz,
    last_synced_at    timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cdc.record_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    mapping     text        NOT NULL,
    system      text        NOT NULL CHECK (system IN ('erp', 'crm')),
    key         text        NOT NULL,
    partner_key text,
    event_id    text,
    op          text,
    decision    text        NOT NULL,
    detail      text
);
CREATE INDEX record_log_record ON cdc.record_log (system, key, id DESC);
