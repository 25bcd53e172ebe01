-- Placeholder on the secdsa-server branch only: migration 0009 belongs to
-- the evidence log (another branch); the lead keeps that branch's file.
SELECT 1;
