"""Triton client, model training and export, the Triton launcher."""
