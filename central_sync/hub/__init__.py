"""The central hub: ingest from MQTT (shared subscriptions), idempotent store, control-room API."""
