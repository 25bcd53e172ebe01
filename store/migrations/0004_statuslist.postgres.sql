-- Token Status Lists (issue 7; statuslist package, docs/status-lists.md)
-- (PostgreSQL). Times are unix microseconds.
--
-- A list is a shard of `size` entries of `bits` bits. Entries are handed
-- out by next_counter; the published index is a keyed permutation of the
-- counter computed outside the store. version grows with every status
-- change of the list; an entry's seq is the version that last changed it,
-- so a publisher fetches what changed since the version it built.
CREATE TABLE status_lists (
	id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	bits         INTEGER NOT NULL,
	size         BIGINT NOT NULL,
	created_at   BIGINT NOT NULL,
	state        TEXT COLLATE "C" NOT NULL,
	next_counter BIGINT NOT NULL,
	version      BIGINT NOT NULL
);
CREATE INDEX status_lists_by_state ON status_lists (state, id);

-- One entry per status a referenced token carries: a unit's WIA (kind
-- 'wia', no kid) or one of its keys' attestations (kind 'key'). No foreign
-- key to units: a destroyed unit's entries stay revoked for as long as
-- tokens referring to them may be checked.
CREATE TABLE status_entries (
	list_id    TEXT COLLATE "C" NOT NULL REFERENCES status_lists (id),
	idx        BIGINT NOT NULL,
	unit_id    TEXT COLLATE "C" NOT NULL,
	kind       TEXT COLLATE "C" NOT NULL,
	kid        TEXT COLLATE "C",
	status     INTEGER NOT NULL,
	seq        BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (list_id, idx)
);
CREATE INDEX status_entries_by_unit ON status_entries (unit_id);
CREATE INDEX status_entries_by_seq ON status_entries (list_id, seq);

-- Revocation is final: whatever statement tries, an entry at 1 (INVALID)
-- keeps it.
CREATE FUNCTION status_entries_revocation_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.status = 1 AND NEW.status <> 1 THEN
		RAISE EXCEPTION 'status_entries: revocation is final';
	END IF;
	RETURN NEW;
END;
$$;
CREATE TRIGGER status_entries_revocation_final
BEFORE UPDATE OF status ON status_entries
FOR EACH ROW EXECUTE FUNCTION status_entries_revocation_final();

-- The signed tokens of each list, one per format ('jwt', 'cwt'), so that
-- every instance serves the same bytes. A token replaces the stored one
-- only when it is newer (version, then issued_at).
CREATE TABLE status_tokens (
	list_id   TEXT COLLATE "C" NOT NULL REFERENCES status_lists (id),
	format    TEXT COLLATE "C" NOT NULL,
	version   BIGINT NOT NULL,
	issued_at BIGINT NOT NULL,
	etag      TEXT COLLATE "C" NOT NULL,
	token     BYTEA NOT NULL,
	PRIMARY KEY (list_id, format)
);
