"""The edge's rules in plain Python: the job state machine, input validation, idempotency,
upload tokens and the problems clients are told about. No web framework, no storage."""
