-- Notifications (origin/src/notifications/): what a user is told, in the app and by email, and
-- how each user wants each kind.

-- One row per user and happening. `key` names the happening (`video:{id}`, `like:{comment}:{user}`
-- …): a second write of the same key for the same user is a duplicate and is dropped, so a
-- fan-out run again after a crash, or a like taken back and given again, tells nobody twice.
CREATE TABLE notifications (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN
                   ('new_video', 'comment_reply', 'comment_like', 'moderation', 'billing')),
    key        TEXT NOT NULL,
    -- What the app and the email show (JSON): ids, titles and names as they were.
    data       TEXT NOT NULL,
    -- Shown in the app's list (the user's preference when it was written).
    in_app     BIGINT NOT NULL,
    -- 'pending' until an email has carried it ('sent'); 'none' when the user did not want it,
    -- 'expired' when no email went out in time.
    email      TEXT NOT NULL CHECK (email IN ('none', 'pending', 'sent', 'expired')),
    created_at BIGINT NOT NULL,
    read_at    BIGINT,
    UNIQUE (user_id, key)
);
CREATE INDEX notifications_inbox ON notifications (user_id, id) WHERE in_app = 1;
CREATE INDEX notifications_unread ON notifications (user_id) WHERE in_app = 1 AND read_at IS NULL;
CREATE INDEX notifications_mail ON notifications (user_id, id) WHERE email = 'pending';

-- A user's choice for one kind; a kind with no row takes the default (`notifications::Kind`).
CREATE TABLE notification_prefs (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    in_app  BIGINT NOT NULL,
    email   BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind)
);

-- When the user showed the address is theirs (a link sent to it, followed): notification emails
-- go only to confirmed addresses. Accounts made by the operator (the demo's, the CLI's) count as
-- confirmed; earlier signups confirm from their account page.
ALTER TABLE users ADD COLUMN email_confirmed_at BIGINT;

-- When a video's subscribers were told of it (`notifications::fanout::announce`): once per video.
-- Videos published before notifications existed count as told, so editing or restoring one
-- tells nobody of it as new.
ALTER TABLE videos ADD COLUMN announced_at BIGINT;
UPDATE videos SET announced_at = created_at WHERE state = 'ready' AND visibility <> 'private';

-- Replies: a comment may answer another on the same video.
ALTER TABLE comments ADD COLUMN parent_id TEXT REFERENCES comments(id) ON DELETE SET NULL;

-- The fan-out walks a channel's subscribers in user order, a batch at a time: with the channel
-- alone indexed, every batch would scan the whole channel again.
DROP INDEX subscriptions_channel;
CREATE INDEX subscriptions_channel_user ON subscriptions (channel_id, user_id);
