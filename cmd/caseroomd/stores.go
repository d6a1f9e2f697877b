package main

import (
	"context"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"caseroom/acl"
	"caseroom/acl/pgdb"
	aclpg "caseroom/acl/postgres"
	aclsqlite "caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/casework"
	"caseroom/casework/bots"
	botspg "caseroom/casework/bots/postgres"
	botssqlite "caseroom/casework/bots/sqlite"
	casepg "caseroom/casework/postgres"
	casesqlite "caseroom/casework/sqlite"
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
	cases  casework.Store
	bots   bots.Store
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
		as, cs, ks, bs := aclsqlite.New(db), chatsqlite.New(db), casesqlite.New(db), botssqlite.New(db)
		s := &stores{kind: "sqlite", sqlite: db, acl: as, chat: cs, cases: ks, bots: bs}
		domains := []struct {
			name string
			fs   fs.FS
		}{{"acl", aclsqlite.Migrations}, {"chat", chatsqlite.Migrations}, {"casework", casesqlite.Migrations}, {"bots", botssqlite.Migrations}}
		s.migrate = func(ctx context.Context) error {
			for _, d := range domains {
				if err := db.Migrate(ctx, d.name, d.fs); err != nil {
					return err
				}
			}
			return nil
		}
		s.pending = func(ctx context.Context) (int, error) {
			n := 0
			for _, d := range domains {
				p, err := db.Pending(ctx, d.name, d.fs)
				if err != nil {
					return 0, err
				}
				n += p
			}
			return n, nil
		}
		return s, nil
	}
	pool, err := pgdb.Open(ctx, cfg.Database)
	if err != nil {
		return nil, fmt.Errorf("CASEROOM_DATABASE: %w", err)
	}
	as, cs, ks, bs := aclpg.New(pool), chatpg.New(pool), casepg.New(pool), botspg.New(pool)
	s := &stores{kind: "postgres", pool: pool, acl: as, chat: cs, cases: ks, bots: bs}
	domains := []struct {
		name string
		fs   fs.FS
	}{{"acl", aclpg.Migrations}, {"chat", chatpg.Migrations}, {"casework", casepg.Migrations}, {"bots", botspg.Migrations}}
	s.migrate = func(ctx context.Context) error {
		for _, d := range domains {
			if err := pgdb.Migrate(ctx, pool, d.name, d.fs); err != nil {
				return err
			}
		}
		return nil
	}
	s.pending = func(ctx context.Context) (int, error) {
		n := 0
		for _, d := range domains {
			p, err := pgdb.Pending(ctx, pool, d.name, d.fs)
			if err != nil {
				return 0, err
			}
			n += p
		}
		return n, nil
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
