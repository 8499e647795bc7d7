-- A parked event's seq sent again with a body PostgreSQL takes (the hall's own event, after a stolen
-- or broken account's junk at that seq was parked): stored in `events` at that seq, and the parked
-- row kept for the record, marked here. Only rows not replaced are counted on the dashboard.
ALTER TABLE parked_events ADD COLUMN replaced_at timestamptz;
