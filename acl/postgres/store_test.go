package postgres_test

import (
	"testing"

	"caseroom/acl"
	"caseroom/acl/pgdb/pgdbtest"
	"caseroom/acl/postgres"
	"caseroom/acl/storetest"
)

func TestStore(t *testing.T) {
	pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	storetest.Run(t, func(t *testing.T) acl.Store { return mustOpen(t) })
}

func TestMigrateTwice(t *testing.T) {
	s := mustOpen(t) // migrated once
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate = %v, want nil", err)
	}
}

// mustOpen returns a migrated store in a fresh schema, dropped after the test.
func mustOpen(t *testing.T) *postgres.Store {
	t.Helper()
	s := postgres.New(pgdbtest.MustFreshSchema(t))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	return s
}
