package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"caseroom/acl"
	"caseroom/acl/audit"
)

const (
	// ensureHead creates a stream's head row at seq 0 the first time it is used;
	// a concurrent first append waits for this insert and then does nothing.
	ensureHead = `INSERT INTO acl_audit_heads (stream, seq, hash) VALUES ($1, 0, NULL)
		ON CONFLICT (stream) DO NOTHING`
	lockHead    = `SELECT seq, hash FROM acl_audit_heads WHERE stream = $1 FOR UPDATE`
	insertEntry = `INSERT INTO acl_audit (stream, seq, at, actor, action, target, outcome, detail, prev, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	advanceHead   = `UPDATE acl_audit_heads SET seq = $1, hash = $2 WHERE stream = $3`
	selectEntries = `SELECT stream, seq, at, actor, action, target, outcome, detail, prev, hash
		FROM acl_audit WHERE stream = $1 AND seq > $2 ORDER BY seq LIMIT $3`
)

// appendAudit places rec after the head of its stream, inside tx. It locks the
// head row until tx ends, so concurrent appends to one stream take turns and
// never share a seq; callers append last, after their other changes, so that
// the head is held as briefly as possible.
func appendAudit(ctx context.Context, tx pgx.Tx, rec audit.Record) error {
	if rec.Stream == "" {
		return acl.Invalid("stream", "an audit record needs a stream")
	}
	rec.At = rec.At.Truncate(time.Microsecond) // what is stored is what is hashed
	if _, err := tx.Exec(ctx, ensureHead, rec.Stream); err != nil {
		return fmt.Errorf("audit stream %q: create head: %w", rec.Stream, err)
	}
	var seq int64
	var prev []byte
	if err := tx.QueryRow(ctx, lockHead, rec.Stream).Scan(&seq, &prev); err != nil {
		return fmt.Errorf("audit stream %q: lock head: %w", rec.Stream, err)
	}
	seq++
	hash := audit.Next(prev, rec.Canonical(seq))
	_, err := tx.Exec(ctx, insertEntry, rec.Stream, seq, micros(rec.At),
		rec.Actor, rec.Action, rec.Target, rec.Outcome, rec.Detail, prev, hash)
	if err != nil {
		return fmt.Errorf("audit stream %q: insert seq %d: %w", rec.Stream, seq, err)
	}
	if _, err := tx.Exec(ctx, advanceHead, seq, hash, rec.Stream); err != nil {
		return fmt.Errorf("audit stream %q: advance head: %w", rec.Stream, err)
	}
	return nil
}

// Audit appends rec to its stream on its own.
func (s *Store) Audit(ctx context.Context, rec audit.Record) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("acl/postgres: audit: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := appendAudit(ctx, tx, rec); err != nil {
		return fmt.Errorf("acl/postgres: audit: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("acl/postgres: audit: commit: %w", err)
	}
	return nil
}

// AuditEntries returns up to limit entries of stream after seq after, in order;
// none (and no error) past the end or for a stream never written. A limit below
// 1 is acl.ErrInvalid.
func (s *Store) AuditEntries(ctx context.Context, stream string, after int64, limit int) ([]audit.Entry, error) {
	if limit < 1 {
		return nil, fmt.Errorf("acl/postgres: audit entries: %w", acl.Invalid("limit", "must be at least 1"))
	}
	rows, err := s.pool.Query(ctx, selectEntries, stream, after, limit)
	if err != nil {
		return nil, fmt.Errorf("acl/postgres: audit entries of %q: %w", stream, err)
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var at sql.NullInt64
		err := rows.Scan(&e.Stream, &e.Seq, &at, &e.Actor, &e.Action, &e.Target,
			&e.Outcome, &e.Detail, &e.Prev, &e.Hash)
		if err != nil {
			return nil, fmt.Errorf("acl/postgres: audit entries of %q: %w", stream, err)
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("acl/postgres: audit entries of %q: %w", stream, err)
	}
	return out, nil
}
