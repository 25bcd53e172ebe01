-- R2PS: enrolment, OPAQUE PIN records and attempt counters, sessions,
-- replay cache and server secrets (SQLite). Times are unix microseconds.

-- One-time codes an operator hands to a wallet to enrol (or re-enrol after
-- a PIN reset). Only the SHA-256 of a code is kept; codes are 128-bit random.
CREATE TABLE activation_codes (
	code_hash  BLOB NOT NULL PRIMARY KEY,
	unit_id    TEXT NOT NULL REFERENCES units (id),
	purpose    TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX activation_codes_by_unit ON activation_codes (unit_id);

-- The wallet's context keys: its signing key (CSK, usage sig), which every
-- request JWS is verified against, and its agreement key (CAK, usage enc),
-- which 1FA responses are encrypted to. kid is the RFC 7638 thumbprint.
CREATE TABLE client_keys (
	kid        TEXT NOT NULL PRIMARY KEY,
	unit_id    TEXT NOT NULL REFERENCES units (id),
	usage      TEXT NOT NULL,
	public_key BLOB NOT NULL,
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX client_keys_by_unit ON client_keys (unit_id);

-- OPAQUE registration records, one per unit and context. cred_nonce is the
-- random part of the record's credential identifier, and so of its OPRF key.
CREATE TABLE pin_records (
	unit_id    TEXT NOT NULL REFERENCES units (id),
	context    TEXT NOT NULL,
	record     BLOB NOT NULL,
	cred_nonce BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (unit_id, context)
) STRICT, WITHOUT ROWID;

-- Registrations between OPAQUE evaluate and finalize: the nonce of the
-- credential identifier the evaluate step used, per requester (the
-- requesting client key, or the session of a PIN change), so nobody can
-- replace another requester's pending registration.
CREATE TABLE pin_registrations (
	unit_id    TEXT NOT NULL,
	context    TEXT NOT NULL,
	requester  TEXT NOT NULL,
	nonce      BLOB NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (unit_id, context, requester)
) STRICT, WITHOUT ROWID;
CREATE INDEX pin_registrations_by_expiry ON pin_registrations (expires_at);

-- PIN attempt counters. failures counts attempts that reached the PIN
-- check and did not succeed (incremented before the check); locked is set
-- by the policy and cleared only by an operator.
CREATE TABLE pin_attempts (
	unit_id    TEXT NOT NULL,
	context    TEXT NOT NULL,
	failures   INTEGER NOT NULL,
	not_before INTEGER NOT NULL,
	locked     INTEGER NOT NULL CHECK (locked IN (0, 1)),
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (unit_id, context)
) STRICT, WITHOUT ROWID;

-- Sessions, pending (after KE2) or verified (after KE3). id_hash is the
-- SHA-256 of the session id; secret is sealed by a server key.
CREATE TABLE sessions (
	id_hash    BLOB NOT NULL PRIMARY KEY,
	unit_id    TEXT NOT NULL,
	context    TEXT NOT NULL,
	state      TEXT NOT NULL,
	secret     BLOB NOT NULL,
	task       TEXT NOT NULL,
	uses_left  INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_by_unit ON sessions (unit_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Replay cache: a nonce is refused while its row lives.
CREATE TABLE nonces (
	nonce_hash BLOB NOT NULL PRIMARY KEY,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

-- Server secrets (OPAQUE key material…), sealed by a device key, and the
-- server's own device keys by purpose.
CREATE TABLE server_secrets (
	name       TEXT NOT NULL PRIMARY KEY,
	value      BLOB NOT NULL,
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE server_keys (
	purpose    TEXT NOT NULL PRIMARY KEY,
	kid        TEXT NOT NULL,
	public_key BLOB NOT NULL,
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
