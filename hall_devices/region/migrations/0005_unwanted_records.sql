-- A 未评价 record the province's profile takes neither as such nor as a default rating is never sent:
-- marked not wanted (a state of its own), neither due nor counted as unreported.
ALTER TABLE rating_records ADD COLUMN not_wanted_at timestamptz;
DROP INDEX rating_records_due;
CREATE INDEX rating_records_due ON rating_records (next_attempt_at)
    WHERE delivered_at IS NULL AND not_wanted_at IS NULL;
