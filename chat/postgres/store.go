// Package postgres is the chat.Store on PostgreSQL, the production store: rooms,
// their members and participating units, their hash-chained logs, read markers
// and attachments.
//
// Many nodes write at once. Append locks the room's row (SELECT … FOR NO KEY
// UPDATE) before it reads the head, so concurrent posts to one room queue on
// that row lock, and posts to other rooms never wait for them; an entry commits
// with its effect and the room's new head. Times are stored as Unix
// microseconds and read back in UTC; a zero OccurredAt is stored as NULL and
// reads back as zero.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"caseroom/acl/pgdb"
	"caseroom/chat"
	"caseroom/chat/chatsql"
)

const selectRoomExists = `SELECT 1 FROM chat_rooms WHERE id = $1`

// Store is the chat.Store on PostgreSQL. Its methods are safe for concurrent use.
type Store struct {
	pool         *pgxpool.Pool
	lanes        [commitLanes]chatsql.Group // appends waiting for their batch, by room
	heads        headCache                  // the heads this node's batches committed last
	known, stale atomic.Uint64              // for CommitStats
}

// commitLanes is how many group commits run side by side. A room's appends
// always take the same lane (laneOf), so its entries are still committed, and
// their hooks called, in seq order, and two lanes never lock the same room:
// one lane's batch is not held up by another's. With one lane the batches ran
// one after another and a batch's round trips and WAL flush left the
// database's other core idle; PostgreSQL shares a WAL flush between the
// lanes' commits as it does between any concurrent ones.
const commitLanes = 2

// laneOf returns the lane of room's appends (FNV-1a of its id).
func (s *Store) laneOf(room chat.RoomID) *chatsql.Group {
	h := uint32(2166136261)
	for i := 0; i < len(room); i++ {
		h = (h ^ uint32(room[i])) * 16777619
	}
	return &s.lanes[h%commitLanes]
}

var _ chat.Store = (*Store)(nil)

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

// Migrate applies the migrations of domain "chat" that are not applied yet.
func (s *Store) Migrate(ctx context.Context) error {
	return pgdb.Migrate(ctx, s.pool, "chat", Migrations)
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("chat/postgres: ping: %w", err)
	}
	return nil
}

// begin starts a transaction (READ COMMITTED: each statement sees what
// committed before it, and a row locked FOR NO KEY UPDATE is read in its
// newest version).
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

// dbError turns the driver's errors into chat's: no row and a reference to a
// missing row (a foreign key) are chat.ErrNotFound, a duplicate key is
// chat.ErrExists. Other errors, chat's own included, pass unchanged.
func dbError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.ErrNotFound
	}
	if e, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch e.Code {
		case uniqueViolation:
			return chat.ErrExists
		case foreignKeyViolation:
			return chat.ErrNotFound
		}
	}
	return err
}

// A querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// micros is how a time that may be zero is stored: Unix microseconds, NULL for
// the zero time.
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

// nullString stores "" as NULL.
func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// nullBytes stores an empty payload, or the empty hash before seq 1, as NULL.
func nullBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// roomExists returns nil if room is stored, else chat.ErrNotFound; methods call
// it only when a query found nothing, to tell an empty answer from an unknown room.
func roomExists(ctx context.Context, q querier, room chat.RoomID) error {
	var one int
	if err := q.QueryRow(ctx, selectRoomExists, string(room)).Scan(&one); err != nil {
		return dbError(err)
	}
	return nil
}

// A scanner is a pgx.Row or pgx.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// affected returns how many rows a statement changed.
func affected(tag pgconn.CommandTag, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// CommitStats counts the group commit's batches, the appends they held and
// the time spent committing them, for /metrics.
func (s *Store) CommitStats() chatsql.GroupStats {
	var sum chatsql.GroupStats
	for i := range s.lanes {
		st := s.lanes[i].Stats()
		sum.Batches, sum.Entries, sum.Committing = sum.Batches+st.Batches, sum.Entries+st.Entries, sum.Committing+st.Committing
	}
	sum.Known, sum.Stale = s.known.Load(), s.stale.Load()
	return sum
}
