-- The name a user shows others.
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
