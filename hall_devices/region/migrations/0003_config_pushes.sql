-- Layout versions pushed from the region to halls, and the version each hall runs.
ALTER TABLE halls ADD COLUMN layout_version int;

CREATE TABLE config_pushes (
    hall_id     text NOT NULL REFERENCES halls (hall_id),
    version     int NOT NULL,
    layout_toml text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,                 -- last sent; sent again while no answer comes
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'refused')),
    reasons     jsonb NOT NULL DEFAULT '[]', -- the hall's reasons when refused
    answered_at timestamptz,
    PRIMARY KEY (hall_id, version)
);
