package sqlite

import (
	"path/filepath"
	"testing"

	"caseroom/acl/sqlitedb"
	"caseroom/casework"
	"caseroom/casework/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) casework.Store { return mustOpen(t) },
		Exec: func(t *testing.T, s casework.Store, q string) error {
			_, err := s.(*Store).db.Write.ExecContext(t.Context(), q)
			return err
		},
		Tamper: func(t *testing.T, s casework.Store, seq int64, data string) {
			db := s.(*Store).db.Write
			for _, q := range []string{
				`DROP TRIGGER casework_interventions_no_update`,
			} {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if _, err := db.ExecContext(t.Context(), `UPDATE casework_interventions SET data = ? WHERE seq = ?`, data, seq); err != nil {
				t.Fatalf("tamper: %v", err)
			}
		},
	})
}

// TestMigrateIsIdempotent checks that a second Migrate, as at every start of
// the server, finds everything applied.
func TestMigrateIsIdempotent(t *testing.T) {
	s := mustOpen(t)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() a second time = %v, want nil", err)
	}
	if n, err := s.db.Pending(t.Context(), "casework", Migrations); err != nil || n != 0 {
		t.Errorf("Pending(casework) = %d, %v; want 0, nil", n, err)
	}
}

// mustOpen returns a migrated store on a fresh database file.
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
