-- R2PS hardening (issue 6): keys remember the context that made them;
-- client keys carry the profile they were enrolled under and a MAC; PIN
-- records carry a MAC; a session remembers the credential nonce of the
-- record it was started against, so a PIN change ends pending logins.
-- MACs are HMAC-SHA256 under a key derived from an HSM key: rows enrolled
-- before this migration have an empty MAC and must be enrolled again.
ALTER TABLE keys ADD COLUMN context TEXT NOT NULL DEFAULT '';
ALTER TABLE client_keys ADD COLUMN profile TEXT NOT NULL DEFAULT 'strict';
ALTER TABLE client_keys ADD COLUMN mac BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE pin_records ADD COLUMN mac BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE sessions ADD COLUMN record_nonce BYTEA NOT NULL DEFAULT ''::bytea;
CREATE INDEX pin_attempts_by_update ON pin_attempts (updated_at);
