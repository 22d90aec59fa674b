-- Single sign-on attempts in flight: only the SHA-256 of the state is
-- kept; an attempt is consumed once (a replayed state is refused).
CREATE TABLE oidc_states (
    state_hash TEXT PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at TEXT NOT NULL,
    consumed_at TEXT
);
CREATE INDEX oidc_states_created ON oidc_states (created_at);
