-- History by time finds its place through a sparse index instead of one entry
-- per stored message; see the PostgreSQL store's migration 004 for why and
-- how. time_from is the first seq of each room stamped in order
-- (chatsql.Stamp); last_at becomes the latest time in the room.
ALTER TABLE chat_rooms ADD COLUMN time_from INTEGER NOT NULL DEFAULT 1;

UPDATE chat_rooms SET time_from = head_seq + 1,
	last_at = max(last_at, coalesce((SELECT max(m.created_at) FROM chat_messages m WHERE m.room = chat_rooms.id), last_at))
WHERE head_seq > 0;

DROP INDEX IF EXISTS chat_messages_created;
CREATE INDEX chat_messages_marks ON chat_messages (room, created_at) WHERE seq % 64 = 0;
