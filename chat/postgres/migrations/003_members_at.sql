-- members_at is the seq of the last entry that changed a room's members. A
-- batch whose rooms' heads the node remembers commits in one statement that
-- advances each room only if members_at is no later than the head its
-- entries' access decisions were made at (chat.SenderDecision.AsOf), instead
-- of reading every sender's role under the lock. Rooms stored before it take
-- their head: a decision made before the migration has its role read once.
ALTER TABLE chat_rooms ADD COLUMN members_at bigint NOT NULL DEFAULT 0;

UPDATE chat_rooms SET members_at = head_seq WHERE head_seq > 0;
