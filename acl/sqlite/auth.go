package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
)

const (
	selectCredentials = `SELECT id, username, name, unit, roles, bot, disabled, created_at,
			password_hash, failed_logins, locked_until
		FROM acl_users WHERE username = ?`
	countFailure  = `UPDATE acl_users SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins`
	lockUser      = `UPDATE acl_users SET failed_logins = 0, locked_until = ? WHERE id = ?`
	unlockUser    = `UPDATE acl_users SET failed_logins = 0, locked_until = NULL WHERE id = ?`
	resetFailures = `UPDATE acl_users SET failed_logins = 0,
			locked_until = CASE WHEN locked_until <= ? THEN NULL ELSE locked_until END
		WHERE id = ?`

	insertSession        = `INSERT INTO acl_sessions (id, user_id, created_at) VALUES (?, ?, ?)`
	revokeSession        = `UPDATE acl_sessions SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`
	sessionActive        = `SELECT revoked_at IS NULL FROM acl_sessions WHERE id = ?`
	selectSessionRevoked = `SELECT revoked_at FROM acl_sessions WHERE id = ?`

	insertToken = `INSERT INTO acl_refresh_tokens (hash, session_id, user_id, issued_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`
	selectRefreshToken = `SELECT session_id, user_id, expires_at, used_at FROM acl_refresh_tokens WHERE hash = ?`
	spendToken         = `UPDATE acl_refresh_tokens SET used_at = ? WHERE hash = ?`

	selectKey = `SELECT secret FROM acl_keys WHERE name = ?`
	insertKey = `INSERT INTO acl_keys (name, secret) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`
)

// Credentials returns what login checks for username, in any case; an unknown
// username is acl.ErrNotFound.
func (s *Store) Credentials(ctx context.Context, username string) (acl.Credentials, error) {
	var c acl.Credentials
	var locked sql.NullInt64
	row := s.db.Read.QueryRowContext(ctx, selectCredentials, strings.ToLower(username))
	u, err := scanUser(row, &c.PasswordHash, &c.FailedLogins, &locked)
	if err != nil {
		return acl.Credentials{}, fmt.Errorf("acl/sqlite: credentials of %q: %w", username, dbError(err))
	}
	c.User, c.LockedUntil = u, fromMicros(locked)
	return c, nil
}

// LoginFailed counts one failed login of user id. When the count reaches max it
// locks the account until lockUntil, resets the count and reports locked; the
// audit record then also carries "locked_until" in its Detail. An unknown id is
// acl.ErrNotFound; max below 1 or a zero lockUntil is acl.ErrInvalid.
func (s *Store) LoginFailed(ctx context.Context, id acl.UserID, max int, lockUntil time.Time, rec audit.Record) (bool, error) {
	if max < 1 || lockUntil.IsZero() {
		return false, fmt.Errorf("acl/sqlite: login failed for %s: %w", id, acl.Invalid("lockout", "needs max ≥ 1 and a lock time"))
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return false, fmt.Errorf("acl/sqlite: login failed: %w", err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, countFailure, id).Scan(&n); err != nil {
		return false, fmt.Errorf("acl/sqlite: login failed for %s: %w", id, dbError(err))
	}
	locked := n >= max
	if locked {
		if _, err := tx.ExecContext(ctx, lockUser, micros(lockUntil), id); err != nil {
			return false, fmt.Errorf("acl/sqlite: lock %s: %w", id, err)
		}
		rec = withDetail(rec, map[string]any{"locked_until": lockUntil.UTC().Format(time.RFC3339)})
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return false, fmt.Errorf("acl/sqlite: login failed for %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("acl/sqlite: login failed for %s: commit: %w", id, err)
	}
	return locked, nil
}

// LoginSucceeded resets the failure count of first.User, clears a lock that
// expired by first.IssuedAt, and starts session first.Session with first as its
// first token. An unknown user is acl.ErrNotFound; an existing session or token
// acl.ErrExists.
func (s *Store) LoginSucceeded(ctx context.Context, first acl.RefreshToken, rec audit.Record) error {
	if first.Session == "" || len(first.Hash) == 0 {
		return fmt.Errorf("acl/sqlite: login: %w", acl.Invalid("token", "needs a session and a hash"))
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/sqlite: login: %w", err)
	}
	defer tx.Rollback()
	if err := oneRow(tx.ExecContext(ctx, resetFailures, micros(first.IssuedAt), first.User)); err != nil {
		return fmt.Errorf("acl/sqlite: login of %s: %w", first.User, dbError(err))
	}
	if _, err := tx.ExecContext(ctx, insertSession, first.Session, first.User, micros(first.IssuedAt)); err != nil {
		return fmt.Errorf("acl/sqlite: login of %s: session %s: %w", first.User, first.Session, dbError(err))
	}
	if err := insertRefreshToken(ctx, tx, first); err != nil {
		return fmt.Errorf("acl/sqlite: login of %s: %w", first.User, err)
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/sqlite: login of %s: %w", first.User, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/sqlite: login of %s: commit: %w", first.User, err)
	}
	return nil
}

func insertRefreshToken(ctx context.Context, tx *sql.Tx, t acl.RefreshToken) error {
	_, err := tx.ExecContext(ctx, insertToken, t.Hash, t.Session, t.User, micros(t.IssuedAt), micros(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("refresh token of session %s: %w", t.Session, dbError(err))
	}
	return nil
}

// Unlock clears the lockout and failure count of user id; an unknown id is
// acl.ErrNotFound.
func (s *Store) Unlock(ctx context.Context, id acl.UserID, rec audit.Record) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/sqlite: unlock: %w", err)
	}
	defer tx.Rollback()
	if err := oneRow(tx.ExecContext(ctx, unlockUser, id)); err != nil {
		return fmt.Errorf("acl/sqlite: unlock %s: %w", id, dbError(err))
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/sqlite: unlock %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/sqlite: unlock %s: commit: %w", id, err)
	}
	return nil
}

// A spent token is the stored state of the token Rotate was given.
type spent struct {
	session string
	user    acl.UserID
	expires time.Time
	used    time.Time
	revoked time.Time // of its session
}

// Rotate spends the token whose hash is old and stores next in its family, as
// of now, setting next.Session and next.User from the spent token.
//
// An unknown token is acl.ErrNotFound, and one expired by now (now ≥ ExpiresAt)
// or of a revoked session acl.ErrTokenInvalid; these change nothing and append
// nothing, so the caller audits the refusal. A token already spent revokes its
// whole session and answers acl.ErrTokenReused; that revocation commits with rec,
// its Outcome set to audit.Failed and its Detail extended with "token_reused" and
// "session". A zero now is acl.ErrInvalid.
func (s *Store) Rotate(ctx context.Context, old []byte, next *acl.RefreshToken, now time.Time, rec audit.Record) error {
	if now.IsZero() || len(next.Hash) == 0 {
		return fmt.Errorf("acl/sqlite: rotate: %w", acl.Invalid("token", "needs a time and a hash"))
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/sqlite: rotate: %w", err)
	}
	defer tx.Rollback()
	tok, err := readToken(ctx, tx, old)
	if err != nil {
		return fmt.Errorf("acl/sqlite: rotate: %w", dbError(err))
	}
	switch {
	case !tok.revoked.IsZero():
		return fmt.Errorf("acl/sqlite: rotate: session %s revoked: %w", tok.session, acl.ErrTokenInvalid)
	case !now.Before(tok.expires):
		return fmt.Errorf("acl/sqlite: rotate: token of session %s expired: %w", tok.session, acl.ErrTokenInvalid)
	case !tok.used.IsZero():
		if err := oneRow(tx.ExecContext(ctx, revokeSession, micros(now), tok.session)); err != nil {
			return fmt.Errorf("acl/sqlite: rotate: revoke session %s: %w", tok.session, dbError(err))
		}
		rec.Outcome = audit.Failed
		rec = withDetail(rec, map[string]any{"token_reused": true, "session": tok.session})
		if err := appendAudit(ctx, tx, rec); err != nil {
			return fmt.Errorf("acl/sqlite: rotate: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("acl/sqlite: rotate: commit revocation: %w", err)
		}
		return fmt.Errorf("acl/sqlite: rotate: session %s revoked: %w", tok.session, acl.ErrTokenReused)
	}
	if _, err := tx.ExecContext(ctx, spendToken, micros(now), old); err != nil {
		return fmt.Errorf("acl/sqlite: rotate: spend token: %w", err)
	}
	n := *next
	n.Session, n.User = tok.session, tok.user
	if err := insertRefreshToken(ctx, tx, n); err != nil {
		return fmt.Errorf("acl/sqlite: rotate: %w", err)
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/sqlite: rotate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/sqlite: rotate: commit: %w", err)
	}
	*next = n
	return nil
}

// readToken reads the token whose hash is hash and whether its session is
// revoked. It takes no row locks: tx holds SQLite's one write lock, so neither
// can change before tx ends.
func readToken(ctx context.Context, tx *sql.Tx, hash []byte) (spent, error) {
	var t spent
	var expires, used, revoked sql.NullInt64
	if err := tx.QueryRowContext(ctx, selectRefreshToken, hash).Scan(&t.session, &t.user, &expires, &used); err != nil {
		return spent{}, fmt.Errorf("token: %w", err)
	}
	if err := tx.QueryRowContext(ctx, selectSessionRevoked, t.session).Scan(&revoked); err != nil {
		return spent{}, fmt.Errorf("session %s: %w", t.session, err)
	}
	t.expires, t.used, t.revoked = fromMicros(expires), fromMicros(used), fromMicros(revoked)
	return t, nil
}

// RevokeSession ends session as of at; a session revoked before keeps its
// first revocation time. An unknown session is acl.ErrNotFound; a zero at is
// acl.ErrInvalid.
func (s *Store) RevokeSession(ctx context.Context, session string, at time.Time, rec audit.Record) error {
	if at.IsZero() {
		return fmt.Errorf("acl/sqlite: revoke session %s: %w", session, acl.Invalid("at", "a revocation needs its time"))
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/sqlite: revoke session: %w", err)
	}
	defer tx.Rollback()
	if err := oneRow(tx.ExecContext(ctx, revokeSession, micros(at), session)); err != nil {
		return fmt.Errorf("acl/sqlite: revoke session %s: %w", session, dbError(err))
	}
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/sqlite: revoke session %s: %w", session, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acl/sqlite: revoke session %s: commit: %w", session, err)
	}
	return nil
}

// SessionActive reports whether session exists and is not revoked; an unknown
// session is not active, and not an error.
func (s *Store) SessionActive(ctx context.Context, session string) (bool, error) {
	var active bool
	st, err := s.db.Prepared(ctx, s.db.Read, sessionActive) // asked on every request: kept prepared
	if err != nil {
		return false, fmt.Errorf("acl/sqlite: session %s: %w", session, err)
	}
	err = st.QueryRowContext(ctx, session).Scan(&active)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("acl/sqlite: session %s: %w", session, err)
	}
	return active, nil
}

// SigningKey returns the key stored under name, first storing generate() when
// there is none. When writers race, the first stored wins and all return it.
// Storing a key appends no audit record (the method takes none).
func (s *Store) SigningKey(ctx context.Context, name string, generate func() ([]byte, error)) ([]byte, error) {
	var key []byte
	err := s.db.Read.QueryRowContext(ctx, selectKey, name).Scan(&key)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("acl/sqlite: signing key %q: %w", name, err)
	}
	fresh, err := generate()
	if err != nil {
		return nil, fmt.Errorf("acl/sqlite: signing key %q: generate: %w", name, err)
	}
	if len(fresh) == 0 {
		return nil, fmt.Errorf("acl/sqlite: signing key %q: %w", name, acl.Invalid("key", "generated key is empty"))
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("acl/sqlite: signing key %q: %w", name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, insertKey, name, fresh); err != nil {
		return nil, fmt.Errorf("acl/sqlite: signing key %q: store: %w", name, err)
	}
	if err := tx.QueryRowContext(ctx, selectKey, name).Scan(&key); err != nil {
		return nil, fmt.Errorf("acl/sqlite: signing key %q: read back: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("acl/sqlite: signing key %q: commit: %w", name, err)
	}
	return key, nil
}
