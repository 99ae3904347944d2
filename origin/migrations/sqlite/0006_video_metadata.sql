-- What a creator writes about a video besides its title.
ALTER TABLE videos ADD COLUMN description TEXT NOT NULL DEFAULT '';
