package sqlite_test

import (
	"path/filepath"
	"testing"

	"caseroom/acl"
	"caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/acl/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) acl.Store { return mustOpen(t) })
}

func TestMigrateTwice(t *testing.T) {
	s := mustOpen(t) // migrated once
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate = %v, want nil", err)
	}
}

// mustOpen returns a migrated store in a fresh database file (":memory:" would
// be one database per connection).
func mustOpen(t *testing.T) *sqlite.Store {
	t.Helper()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "acl.db"))
	if err != nil {
		t.Fatalf("sqlitedb.Open = %v", err)
	}
	t.Cleanup(func() { db.Close() })
	s := sqlite.New(db)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	return s
}
