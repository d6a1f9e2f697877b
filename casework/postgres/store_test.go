package postgres

import (
	"testing"

	"caseroom/acl/pgdb"
	"caseroom/acl/pgdb/pgdbtest"
	"caseroom/casework"
	"caseroom/casework/storetest"
)

func TestStore(t *testing.T) {
	pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) casework.Store { return mustOpen(t) },
		Exec: func(t *testing.T, s casework.Store, q string) error {
			_, err := s.(*Store).pool.Exec(t.Context(), q)
			return err
		},
		Tamper: func(t *testing.T, s casework.Store, seq int64, data string) {
			pool := s.(*Store).pool
			if _, err := pool.Exec(t.Context(), `ALTER TABLE casework_interventions DISABLE TRIGGER casework_interventions_no_change`); err != nil {
				t.Fatalf("disable trigger: %v", err)
			}
			if _, err := pool.Exec(t.Context(), `UPDATE casework_interventions SET data = $1 WHERE seq = $2`, data, seq); err != nil {
				t.Fatalf("tamper: %v", err)
			}
		},
	})
}

// TestMigrateIsIdempotent checks that a second Migrate, as every node runs at
// start, finds everything applied.
func TestMigrateIsIdempotent(t *testing.T) {
	s := mustOpen(t)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() a second time = %v, want nil", err)
	}
	if n, err := pgdb.Pending(t.Context(), s.pool, "casework", Migrations); err != nil || n != 0 {
		t.Errorf("Pending(casework) = %d, %v; want 0, nil", n, err)
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
