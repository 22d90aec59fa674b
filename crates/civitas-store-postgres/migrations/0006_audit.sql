-- The audit log: one hash chain per installation, append-only.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_records (
    seq BIGINT PRIMARY KEY NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    agency_id TEXT,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    source_address TEXT,
    user_agent TEXT,
    request_id TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_records_at ON audit_records (at);
CREATE INDEX audit_records_agency ON audit_records (agency_id, seq);
CREATE INDEX audit_records_actor ON audit_records (actor_id, seq);
CREATE INDEX audit_records_action ON audit_records (action, seq);

CREATE TABLE audit_checkpoints (
    tree_size BIGINT PRIMARY KEY NOT NULL,
    root_hash TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- No code path changes or removes audit rows; the database refuses it as well.
CREATE FUNCTION audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
