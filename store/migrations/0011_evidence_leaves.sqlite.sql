-- The evidence log's sequenced leaves move to a table of their own
-- (docs/evidence.md, "Appending without serialising the server").
-- evidence_events becomes the queue of events awaiting sequencing: an
-- append is one insert under its rowid alone (before: the UNIQUE leaf_index
-- and the partial pending index besides, and AUTOINCREMENT's write to
-- sqlite_sequence; the writers are serialised, so the rowid, max + 1, still
-- follows insert order), and the sequencer moves a batch out of the queue
-- into evidence_leaves. SQLite cannot drop a UNIQUE column: the queue is
-- made anew. Leaves already sequenced keep their indices; pending events
-- stay pending, in order.
CREATE TABLE evidence_leaves (
	leaf_index INTEGER NOT NULL PRIMARY KEY,
	leaf       BLOB NOT NULL
);
INSERT INTO evidence_leaves (leaf_index, leaf)
	SELECT leaf_index, leaf FROM evidence_events WHERE leaf_index IS NOT NULL;
CREATE TABLE evidence_queue (
	id         INTEGER PRIMARY KEY,
	leaf       BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
INSERT INTO evidence_queue (id, leaf, created_at)
	SELECT id, leaf, created_at FROM evidence_events WHERE leaf_index IS NULL;
DROP TABLE evidence_events;
ALTER TABLE evidence_queue RENAME TO evidence_events;
