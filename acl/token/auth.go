package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"caseroom/acl"
	"caseroom/acl/audit"
)

// Defaults of AuthConfig.
const (
	DefaultRefreshTTL  = 7 * 24 * time.Hour
	DefaultMaxFailures = 5
	DefaultLockFor     = 15 * time.Minute
)

// Audit actions of the auth stream (audit.StreamAuth).
const (
	ActionLogin    = "auth.login"    // a password login, whatever its outcome
	ActionLockout  = "auth.lockout"  // an account locked after MaxFailures failures
	ActionRefresh  = "auth.refresh"  // a refresh-token rotation, whatever its outcome
	ActionLogout   = "auth.logout"   // a session ended by its holder
	ActionRevoke   = "auth.revoke"   // a session ended because its user or unit is disabled
	ActionPassword = "auth.password" // a user changing their own password
)

// Bounds on login input, checked before the store is asked, so they reveal nothing.
const (
	maxUsernameLen = 128  // bytes
	maxPasswordLen = 4096 // bytes; the policy's 256 characters are at most 1024
	maxDetailLen   = 128  // characters of a username or user agent kept in audit details
)

// refreshLen is the number of random bytes in a refresh token.
const refreshLen = 32

// AuthConfig configures Auth. Zero fields take their defaults.
type AuthConfig struct {
	AccessTTL   time.Duration // lifetime of access tokens; default 10m
	RefreshTTL  time.Duration // lifetime of each refresh token, renewed by every rotation; default 7 days
	MaxFailures int           // consecutive wrong passwords that lock an account; default 5
	LockFor     time.Duration // how long a lockout lasts; default 15m
	// PasswordParams are the argon2id parameters of new hashes (NewPasswordHash,
	// ChangePassword) and of the dummy hash that unknown usernames are checked
	// against; zero fields default (see PasswordParams).
	PasswordParams PasswordParams
	Policy         PasswordPolicy // what new passwords must satisfy; the zero value is the default policy
	// SessionCacheTTL is how long a node trusts its answer to "is this session
	// active?"; default and maximum MaxSessionCacheTTL (2s). Negative disables the
	// cache, so that every request reads the store.
	SessionCacheTTL time.Duration
}

func (c AuthConfig) withDefaults() AuthConfig {
	if c.AccessTTL <= 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = DefaultRefreshTTL
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if c.LockFor <= 0 {
		c.LockFor = DefaultLockFor
	}
	c.PasswordParams = c.PasswordParams.withDefaults()
	switch {
	case c.SessionCacheTTL == 0, c.SessionCacheTTL > MaxSessionCacheTTL:
		c.SessionCacheTTL = MaxSessionCacheTTL
	case c.SessionCacheTTL < 0:
		c.SessionCacheTTL = 0
	}
	return c
}

// ClientMeta describes where a login comes from, for the audit record.
type ClientMeta struct {
	IP        string
	UserAgent string
}

// Tokens are what a login or a refresh hands the client. Refresh is the opaque
// refresh token, shown to the client once and stored only as its SHA-256.
type Tokens struct {
	Access         string
	AccessExpires  time.Time
	Refresh        string
	RefreshExpires time.Time
	Subject        acl.Subject
}

// A LockedError refuses a login to an account locked until Until. It wraps
// acl.ErrLocked.
type LockedError struct {
	Until time.Time
}

func (e *LockedError) Error() string {
	return "acl: account locked until " + e.Until.UTC().Format(time.RFC3339)
}

func (e *LockedError) Unwrap() error { return acl.ErrLocked }

// LockedUntil returns Until in RFC 3339, for the error envelope of acl/httpjson.
func (e *LockedError) LockedUntil() string { return e.Until.UTC().Format(time.RFC3339) }

// Auth is the login flow: it checks passwords, counts failures and locks
// accounts, starts sessions with rotating refresh tokens, issues access tokens,
// and checks access tokens against revoked sessions. Every outcome of Login,
// Refresh, Logout and ChangePassword is recorded in the audit stream
// audit.StreamAuth; no record holds a password or a token. Auth is safe for
// concurrent use.
type Auth struct {
	store  acl.Store
	issuer *Issuer
	cfg    AuthConfig
	now    func() time.Time
	cache  *sessionCache

	dummyOnce sync.Once
	dummy     string // a hash of a random password, for unknown usernames
}

// NewAuth returns an Auth over store that signs with issuer, configured by cfg
// (zero fields default) and reading the time from now.
func NewAuth(store acl.Store, issuer *Issuer, cfg AuthConfig, now func() time.Time) *Auth {
	cfg = cfg.withDefaults()
	return &Auth{store: store, issuer: issuer, cfg: cfg, now: now, cache: newSessionCache(cfg.SessionCacheTTL)}
}

// dummyHash returns a hash with the configured parameters that no password
// matches, made once.
func (a *Auth) dummyHash() string {
	a.dummyOnce.Do(func() {
		h, err := HashPassword(rand.Text(), a.cfg.PasswordParams)
		if err != nil {
			h, _ = HashPassword(rand.Text(), PasswordParams{})
		}
		a.dummy = h
	})
	return a.dummy
}

// spendVerification does the work of one password check that can only fail, so
// that a login for a username without a password takes as long as a wrong one.
func (a *Auth) spendVerification(password string) {
	VerifyPassword(a.dummyHash(), password)
}

// Login checks username and password and, when they are right, starts a session.
//
// It answers acl.ErrBadCredentials for an unknown username, a bot, or a wrong
// password, all alike and taking as long (an argon2id check is always spent);
// a *LockedError (wrapping acl.ErrLocked) for an account locked now, without
// checking the password or counting a failure, and for the wrong password that
// locks it (the MaxFailures-th in a row; the lock lasts LockFor); and
// acl.ErrDisabled for a disabled user, or a user of a disabled unit, who gave
// the right password (a wrong one answers acl.ErrBadCredentials, so that a
// disabled account is not revealed to someone without its password). A stored
// hash it cannot read is an internal error wrapping ErrMalformedHash. Each
// outcome leaves an audit record in audit.StreamAuth with action ActionLogin
// naming the username as given, and a lockout one more with ActionLockout.
func (a *Auth) Login(ctx context.Context, username, password string, meta ClientMeta) (Tokens, error) {
	now := a.now()
	username = strings.ToLower(strings.TrimSpace(username))
	d := detail{Username: clip(username), IP: meta.IP, UserAgent: clip(meta.UserAgent)}
	fail := func(user acl.UserID, reason string, err error) (Tokens, error) {
		d.Reason = reason
		return Tokens{}, a.recordFailure(ctx, now, ActionLogin, "", user, d, err)
	}
	if username == "" || len(username) > maxUsernameLen || len(password) > maxPasswordLen {
		return fail("", "malformed credentials", acl.ErrBadCredentials)
	}
	creds, err := a.store.Credentials(ctx, username)
	if errors.Is(err, acl.ErrNotFound) {
		a.spendVerification(password)
		return fail("", "unknown username", acl.ErrBadCredentials)
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("token: login: %w", err)
	}
	u := creds.User
	if u.Bot || creds.PasswordHash == "" {
		a.spendVerification(password)
		return fail(u.ID, "no password login for this account", acl.ErrBadCredentials)
	}
	if creds.LockedUntil.After(now) {
		d.LockedUntil = creds.LockedUntil.UTC().Format(time.RFC3339)
		return fail(u.ID, "locked", &LockedError{Until: creds.LockedUntil})
	}
	ok, err := VerifyPassword(creds.PasswordHash, password)
	if err != nil {
		return fail(u.ID, "stored password hash unreadable", fmt.Errorf("token: login of %s: %w", u.ID, err))
	}
	if !ok {
		if u.Disabled {
			return fail(u.ID, "wrong password, account disabled", acl.ErrBadCredentials)
		}
		return a.wrongPassword(ctx, now, ActionLogin, "", u.ID, creds.FailedLogins, d)
	}
	if u.Disabled {
		return fail(u.ID, "account disabled", acl.ErrDisabled)
	}
	unit, err := a.store.Unit(ctx, u.Unit)
	if err != nil {
		return Tokens{}, fmt.Errorf("token: login of %s: unit %s: %w", u.ID, u.Unit, err)
	}
	if unit.Disabled {
		return fail(u.ID, "unit disabled", acl.ErrDisabled)
	}
	d.Reason = "password"
	return a.startSession(ctx, now, u, unit, d)
}

// wrongPassword counts a wrong password given for user by actor (empty at
// login), locking the account at MaxFailures, and answers
// acl.ErrBadCredentials or a *LockedError. failures is the count before this one.
func (a *Auth) wrongPassword(ctx context.Context, now time.Time, action string, actor, user acl.UserID, failures int, d detail) (Tokens, error) {
	until := now.Add(a.cfg.LockFor)
	d.Reason = "wrong password"
	d.Failures = failures + 1
	rec := a.record(now, action, actor, user, audit.Failed, d)
	locked, err := a.store.LoginFailed(ctx, user, a.cfg.MaxFailures, until, rec)
	if err != nil {
		return Tokens{}, fmt.Errorf("token: count failed login of %s: %w", user, err)
	}
	if !locked {
		return Tokens{}, acl.ErrBadCredentials
	}
	ld := detail{Reason: fmt.Sprintf("%d wrong passwords in a row", a.cfg.MaxFailures), LockedUntil: until.UTC().Format(time.RFC3339)}
	if err := a.store.Audit(ctx, a.record(now, ActionLockout, "", user, audit.OK, ld)); err != nil {
		return Tokens{}, fmt.Errorf("token: record lockout of %s: %w", user, err)
	}
	return Tokens{}, &LockedError{Until: until}
}

// startSession starts a new session of u with its first refresh token, records
// it with d, and returns its tokens.
func (a *Auth) startSession(ctx context.Context, now time.Time, u acl.User, unit acl.Unit, d detail) (Tokens, error) {
	sid := newSessionID()
	s := subjectOf(u, unit, sid)
	access, accessExp, err := a.issuer.issue(s, now, a.cfg.AccessTTL)
	if err != nil {
		return Tokens{}, err
	}
	refresh, hash := newRefreshToken()
	first := acl.RefreshToken{Hash: hash, Session: sid, User: u.ID, IssuedAt: now, ExpiresAt: now.Add(a.cfg.RefreshTTL)}
	d.Session = sid
	if err := a.store.LoginSucceeded(ctx, first, a.record(now, ActionLogin, u.ID, u.ID, audit.OK, d)); err != nil {
		return Tokens{}, fmt.Errorf("token: start session of %s: %w", u.ID, err)
	}
	return Tokens{Access: access, AccessExpires: accessExp, Refresh: refresh, RefreshExpires: first.ExpiresAt, Subject: s}, nil
}

// Refresh spends refreshToken and returns a new access token and the next
// refresh token of the same session, with the subject as the directory has it
// now (roles, unit).
//
// A token already spent answers acl.ErrTokenReused: someone holds a copy, so
// the store revokes the whole session, the newest token and its access tokens
// included. An unknown, expired or revoked token answers acl.ErrTokenInvalid;
// so does a malformed one. If the user or their unit has been disabled since,
// the session is revoked (recorded with ActionRevoke) and the answer is
// acl.ErrDisabled. Every outcome is recorded with action ActionRefresh; the
// record of a successful rotation names no user, since the store appends it
// before anyone knows whose token it was (see acl.Store.Rotate).
func (a *Auth) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	now := a.now()
	var d detail
	fail := func(user acl.UserID, reason string, err error) (Tokens, error) {
		d.Reason = reason
		return Tokens{}, a.recordFailure(ctx, now, ActionRefresh, "", user, d, err)
	}
	old, ok := hashRefreshToken(refreshToken)
	if !ok {
		return fail("", "malformed refresh token", acl.ErrTokenInvalid)
	}
	tok, hash := newRefreshToken()
	next := acl.RefreshToken{Hash: hash, IssuedAt: now, ExpiresAt: now.Add(a.cfg.RefreshTTL)}
	// The store appends this record on success, and on reuse with its outcome
	// set to failed; the other refusals change nothing and are recorded here.
	d.Reason = "refresh token presented"
	err := a.store.Rotate(ctx, old, &next, now, a.record(now, ActionRefresh, "", "", audit.OK, d))
	switch {
	case errors.Is(err, acl.ErrTokenReused):
		a.revokedUnknown(next, now)
		return Tokens{}, fmt.Errorf("token: refresh: %w", acl.ErrTokenReused)
	case errors.Is(err, acl.ErrNotFound):
		return fail("", "unknown refresh token", fmt.Errorf("token: refresh: %w", acl.ErrTokenInvalid))
	case errors.Is(err, acl.ErrTokenInvalid):
		return fail("", "expired or revoked refresh token", fmt.Errorf("token: refresh: %w", acl.ErrTokenInvalid))
	case err != nil:
		return Tokens{}, fmt.Errorf("token: refresh: %w", err)
	}
	d.Session = next.Session
	u, err := a.store.User(ctx, next.User)
	if err != nil {
		return Tokens{}, fmt.Errorf("token: refresh: user %s: %w", next.User, err)
	}
	unit, err := a.store.Unit(ctx, u.Unit)
	if err != nil {
		return Tokens{}, fmt.Errorf("token: refresh: unit %s: %w", u.Unit, err)
	}
	if u.Disabled || u.Bot || unit.Disabled {
		// Disabling a user revokes their sessions, so this is a race with it or a
		// disabled unit; end the session either way.
		d.Reason = "account or unit disabled"
		if err := a.store.RevokeSession(ctx, next.Session, now, a.record(now, ActionRevoke, "", u.ID, audit.OK, d)); err != nil {
			return Tokens{}, fmt.Errorf("token: refresh: revoke session of disabled %s: %w", u.ID, err)
		}
		a.cache.revoke(next.Session, u.ID, now)
		return Tokens{}, acl.ErrDisabled
	}
	s := subjectOf(u, unit, next.Session)
	access, accessExp, err := a.issuer.issue(s, now, a.cfg.AccessTTL)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{Access: access, AccessExpires: accessExp, Refresh: tok, RefreshExpires: next.ExpiresAt, Subject: s}, nil
}

// Logout ends a session, given either its current refresh token or its session
// id. A refresh token proves possession by itself. A session id is accepted
// only from the subject in ctx that holds it (acl.SubjectFrom(ctx).Session, as
// the middleware sets it), and answers acl.ErrUnauthenticated otherwise. The
// session's access tokens are refused at once on this node, and on the others
// at once with a live revocation feed, within MaxSessionCacheTTL without one. Logging out a session that is already
// over, or with a refresh token that is unknown or expired, answers nil; a
// refresh token already spent answers acl.ErrTokenReused, the session being
// revoked all the same. Recorded with action ActionLogout.
func (a *Auth) Logout(ctx context.Context, refreshTokenOrSession string) error {
	now := a.now()
	if old, ok := hashRefreshToken(refreshTokenOrSession); ok {
		return a.logoutByToken(ctx, now, old)
	}
	sid := refreshTokenOrSession
	who, ok := acl.SubjectFrom(ctx)
	if !ok || sid == "" || who.Session != sid {
		return fmt.Errorf("token: logout of a session not held: %w", acl.ErrUnauthenticated)
	}
	return a.revoke(ctx, now, who.User, sid)
}

func (a *Auth) revoke(ctx context.Context, now time.Time, user acl.UserID, sid string) error {
	d := detail{Reason: "logout", Session: sid}
	err := a.store.RevokeSession(ctx, sid, now, a.record(now, ActionLogout, user, user, audit.OK, d))
	if err != nil && !errors.Is(err, acl.ErrNotFound) {
		return fmt.Errorf("token: logout: %w", err)
	}
	a.cache.revoke(sid, user, now)
	return nil
}

// revokedUnknown makes this node refuse at once the access tokens of the
// session the store revoked on a reused refresh token. The store names the
// session in next when it can; otherwise every cached answer is dropped.
func (a *Auth) revokedUnknown(next acl.RefreshToken, now time.Time) {
	if next.Session != "" {
		a.cache.revoke(next.Session, next.User, now)
		return
	}
	a.cache.forgetAll()
}

// logoutByToken finds the session of a refresh token by spending it (the store
// looks tokens up only to rotate them), then revokes the session.
func (a *Auth) logoutByToken(ctx context.Context, now time.Time, old []byte) error {
	_, hash := newRefreshToken() // a successor nobody holds, revoked with the session
	next := acl.RefreshToken{Hash: hash, IssuedAt: now, ExpiresAt: now}
	d := detail{Reason: "refresh token presented to log out"}
	err := a.store.Rotate(ctx, old, &next, now, a.record(now, ActionLogout, "", "", audit.OK, d))
	switch {
	case errors.Is(err, acl.ErrTokenReused):
		a.revokedUnknown(next, now) // the store revoked the session and recorded it
		return fmt.Errorf("token: logout: %w", acl.ErrTokenReused)
	case errors.Is(err, acl.ErrNotFound), errors.Is(err, acl.ErrTokenInvalid):
		d.Reason = "unknown, expired or revoked refresh token: nothing to end"
		return a.recordFailure(ctx, now, ActionLogout, "", "", d, nil)
	case err != nil:
		return fmt.Errorf("token: logout: %w", err)
	}
	return a.revoke(ctx, now, next.User, next.Session)
}

// ChangePassword lets the subject in ctx replace their password: old must be
// right (a wrong one counts towards the lockout like a failed login and answers
// acl.ErrBadCredentials or a *LockedError), and next must satisfy the policy
// (an *acl.InvalidError for field "password"). The store revokes every session
// of the user, this one included, and their access tokens are refused at once
// on this node; ChangePassword then starts a new session and returns its
// tokens. A request without a subject, or from a bot, answers
// acl.ErrUnauthenticated. Recorded with action ActionPassword.
func (a *Auth) ChangePassword(ctx context.Context, old, next string, meta ClientMeta) (Tokens, error) {
	now := a.now()
	who, ok := acl.SubjectFrom(ctx)
	if !ok || who.Bot {
		return Tokens{}, fmt.Errorf("token: change password: %w", acl.ErrUnauthenticated)
	}
	u, err := a.store.User(ctx, who.User)
	if err != nil {
		return Tokens{}, fmt.Errorf("token: change password of %s: %w", who.User, err)
	}
	d := detail{Username: u.Username, Session: who.Session, IP: meta.IP, UserAgent: clip(meta.UserAgent)}
	fail := func(reason string, err error) (Tokens, error) {
		d.Reason = reason
		return Tokens{}, a.recordFailure(ctx, now, ActionPassword, u.ID, u.ID, d, err)
	}
	creds, err := a.store.Credentials(ctx, u.Username)
	if err != nil {
		return Tokens{}, fmt.Errorf("token: change password of %s: %w", u.ID, err)
	}
	if u.Disabled || creds.PasswordHash == "" {
		return fail("account disabled or without password", acl.ErrDisabled)
	}
	if creds.LockedUntil.After(now) {
		return fail("locked", &LockedError{Until: creds.LockedUntil})
	}
	if len(old) > maxPasswordLen {
		return fail("malformed credentials", acl.ErrBadCredentials)
	}
	ok, err = VerifyPassword(creds.PasswordHash, old)
	if err != nil {
		return fail("stored password hash unreadable", fmt.Errorf("token: change password of %s: %w", u.ID, err))
	}
	if !ok {
		return a.wrongPassword(ctx, now, ActionPassword, u.ID, u.ID, creds.FailedLogins, d)
	}
	if next == old {
		return fail("new password equals the old", acl.Invalid("password", "must differ from the current password"))
	}
	hash, err := a.NewPasswordHash(next, u.Username, u.Name)
	if err != nil {
		var inv *acl.InvalidError
		if errors.As(err, &inv) {
			return fail("new password refused: "+inv.Reason, err)
		}
		return Tokens{}, err
	}
	d.Reason = "changed by the user"
	if err := a.store.SetPassword(ctx, u.ID, hash, now, a.record(now, ActionPassword, u.ID, u.ID, audit.OK, d)); err != nil {
		return Tokens{}, fmt.Errorf("token: change password of %s: %w", u.ID, err)
	}
	a.ForgetUser(u.ID)
	unit, err := a.store.Unit(ctx, u.Unit)
	if err != nil {
		return Tokens{}, fmt.Errorf("token: change password of %s: unit %s: %w", u.ID, u.Unit, err)
	}
	d.Reason = "new session after password change"
	return a.startSession(ctx, now, u, unit, d)
}

// NewPasswordHash checks password against the configured policy (personal are
// the username and display name, which it must not contain) and returns its
// hash with the configured parameters, for the store's CreateUser and
// SetPassword. A refused password answers an *acl.InvalidError for field
// "password".
func (a *Auth) NewPasswordHash(password string, personal ...string) (string, error) {
	if err := a.cfg.Policy.Check(password, personal...); err != nil {
		return "", err
	}
	return HashPassword(password, a.cfg.PasswordParams)
}

// ForgetUser makes this node re-read from the store, at the next request, whether
// each session of user (or the bot user) is still active. Whoever revokes a
// user's sessions in the store by other means than Auth — disabling the user
// (SetUserDisabled), resetting the password (SetPassword) — calls it after the
// store has committed, so that the user's access tokens are refused at once on
// this node; other nodes refuse them at once with a live revocation feed
// (FeedLive), within MaxSessionCacheTTL without one.
func (a *Auth) ForgetUser(user acl.UserID) { a.cache.forgetUser(user) }

// ForgetSession is ForgetUser for one session revoked in the store by other
// means than Auth.
func (a *Auth) ForgetSession(session string) { a.cache.forgetSession(session) }

// FeedLive says whether a revocation feed (acl/postgres ListenRevocations) is
// live: while it is, every revocation, on any node or straight in the store,
// arrives as ForgetSession or ForgetUser at once, and cached answers are
// trusted for FeedSessionCacheTTL instead of SessionCacheTTL.
func (a *Auth) FeedLive(live bool) { a.cache.feedLive(live) }

// subjectOf is the subject of a user of unit in session sid.
func subjectOf(u acl.User, unit acl.Unit, sid string) acl.Subject {
	return acl.Subject{
		User:     u.ID,
		Name:     u.Name,
		Unit:     unit.ID,
		UnitKind: unit.Kind,
		Region:   unit.Region,
		Roles:    append([]acl.Role(nil), u.Roles...),
		Bot:      u.Bot,
		Session:  sid,
	}
}

// newSessionID returns a random session id: 26 base32 characters, 130 bits. It
// is never the shape of a refresh token, which Logout relies on.
func newSessionID() string { return rand.Text() }

// newRefreshToken returns a new opaque refresh token (32 random bytes, base64url
// without padding: 43 characters) and the SHA-256 under which it is stored.
func newRefreshToken() (token string, hash []byte) {
	b := make([]byte, refreshLen)
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(token))
	return token, h[:]
}

// hashRefreshToken returns the stored form of token, and false if token is not
// shaped as newRefreshToken makes them.
func hashRefreshToken(token string) ([]byte, bool) {
	if len(token) != base64.RawURLEncoding.EncodedLen(refreshLen) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != refreshLen {
		return nil, false
	}
	h := sha256.Sum256([]byte(token))
	return h[:], true
}

// detail is the Detail of auth audit records. It never holds a password or a
// token; Username is what was typed, so it may name no account.
type detail struct {
	Username    string `json:"username,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Session     string `json:"session,omitempty"`
	Failures    int    `json:"failures,omitempty"`
	LockedUntil string `json:"locked_until,omitempty"`
	IP          string `json:"ip,omitempty"`
	UserAgent   string `json:"user_agent,omitempty"`
}

func (a *Auth) record(now time.Time, action string, actor, target acl.UserID, outcome string, d detail) audit.Record {
	b, _ := json.Marshal(d)
	return audit.Record{
		Stream:  audit.StreamAuth,
		At:      now,
		Actor:   string(actor),
		Action:  action,
		Target:  string(target),
		Outcome: outcome,
		Detail:  string(b),
	}
}

// recordFailure audits a refused attempt by actor (empty when anonymous) on
// target (empty when no account is known) and returns cause, or the audit's own error if recording failed: an
// attempt that cannot be recorded is not answered as if it had been.
func (a *Auth) recordFailure(ctx context.Context, now time.Time, action string, actor, target acl.UserID, d detail, cause error) error {
	if err := a.store.Audit(ctx, a.record(now, action, actor, target, audit.Failed, d)); err != nil {
		return fmt.Errorf("token: record %s failure (%v): %w", action, cause, err)
	}
	return cause
}

// clip shortens s to maxDetailLen characters and makes it valid UTF-8.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= maxDetailLen {
		return s
	}
	return string([]rune(s)[:maxDetailLen]) + "…"
}
