-- History by time finds its place through a sparse index instead of one entry
-- per stored message: the index on (room, created_at) cost about a tenth of
-- the database's time per post, and is read only by the rare History calls
-- that give Since or Until.
--
-- From this migration on the store stamps every entry no earlier than its
-- room's previous one (chatsql.Stamp), so created_at never decreases along a
-- room's log, and every 64th entry (a mark, chatsql.SelectTimeBounds) is enough to
-- bound where a time falls: between two neighbouring marks. Entries stored
-- before it were stamped by the posting node's clock before their commit and
-- may be out of order by a little; time_from is the first seq of each room
-- stamped in order, and marks before it are not used (History reads that
-- older part of a room in seq order, filtering by time, as it always did
-- without an index on time). last_at becomes the latest time in the room, so
-- that the next entry is stamped no earlier than any older one.
ALTER TABLE chat_rooms ADD COLUMN time_from bigint NOT NULL DEFAULT 1;

UPDATE chat_rooms r SET time_from = r.head_seq + 1,
	last_at = greatest(r.last_at, coalesce((SELECT max(m.created_at) FROM chat_messages m WHERE m.room = r.id), r.last_at))
WHERE r.head_seq > 0;

DROP INDEX IF EXISTS chat_messages_created;
CREATE INDEX chat_messages_marks ON chat_messages (room, created_at) WHERE seq % 64 = 0;
