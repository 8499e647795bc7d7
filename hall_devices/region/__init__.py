"""Many halls, one region (issue 20): forwarding, regional ingest into PostgreSQL."""
