-- Every node keeps a short-lived cache of "is this session still active?".
-- These triggers announce each revocation (a session revoked, a user disabled,
-- whoever did it: any node, the admin command, a refresh token's reuse) on the
-- channel caseroom_revoked at commit, so that nodes listening (acl/postgres
-- ListenRevocations) forget the cached answer at once. The payload is the
-- trigger's argument ("s:" for a session, "u:" for a user) and the row's id.
CREATE FUNCTION acl_notify_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('caseroom_revoked', TG_ARGV[0] || NEW.id);
	RETURN NULL;
END $$;

CREATE TRIGGER acl_sessions_revoked AFTER UPDATE OF revoked_at ON acl_sessions
	FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
	EXECUTE FUNCTION acl_notify_revoked('s:');

CREATE TRIGGER acl_users_disabled AFTER UPDATE OF disabled ON acl_users
	FOR EACH ROW WHEN (NOT OLD.disabled AND NEW.disabled)
	EXECUTE FUNCTION acl_notify_revoked('u:');
