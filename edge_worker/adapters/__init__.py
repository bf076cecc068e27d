"""Adapters behind the ports: `local` (SQLite, files) and `cloudflare` (D1, R2, Queues)."""
