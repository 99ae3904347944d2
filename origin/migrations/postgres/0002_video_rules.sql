-- Where a video may play, and whether it has been taken down.
ALTER TABLE videos ADD COLUMN country_mode TEXT CHECK (country_mode IN ('allow', 'deny'));
-- Comma-separated ISO 3166-1 alpha-2 codes; NULL with country_mode NULL.
ALTER TABLE videos ADD COLUMN country_list TEXT;
ALTER TABLE videos ADD COLUMN taken_down BIGINT NOT NULL DEFAULT 0 CHECK (taken_down IN (0, 1));
