"""Avro schemas of every topic, the codec, the topic catalog and compatibility checks."""
