-- The region's store of every hall's events, keyed by (hall, seq): a hall's event is stored once.
CREATE TABLE halls (
    hall_id     text PRIMARY KEY,
    district    text NOT NULL,              -- 行政区划 code (GB/T 2260)
    applied     bigint NOT NULL DEFAULT 0,  -- every event 1..applied is stored
    head        bigint NOT NULL DEFAULT 0,  -- the hall's last committed sequence number, as last heard
    last_heard  timestamptz
);

CREATE TABLE events (
    hall_id     text NOT NULL REFERENCES halls (hall_id),
    seq         bigint NOT NULL,
    at          timestamptz NOT NULL,
    day         date NOT NULL,
    kind        text NOT NULL,
    body        jsonb NOT NULL,
    ingest_id   bigserial NOT NULL,         -- order of storing: within a hall it follows seq
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hall_id, seq)
);
CREATE INDEX events_by_day ON events (hall_id, day);
CREATE INDEX events_by_kind ON events (kind, day);
