-- 好差评 records for the province: one per rating and one per 未评价, made when their event is stored.
CREATE INDEX events_by_ticket ON events (hall_id, (body->>'ticket_id'));
CREATE INDEX events_by_prompt ON events (hall_id, (body->>'prompt_id'));

CREATE TABLE rating_records (
    record_id       text PRIMARY KEY,        -- '<hall>:<rating id>' or '<hall>:unrated:<prompt id>'
    hall_id         text NOT NULL REFERENCES halls (hall_id),
    seq             bigint NOT NULL,         -- the hall event that made it
    rated           boolean NOT NULL,
    record          jsonb NOT NULL,          -- the hall's facts; a province profile maps them on export
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- delivery to the provincial platform (the outbox)
    delivered_at    timestamptz,
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
CREATE INDEX rating_records_due ON rating_records (next_attempt_at) WHERE delivered_at IS NULL;
