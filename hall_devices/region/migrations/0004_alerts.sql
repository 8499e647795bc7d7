-- Each hall's active alerts, as its coordinator last published them (retained, over the bridge).
ALTER TABLE halls ADD COLUMN alerts jsonb NOT NULL DEFAULT '[]';
ALTER TABLE halls ADD COLUMN alerts_at timestamptz;
