-- The deadline bot's schedule: how far each clock key's plan has been handled.
-- Only a cursor: the room logs' unique client ids make reminders happen once.
CREATE TABLE bots_schedule (
	clock_key  text    PRIMARY KEY,
	room       text    NOT NULL,
	point      text    NOT NULL,
	point_at   bigint NOT NULL, -- Unix microseconds
	due        bigint NOT NULL,
	seq        bigint NOT NULL,
	updated_at bigint NOT NULL
);
CREATE INDEX bots_schedule_due ON bots_schedule (due);

-- Leases: which node does the schedule's work now. They save effort only.
CREATE TABLE bots_leases (
	name   text    PRIMARY KEY,
	holder text    NOT NULL,
	until_at bigint NOT NULL
);

-- Bot tokens: the SHA-256 of the secret, never the secret.
CREATE TABLE bots_tokens (
	id         text    PRIMARY KEY,
	bot        text    NOT NULL,
	name       text    NOT NULL,
	hash       bytea    NOT NULL,
	scope      text    NOT NULL, -- JSON
	created_by text    NOT NULL,
	created_at bigint NOT NULL,
	expires_at bigint,
	revoked_at bigint
);
CREATE INDEX bots_tokens_bot ON bots_tokens (bot, created_at);

CREATE TABLE bots_webhooks (
	id         text    PRIMARY KEY,
	bot        text    NOT NULL,
	token      text    NOT NULL REFERENCES bots_tokens (id),
	url        text    NOT NULL,
	secret     text    NOT NULL,
	kinds      text    NOT NULL, -- JSON array
	rooms      text    NOT NULL, -- JSON array
	created_by text    NOT NULL,
	created_at bigint NOT NULL,
	deleted_at bigint
);
CREATE INDEX bots_webhooks_bot ON bots_webhooks (bot, created_at);

-- How far each webhook has queued each room's log.
CREATE TABLE bots_feeds (
	hook text    NOT NULL REFERENCES bots_webhooks (id),
	room text    NOT NULL,
	seq  bigint NOT NULL,
	PRIMARY KEY (hook, room)
);

CREATE TABLE bots_deliveries (
	id           text    PRIMARY KEY,
	hook         text    NOT NULL REFERENCES bots_webhooks (id),
	room         text    NOT NULL,
	seq          bigint NOT NULL,
	kind         text    NOT NULL,
	state        text    NOT NULL,
	attempts     integer NOT NULL DEFAULT 0,
	next_at      bigint NOT NULL,
	locked_until bigint NOT NULL DEFAULT 0,
	last_status  integer NOT NULL DEFAULT 0,
	last_error   text    NOT NULL DEFAULT '',
	created_at   bigint NOT NULL,
	delivered_at bigint,
	UNIQUE (hook, room, seq)
);
CREATE INDEX bots_deliveries_due ON bots_deliveries (state, next_at);
