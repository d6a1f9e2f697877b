package sqlite

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"caseroom/acl/sqlitedb"
	"caseroom/chat"
	"caseroom/chat/chatsql"
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

// A batch whose entry fails to write — refused by the database at its insert,
// or after it, at its room's head — fails as a whole and each entry is tried
// alone: every other post is stored once, the failed ones not at all, and
// every chain verifies. Entries without an effect have no savepoint of their
// own, so the second case would otherwise leave an entry without its head.
func TestFailedBatchRetriesAlone(t *testing.T) {
	s := mustOpen(t)
	ctx := t.Context()
	members := []chat.MemberRef{{User: "u.alice", Unit: "u1", Role: chat.Owner}, {User: "u.bob", Unit: "u1", Role: chat.Member}}
	rooms := []chat.RoomID{"r0", "r1", "bad"}
	for _, id := range rooms {
		room := chat.Room{ID: id, Kind: chat.GroupRoom, Name: string(id), OwnerUnit: "u1", Region: "150000", CreatedBy: "u.alice"}
		payload, _ := json.Marshal(chat.RoomCreated{Kind: chat.GroupRoom, Name: string(id), OwnerUnit: "u1", Region: "150000", Members: members})
		create := chat.Message{Room: id, Kind: chat.RoomCreate, Sender: "u.alice", SenderUnit: "u1", Payload: payload}
		if err := s.CreateRoom(ctx, room, &create); err != nil {
			t.Fatal(err)
		}
	}
	execSQL(t, s, `CREATE TRIGGER refuse_boom BEFORE INSERT ON chat_messages WHEN NEW.body = 'boom'
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`)
	execSQL(t, s, `CREATE TRIGGER refuse_head BEFORE UPDATE OF head_seq ON chat_rooms WHEN NEW.id = 'bad'
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`)

	const n = 90
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			room, body := rooms[i%2], fmt.Sprint("post ", i)
			switch i % 15 {
			case 7:
				body = "boom"
			case 11:
				room = "bad"
			}
			m := chat.Message{Room: room, Kind: chat.Text, Sender: "u.bob", SenderUnit: "u1", Body: body, ClientID: fmt.Sprint("c", i)}
			_, errs[i] = s.Append(ctx, &m, 0)
		})
	}
	wg.Wait()
	stored := map[chat.RoomID]int{}
	for i, err := range errs {
		bad := i%15 == 7 || i%15 == 11
		switch {
		case bad && err == nil:
			t.Errorf("post %d was stored", i)
		case !bad && err != nil:
			t.Errorf("post %d: %v", i, err)
		case err == nil:
			stored[rooms[i%2]]++
		}
	}
	for _, id := range rooms {
		r, err := s.Room(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := chat.Seq(1 + stored[id]); r.Head != want {
			t.Errorf("room %s: head %d, want %d (the create and %d posts)", id, r.Head, want, stored[id])
		}
		if h, err := s.History(ctx, id, chat.HistoryQuery{Limit: 200}); err != nil || len(h) != 1+stored[id] {
			t.Errorf("room %s: %d entries stored (%v), want %d", id, len(h), err, 1+stored[id])
		}
		if err := chat.VerifyRoom(ctx, s, id); err != nil {
			t.Errorf("room %s: the chain does not verify: %v", id, err)
		}
	}
}

// TestTimeMarksMigration applies migration 002 to a log stored before it; see
// the PostgreSQL store's test of the same name.
func TestTimeMarksMigration(t *testing.T) {
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "caseroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := New(db)
	if err := db.Migrate(t.Context(), "chat", storetest.MigrationsBefore(t, Migrations, "002")); err != nil {
		t.Fatal(err)
	}
	latest := storetest.FillOlderLog(t, s, execSQL)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v", err)
	}
	var timeFrom, lastAt int64
	var created, marks bool
	err = db.Read.QueryRowContext(t.Context(), `SELECT time_from, last_at,
		EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'chat_messages_created'),
		EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'chat_messages_marks')
		FROM chat_rooms WHERE id = 'older'`).Scan(&timeFrom, &lastAt, &created, &marks)
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckOlderLogMigrated(t, s, latest, timeFrom, lastAt, created, marks)
}

// TestTimeBoundsUseTheMarks: History finds a time among the marks (the
// partial index), not by reading a room's entries.
func TestTimeBoundsUseTheMarks(t *testing.T) {
	s := mustOpen(t)
	rows, err := s.db.Read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+chatsql.SelectTimeBounds, "r1", int64(5), int64(9))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Count(plan.String(), "INDEX chat_messages_marks") != 2 {
		t.Errorf("SelectTimeBounds does not look up both bounds in chat_messages_marks:\n%s", plan.String())
	}
}
