-- The chat store: rooms, their members and participating units, their
-- hash-chained logs, read markers and attachments. Times are Unix microseconds;
-- NULL is the zero time (occurred_at of an ordinary chat message).

-- A room and the head of its log. Append locks this row (FOR NO KEY UPDATE), so
-- posts to one room queue on it and other rooms never wait. The head changes on
-- every post and is not indexed, so that the update can stay on its page (HOT).
CREATE TABLE chat_rooms (
	id         text    NOT NULL PRIMARY KEY,
	kind       text    NOT NULL,
	name       text    NOT NULL,
	owner_unit text    NOT NULL,
	region     text    NOT NULL,
	archived   boolean NOT NULL DEFAULT false,
	created_by text    NOT NULL,
	created_at bigint  NOT NULL,
	head_seq   bigint  NOT NULL DEFAULT 0,
	head_hash  bytea,                     -- hash of entry head_seq; NULL while empty
	last_at    bigint  NOT NULL           -- created_at of entry head_seq
) WITH (fillfactor = 70);

-- Each unit has at most one unit room.
CREATE UNIQUE INDEX chat_rooms_unit ON chat_rooms (owner_unit) WHERE kind = 'unit';

CREATE TABLE chat_members (
	room    text   NOT NULL REFERENCES chat_rooms (id),
	user_id text   NOT NULL,
	unit    text   NOT NULL,
	role    text   NOT NULL,
	since   bigint NOT NULL, -- seq of the entry that made them a member
	PRIMARY KEY (room, user_id)
);

CREATE INDEX chat_members_user ON chat_members (user_id, room);

CREATE TABLE chat_room_units (
	room text NOT NULL REFERENCES chat_rooms (id),
	unit text NOT NULL,
	PRIMARY KEY (room, unit)
);

-- The log. The columns from room to created_at are what the hash covers
-- (chat.Message.Canonical); edited, retracted and countable are derived.
-- payload is bytea, never jsonb: jsonb reorders keys and would break the hashes.
CREATE TABLE chat_messages (
	room        text    NOT NULL REFERENCES chat_rooms (id),
	seq         bigint  NOT NULL,
	kind        text    NOT NULL,
	sender      text    NOT NULL,
	sender_unit text    NOT NULL,
	client_id   text,                     -- NULL when the client gave none
	reply_to    bigint  NOT NULL DEFAULT 0,
	mentions    text    NOT NULL DEFAULT '[]', -- JSON array of user ids, in the order given
	body        text    NOT NULL DEFAULT '',
	payload     bytea,                    -- the exact bytes given; NULL when none
	target      bigint  NOT NULL DEFAULT 0,
	occurred_at bigint,
	created_at  bigint  NOT NULL,
	prev        bytea,                    -- NULL for seq 1
	hash        bytea   NOT NULL,
	edited      bigint  NOT NULL DEFAULT 0, -- seq of the latest edit of this entry
	retracted   bigint  NOT NULL DEFAULT 0, -- seq of its retraction
	countable   boolean NOT NULL DEFAULT false, -- counts as unread for others
	PRIMARY KEY (room, seq)
);

-- A client's id for a post makes a retry return the first result.
CREATE UNIQUE INDEX chat_messages_client ON chat_messages (room, sender, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX chat_messages_created ON chat_messages (room, created_at);
CREATE INDEX chat_messages_edits ON chat_messages (room, target) WHERE kind = 'edit';

-- Read markers are not log entries: they only move forward, and never past the head.
CREATE TABLE chat_read_markers (
	room    text   NOT NULL REFERENCES chat_rooms (id),
	user_id text   NOT NULL,
	seq     bigint NOT NULL,
	at      bigint NOT NULL,
	PRIMARY KEY (room, user_id)
);

-- Attachments, stored once by content hash; chat_room_blobs says which rooms
-- hold each, since a blob is only readable through a room that holds it.
CREATE TABLE chat_blobs (
	sha256     text   NOT NULL PRIMARY KEY, -- lowercase hex
	size       bigint NOT NULL,
	type       text   NOT NULL,
	content    bytea  NOT NULL,
	created_at bigint NOT NULL
);

CREATE TABLE chat_room_blobs (
	room   text NOT NULL REFERENCES chat_rooms (id),
	sha256 text NOT NULL REFERENCES chat_blobs (sha256),
	PRIMARY KEY (room, sha256)
);
