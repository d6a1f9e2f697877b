package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"caseroom/acl/sqlitedb"
	"caseroom/casework/bots"
	"caseroom/casework/bots/sqlite"
	"caseroom/casework/bots/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) bots.Store {
		db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "bots.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s := sqlite.New(db)
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}
