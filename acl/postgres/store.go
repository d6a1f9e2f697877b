// Package postgres is the acl.Store on PostgreSQL: the directory (regions,
// units, users), credentials, sessions and their refresh tokens, signing keys,
// and the acl audit streams.
//
// Several nodes write at once, so every change runs in one transaction that
// takes the row locks it depends on: a refresh token it spends and its session,
// and last the head of the audit stream it appends to, so that concurrent
// appends to one stream queue on that row and other streams never wait. Times
// are stored as Unix microseconds and read back in UTC; the zero time.Time is
// stored as NULL and reads back as zero.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/acl/pgdb"
)

// Store is the acl.Store on PostgreSQL. Its methods are safe for concurrent use,
// also from several nodes.
type Store struct {
	pool *pgxpool.Pool
}

var _ acl.Store = (*Store)(nil)

// New returns a store on pool; call Migrate before first use.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations holds the store's numbered SQL files at its root, as pgdb.Migrate
// reads them.
var Migrations = mustSub(migrationFiles, "migrations")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // dir is a constant: this cannot fail at run time
	}
	return sub
}

// Migrate applies the migrations of domain "acl" that are not applied yet.
func (s *Store) Migrate(ctx context.Context) error {
	return pgdb.Migrate(ctx, s.pool, "acl", Migrations)
}

// begin starts a transaction (READ COMMITTED: each statement sees what committed
// before it, and rows locked FOR UPDATE are read in their newest version).
func (s *Store) begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return tx, nil
}

// SQLSTATE codes that dbError maps.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// dbError turns the driver's errors into the domain's: no row and a reference
// to a missing row (a foreign key) are acl.ErrNotFound, a duplicate key is
// acl.ErrExists. Other errors, domain errors included, pass unchanged.
func dbError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return acl.ErrNotFound
	}
	if e, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch e.Code {
		case uniqueViolation:
			return acl.ErrExists
		case foreignKeyViolation:
			return acl.ErrNotFound
		}
	}
	return err
}

// oneRow returns acl.ErrNotFound when an UPDATE found no row.
func oneRow(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return acl.ErrNotFound
	}
	return nil
}

// micros is how a time is stored: Unix microseconds, NULL for the zero time.
func micros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromMicros reads back what micros stored.
func fromMicros(m sql.NullInt64) time.Time {
	if !m.Valid {
		return time.Time{}
	}
	return time.UnixMicro(m.Int64).UTC()
}

// encodeRoles stores roles as a JSON array.
func encodeRoles(roles []acl.Role) string {
	if roles == nil {
		roles = []acl.Role{}
	}
	b, _ := json.Marshal(roles) // a slice of strings always marshals
	return string(b)
}

// decodeRoles reads back what encodeRoles stored; no roles reads as nil.
func decodeRoles(s string) ([]acl.Role, error) {
	var roles []acl.Role
	if err := json.Unmarshal([]byte(s), &roles); err != nil {
		return nil, fmt.Errorf("decode roles %q: %w", s, err)
	}
	if len(roles) == 0 {
		return nil, nil
	}
	return roles, nil
}

// withDetail returns rec with fields added to its Detail object, for a record
// the caller wrote before knowing the outcome the store found. A Detail that is
// not a JSON object is kept under "detail".
func withDetail(rec audit.Record, fields map[string]any) audit.Record {
	obj := map[string]json.RawMessage{}
	if rec.Detail != "" {
		if err := json.Unmarshal([]byte(rec.Detail), &obj); err != nil || obj == nil {
			old, _ := json.Marshal(rec.Detail)
			obj = map[string]json.RawMessage{"detail": old}
		}
	}
	for k, v := range fields {
		b, _ := json.Marshal(v) // callers pass strings and bools
		obj[k] = b
	}
	b, _ := json.Marshal(obj) // map keys marshal sorted: the bytes are stable
	rec.Detail = string(b)
	return rec
}
