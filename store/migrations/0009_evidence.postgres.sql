-- The evidence log (issue 8, docs/evidence.md): one append-only Merkle log
-- (RFC 6962 hashing, golang.org/x/mod/sumdb/tlog) of every security-
-- relevant event. An event is one insert into evidence_events (leaf_index
-- NULL); the sequencer gives pending events their leaf index in batches,
-- under the lock of the evidence_tree row, stores the tree's hashes
-- (tlog.StoredHashes) and its size and root, and checkpoints are signed
-- notes over a size and root.
CREATE TABLE evidence_events (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	leaf       BYTEA NOT NULL,
	created_at BIGINT NOT NULL,
	leaf_index BIGINT UNIQUE
);
CREATE INDEX evidence_events_pending ON evidence_events (id) WHERE leaf_index IS NULL;
CREATE TABLE evidence_hashes (
	hash_index BIGINT NOT NULL PRIMARY KEY,
	hash       BYTEA NOT NULL
);
CREATE TABLE evidence_tree (
	id   BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
	size BIGINT NOT NULL,
	root BYTEA NOT NULL
);
INSERT INTO evidence_tree (id, size, root) VALUES (1, 0, '\x');
CREATE TABLE evidence_checkpoints (
	size       BIGINT NOT NULL PRIMARY KEY,
	note       BYTEA NOT NULL,
	created_at BIGINT NOT NULL
);
