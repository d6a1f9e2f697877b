package postgres

import (
	"encoding/json"
	"fmt"
	"sync"
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

// TestFailedBatchRetriesAlone: when the database refuses a batch (here a
// trigger refuses one entry of it), nothing of the batch is stored and every
// entry is tried again alone: the refused one gets an error, the others are
// stored once each, in a chain that verifies.
func TestFailedBatchRetriesAlone(t *testing.T) {
	pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	s := mustOpen(t)
	ctx := t.Context()
	members := []chat.MemberRef{{User: "u.alice", Unit: "u1", Role: chat.Owner}, {User: "u.bob", Unit: "u1", Role: chat.Member}}
	room := chat.Room{ID: "r", Kind: chat.GroupRoom, Name: "r", OwnerUnit: "u1", Region: "150000", CreatedBy: "u.alice"}
	create := chat.Message{Room: "r", Kind: chat.RoomCreate, Sender: "u.alice", SenderUnit: "u1",
		Payload: mustPayload(t, chat.RoomCreated{Kind: chat.GroupRoom, Name: "r", OwnerUnit: "u1", Region: "150000", Members: members})}
	if err := s.CreateRoom(ctx, room, &create); err != nil {
		t.Fatal(err)
	}
	execSQL(t, s, `CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.body = 'boom' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`)
	execSQL(t, s, `CREATE TRIGGER refuse_boom BEFORE INSERT ON chat_messages FOR EACH ROW EXECUTE FUNCTION refuse_boom()`)

	const n = 60
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprint("post ", i)
			if i%20 == 7 {
				body = "boom"
			}
			m := chat.Message{Room: "r", Kind: chat.Text, Sender: "u.bob", SenderUnit: "u1", Body: body, ClientID: fmt.Sprint("c", i)}
			_, errs[i] = s.Append(ctx, &m, 0)
		})
	}
	wg.Wait()
	stored := 0
	for i, err := range errs {
		switch {
		case i%20 == 7 && err == nil:
			t.Errorf("post %d (boom) was stored", i)
		case i%20 != 7 && err != nil:
			t.Errorf("post %d: %v", i, err)
		case err == nil:
			stored++
		}
	}
	r, err := s.Room(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if want := chat.Seq(1 + stored); r.Head != want {
		t.Errorf("head %d, want %d (the create and %d posts)", r.Head, want, stored)
	}
	if err := chat.VerifyRoom(ctx, s, "r"); err != nil {
		t.Errorf("the chain does not verify: %v", err)
	}
}

func mustPayload(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
