"""Edges of the system: channel gateway and normalizers, the Salesforce sink and emulator."""
