-- Full-text search over public videos' titles, descriptions and tags: a weighted tsvector kept
-- by the database itself, under a GIN index. The 'simple' configuration (no stemming, no stop
-- words) matches SQLite's FTS5 tokenizer closely enough that both rank the same way in tests.
ALTER TABLE videos ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', title), 'A') ||
    setweight(to_tsvector('simple', replace(tags, ',', ' ')), 'B') ||
    setweight(to_tsvector('simple', description), 'C')
) STORED;
CREATE INDEX videos_search ON videos USING GIN (search);
