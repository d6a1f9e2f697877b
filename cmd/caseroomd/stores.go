package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"caseroom/acl"
	"caseroom/acl/pgdb"
	aclpg "caseroom/acl/postgres"
	aclsqlite "caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/chat"
	chatpg "caseroom/chat/postgres"
	chatsqlite "caseroom/chat/sqlite"
)

// stores are the database and every domain's store on it: one database, tables
// prefixed by domain, one store per domain (STYLE.md §1).
type stores struct {
	kind   string // "sqlite" or "postgres"
	sqlite *sqlitedb.DB
	pool   *pgxpool.Pool
	acl    acl.Store
	chat   chat.Store
	// migrate applies every store's pending migrations; pending counts them.
	migrate func(ctx context.Context) error
	pending func(ctx context.Context) (int, error)
}

// openStores opens the database cfg.Database names and builds the stores on it.
// It does not migrate: serve and migrate call s.migrate.
func openStores(ctx context.Context, cfg Config) (*stores, error) {
	if path, ok := strings.CutPrefix(cfg.Database, "sqlite:"); ok {
		db, err := sqlitedb.Open(path)
		if err != nil {
			return nil, err
		}
		as, cs := aclsqlite.New(db), chatsqlite.New(db)
		s := &stores{kind: "sqlite", sqlite: db, acl: as, chat: cs}
		s.migrate = func(ctx context.Context) error {
			if err := as.Migrate(ctx); err != nil {
				return err
			}
			return cs.Migrate(ctx)
		}
		s.pending = func(ctx context.Context) (int, error) {
			a, err := db.Pending(ctx, "acl", aclsqlite.Migrations)
			if err != nil {
				return 0, err
			}
			c, err := db.Pending(ctx, "chat", chatsqlite.Migrations)
			return a + c, err
		}
		return s, nil
	}
	pool, err := pgdb.Open(ctx, cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("CASEROOM_DATABASE: %w", err)
	}
	as, cs := aclpg.New(pool), chatpg.New(pool)
	s := &stores{kind: "postgres", pool: pool, acl: as, chat: cs}
	s.migrate = func(ctx context.Context) error {
		if err := as.Migrate(ctx); err != nil {
			return err
		}
		return cs.Migrate(ctx)
	}
	s.pending = func(ctx context.Context) (int, error) {
		a, err := pgdb.Pending(ctx, pool, "acl", aclpg.Migrations)
		if err != nil {
			return 0, err
		}
		c, err := pgdb.Pending(ctx, pool, "chat", chatpg.Migrations)
		return a + c, err
	}
	return s, nil
}

// ping checks the database answers.
func (s *stores) ping(ctx context.Context) error {
	if s.sqlite != nil {
		return s.sqlite.Ping(ctx)
	}
	return s.pool.Ping(ctx)
}

func (s *stores) close() {
	if s.sqlite != nil {
		s.sqlite.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}
