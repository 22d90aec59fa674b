-- Data protection: envelope encryption of content, clearances, retention
-- schedules and legal holds.

-- Each agency's data keys, wrapped by a master key kept outside the
-- database. `agency_id` '' holds the key for content of no agency.
-- state: active (sealing new content), previous (still opening older
-- content), retired (nothing left sealed with it) or destroyed
-- (crypto-shredded); `wrapped` is NULL once retired or destroyed.
CREATE TABLE data_keys (
    id TEXT PRIMARY KEY NOT NULL,
    agency_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'previous', 'retired', 'destroyed')),
    wrapped TEXT,
    master_key_id TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ
);
CREATE INDEX data_keys_agency ON data_keys (agency_id, state, created_at);

-- The data key that sealed a message's content and metadata, or a
-- conversation's title; NULL for content written before encryption (it is
-- sealed by `civitas keys reencrypt`).
ALTER TABLE messages ADD COLUMN key_id TEXT;
ALTER TABLE conversations ADD COLUMN key_id TEXT;
CREATE INDEX messages_key ON messages (key_id);

-- A person's clearance: the highest classification level they may work
-- at; NULL follows `data_protection.default_clearance`.
ALTER TABLE people ADD COLUMN clearance TEXT;

-- How long each kind of record is kept, per agency, in days.
CREATE TABLE retention_rules (
    agency_id TEXT NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    record_type TEXT NOT NULL,
    days BIGINT NOT NULL CHECK (days > 0),
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (agency_id, record_type)
);

-- Legal holds: while one applies to a person, nothing of theirs is purged
-- or deleted. One row per person and matter.
CREATE TABLE legal_holds (
    id TEXT PRIMARY KEY NOT NULL,
    agency_id TEXT NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL,
    matter TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    released_by TEXT,
    released_at TIMESTAMPTZ
);
CREATE INDEX legal_holds_person ON legal_holds (person_id, released_at);
CREATE INDEX legal_holds_agency ON legal_holds (agency_id, created_at);
