"""Spark jobs: conversation-log anonymization, subject erasure and export."""
