"""Cloudflare adapters of the edge ports: D1, R2 (binding + SigV4 presigner) and Queues."""
