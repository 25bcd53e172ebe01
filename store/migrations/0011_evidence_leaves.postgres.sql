-- The evidence log's sequenced leaves move to a table of their own
-- (docs/evidence.md, "Appending without serialising the server").
-- evidence_events becomes the queue of events awaiting sequencing: an
-- append is one insert under its primary key alone (before: three indexes,
-- the UNIQUE leaf_index and the partial pending index besides), and the
-- sequencer moves a batch out of the queue into evidence_leaves (DELETE …
-- RETURNING into an INSERT) instead of updating an indexed column, which
-- PostgreSQL cannot do as a HOT update. Leaves already sequenced keep their
-- indices; pending events stay pending.
CREATE TABLE evidence_leaves (
	leaf_index BIGINT NOT NULL PRIMARY KEY,
	leaf       BYTEA NOT NULL
);
INSERT INTO evidence_leaves (leaf_index, leaf)
	SELECT leaf_index, leaf FROM evidence_events WHERE leaf_index IS NOT NULL;
DELETE FROM evidence_events WHERE leaf_index IS NOT NULL;
DROP INDEX evidence_events_pending;
ALTER TABLE evidence_events DROP COLUMN leaf_index;
