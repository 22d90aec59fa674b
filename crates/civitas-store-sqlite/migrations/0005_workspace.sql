-- The workspace: a classification level and a last-activity time per
-- conversation, feedback on answers, preferences, and the agency's rules of
-- behaviour with who accepted which version.
ALTER TABLE conversations ADD COLUMN classification TEXT NOT NULL DEFAULT 'unclassified';
ALTER TABLE conversations ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
UPDATE conversations SET updated_at = created_at;
CREATE INDEX conversations_owner_updated ON conversations (owner, updated_at DESC, id DESC);

-- Kept when the answer is regenerated or the conversation deleted: feedback
-- is for later analysis and holds no content but the comment.
CREATE TABLE message_feedback (
    message_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    agency_id TEXT NOT NULL,
    model TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (message_id, person_id)
);
CREATE INDEX message_feedback_conversation ON message_feedback (person_id, conversation_id);

CREATE TABLE person_preferences (
    person_id TEXT PRIMARY KEY NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    language TEXT,
    default_model TEXT,
    updated_at TEXT NOT NULL
);

CREATE TABLE agency_rules (
    agency_id TEXT PRIMARY KEY NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    text TEXT NOT NULL,
    version TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE rules_acceptances (
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    version TEXT NOT NULL,
    agency_id TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    PRIMARY KEY (person_id, version)
);
