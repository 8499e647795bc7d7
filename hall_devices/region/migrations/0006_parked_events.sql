-- Events of a hall that PostgreSQL refuses (a date that is none, a body jsonb cannot hold, ...): parked
-- here, in the same transaction that moves the hall's mark past them, so one such event no longer
-- stalls its hall's stream for good. Kept whole, in forms PostgreSQL always takes: the body as the
-- UTF-8 bytes the hall sent (surrogatepass), the kind and day as text with what text cannot hold
-- escaped; the hall's `at` (timestamptz holds every time a hall can send: 4713 BC .. 294276 AD).
CREATE TABLE parked_events (
    hall_id     text NOT NULL REFERENCES halls (hall_id),
    seq         bigint NOT NULL,
    kind        text NOT NULL,
    at          timestamptz NOT NULL,
    day         text NOT NULL,
    body        bytea NOT NULL,
    sqlstate    text,                       -- PostgreSQL's error code (NULL: refused before it)
    error       text NOT NULL,              -- what PostgreSQL (or the driver) said
    parked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hall_id, seq)
);
