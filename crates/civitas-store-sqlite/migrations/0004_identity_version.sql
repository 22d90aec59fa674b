-- One number that grows with every change to roles, groups, memberships,
-- model access or limits. Servers cache what a person is allowed and
-- reload it when the number moves, so a change made on one replica holds
-- on every replica at the next request.
CREATE TABLE identity_version (
    id INTEGER PRIMARY KEY NOT NULL,
    version BIGINT NOT NULL
);
INSERT INTO identity_version (id, version) VALUES (1, 0);
