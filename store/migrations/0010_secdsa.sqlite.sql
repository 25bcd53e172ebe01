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
	wrapped    BLOB NOT NULL,
	cert       BLOB NOT NULL,
	mac        BLOB NOT NULL,
	last_sn    INTEGER NOT NULL,
	failures   INTEGER NOT NULL,
	locked     INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- An activation in progress: the provider's nonce (single use, expiring),
-- then, once the wallet's request was answered, the new aU until the
-- certificate is issued (mac over unit, kid, blob).
CREATE TABLE secdsa_activations (
	unit_id    TEXT NOT NULL PRIMARY KEY REFERENCES units (id),
	nonce      BLOB NOT NULL,
	expires_at INTEGER NOT NULL,
	kid        TEXT NOT NULL,
	wrapped    BLOB NOT NULL,
	mac        BLOB NOT NULL
) STRICT, WITHOUT ROWID;
