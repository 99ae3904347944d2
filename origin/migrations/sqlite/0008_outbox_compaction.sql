-- Compaction keeps the newest outbox row of each key (a snapshot a new edge can start from).
CREATE INDEX edge_outbox_key ON edge_outbox (key, seq);
