-- The acl store: directory, credentials, sessions and refresh tokens, signing
-- keys and the acl audit streams. Times are Unix microseconds; NULL is the zero
-- time (for revoked_at, used_at and locked_until: "not yet").

CREATE TABLE acl_regions (
	code   text    NOT NULL PRIMARY KEY,
	parent text    NOT NULL DEFAULT '', -- '' for the root
	name   text    NOT NULL,
	pinyin text    NOT NULL DEFAULT '',
	level  integer NOT NULL,
	kind   text    NOT NULL DEFAULT ''
);

CREATE TABLE acl_units (
	id              text    NOT NULL PRIMARY KEY,
	kind            text    NOT NULL,
	region          text    NOT NULL REFERENCES acl_regions (code),
	name            text    NOT NULL,
	non_territorial boolean NOT NULL DEFAULT false,
	disabled        boolean NOT NULL DEFAULT false,
	created_at      bigint
);

CREATE INDEX acl_units_region_kind ON acl_units (region, kind);

CREATE TABLE acl_users (
	id            text    NOT NULL PRIMARY KEY,
	username      text    NOT NULL UNIQUE, -- lowercase
	name          text    NOT NULL,
	unit          text    NOT NULL REFERENCES acl_units (id),
	roles         text    NOT NULL DEFAULT '[]', -- JSON array of role names
	bot           boolean NOT NULL DEFAULT false,
	disabled      boolean NOT NULL DEFAULT false,
	password_hash text    NOT NULL DEFAULT '', -- PHC string; '' for bots
	failed_logins integer NOT NULL DEFAULT 0,
	locked_until  bigint,
	created_at    bigint
);

CREATE INDEX acl_users_unit ON acl_users (unit);

-- A session is one login: the family of its refresh tokens.
CREATE TABLE acl_sessions (
	id         text   NOT NULL PRIMARY KEY,
	user_id    text   NOT NULL REFERENCES acl_users (id),
	created_at bigint,
	revoked_at bigint
);

CREATE INDEX acl_sessions_user ON acl_sessions (user_id);

CREATE TABLE acl_refresh_tokens (
	hash       bytea  NOT NULL PRIMARY KEY, -- SHA-256 of the token the client holds
	session_id text   NOT NULL REFERENCES acl_sessions (id),
	user_id    text   NOT NULL REFERENCES acl_users (id),
	issued_at  bigint,
	expires_at bigint,
	used_at    bigint
);

CREATE INDEX acl_refresh_tokens_session ON acl_refresh_tokens (session_id);

CREATE TABLE acl_keys (
	name   text  NOT NULL PRIMARY KEY,
	secret bytea NOT NULL
);

-- One hash chain per stream; acl_audit_heads holds each chain's last link and
-- is the row that appends to a stream lock.
CREATE TABLE acl_audit (
	stream  text   NOT NULL,
	seq     bigint NOT NULL,
	at      bigint,
	actor   text   NOT NULL,
	action  text   NOT NULL,
	target  text   NOT NULL,
	outcome text   NOT NULL,
	detail  text   NOT NULL,
	prev    bytea, -- NULL for seq 1
	hash    bytea  NOT NULL,
	PRIMARY KEY (stream, seq)
);

CREATE TABLE acl_audit_heads (
	stream text   NOT NULL PRIMARY KEY,
	seq    bigint NOT NULL,
	hash   bytea -- NULL before the first entry
);
