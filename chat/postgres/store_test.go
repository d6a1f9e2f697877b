package postgres

import (
	"testing"

	"caseroom/acl/pgdb"
	"caseroom/acl/pgdb/pgdbtest"
	"caseroom/chat"
	"caseroom/chat/storetest"
)

func TestStore(t *testing.T) {
	pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	storetest.Run(t, func(t *testing.T) chat.Store { return mustOpen(t) }, execSQL)
}

// TestMigrateIsIdempotent checks that a second Migrate, as every node runs at
// start, finds everything applied.
func TestMigrateIsIdempotent(t *testing.T) {
	s := mustOpen(t)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() a second time = %v, want nil", err)
	}
	if n, err := pgdb.Pending(t.Context(), s.pool, "chat", Migrations); err != nil || n != 0 {
		t.Errorf("Pending(chat) = %d, %v; want 0, nil", n, err)
	}
}

// mustOpen returns a migrated store in a fresh schema, dropped after the test.
func mustOpen(t *testing.T) *Store {
	t.Helper()
	s := New(pgdbtest.MustFreshSchema(t))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v", err)
	}
	return s
}

// execSQL runs query on the pool under s, past the store.
func execSQL(t *testing.T, s chat.Store, query string, args ...any) {
	t.Helper()
	if _, err := s.(*Store).pool.Exec(t.Context(), query, args...); err != nil {
		t.Fatalf("exec %q: %v", query, err)
	}
}
