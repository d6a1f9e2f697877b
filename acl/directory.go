package acl

import (
	"context"
	"time"

	"caseroom/acl/audit"
)

// Region levels of the tree: the autonomous region, its leagues/cities, their
// banners/counties.
const (
	LevelProvince = 0
	LevelLeague   = 1
	LevelCounty   = 2
)

// A Region is one node of the administrative tree.
type Region struct {
	Code   RegionCode
	Parent RegionCode // "" for the root
	Name   string     // Chinese name, e.g. 新城区
	Pinyin string
	Level  int
	Kind   string // 区, 旗, 县, 市, 盟… as the source data gives it
}

// A Unit is one concrete office: an agency kind at a region. A non-territorial
// unit (railway, forest-area, development-zone organ) still sits at the region
// whose committee oversees it.
type Unit struct {
	ID             UnitID
	Kind           UnitKind
	Region         RegionCode
	Name           string
	NonTerritorial bool
	Disabled       bool
	CreatedAt      time.Time
}

// A User belongs to one unit and holds roles there. Users are never deleted, only
// disabled, so that the record keeps their names. Bots are users with Bot set;
// they have no password and log in with a scoped token.
type User struct {
	ID        UserID
	Username  string // login name, unique, lowercase
	Name      string // display name
	Unit      UnitID
	Roles     []Role
	Bot       bool
	Disabled  bool
	CreatedAt time.Time
}

// Credentials are what login checks: the argon2id hash and the failure counter.
type Credentials struct {
	User         User
	PasswordHash string // PHC string; "" for bots
	FailedLogins int
	LockedUntil  time.Time // zero when not locked
}

// A RefreshToken is stored only as the SHA-256 of the opaque token the client holds.
// Tokens of one login form a family (Session); each is used once.
type RefreshToken struct {
	Hash      []byte
	Session   string
	User      UserID
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// UserFilter selects users; zero fields match everything.
type UserFilter struct {
	Unit UnitID
}

// UnitFilter selects units; zero fields match everything.
type UnitFilter struct {
	Region RegionCode // units at exactly this region
	Kind   UnitKind
}

// Store is what the directory and authentication need from storage. Every method
// that changes something takes the audit record of the change and appends it in
// the same transaction, so the change and its record commit together or not at all.
// Missing rows answer ErrNotFound; duplicates ErrExists.
type Store interface {
	// PutRegions inserts or updates regions (the import of the division list).
	PutRegions(ctx context.Context, rs []Region, rec audit.Record) error
	Regions(ctx context.Context) ([]Region, error)

	CreateUnit(ctx context.Context, u Unit, rec audit.Record) error
	// SetUnitDisabled disables or re-enables a unit.
	SetUnitDisabled(ctx context.Context, id UnitID, disabled bool, rec audit.Record) error
	Unit(ctx context.Context, id UnitID) (Unit, error)
	Units(ctx context.Context, f UnitFilter) ([]Unit, error)

	// CreateUser stores u with its password hash ("" for a bot); the username must be new.
	CreateUser(ctx context.Context, u User, passwordHash string, rec audit.Record) error
	User(ctx context.Context, id UserID) (User, error)
	Users(ctx context.Context, f UserFilter) ([]User, error)
	// SetUserDisabled disables or re-enables a user; disabling revokes every session
	// of theirs in the same transaction.
	SetUserDisabled(ctx context.Context, id UserID, disabled bool, at time.Time, rec audit.Record) error
	// SetPassword replaces the hash, clears a lockout and revokes every session.
	SetPassword(ctx context.Context, id UserID, hash string, at time.Time, rec audit.Record) error
	// SetRoles replaces a user's roles and, since roles travel in access tokens,
	// revokes every session of theirs in the same transaction.
	SetRoles(ctx context.Context, id UserID, roles []Role, at time.Time, rec audit.Record) error

	// Credentials returns what login checks, by username.
	Credentials(ctx context.Context, username string) (Credentials, error)
	// LoginFailed counts one failed login and, when the count reaches max, locks the
	// account until lockUntil and resets the count. It reports whether it locked.
	LoginFailed(ctx context.Context, id UserID, max int, lockUntil time.Time, rec audit.Record) (locked bool, err error)
	// LoginSucceeded resets the failure count and starts a session with its first token.
	LoginSucceeded(ctx context.Context, first RefreshToken, rec audit.Record) error
	// Unlock clears a lockout and the failure count.
	Unlock(ctx context.Context, id UserID, rec audit.Record) error

	// Rotate spends the token whose hash is old and stores next in its family, as of
	// now. A token already spent revokes its whole family and answers ErrTokenReused;
	// an expired or revoked one answers ErrTokenInvalid; unknown answers ErrNotFound.
	// next.Session and next.User are set from the spent token.
	Rotate(ctx context.Context, old []byte, next *RefreshToken, now time.Time, rec audit.Record) error
	// RevokeSession ends one session (logout).
	RevokeSession(ctx context.Context, session string, at time.Time, rec audit.Record) error
	// SessionActive reports whether a session exists and is not revoked.
	SessionActive(ctx context.Context, session string) (bool, error)

	// SigningKey returns the stored key named name, storing generate() first when
	// there is none; nodes racing at first start all end up with the one stored.
	SigningKey(ctx context.Context, name string, generate func() ([]byte, error)) ([]byte, error)

	// Audit appends a record on its own (denials, reads that change nothing).
	Audit(ctx context.Context, rec audit.Record) error
	// AuditEntries returns up to limit entries of stream after seq, in order.
	AuditEntries(ctx context.Context, stream string, after int64, limit int) ([]audit.Entry, error)
}
