"""Salesforce: the local Bulk API 1.0 emulator (SQLite-backed) and the OAuth client the sink uses."""
