-- Every revocation, whoever made it (a node, the admin command in another
-- process, a refresh token's reuse), in the order made: the running server
-- polls this table (acl/sqlite PollRevocations) to end the sockets of a
-- revoked session or a disabled user, as PostgreSQL's caseroom_revoked
-- channel does there. kind is 's' for a session, 'u' for a user; at is Unix
-- seconds, for pruning.
CREATE TABLE acl_revocations (
	seq  INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	kind TEXT    NOT NULL,
	id   TEXT    NOT NULL,
	at   INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;

CREATE TRIGGER acl_sessions_revoked AFTER UPDATE OF revoked_at ON acl_sessions
	WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
	INSERT INTO acl_revocations (kind, id) VALUES ('s', NEW.id);
END;

CREATE TRIGGER acl_users_disabled AFTER UPDATE OF disabled ON acl_users
	WHEN OLD.disabled = 0 AND NEW.disabled <> 0
BEGIN
	INSERT INTO acl_revocations (kind, id) VALUES ('u', NEW.id);
END;
