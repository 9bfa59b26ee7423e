"""Faust app and agents: normalization, sessions, routing, escalation, replies, metrics."""
