-- Split WSCD/WSCA roles (issue 7): what a WSCA instance, which has no
-- wallet-key device, must read of the WSCD's state is sealed or MACed a
-- second time under the share key both roles agree by ECDH between their
-- own devices (docs/wsca.md): a session's key, a client key's MAC. Empty
-- until the WSCD knows the share key (no WSCA yet).
ALTER TABLE sessions ADD COLUMN share_secret BLOB NOT NULL DEFAULT x'';
ALTER TABLE client_keys ADD COLUMN share_mac BLOB NOT NULL DEFAULT x'';
