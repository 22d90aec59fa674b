-- Conversations and their messages, as created through the API.
CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    title TEXT,
    model TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX conversations_owner_created ON conversations (owner, created_at DESC, id DESC);

CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT messages_conversation_seq UNIQUE (conversation_id, seq)
);

-- One row per API request: who, when, which model, how much, how it ended.
-- Never any content.
CREATE TABLE request_records (
    request_id TEXT PRIMARY KEY NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    actor TEXT NOT NULL,
    route TEXT NOT NULL,
    model TEXT,
    model_sha256 TEXT,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    status BIGINT NOT NULL,
    error_code TEXT
);
CREATE INDEX request_records_at ON request_records (at DESC);
