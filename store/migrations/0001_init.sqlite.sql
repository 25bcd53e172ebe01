-- Wallet units and the public parts of their keys (SQLite).
--
-- Times are unix microseconds. States and key sizes are validated in Go
-- rather than by CHECK constraints, which SQLite cannot alter without
-- rebuilding the table when a state is added.

CREATE TABLE units (
	id         TEXT NOT NULL PRIMARY KEY,
	state      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE keys (
	kid        TEXT NOT NULL PRIMARY KEY,
	unit_id    TEXT NOT NULL REFERENCES units (id),
	public_key BLOB NOT NULL,
	backend    TEXT NOT NULL,
	state      TEXT NOT NULL,
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX keys_by_unit ON keys (unit_id, created_at, kid);
