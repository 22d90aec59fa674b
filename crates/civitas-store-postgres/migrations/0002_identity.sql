-- Agencies (tenants), their groups and people, roles, API keys, sessions,
-- limits and the counters that enforce them.
CREATE TABLE agencies (
    id TEXT PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    parent_id TEXT REFERENCES agencies (id),
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE agency_groups (
    id TEXT PRIMARY KEY NOT NULL,
    agency_id TEXT NOT NULL REFERENCES agencies (id),
    name TEXT NOT NULL,
    external_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT agency_groups_name UNIQUE (agency_id, name)
);

-- Models a group may use; "*" means every model.
CREATE TABLE group_models (
    group_id TEXT NOT NULL REFERENCES agency_groups (id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    PRIMARY KEY (group_id, model)
);

CREATE TABLE people (
    id TEXT PRIMARY KEY NOT NULL,
    agency_id TEXT NOT NULL REFERENCES agencies (id),
    email TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    external_id TEXT,
    password_hash TEXT,
    totp_secret TEXT,
    totp_confirmed_at TIMESTAMPTZ,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX people_agency ON people (agency_id);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES agency_groups (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id),
    PRIMARY KEY (group_id, person_id)
);
CREATE INDEX group_members_person ON group_members (person_id);

CREATE TABLE role_assignments (
    person_id TEXT NOT NULL REFERENCES people (id),
    agency_id TEXT NOT NULL REFERENCES agencies (id),
    role TEXT NOT NULL,
    PRIMARY KEY (person_id, agency_id, role)
);

-- Only the SHA-256 of a key's secret is kept.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    person_id TEXT NOT NULL REFERENCES people (id),
    agency_id TEXT NOT NULL REFERENCES agencies (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    models TEXT,
    ip_ranges TEXT,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_keys_agency ON api_keys (agency_id);

-- Only the SHA-256 of a session's cookie value is kept.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    person_id TEXT NOT NULL REFERENCES people (id),
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX sessions_person ON sessions (person_id);

-- Limits of one scope: "agency:ID", "group:ID", "person:ID" or "key:ID".
CREATE TABLE limits (
    scope TEXT PRIMARY KEY NOT NULL,
    agency_id TEXT NOT NULL REFERENCES agencies (id),
    requests_per_minute BIGINT,
    tokens_per_minute BIGINT,
    tokens_per_day BIGINT,
    cost_per_month_micros BIGINT
);
CREATE INDEX limits_agency ON limits (agency_id);

-- One row per limited scope; each window resets when its period changes.
CREATE TABLE usage_counters (
    scope TEXT PRIMARY KEY NOT NULL,
    minute TEXT NOT NULL,
    minute_requests BIGINT NOT NULL,
    minute_tokens BIGINT NOT NULL,
    day TEXT NOT NULL,
    day_tokens BIGINT NOT NULL,
    month TEXT NOT NULL,
    month_cost_micros BIGINT NOT NULL
);

ALTER TABLE request_records ADD COLUMN agency_id TEXT;
ALTER TABLE request_records ADD COLUMN key_id TEXT;
ALTER TABLE request_records ADD COLUMN cost_micros BIGINT NOT NULL DEFAULT 0;
CREATE INDEX request_records_actor_at ON request_records (actor, at);
CREATE INDEX request_records_agency_at ON request_records (agency_id, at);
