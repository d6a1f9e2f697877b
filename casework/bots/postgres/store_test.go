package postgres_test

import (
	"context"
	"testing"

	"caseroom/acl/pgdb/pgdbtest"
	"caseroom/casework/bots"
	"caseroom/casework/bots/postgres"
	"caseroom/casework/bots/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bots.Store {
		s := postgres.New(pgdbtest.MustFreshSchema(t))
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}
