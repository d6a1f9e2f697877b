-- The acl store: directory, credentials, sessions and refresh tokens, signing
-- keys and the acl audit streams. Times are Unix microseconds; NULL is the zero
-- time (for revoked_at, used_at and locked_until: "not yet").

CREATE TABLE acl_regions (
	code   TEXT    NOT NULL PRIMARY KEY,
	parent TEXT    NOT NULL DEFAULT '', -- '' for the root
	name   TEXT    NOT NULL,
	pinyin TEXT    NOT NULL DEFAULT '',
	level  INTEGER NOT NULL,
	kind   TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE acl_units (
	id              TEXT    NOT NULL PRIMARY KEY,
	kind            TEXT    NOT NULL,
	region          TEXT    NOT NULL REFERENCES acl_regions (code),
	name            TEXT    NOT NULL,
	non_territorial INTEGER NOT NULL DEFAULT 0,
	disabled        INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER
) STRICT;

CREATE INDEX acl_units_region_kind ON acl_units (region, kind);

CREATE TABLE acl_users (
	id            TEXT    NOT NULL PRIMARY KEY,
	username      TEXT    NOT NULL UNIQUE, -- lowercase
	name          TEXT    NOT NULL,
	unit          TEXT    NOT NULL REFERENCES acl_units (id),
	roles         TEXT    NOT NULL DEFAULT '[]', -- JSON array of role names
	bot           INTEGER NOT NULL DEFAULT 0,
	disabled      INTEGER NOT NULL DEFAULT 0,
	password_hash TEXT    NOT NULL DEFAULT '', -- PHC string; '' for bots
	failed_logins INTEGER NOT NULL DEFAULT 0,
	locked_until  INTEGER,
	created_at    INTEGER
) STRICT;

CREATE INDEX acl_users_unit ON acl_users (unit);

-- A session is one login: the family of its refresh tokens.
CREATE TABLE acl_sessions (
	id         TEXT    NOT NULL PRIMARY KEY,
	user_id    TEXT    NOT NULL REFERENCES acl_users (id),
	created_at INTEGER,
	revoked_at INTEGER
) STRICT;

CREATE INDEX acl_sessions_user ON acl_sessions (user_id);

CREATE TABLE acl_refresh_tokens (
	hash       BLOB    NOT NULL PRIMARY KEY, -- SHA-256 of the token the client holds
	session_id TEXT    NOT NULL REFERENCES acl_sessions (id),
	user_id    TEXT    NOT NULL REFERENCES acl_users (id),
	issued_at  INTEGER,
	expires_at INTEGER,
	used_at    INTEGER
) STRICT;

CREATE INDEX acl_refresh_tokens_session ON acl_refresh_tokens (session_id);

CREATE TABLE acl_keys (
	name   TEXT NOT NULL PRIMARY KEY,
	secret BLOB NOT NULL
) STRICT;

-- One hash chain per stream; acl_audit_heads holds each chain's last link.
CREATE TABLE acl_audit (
	stream  TEXT    NOT NULL,
	seq     INTEGER NOT NULL,
	at      INTEGER,
	actor   TEXT    NOT NULL,
	action  TEXT    NOT NULL,
	target  TEXT    NOT NULL,
	outcome TEXT    NOT NULL,
	detail  TEXT    NOT NULL,
	prev    BLOB, -- NULL for seq 1
	hash    BLOB    NOT NULL,
	PRIMARY KEY (stream, seq)
) STRICT;

CREATE TABLE acl_audit_heads (
	stream TEXT    NOT NULL PRIMARY KEY,
	seq    INTEGER NOT NULL,
	hash   BLOB -- NULL before the first entry
) STRICT;
