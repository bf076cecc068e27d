"""Embedded stand-ins for D1, R2 and Queues, so the whole stack runs on one machine."""
