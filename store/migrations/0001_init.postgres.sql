-- Wallet units and the public parts of their keys (PostgreSQL).
--
-- Times are unix microseconds. States and key sizes are validated in Go,
-- as on SQLite. Identifiers use the "C" collation so that ORDER BY compares
-- bytes, as SQLite does, whatever the database's locale.

CREATE TABLE units (
	id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	state      TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE keys (
	kid        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	unit_id    TEXT COLLATE "C" NOT NULL REFERENCES units (id),
	public_key BYTEA NOT NULL,
	backend    TEXT NOT NULL,
	state      TEXT NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE INDEX keys_by_unit ON keys (unit_id, created_at, kid);
