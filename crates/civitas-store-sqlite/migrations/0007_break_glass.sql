-- Break-glass access to someone else's conversations: who asked, about
-- whom, why, for how long, who approved, and how often content was read.
CREATE TABLE break_glass (
    id TEXT PRIMARY KEY NOT NULL,
    agency_id TEXT NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    requested_by TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    subject_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    conversation_id TEXT,
    justification TEXT NOT NULL,
    minutes INTEGER NOT NULL CHECK (minutes > 0),
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused')),
    decided_by TEXT,
    decided_at TEXT,
    expires_at TEXT,
    created_at TEXT NOT NULL,
    reads INTEGER NOT NULL DEFAULT 0,
    last_read_at TEXT
);
CREATE INDEX break_glass_agency ON break_glass (agency_id, created_at);
CREATE INDEX break_glass_subject ON break_glass (subject_id, created_at);
