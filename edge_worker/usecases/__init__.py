"""The edge's use cases, one module per purpose; routes and the Worker's cron call them.

They see ports and plain inputs, never a request object or a storage client.
"""
