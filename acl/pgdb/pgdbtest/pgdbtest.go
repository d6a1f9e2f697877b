// Package pgdbtest gives tests a real PostgreSQL in a fresh schema, and tells
// them where the other real servers are.
//
// The servers come from environment variables that `make test` sets
// (CASEROOM_TEST_POSTGRES, CASEROOM_TEST_REDIS, CASEROOM_TEST_CHROMIUM). Unset
// means the test is skipped when run by hand, and fails when CASEROOM_TEST_REQUIRE
// is set, as it is in CI, so a suite never passes by being skipped there.
package pgdbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	neturl "net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// NeedEnv returns the value of the environment variable name, skipping the test
// when it is unset, or failing it when CASEROOM_TEST_REQUIRE is set.
func NeedEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CASEROOM_TEST_REQUIRE") != "" {
			t.Fatalf("%s is not set, and CASEROOM_TEST_REQUIRE says this suite must run", name)
		}
		t.Skipf("%s is not set; `make test` starts the server this test needs", name)
	}
	return v
}

// MustFreshSchema returns a pool on the PostgreSQL of CASEROOM_TEST_POSTGRES whose
// connections use a new, empty schema; the schema is dropped when the test ends.
func MustFreshSchema(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	schema := throwaway(t, url, "CREATE SCHEMA %s", "DROP SCHEMA %s CASCADE")
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 16
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close) // before the schema's drop: cleanups run last first
	return pool
}

// URLWithSchema returns a fresh schema's name and a database URL whose
// connections use it, for tests that start whole servers (the schema is dropped
// when the test ends).
func URLWithSchema(t testing.TB) string {
	t.Helper()
	url := NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	schema := throwaway(t, url, "CREATE SCHEMA %s", "DROP SCHEMA %s CASCADE")
	sep := "?"
	for _, c := range url {
		if c == '?' {
			sep = "&"
		}
	}
	return url + sep + "search_path=" + schema
}

// URLWithDatabase creates a database of its own for t, dropped after it, and
// returns its name and the URL of CASEROOM_TEST_POSTGRES pointing at it. A
// test needs one when it acts on what is database-wide: NOTIFY channels, the
// backends in pg_stat_activity.
func URLWithDatabase(t testing.TB) (url, name string) {
	t.Helper()
	base := NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	u, err := neturl.Parse(base)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		t.Fatalf("CASEROOM_TEST_POSTGRES %q is not a postgres:// URL", base)
	}
	name = throwaway(t, base, "CREATE DATABASE %s", "DROP DATABASE %s WITH (FORCE)")
	u.Path = "/" + name
	return u.String(), name
}

// throwaway makes an object with a random name through url with create (a
// format taking the name), drops it with drop when t ends, and returns its
// name.
func throwaway(t testing.TB, url, create, drop string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf(create, name)); err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(create, name), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, url); err == nil {
			c.Exec(ctx, fmt.Sprintf(drop, name))
			c.Close(ctx)
		}
	})
	return name
}
