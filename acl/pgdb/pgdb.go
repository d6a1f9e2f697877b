// Package pgdb opens caseroom's PostgreSQL pool and applies the migrations of each
// store. Several nodes may start at once against one database: each migration
// runs in a transaction that first takes an advisory lock, so exactly one node
// applies it and the others find it applied.
package pgdb

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"

	"caseroom/acl/sqlitedb"
)

// Open connects a pool to url (a postgres:// URL) and checks that it answers.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgdb: parse database URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgdb: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgdb: connect: %w", err)
	}
	return pool, nil
}

// migrateLock is the advisory lock key every node takes to migrate ("caseroom").
const migrateLock = 0x63617365726f6f6d

const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	domain     text        NOT NULL,
	version    integer     NOT NULL,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (domain, version)
)`

// Migrate applies, in order and each in its own transaction, the migrations in
// fsys (files named NNN_name.sql) of domain that are not applied yet.
func Migrate(ctx context.Context, pool *pgxpool.Pool, domain string, fsys fs.FS) error {
	ms, err := sqlitedb.ReadMigrations(fsys)
	if err != nil {
		return fmt.Errorf("pgdb: %s migrations: %w", domain, err)
	}
	for _, m := range ms {
		if err := apply(ctx, pool, domain, m); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, pool *pgxpool.Pool, domain string, m sqlitedb.Migration) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgdb: begin migration: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return fmt.Errorf("pgdb: take migration lock: %w", err)
	}
	// Creating the table under the lock: CREATE TABLE IF NOT EXISTS is not safe
	// against a concurrent create of the same table.
	if _, err := tx.Exec(ctx, createMigrations); err != nil {
		return fmt.Errorf("pgdb: create schema_migrations: %w", err)
	}
	var n int
	err = tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE domain = $1 AND version = $2`, domain, m.Version).Scan(&n)
	if err != nil {
		return fmt.Errorf("pgdb: read schema_migrations: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return fmt.Errorf("pgdb: migration %s/%s: %w", domain, m.Name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (domain, version, name) VALUES ($1, $2, $3)`, domain, m.Version, m.Name); err != nil {
		return fmt.Errorf("pgdb: record migration %s/%s: %w", domain, m.Name, err)
	}
	return tx.Commit(ctx)
}

// Pending reports how many migrations of domain in fsys are not applied yet.
func Pending(ctx context.Context, pool *pgxpool.Pool, domain string, fsys fs.FS) (int, error) {
	ms, err := sqlitedb.ReadMigrations(fsys)
	if err != nil {
		return 0, err
	}
	var applied int
	err = pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE domain = $1`, domain).Scan(&applied)
	if err != nil {
		return len(ms), nil // no table yet: nothing applied
	}
	return len(ms) - applied, nil
}
