-- Knowledge: collections, documents with versions, their passages, the
-- ingestion queue and the change log replicas follow to keep their
-- search indexes in step. Ids are integers, as clients of the Albert
-- knowledge API expect; never reused (AUTOINCREMENT), so an old citation
-- never names a newer document.

-- owner_kind/owner_id: the agency, a group or a person who owns it.
CREATE TABLE collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agency_id TEXT NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    owner_kind TEXT NOT NULL CHECK (owner_kind IN ('agency', 'group', 'person')),
    owner_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    classification TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX collections_agency ON collections (agency_id, id);

-- Groups a collection is shared with, to read or also to add and delete.
CREATE TABLE collection_shares (
    collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL,
    access TEXT NOT NULL CHECK (access IN ('read', 'write')),
    PRIMARY KEY (collection_id, group_id)
);

-- name and metadata are sealed with the agency's data key (key_id).
-- status: queued, processing, ready or failed (error_code, error_message).
CREATE TABLE documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    metadata TEXT,
    classification TEXT NOT NULL,
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    format TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    progress INTEGER NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    chunks INTEGER NOT NULL DEFAULT 0,
    pages INTEGER,
    language TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    key_id TEXT
);
CREATE INDEX documents_collection ON documents (collection_id, id);
CREATE INDEX documents_hash ON documents (collection_id, content_hash);

-- Every version's file, sealed.
CREATE TABLE document_versions (
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    format TEXT NOT NULL,
    file BLOB NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    key_id TEXT NOT NULL,
    PRIMARY KEY (document_id, version)
);

-- The passages of a document's current version; content, metadata
-- (section, pages) and the embedding vector are sealed.
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL,
    vector TEXT,
    key_id TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX chunks_document ON chunks (document_id, seq);

-- The durable ingestion queue: a worker leases a job until lease_until;
-- a job whose lease ran out (its replica died) is taken again.
CREATE TABLE ingestion_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ingestion_jobs_state ON ingestion_jobs (state, id);

-- What changed in the searchable set, in order: each replica applies the
-- entries after the last one it saw.
CREATE TABLE knowledge_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL,
    collection_id INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('upsert', 'remove')),
    at TEXT NOT NULL
);
