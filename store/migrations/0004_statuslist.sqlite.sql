-- Token Status Lists (issue 7; statuslist package, docs/status-lists.md)
-- (SQLite). Times are unix microseconds.
--
-- A list is a shard of `size` entries of `bits` bits. Entries are handed
-- out by next_counter; the published index is a keyed permutation of the
-- counter computed outside the store. version grows with every status
-- change of the list; an entry's seq is the version that last changed it,
-- so a publisher fetches what changed since the version it built.
CREATE TABLE status_lists (
	id           TEXT NOT NULL PRIMARY KEY,
	bits         INTEGER NOT NULL,
	size         INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	state        TEXT NOT NULL,
	next_counter INTEGER NOT NULL,
	version      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX status_lists_by_state ON status_lists (state, id);

-- One entry per status a referenced token carries: a unit's WIA (kind
-- 'wia', no kid) or one of its keys' attestations (kind 'key'). No foreign
-- key to units: a destroyed unit's entries stay revoked for as long as
-- tokens referring to them may be checked.
CREATE TABLE status_entries (
	list_id    TEXT NOT NULL REFERENCES status_lists (id),
	idx        INTEGER NOT NULL,
	unit_id    TEXT NOT NULL,
	kind       TEXT NOT NULL,
	kid        TEXT,
	status     INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (list_id, idx)
) STRICT, WITHOUT ROWID;
CREATE INDEX status_entries_by_unit ON status_entries (unit_id);
CREATE INDEX status_entries_by_seq ON status_entries (list_id, seq);

-- Revocation is final: whatever statement tries, an entry at 1 (INVALID)
-- keeps it.
CREATE TRIGGER status_entries_revocation_final
BEFORE UPDATE OF status ON status_entries
WHEN OLD.status = 1 AND NEW.status <> 1
BEGIN
	SELECT RAISE(ABORT, 'status_entries: revocation is final');
END;

-- The signed tokens of each list, one per format ('jwt', 'cwt'), so that
-- every instance serves the same bytes. A token replaces the stored one
-- only when it is newer (version, then issued_at).
CREATE TABLE status_tokens (
	list_id   TEXT NOT NULL REFERENCES status_lists (id),
	format    TEXT NOT NULL,
	version   INTEGER NOT NULL,
	issued_at INTEGER NOT NULL,
	etag      TEXT NOT NULL,
	token     BLOB NOT NULL,
	PRIMARY KEY (list_id, format)
) STRICT, WITHOUT ROWID;
