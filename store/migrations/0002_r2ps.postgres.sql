-- R2PS: enrolment, OPAQUE PIN records and attempt counters, sessions,
-- replay cache and server secrets (PostgreSQL). Times are unix microseconds.

-- One-time codes an operator hands to a wallet to enrol (or re-enrol after
-- a PIN reset). Only the SHA-256 of a code is kept; codes are 128-bit random.
CREATE TABLE activation_codes (
	code_hash  BYTEA NOT NULL PRIMARY KEY,
	unit_id    TEXT COLLATE "C" NOT NULL REFERENCES units (id),
	purpose    TEXT COLLATE "C" NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX activation_codes_by_unit ON activation_codes (unit_id);

-- The wallet's context keys: its signing key (CSK, usage sig), which every
-- request JWS is verified against, and its agreement key (CAK, usage enc),
-- which 1FA responses are encrypted to. kid is the RFC 7638 thumbprint.
CREATE TABLE client_keys (
	kid        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	unit_id    TEXT COLLATE "C" NOT NULL REFERENCES units (id),
	usage      TEXT NOT NULL,
	public_key BYTEA NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX client_keys_by_unit ON client_keys (unit_id);

-- OPAQUE registration records, one per unit and context. cred_nonce is the
-- random part of the record's credential identifier, and so of its OPRF key.
CREATE TABLE pin_records (
	unit_id    TEXT COLLATE "C" NOT NULL REFERENCES units (id),
	context    TEXT COLLATE "C" NOT NULL,
	record     BYTEA NOT NULL,
	cred_nonce BYTEA NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (unit_id, context)
);

-- Registrations between OPAQUE evaluate and finalize: the nonce of the
-- credential identifier the evaluate step used, per requester (the
-- requesting client key, or the session of a PIN change), so nobody can
-- replace another requester's pending registration.
CREATE TABLE pin_registrations (
	unit_id    TEXT COLLATE "C" NOT NULL,
	context    TEXT COLLATE "C" NOT NULL,
	requester  TEXT COLLATE "C" NOT NULL,
	nonce      BYTEA NOT NULL,
	expires_at BIGINT NOT NULL,
	PRIMARY KEY (unit_id, context, requester)
);
CREATE INDEX pin_registrations_by_expiry ON pin_registrations (expires_at);

-- PIN attempt counters. failures counts attempts that reached the PIN
-- check and did not succeed (incremented before the check); locked is set
-- by the policy and cleared only by an operator.
CREATE TABLE pin_attempts (
	unit_id    TEXT COLLATE "C" NOT NULL,
	context    TEXT COLLATE "C" NOT NULL,
	failures   BIGINT NOT NULL,
	not_before BIGINT NOT NULL,
	locked     BIGINT NOT NULL CHECK (locked IN (0, 1)),
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (unit_id, context)
);

-- Sessions, pending (after KE2) or verified (after KE3). id_hash is the
-- SHA-256 of the session id; secret is sealed by a server key.
CREATE TABLE sessions (
	id_hash    BYTEA NOT NULL PRIMARY KEY,
	unit_id    TEXT COLLATE "C" NOT NULL,
	context    TEXT COLLATE "C" NOT NULL,
	state      TEXT NOT NULL,
	secret     BYTEA NOT NULL,
	task       TEXT NOT NULL,
	uses_left  BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_unit ON sessions (unit_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Replay cache: a nonce is refused while its row lives.
CREATE TABLE nonces (
	nonce_hash BYTEA NOT NULL PRIMARY KEY,
	expires_at BIGINT NOT NULL
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

-- Server secrets (OPAQUE key material…), sealed by a device key, and the
-- server's own device keys by purpose.
CREATE TABLE server_secrets (
	name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	value      BYTEA NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE server_keys (
	purpose    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	kid        TEXT COLLATE "C" NOT NULL,
	public_key BYTEA NOT NULL,
	created_at BIGINT NOT NULL
);
