"""Storage: tables, engines, migrations and idempotent bulk upserts."""
