-- A video's category (one slug) and tags (comma-separated slugs), for the category feed and
-- search; and the index the category feed reads in order.
ALTER TABLE videos ADD COLUMN category TEXT;
ALTER TABLE videos ADD COLUMN tags TEXT NOT NULL DEFAULT '';
CREATE INDEX videos_category ON videos (category, created_at DESC, id DESC);
