-- A video may choose its own playback-token binding; NULL: the edge deployment's setting.
ALTER TABLE videos ADD COLUMN bind_ip TEXT CHECK (bind_ip IN ('off', 'exact', 'subnet'));
ALTER TABLE videos ADD COLUMN bind_country INTEGER CHECK (bind_country IN (0, 1));
