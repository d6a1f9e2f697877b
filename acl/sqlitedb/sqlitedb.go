// Package sqlitedb opens caseroom's embedded SQLite database and applies the
// migrations of each store to it. Every SQLite store builds on it, so it sits
// under acl, the leftmost domain, which all of them may import.
//
// SQLite takes one writer at a time; DB keeps one writer connection beside a pool
// of readers, so writers queue in Go instead of failing with SQLITE_BUSY, and
// readers never wait for them (WAL mode).
package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is the one SQLite database of a node.
type DB struct {
	Path  string
	Write *sql.DB // exactly one connection: every write goes through it
	Read  *sql.DB // a pool for reads

	stmtsMu sync.Mutex
	stmts   map[stmtKey]*sql.Stmt // guarded by stmtsMu
}

type stmtKey struct {
	pool  *sql.DB
	query string
}

// Prepared returns query prepared on pool (Write or Read), preparing it the
// first time and keeping it for the DB's life. SQLite parses a statement on
// every use unless it is prepared; on the hot paths that parsing was a fifth
// of the server's CPU. database/sql prepares a kept statement again on each
// connection that runs it. Preparing takes a connection of pool: never call it
// for Write while holding the writer (in a transaction) — see Cached.
func (db *DB) Prepared(ctx context.Context, pool *sql.DB, query string) (*sql.Stmt, error) {
	if st := db.Cached(pool, query); st != nil {
		return st, nil
	}
	st, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	db.stmtsMu.Lock()
	defer db.stmtsMu.Unlock()
	if db.stmts == nil {
		db.stmts = map[stmtKey]*sql.Stmt{}
	}
	if prior := db.stmts[stmtKey{pool, query}]; prior != nil {
		st.Close() // another caller prepared it meanwhile
		return prior, nil
	}
	db.stmts[stmtKey{pool, query}] = st
	return st, nil
}

// Cached returns query as Prepared kept it, or nil if it was not prepared.
func (db *DB) Cached(pool *sql.DB, query string) *sql.Stmt {
	db.stmtsMu.Lock()
	defer db.stmtsMu.Unlock()
	return db.stmts[stmtKey{pool, query}]
}

// Open opens (creating it and its directory if needed) the database at path.
func Open(path string) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlitedb: create directory: %w", err)
		}
	}
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"synchronous(FULL)", // a post is acknowledged only once it is on disk
		"foreign_keys(1)",
		"busy_timeout(10000)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate") // take the write lock at BEGIN, not at the first write
	// The writer is the only connection that changes the file, so in WAL mode
	// its page cache stays valid from one transaction to the next: a large one
	// spares it reading back the index pages every append touches. It copies
	// the WAL back into the file (a checkpoint) every 10,000 pages (40 MiB)
	// instead of 1,000: the pages appends touch are few and written again and
	// again, so a checkpoint over a longer WAL copies each once for many
	// commits (13% of the server's CPU at ingest went to checkpoints).
	w, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode()+"&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint(10000)")
	if err != nil {
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.Ping(); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	q.Set("_txlock", "deferred")
	// Readers' caches start over after every commit; they read the file
	// through a memory map instead of a system call per page.
	r, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode()+"&_pragma=mmap_size(268435456)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0)*2)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return &DB{Path: path, Write: w, Read: r}, nil
}

// Close closes the kept statements and both pools.
func (db *DB) Close() error {
	db.stmtsMu.Lock()
	for _, st := range db.stmts {
		st.Close()
	}
	db.stmts = nil
	db.stmtsMu.Unlock()
	err1 := db.Read.Close()
	err2 := db.Write.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.Read.PingContext(ctx) }

const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	domain     TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL DEFAULT (unixepoch()),
	PRIMARY KEY (domain, version)
)`

// Migrate applies, in order and each in its own transaction, the migrations in
// fsys (files named NNN_name.sql) of domain that are not applied yet. Migrations
// are append-only: a file once released is never changed.
func (db *DB) Migrate(ctx context.Context, domain string, fsys fs.FS) error {
	ms, err := ReadMigrations(fsys)
	if err != nil {
		return fmt.Errorf("sqlitedb: %s migrations: %w", domain, err)
	}
	if _, err := db.Write.ExecContext(ctx, createMigrations); err != nil {
		return fmt.Errorf("sqlitedb: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := db.apply(ctx, domain, m); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) apply(ctx context.Context, domain string, m Migration) error {
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlitedb: begin migration: %w", err)
	}
	defer tx.Rollback()
	var n int
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE domain = ? AND version = ?`, domain, m.Version).Scan(&n)
	if err != nil {
		return fmt.Errorf("sqlitedb: read schema_migrations: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("sqlitedb: migration %s/%s: %w", domain, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (domain, version, name) VALUES (?, ?, ?)`, domain, m.Version, m.Name); err != nil {
		return fmt.Errorf("sqlitedb: record migration %s/%s: %w", domain, m.Name, err)
	}
	return tx.Commit()
}

// Pending reports how many migrations of domain in fsys are not applied yet.
func (db *DB) Pending(ctx context.Context, domain string, fsys fs.FS) (int, error) {
	ms, err := ReadMigrations(fsys)
	if err != nil {
		return 0, err
	}
	var applied int
	err = db.Read.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE domain = ?`, domain).Scan(&applied)
	if err != nil {
		return len(ms), nil // no table yet: nothing applied
	}
	return len(ms) - applied, nil
}

// A Migration is one numbered SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// ReadMigrations reads the *.sql files at the root of fsys, ordered by the number
// their names start with. Numbers must run 1, 2, 3… without gaps or repeats.
// It is shared with pgdb, which orders PostgreSQL migrations the same way.
func ReadMigrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration file %q: name must start with a number and '_'", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration file %q: expected number %d", m.Name, i+1)
		}
	}
	return ms, nil
}
