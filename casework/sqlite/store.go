// Package sqlite is the casework.Store on caseroom's embedded SQLite database:
// case projections with their list indexes, case-number serials and the
// hash-chained intervention register.
//
// Every change runs in one transaction on the database's single writer
// connection; reads use the reader pool. Times are stored as Unix
// microseconds.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/acl/sqlitedb"
	"caseroom/casework"
)

const (
	selectHead = `SELECT head FROM casework_cases WHERE id = ?`
	upsertCase = `INSERT INTO casework_cases (id, room, procedure, stage, holder, pending_to, region, committee, closed, next_due, head, updated_at, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET room = excluded.room, procedure = excluded.procedure, stage = excluded.stage,
			holder = excluded.holder, pending_to = excluded.pending_to, region = excluded.region, committee = excluded.committee,
			closed = excluded.closed, next_due = excluded.next_due, head = excluded.head, updated_at = excluded.updated_at,
			data = excluded.data`
	deleteUnits    = `DELETE FROM casework_case_units WHERE case_id = ?`
	insertUnit     = `INSERT INTO casework_case_units (case_id, unit) VALUES (?, ?) ON CONFLICT DO NOTHING`
	deleteHandlers = `DELETE FROM casework_case_handlers WHERE case_id = ?`
	insertHandler  = `INSERT INTO casework_case_handlers (case_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING`
	deleteNumbers  = `DELETE FROM casework_case_numbers WHERE case_id = ?`
	insertNumber   = `INSERT INTO casework_case_numbers (number, case_id) VALUES (?, ?) ON CONFLICT DO NOTHING`
	selectCase     = `SELECT data FROM casework_cases WHERE id = ?`
	nextSerial     = `INSERT INTO casework_serials (unit, year, code, last) VALUES (?, ?, ?, 1)
		ON CONFLICT (unit, year, code) DO UPDATE SET last = last + 1 RETURNING last`
	selectChainHead = `SELECT seq, hash FROM casework_interventions ORDER BY seq DESC LIMIT 1`
	selectSource    = `SELECT 1 FROM casework_interventions WHERE case_id = ? AND source_seq = ?`
	insertEntry     = `INSERT INTO casework_interventions (seq, case_id, source_seq, data, prev, hash) VALUES (?, ?, ?, ?, ?, ?)`
	selectEntries   = `SELECT seq, data, prev, hash FROM casework_interventions WHERE case_id = ? ORDER BY seq`
	selectChain     = `SELECT seq, data, prev, hash FROM casework_interventions WHERE seq > ? ORDER BY seq LIMIT ?`
)

// Store is the casework.Store on SQLite. Its methods are safe for concurrent use.
type Store struct {
	db *sqlitedb.DB
}

var _ casework.Store = (*Store)(nil)

// New returns a store on db; call Migrate before first use.
func New(db *sqlitedb.DB) *Store { return &Store{db: db} }

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations holds the store's numbered SQL files at its root.
var Migrations = mustSub(migrationFiles, "migrations")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // dir is a constant: this cannot fail at run time
	}
	return sub
}

// Migrate applies the migrations of domain "casework" that are not applied yet.
func (s *Store) Migrate(ctx context.Context) error {
	return s.db.Migrate(ctx, "casework", Migrations)
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.Read.PingContext(ctx); err != nil {
		return fmt.Errorf("casework/sqlite: ping: %w", err)
	}
	return nil
}

func micros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// PutCase stores p unless the stored projection is of a later head.
func (s *Store) PutCase(ctx context.Context, p casework.Projection) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("casework/sqlite: put case %s: %w", p.ID, err)
	}
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("casework/sqlite: put case %s: %w", p.ID, err)
	}
	defer tx.Rollback()
	var head int64
	switch err := tx.QueryRowContext(ctx, selectHead, string(p.ID)).Scan(&head); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("casework/sqlite: put case %s: %w", p.ID, err)
	case head > int64(p.Head):
		return nil // a newer state is stored already
	}
	_, err = tx.ExecContext(ctx, upsertCase, string(p.ID), string(p.Room), p.Procedure, p.Stage, string(p.Holder),
		nullString(string(p.PendingTo)), string(p.Region), string(p.Committee), p.Closed, micros(p.NextDue),
		int64(p.Head), p.UpdatedAt.UnixMicro(), string(data))
	if err != nil {
		return fmt.Errorf("casework/sqlite: put case %s: %w", p.ID, err)
	}
	for _, q := range []struct {
		del, ins string
		vals     []string
	}{
		{deleteUnits, insertUnit, units(p)},
		{deleteHandlers, insertHandler, handlers(p)},
		{deleteNumbers, insertNumber, p.Numbers},
	} {
		if _, err := tx.ExecContext(ctx, q.del, string(p.ID)); err != nil {
			return fmt.Errorf("casework/sqlite: put case %s: %w", p.ID, err)
		}
		for _, v := range q.vals {
			args := []any{string(p.ID), v}
			if q.ins == insertNumber {
				args = []any{v, string(p.ID)}
			}
			if _, err := tx.ExecContext(ctx, q.ins, args...); err != nil {
				return fmt.Errorf("casework/sqlite: put case %s: %w", p.ID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("casework/sqlite: put case %s: %w", p.ID, err)
	}
	return nil
}

func units(p casework.Projection) []string {
	out := make([]string, len(p.Units))
	for i, u := range p.Units {
		out[i] = string(u)
	}
	return out
}

func handlers(p casework.Projection) []string {
	out := make([]string, len(p.Handlers))
	for i, u := range p.Handlers {
		out[i] = string(u)
	}
	return out
}

// Case returns the projection of id, or casework.ErrCaseNotFound.
func (s *Store) Case(ctx context.Context, id casework.CaseID) (casework.Projection, error) {
	var data string
	err := s.db.Read.QueryRowContext(ctx, selectCase, string(id)).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return casework.Projection{}, casework.ErrCaseNotFound
	}
	if err != nil {
		return casework.Projection{}, fmt.Errorf("casework/sqlite: case %s: %w", id, err)
	}
	var p casework.Projection
	if err := json.Unmarshal([]byte(data), &p); err != nil {
		return casework.Projection{}, fmt.Errorf("casework/sqlite: case %s: %w", id, err)
	}
	return p, nil
}

// Cases returns the projections f selects, most recently updated first.
func (s *Store) Cases(ctx context.Context, f casework.Filter) ([]casework.Projection, error) {
	q, args := casesQuery(f)
	rows, err := s.db.Read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("casework/sqlite: cases: %w", err)
	}
	defer rows.Close()
	out := []casework.Projection{}
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("casework/sqlite: cases: %w", err)
		}
		var p casework.Projection
		if err := json.Unmarshal([]byte(data), &p); err != nil {
			return nil, fmt.Errorf("casework/sqlite: cases: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("casework/sqlite: cases: %w", err)
	}
	return out, nil
}

// casesQuery builds the list query of f.
func casesQuery(f casework.Filter) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, vs ...any) {
		where = append(where, cond)
		args = append(args, vs...)
	}
	if f.Handler != "" {
		add(`id IN (SELECT case_id FROM casework_case_handlers WHERE user_id = ?)`, string(f.Handler))
	}
	if f.Unit != "" {
		add(`id IN (SELECT case_id FROM casework_case_units WHERE unit = ?)`, string(f.Unit))
	}
	if f.Number != "" {
		add(`id IN (SELECT case_id FROM casework_case_numbers WHERE instr(number, ?) > 0)`, f.Number)
	}
	if len(f.Regions) > 0 {
		ph := strings.Repeat("?,", len(f.Regions))
		vs := make([]any, len(f.Regions))
		for i, r := range f.Regions {
			vs[i] = string(r)
		}
		add(`region IN (`+ph[:len(ph)-1]+`)`, vs...)
	}
	if f.Stage != "" {
		add(`stage = ?`, f.Stage)
	}
	if f.Procedure != "" {
		add(`procedure = ?`, f.Procedure)
	}
	if f.Holder != "" {
		add(`holder = ?`, string(f.Holder))
	}
	if !f.DueBefore.IsZero() {
		add(`next_due IS NOT NULL AND next_due < ?`, f.DueBefore.UnixMicro())
	}
	if f.Closed != nil {
		add(`closed = ?`, *f.Closed)
	}
	q := `SELECT data FROM casework_cases`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 500)
	q += ` ORDER BY updated_at DESC, id LIMIT ?`
	args = append(args, limit)
	return q, args
}

// NextSerial allocates unit's next serial for year and code.
func (s *Store) NextSerial(ctx context.Context, unit acl.UnitID, year int, code string) (int, error) {
	var n int
	if err := s.db.Write.QueryRowContext(ctx, nextSerial, string(unit), year, code).Scan(&n); err != nil {
		return 0, fmt.Errorf("casework/sqlite: serial of %s %d %s: %w", unit, year, code, err)
	}
	return n, nil
}

// AppendIntervention appends r to the register's chain.
func (s *Store) AppendIntervention(ctx context.Context, r *casework.Intervention) (bool, error) {
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("casework/sqlite: append intervention: %w", err)
	}
	defer tx.Rollback()
	if r.SourceSeq != 0 {
		var one int
		err := tx.QueryRowContext(ctx, selectSource, string(r.Case), int64(r.SourceSeq)).Scan(&one)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("casework/sqlite: append intervention: %w", err)
		}
	}
	var seq int64
	var prev []byte
	if err := tx.QueryRowContext(ctx, selectChainHead).Scan(&seq, &prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("casework/sqlite: append intervention: %w", err)
	}
	e := *r
	e.Seq = seq + 1
	e.At = e.At.UTC().Truncate(time.Microsecond)
	e.OccurredAt = e.OccurredAt.UTC().Truncate(time.Microsecond)
	e.Prev = prev
	e.Hash = audit.Next(prev, e.Canonical())
	data, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("casework/sqlite: append intervention: %w", err)
	}
	var source sql.NullInt64
	if e.SourceSeq != 0 {
		source = sql.NullInt64{Int64: int64(e.SourceSeq), Valid: true}
	}
	if _, err := tx.ExecContext(ctx, insertEntry, e.Seq, string(e.Case), source, string(data), e.Prev, e.Hash); err != nil {
		return false, fmt.Errorf("casework/sqlite: append intervention: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("casework/sqlite: append intervention: %w", err)
	}
	*r = e
	return false, nil
}

// Interventions returns the register's entries of case id, in order.
func (s *Store) Interventions(ctx context.Context, id casework.CaseID) ([]casework.Intervention, error) {
	return s.entries(ctx, selectEntries, string(id))
}

// InterventionChain returns up to limit entries after seq, in order.
func (s *Store) InterventionChain(ctx context.Context, after int64, limit int) ([]casework.Intervention, error) {
	return s.entries(ctx, selectChain, after, limit)
}

func (s *Store) entries(ctx context.Context, q string, args ...any) ([]casework.Intervention, error) {
	rows, err := s.db.Read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("casework/sqlite: interventions: %w", err)
	}
	defer rows.Close()
	out := []casework.Intervention{}
	for rows.Next() {
		var (
			seq        int64
			data       string
			prev, hash []byte
		)
		if err := rows.Scan(&seq, &data, &prev, &hash); err != nil {
			return nil, fmt.Errorf("casework/sqlite: interventions: %w", err)
		}
		var e casework.Intervention
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return nil, fmt.Errorf("casework/sqlite: intervention %d: %w", seq, err)
		}
		// The chain columns are the record; the JSON's seq is checked by the hash.
		e.Seq, e.Prev, e.Hash = seq, prev, hash // a row whose JSON says otherwise fails verification

		out = append(out, e)
	}
	return out, rows.Err()
}
