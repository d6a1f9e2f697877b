// Package sqlite is the chat.Store on caseroom's embedded SQLite database: rooms,
// their members and participating units, their hash-chained logs, read markers
// and attachments.
//
// Every change runs in one transaction on the database's single writer
// connection, so appends to all rooms queue in Go and a log entry commits with
// its effect and the room's new head. Reads use the reader pool. Times are
// stored as Unix microseconds and read back in UTC; a zero OccurredAt is stored
// as NULL and reads back as zero.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"caseroom/acl/sqlitedb"
	"caseroom/chat"
	"caseroom/chat/chatsql"
)

const selectRoomExists = `SELECT 1 FROM chat_rooms WHERE id = ?`

// Store is the chat.Store on SQLite. Its methods are safe for concurrent use.
type Store struct {
	db       *sqlitedb.DB
	group    chatsql.Group // appends waiting for their batch
	prepared atomic.Bool   // hotWrites are prepared
}

var _ chat.Store = (*Store)(nil)

// New returns a store on db; call Migrate before first use.
func New(db *sqlitedb.DB) *Store { return &Store{db: db} }

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations holds the store's numbered SQL files at its root, as
// sqlitedb.DB.Migrate reads them.
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
	return s.db.Migrate(ctx, "chat", Migrations)
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.Read.PingContext(ctx); err != nil {
		return fmt.Errorf("chat/sqlite: ping: %w", err)
	}
	return nil
}

// begin starts a write transaction on the single writer connection (BEGIN
// IMMEDIATE). Commit or Rollback must follow before the next write can begin.
func (s *Store) begin(ctx context.Context) (*writeTx, error) {
	if !s.prepared.Load() {
		// Before the transaction: preparing takes the writer connection.
		if err := s.prepareWrites(ctx); err == nil {
			s.prepared.Store(true)
		}
	}
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &writeTx{Tx: tx, db: s.db}, nil
}

// hotWrites are the statements of every append, kept prepared on the writer.
var hotWrites = []string{selectHead, selectByClientID, insertMessage, advanceHead,
	savepointEntry, releaseEntry, rollbackEntry}

// prepareWrites prepares hotWrites on the writer, once they can be (after the
// migrations); until then statements are parsed at each use, as any other.
func (s *Store) prepareWrites(ctx context.Context) error {
	for _, q := range hotWrites {
		if _, err := s.db.Prepared(ctx, s.db.Write, q); err != nil {
			return err
		}
	}
	return nil
}

// A writeTx is a transaction on the writer connection that runs the
// statements kept prepared (sqlitedb.DB.Prepared) without parsing them again.
type writeTx struct {
	*sql.Tx
	db *sqlitedb.DB
}

func (t *writeTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.db.Cached(t.db.Write, query); st != nil {
		return t.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t *writeTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.db.Cached(t.db.Write, query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// dbError turns the driver's errors into chat's: no row and a reference to a
// missing row (a foreign key) are chat.ErrNotFound, a duplicate key is
// chat.ErrExists. Other errors, chat's own included, pass unchanged.
func dbError(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return chat.ErrNotFound
	}
	if e, ok := errors.AsType[*sqlite.Error](err); ok {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return chat.ErrExists
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return chat.ErrNotFound
		}
	}
	return err
}

// A scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
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

// roomExists returns nil if room is stored, else chat.ErrNotFound; methods call
// it only when a query found nothing, to tell an empty answer from an unknown room.
func roomExists(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, room chat.RoomID) error {
	var one int
	if err := q.QueryRowContext(ctx, selectRoomExists, string(room)).Scan(&one); err != nil {
		return dbError(err)
	}
	return nil
}

// nullText stores an empty payload as NULL, and any other as the exact bytes
// given, as TEXT.
func nullText(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// nullBytes stores an empty hash (the predecessor of seq 1) as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// affected returns how many rows a statement changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// CommitStats counts the group commit's batches, the appends they held and
// the time spent committing them, for /metrics.
func (s *Store) CommitStats() chatsql.GroupStats { return s.group.Stats() }
