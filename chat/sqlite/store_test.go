package sqlite

import (
	"path/filepath"
	"testing"

	"caseroom/acl/sqlitedb"
	"caseroom/chat"
	"caseroom/chat/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chat.Store { return mustOpen(t) }, execSQL)
}

// TestMigrateIsIdempotent checks that a second Migrate, as at every start of
// the server, finds everything applied.
func TestMigrateIsIdempotent(t *testing.T) {
	s := mustOpen(t)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() a second time = %v, want nil", err)
	}
	if n, err := s.db.Pending(t.Context(), "chat", Migrations); err != nil || n != 0 {
		t.Errorf("Pending(chat) = %d, %v; want 0, nil", n, err)
	}
}

// mustOpen returns a migrated store on a fresh database file: a file, since
// ":memory:" would be one database per connection.
func mustOpen(t *testing.T) *Store {
	t.Helper()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "caseroom.db"))
	if err != nil {
		t.Fatalf("sqlitedb.Open() = %v", err)
	}
	t.Cleanup(func() { db.Close() })
	s := New(db)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v", err)
	}
	return s
}

// execSQL runs query on the writer connection under s, past the store.
func execSQL(t *testing.T, s chat.Store, query string, args ...any) {
	t.Helper()
	if _, err := s.(*Store).db.Write.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("exec %q: %v", query, err)
	}
}
