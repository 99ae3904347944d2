-- Full-text search over public videos' titles, descriptions and tags (FTS5, an index of the
-- videos table's own rows, kept in step by triggers). Tags are comma-separated slugs, which the
-- tokenizer splits like words. (Rowids are the join: VACUUM may renumber a table without an
-- INTEGER PRIMARY KEY, so after a VACUUM run: INSERT INTO video_search (video_search) VALUES ('rebuild').)
CREATE VIRTUAL TABLE video_search USING fts5(
    title, description, tags,
    content = 'videos', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO video_search (video_search) VALUES ('rebuild');

CREATE TRIGGER video_search_insert AFTER INSERT ON videos BEGIN
    INSERT INTO video_search (rowid, title, description, tags)
    VALUES (new.rowid, new.title, new.description, new.tags);
END;
CREATE TRIGGER video_search_delete AFTER DELETE ON videos BEGIN
    INSERT INTO video_search (video_search, rowid, title, description, tags)
    VALUES ('delete', old.rowid, old.title, old.description, old.tags);
END;
CREATE TRIGGER video_search_update AFTER UPDATE OF title, description, tags ON videos BEGIN
    INSERT INTO video_search (video_search, rowid, title, description, tags)
    VALUES ('delete', old.rowid, old.title, old.description, old.tags);
    INSERT INTO video_search (rowid, title, description, tags)
    VALUES (new.rowid, new.title, new.description, new.tags);
END;
