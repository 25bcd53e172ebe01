-- When each status entry was allocated (Unix microseconds), so that the
-- entries a unit got in a recent window can be counted: a unit may get at
-- most a configured number of attestations (key attestations and WIAs)
-- per window (StatusAllocation.Limit). Entries allocated before this
-- migration count as old (0). The index by unit serves that count and
-- the unit's state changes, which used status_entries_by_unit.
ALTER TABLE status_entries ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX status_entries_by_unit_created ON status_entries (unit_id, created_at);
DROP INDEX status_entries_by_unit;
