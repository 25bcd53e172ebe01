-- Who suspended a unit (issue 7): its holder (wallet_unit_suspend), who may
-- lift the suspension with the PIN, or the operator, who alone may then.
ALTER TABLE units ADD COLUMN suspended_by TEXT NOT NULL DEFAULT '';
