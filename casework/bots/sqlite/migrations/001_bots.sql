-- The deadline bot's schedule: how far each clock key's plan has been handled.
-- Only a cursor: the room logs' unique client ids make reminders happen once.
CREATE TABLE bots_schedule (
	clock_key  TEXT    PRIMARY KEY,
	room       TEXT    NOT NULL,
	point      TEXT    NOT NULL,
	point_at   INTEGER NOT NULL, -- Unix microseconds
	due        INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX bots_schedule_due ON bots_schedule (due);

-- Leases: which node does the schedule's work now. They save effort only.
CREATE TABLE bots_leases (
	name   TEXT    PRIMARY KEY,
	holder TEXT    NOT NULL,
	until_at INTEGER NOT NULL
);

-- Bot tokens: the SHA-256 of the secret, never the secret.
CREATE TABLE bots_tokens (
	id         TEXT    PRIMARY KEY,
	bot        TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	hash       BLOB    NOT NULL,
	scope      TEXT    NOT NULL, -- JSON
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER,
	revoked_at INTEGER
);
CREATE INDEX bots_tokens_bot ON bots_tokens (bot, created_at);

CREATE TABLE bots_webhooks (
	id         TEXT    PRIMARY KEY,
	bot        TEXT    NOT NULL,
	token      TEXT    NOT NULL REFERENCES bots_tokens (id),
	url        TEXT    NOT NULL,
	secret     TEXT    NOT NULL,
	kinds      TEXT    NOT NULL, -- JSON array
	rooms      TEXT    NOT NULL, -- JSON array
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	deleted_at INTEGER
);
CREATE INDEX bots_webhooks_bot ON bots_webhooks (bot, created_at);

-- How far each webhook has queued each room's log.
CREATE TABLE bots_feeds (
	hook TEXT    NOT NULL REFERENCES bots_webhooks (id),
	room TEXT    NOT NULL,
	seq  INTEGER NOT NULL,
	PRIMARY KEY (hook, room)
);

CREATE TABLE bots_deliveries (
	id           TEXT    PRIMARY KEY,
	hook         TEXT    NOT NULL REFERENCES bots_webhooks (id),
	room         TEXT    NOT NULL,
	seq          INTEGER NOT NULL,
	kind         TEXT    NOT NULL,
	state        TEXT    NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_at      INTEGER NOT NULL,
	locked_until INTEGER NOT NULL DEFAULT 0,
	last_status  INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	delivered_at INTEGER,
	UNIQUE (hook, room, seq)
);
CREATE INDEX bots_deliveries_due ON bots_deliveries (state, next_at);
