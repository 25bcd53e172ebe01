-- Key records bound to their unit (docs/protocol.md §8a): mac binds a
-- wallet key's row (kid, unit, context, backend, public point) under a key
-- derived from the WSCD's HSM, share_mac the same under the share key of
-- split roles (docs/wsca.md), so someone who can write the database cannot
-- have a point of their own attested as a key of the HSM. Empty for rows
-- made before this step until the WSCD proves them with its device
-- (wscd.Keys.BackfillMACs); an attestation refuses a row without one.
ALTER TABLE keys ADD COLUMN mac BYTEA NOT NULL DEFAULT '\x';
ALTER TABLE keys ADD COLUMN share_mac BYTEA NOT NULL DEFAULT '\x';
