-- The chat store: rooms, their members and participating units, their
-- hash-chained logs, read markers and attachments. Times are Unix microseconds;
-- NULL is the zero time (occurred_at of an ordinary chat message).

-- A room and the head of its log. Append reads and advances head_seq, head_hash
-- and last_at on the single writer connection.
CREATE TABLE chat_rooms (
	id         TEXT    NOT NULL PRIMARY KEY,
	kind       TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	owner_unit TEXT    NOT NULL,
	region     TEXT    NOT NULL,
	archived   INTEGER NOT NULL DEFAULT 0,
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	head_seq   INTEGER NOT NULL DEFAULT 0,
	head_hash  BLOB,                      -- hash of entry head_seq; NULL while empty
	last_at    INTEGER NOT NULL           -- created_at of entry head_seq
) STRICT;

-- Each unit has at most one unit room.
CREATE UNIQUE INDEX chat_rooms_unit ON chat_rooms (owner_unit) WHERE kind = 'unit';

CREATE TABLE chat_members (
	room    TEXT    NOT NULL REFERENCES chat_rooms (id),
	user_id TEXT    NOT NULL,
	unit    TEXT    NOT NULL,
	role    TEXT    NOT NULL,
	since   INTEGER NOT NULL, -- seq of the entry that made them a member
	PRIMARY KEY (room, user_id)
) STRICT;

CREATE INDEX chat_members_user ON chat_members (user_id, room);

CREATE TABLE chat_room_units (
	room TEXT NOT NULL REFERENCES chat_rooms (id),
	unit TEXT NOT NULL,
	PRIMARY KEY (room, unit)
) STRICT;

-- The log. The columns from room to created_at are what the hash covers
-- (chat.Message.Canonical); edited, retracted and countable are derived.
CREATE TABLE chat_messages (
	room        TEXT    NOT NULL REFERENCES chat_rooms (id),
	seq         INTEGER NOT NULL,
	kind        TEXT    NOT NULL,
	sender      TEXT    NOT NULL,
	sender_unit TEXT    NOT NULL,
	client_id   TEXT,                     -- NULL when the client gave none
	reply_to    INTEGER NOT NULL DEFAULT 0,
	mentions    TEXT    NOT NULL DEFAULT '[]', -- JSON array of user ids, in the order given
	body        TEXT    NOT NULL DEFAULT '',
	payload     TEXT,                     -- the exact bytes given; NULL when none
	target      INTEGER NOT NULL DEFAULT 0,
	occurred_at INTEGER,
	created_at  INTEGER NOT NULL,
	prev        BLOB,                     -- NULL for seq 1
	hash        BLOB    NOT NULL,
	edited      INTEGER NOT NULL DEFAULT 0, -- seq of the latest edit of this entry
	retracted   INTEGER NOT NULL DEFAULT 0, -- seq of its retraction
	countable   INTEGER NOT NULL DEFAULT 0, -- counts as unread for others
	PRIMARY KEY (room, seq)
) STRICT;

-- A client's id for a post makes a retry return the first result.
CREATE UNIQUE INDEX chat_messages_client ON chat_messages (room, sender, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX chat_messages_created ON chat_messages (room, created_at);
CREATE INDEX chat_messages_edits ON chat_messages (room, target) WHERE kind = 'edit';

-- Read markers are not log entries: they only move forward, and never past the head.
CREATE TABLE chat_read_markers (
	room    TEXT    NOT NULL REFERENCES chat_rooms (id),
	user_id TEXT    NOT NULL,
	seq     INTEGER NOT NULL,
	at      INTEGER NOT NULL,
	PRIMARY KEY (room, user_id)
) STRICT;

-- Attachments, stored once by content hash; chat_room_blobs says which rooms
-- hold each, since a blob is only readable through a room that holds it.
CREATE TABLE chat_blobs (
	sha256     TEXT    NOT NULL PRIMARY KEY, -- lowercase hex
	size       INTEGER NOT NULL,
	type       TEXT    NOT NULL,
	content    BLOB    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE chat_room_blobs (
	room   TEXT NOT NULL REFERENCES chat_rooms (id),
	sha256 TEXT NOT NULL REFERENCES chat_blobs (sha256),
	PRIMARY KEY (room, sha256)
) STRICT;
