-- SECDSA in the WSCD role (issue 8, docs/secdsa.md "Server"): per unit, its
-- derive-only HSM key aU (kid; blob when wrapped), its Internal
-- Certificate and the instruction counters. mac binds unit, kid, blob and
-- certificate under the HSM-derived MAC key, so a database writer cannot
-- give a unit another aU or certificate. last_sn survives re-activation
-- (a PIN change): an instruction captured under an old certificate stays
-- spent.
CREATE TABLE secdsa_units (
	unit_id    TEXT NOT NULL PRIMARY KEY REFERENCES units (id),
	kid        TEXT NOT NULL,
	wrapped    BYTEA NOT NULL,
	cert       BYTEA NOT NULL,
	mac        BYTEA NOT NULL,
	last_sn    BIGINT NOT NULL,
	failures   BIGINT NOT NULL,
	locked     BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- An activation in progress: the provider's nonce (single use, expiring),
-- then, once the wallet's request was answered, the new aU until the
-- certificate is issued (mac over unit, kid, blob).
CREATE TABLE secdsa_activations (
	unit_id    TEXT NOT NULL PRIMARY KEY REFERENCES units (id),
	nonce      BYTEA NOT NULL,
	expires_at BIGINT NOT NULL,
	kid        TEXT NOT NULL,
	wrapped    BYTEA NOT NULL,
	mac        BYTEA NOT NULL
);
