// Package postgres is the casework.Store on PostgreSQL, the production store:
// case projections with their list indexes, case-number serials and the
// hash-chained intervention register.
//
// Many nodes write at once. PutCase locks the case's row before comparing
// heads, so a slower writer never overwrites a newer projection; serials are
// one upsert; register appends lock its single head row, so they queue and the
// chain never forks. Times are stored as Unix microseconds.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/acl/pgdb"
	"caseroom/casework"
)

const (
	lockCase   = `SELECT head FROM casework_cases WHERE id = $1 FOR UPDATE`
	upsertCase = `INSERT INTO casework_cases (id, room, procedure, stage, holder, pending_to, region, committee, closed, next_due, head, updated_at, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (id) DO UPDATE SET room = excluded.room, procedure = excluded.procedure, stage = excluded.stage,
			holder = excluded.holder, pending_to = excluded.pending_to, region = excluded.region, committee = excluded.committee,
			closed = excluded.closed, next_due = excluded.next_due, head = excluded.head, updated_at = excluded.updated_at,
			data = excluded.data`
	deleteUnits    = `DELETE FROM casework_case_units WHERE case_id = $1`
	insertUnits    = `INSERT INTO casework_case_units (case_id, unit) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`
	deleteHandlers = `DELETE FROM casework_case_handlers WHERE case_id = $1`
	insertHandlers = `INSERT INTO casework_case_handlers (case_id, user_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`
	deleteNumbers  = `DELETE FROM casework_case_numbers WHERE case_id = $1`
	insertNumbers  = `INSERT INTO casework_case_numbers (case_id, number) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`
	selectCase     = `SELECT data FROM casework_cases WHERE id = $1`
	nextSerial     = `INSERT INTO casework_serials (unit, year, code, last) VALUES ($1, $2, $3, 1)
		ON CONFLICT (unit, year, code) DO UPDATE SET last = casework_serials.last + 1 RETURNING last`
	lockChainHead = `SELECT seq, hash FROM casework_intervention_head WHERE id = 1 FOR UPDATE`
	advanceHead   = `UPDATE casework_intervention_head SET seq = $1, hash = $2 WHERE id = 1`
	selectSource  = `SELECT 1 FROM casework_interventions WHERE case_id = $1 AND source_seq = $2`
	insertEntry   = `INSERT INTO casework_interventions (seq, case_id, source_seq, data, prev, hash) VALUES ($1, $2, $3, $4, $5, $6)`
	selectEntries = `SELECT seq, data, prev, hash FROM casework_interventions WHERE case_id = $1 ORDER BY seq`
	selectChain   = `SELECT seq, data, prev, hash FROM casework_interventions WHERE seq > $1 ORDER BY seq LIMIT $2`
)

// Store is the casework.Store on PostgreSQL. Its methods are safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var _ casework.Store = (*Store)(nil)

// New returns a store on pool; call Migrate before first use.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

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
	return pgdb.Migrate(ctx, s.pool, "casework", Migrations)
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("casework/postgres: ping: %w", err)
	}
	return nil
}

func micros(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	m := t.UnixMicro()
	return &m
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// PutCase stores p unless the stored projection is of a later head.
func (s *Store) PutCase(ctx context.Context, p casework.Projection) error {
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("casework/postgres: put case %s: %w", p.ID, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var head int64
		switch err := tx.QueryRow(ctx, lockCase, string(p.ID)).Scan(&head); {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case head > int64(p.Head):
			return nil // a newer state is stored already
		}
		_, err := tx.Exec(ctx, upsertCase, string(p.ID), string(p.Room), p.Procedure, p.Stage, string(p.Holder),
			nullString(string(p.PendingTo)), string(p.Region), string(p.Committee), p.Closed, micros(p.NextDue),
			int64(p.Head), p.UpdatedAt.UnixMicro(), data)
		if err != nil {
			return err
		}
		units := make([]string, len(p.Units))
		for i, u := range p.Units {
			units[i] = string(u)
		}
		handlers := make([]string, len(p.Handlers))
		for i, u := range p.Handlers {
			handlers[i] = string(u)
		}
		for _, q := range []struct {
			del, ins string
			vals     []string
		}{{deleteUnits, insertUnits, units}, {deleteHandlers, insertHandlers, handlers}, {deleteNumbers, insertNumbers, p.Numbers}} {
			if _, err := tx.Exec(ctx, q.del, string(p.ID)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, q.ins, string(p.ID), q.vals); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("casework/postgres: put case %s: %w", p.ID, err)
	}
	return nil
}

// Case returns the projection of id, or casework.ErrCaseNotFound.
func (s *Store) Case(ctx context.Context, id casework.CaseID) (casework.Projection, error) {
	var data []byte
	err := s.pool.QueryRow(ctx, selectCase, string(id)).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return casework.Projection{}, casework.ErrCaseNotFound
	}
	if err != nil {
		return casework.Projection{}, fmt.Errorf("casework/postgres: case %s: %w", id, err)
	}
	var p casework.Projection
	if err := json.Unmarshal(data, &p); err != nil {
		return casework.Projection{}, fmt.Errorf("casework/postgres: case %s: %w", id, err)
	}
	return p, nil
}

// Cases returns the projections f selects, most recently updated first.
func (s *Store) Cases(ctx context.Context, f casework.Filter) ([]casework.Projection, error) {
	q, args := casesQuery(f)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("casework/postgres: cases: %w", err)
	}
	defer rows.Close()
	out := []casework.Projection{}
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("casework/postgres: cases: %w", err)
		}
		var p casework.Projection
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("casework/postgres: cases: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("casework/postgres: cases: %w", err)
	}
	return out, nil
}

// casesQuery builds the list query of f.
func casesQuery(f casework.Filter) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Handler != "" {
		where = append(where, `id IN (SELECT case_id FROM casework_case_handlers WHERE user_id = `+arg(string(f.Handler))+`)`)
	}
	if f.Unit != "" {
		where = append(where, `id IN (SELECT case_id FROM casework_case_units WHERE unit = `+arg(string(f.Unit))+`)`)
	}
	if f.Number != "" {
		where = append(where, `id IN (SELECT case_id FROM casework_case_numbers WHERE strpos(number, `+arg(f.Number)+`) > 0)`)
	}
	if len(f.Regions) > 0 {
		rs := make([]string, len(f.Regions))
		for i, r := range f.Regions {
			rs[i] = string(r)
		}
		where = append(where, `region = ANY(`+arg(rs)+`::text[])`)
	}
	if f.Stage != "" {
		where = append(where, `stage = `+arg(f.Stage))
	}
	if f.Procedure != "" {
		where = append(where, `procedure = `+arg(f.Procedure))
	}
	if f.Holder != "" {
		where = append(where, `holder = `+arg(string(f.Holder)))
	}
	if !f.DueBefore.IsZero() {
		where = append(where, `next_due IS NOT NULL AND next_due < `+arg(f.DueBefore.UnixMicro()))
	}
	if f.Closed != nil {
		where = append(where, `closed = `+arg(*f.Closed))
	}
	q := `SELECT data FROM casework_cases`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY updated_at DESC, id LIMIT ` + arg(min(limit, 500))
	return q, args
}

// NextSerial allocates unit's next serial for year and code.
func (s *Store) NextSerial(ctx context.Context, unit acl.UnitID, year int, code string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, nextSerial, string(unit), year, code).Scan(&n); err != nil {
		return 0, fmt.Errorf("casework/postgres: serial of %s %d %s: %w", unit, year, code, err)
	}
	return n, nil
}

// AppendIntervention appends r to the register's chain.
func (s *Store) AppendIntervention(ctx context.Context, r *casework.Intervention) (bool, error) {
	var dup bool
	var out casework.Intervention
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var seq int64
		var prev []byte
		if err := tx.QueryRow(ctx, lockChainHead).Scan(&seq, &prev); err != nil {
			return err
		}
		if r.SourceSeq != 0 {
			var one int
			err := tx.QueryRow(ctx, selectSource, string(r.Case), int64(r.SourceSeq)).Scan(&one)
			if err == nil {
				dup = true
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		e := *r
		e.Seq = seq + 1
		e.At = e.At.UTC().Truncate(time.Microsecond)
		e.OccurredAt = e.OccurredAt.UTC().Truncate(time.Microsecond)
		e.Prev = prev
		e.Hash = audit.Next(prev, e.Canonical())
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		var source *int64
		if e.SourceSeq != 0 {
			v := int64(e.SourceSeq)
			source = &v
		}
		if _, err := tx.Exec(ctx, insertEntry, e.Seq, string(e.Case), source, string(data), e.Prev, e.Hash); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, advanceHead, e.Seq, e.Hash); err != nil {
			return err
		}
		out = e
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("casework/postgres: append intervention: %w", err)
	}
	if !dup {
		*r = out
	}
	return dup, nil
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
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("casework/postgres: interventions: %w", err)
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
			return nil, fmt.Errorf("casework/postgres: interventions: %w", err)
		}
		var e casework.Intervention
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return nil, fmt.Errorf("casework/postgres: intervention %d: %w", seq, err)
		}
		e.Seq, e.Prev, e.Hash = seq, prev, hash // a row whose JSON says otherwise fails verification
		out = append(out, e)
	}
	return out, rows.Err()
}
