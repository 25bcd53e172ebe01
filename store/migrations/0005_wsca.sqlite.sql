-- The WSCA role (issue 7): pseudonym slots (ARF PA_14). A slot's value is
-- sealed by the server (AES-256-GCM under a key derived from an HSM key,
-- with the unit and slot name as additional data): the database holds
-- only ciphertext. A destroyed unit keeps its row (state 'destroyed') so
-- that its id is never given out again; everything else of it is erased.
CREATE TABLE pseudonyms (
	unit_id    TEXT NOT NULL REFERENCES units (id),
	slot       TEXT NOT NULL,
	value      BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (unit_id, slot)
) STRICT, WITHOUT ROWID;

-- The keys a key attestation attests, by its status entry: a key's
-- destruction invalidates every attestation that names it, not only those
-- whose status entry was allocated for it (status_entries.kid, the first).
CREATE TABLE attested_keys (
	list_id TEXT NOT NULL,
	idx     INTEGER NOT NULL,
	kid     TEXT NOT NULL,
	PRIMARY KEY (list_id, idx, kid)
) STRICT, WITHOUT ROWID;
CREATE INDEX attested_keys_by_kid ON attested_keys (kid);
