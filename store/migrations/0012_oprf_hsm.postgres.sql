-- HSM-bound OPRF keys (issue 11, docs/protocol.md "HSM-bound OPRF key"):
-- a PIN record whose OPRF key is a derive-only HSM key carries its public
-- point (compressed SEC1; the kid is derived from it), in wrapped storage
-- its blob, and the key's own MAC (unit, point, blob); all three are
-- covered by the record's MAC too. Empty for a
-- record whose OPRF key is derived in software from the sealed seed.
ALTER TABLE pin_records ADD COLUMN oprf_public BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE pin_records ADD COLUMN oprf_wrapped BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE pin_records ADD COLUMN oprf_mac BYTEA NOT NULL DEFAULT ''::bytea;
-- A pending registration holds the HSM key its evaluate step made, until
-- finalize moves it into the record or the registration is replaced,
-- evicted or its unit destroyed (then the key is destroyed); oprf_mac is
-- the key's own MAC.
ALTER TABLE pin_registrations ADD COLUMN oprf_public BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE pin_registrations ADD COLUMN oprf_wrapped BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE pin_registrations ADD COLUMN oprf_mac BYTEA NOT NULL DEFAULT ''::bytea;
-- HSM OPRF keys that no record or pending registration uses any more (a
-- PIN change, a re-enrolment, a replaced, evicted or expired pending
-- registration), moved here in the transaction that let go of them, until
-- the PIN server destroys them on the device and deletes the row. mac is
-- the key's own MAC (unit, public point, blob), checked before the
-- destruction, so a database writer cannot have another key destroyed.
CREATE TABLE oprf_retired (
	unit_id TEXT NOT NULL,
	public  BYTEA NOT NULL,
	wrapped BYTEA NOT NULL,
	mac     BYTEA NOT NULL,
	PRIMARY KEY (unit_id, public)
);
