package postgres

import (
	"caseroom/acl"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5/pgxpool"
	"strings"
	"sync"
	"testing"
	"time"

	"caseroom/acl/pgdb"
	"caseroom/acl/pgdb/pgdbtest"
	"caseroom/chat"
	"caseroom/chat/chatsql"
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

// TestLanesCommitSideBySide: while another transaction holds one room's row
// lock, so that its lane's batch waits, a post to a room of the other lane is
// committed; the waiting post is committed once the lock goes, in order. With
// one lane for every room the second post would wait behind the first.
func TestLanesCommitSideBySide(t *testing.T) {
	pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	s := mustOpen(t)
	ctx := t.Context()
	// Two rooms in different lanes.
	var ids []chat.RoomID
	for i := 0; len(ids) < 2 && i < 100; i++ {
		id := chat.RoomID(fmt.Sprint("r", i))
		if len(ids) == 0 || s.laneOf(id) != s.laneOf(ids[0]) {
			ids = append(ids, id)
		}
	}
	if len(ids) < 2 {
		t.Fatalf("rooms r0 to r99 all share one commit lane")
	}
	members := []chat.MemberRef{{User: "u.alice", Unit: "u1", Role: chat.Owner}}
	for _, id := range ids {
		room := chat.Room{ID: id, Kind: chat.GroupRoom, Name: string(id), OwnerUnit: "u1", Region: "150000", CreatedBy: "u.alice"}
		create := chat.Message{Room: id, Kind: chat.RoomCreate, Sender: "u.alice", SenderUnit: "u1",
			Payload: mustPayload(t, chat.RoomCreated{Kind: chat.GroupRoom, Name: string(id), OwnerUnit: "u1", Region: "150000", Members: members})}
		if err := s.CreateRoom(ctx, room, &create); err != nil {
			t.Fatal(err)
		}
	}
	locker, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback(ctx)
	if _, err := locker.Exec(ctx, `SELECT 1 FROM chat_rooms WHERE id = $1 FOR UPDATE`, string(ids[0])); err != nil {
		t.Fatal(err)
	}
	post := func(room chat.RoomID, body string) chan error {
		done := make(chan error, 1)
		go func() {
			m := chat.Message{Room: room, Kind: chat.Text, Sender: "u.alice", SenderUnit: "u1", Body: body}
			_, err := s.Append(ctx, &m, 0)
			done <- err
		}()
		return done
	}
	held := post(ids[0], "waits for the lock")
	// Let the held post reach its lane and wait on the lock (if it did not, the
	// test passes without showing anything; it cannot fail wrongly).
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-held:
		t.Fatalf("the post to the locked room was answered (%v) while its row was locked", err)
	default:
	}
	select {
	case err := <-post(ids[1], "the other lane"):
		if err != nil {
			t.Fatalf("post to %s: %v", ids[1], err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the post to %s (another lane) waited for %s's lock", ids[1], ids[0])
	}
	if err := locker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-held; err != nil {
		t.Fatalf("post to %s after the lock went: %v", ids[0], err)
	}
	for _, id := range ids {
		if r, err := s.Room(ctx, id); err != nil || r.Head != 2 {
			t.Errorf("room %s: head %d, %v; want 2 (the create and one post)", id, r.Head, err)
		}
		if err := chat.VerifyRoom(ctx, s, id); err != nil {
			t.Errorf("room %s does not verify: %v", id, err)
		}
	}
}

// TestStatementsUseTheKeys explains the statements of the post, delivery and
// history paths with sequential scans priced out, and fails on any that still
// scans chat_rooms, chat_members or chat_messages: a comparison the planner
// cannot serve from an index (as chat_rooms.id against the log's C-collated
// room once was) scans the whole table, a cost no functional test sees.
func TestStatementsUseTheKeys(t *testing.T) {
	pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	s := mustOpen(t)
	rooms, users := []string{"r1", "r2"}, []string{"u1", "u2"}
	nums, hashes := []int64{1, 2}, [][]byte{{1}, {2}}
	strs, cids, occ, bools := []string{"a", "b"}, []*string{nil, nil}, []*int64{nil, nil}, []bool{true, true}
	for _, c := range []struct {
		name, sql string
		args      []any
	}{
		{"lockHead", lockHead, []any{"r1", "u1"}},
		{"insertAndAdvance", insertAndAdvance, []any{"r1", int64(2), "text", "u1", "x", "c1", int64(0), "[]", "hi",
			[]byte(nil), int64(0), nil, int64(1), []byte{1}, []byte{2}, true}},
		{"selectByClientID", selectByClientID, []any{"r1", "u1", "c1"}},
		{"lockHeads", lockHeads, []any{rooms}},
		{"selectRoles", selectRoles, []any{rooms, users}},
		{"insertEntries", insertEntries, []any{rooms, nums, strs, users, strs, cids, nums, strs, strs,
			[][]byte{nil, nil}, nums, occ, nums, hashes, hashes, bools}},
		{"advanceHeads", advanceHeads, []any{rooms, nums, hashes, nums}},
		{"advanceAndInsert", advanceAndInsert, []any{rooms, nums, strs, users, strs, cids, nums, strs, strs,
			[][]byte{nil, nil}, nums, occ, nums, hashes, hashes, bools, rooms, nums, hashes, nums, nums, hashes, nums}},
		{"selectRoomAccess", selectRoomAccess, []any{"r1", "u1"}},
		{"selectMemberHeads", selectMemberHeads, []any{"u1"}},
		{"selectRoomsOf", selectRoomsOf, []any{"u1"}},
		{"selectLast", selectLast, []any{"r1", int64(0), int64(100), int64(0), int64(1 << 60), 50}},
		{"selectChain", selectChain, []any{"r1", int64(0), 50}},
		{"markEdited", markEdited, []any{int64(3), "r1", int64(2)}},
		{"upsertReadMarker", upsertReadMarker, []any{"r1", "u1", int64(1), int64(1)}},
		{"SelectTimeBounds", chatsql.SelectTimeBounds, []any{"r1", int64(5), int64(9)}},
	} {
		plan := explainNoSeqScan(t, s, c.sql, c.args...)
		for _, table := range []string{"chat_rooms", "chat_members", "chat_messages"} {
			if strings.Contains(plan, "Seq Scan on "+table) {
				t.Errorf("%s scans %s:\n%s", c.name, table, plan)
			}
		}
		// A time is found among the marks, not by reading a room's entries.
		if c.name == "SelectTimeBounds" && strings.Count(plan, "chat_messages_marks") != 2 {
			t.Errorf("SelectTimeBounds does not look up both bounds in chat_messages_marks:\n%s", plan)
		}
	}
}

// explainNoSeqScan returns the plan of query with sequential scans priced out.
func explainNoSeqScan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	tx, err := s.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context())
	if _, err := tx.Exec(t.Context(), "SET LOCAL enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(t.Context(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatalf("explain %.60q: %v", query, err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("explain %.60q: %v", query, err)
	}
	return plan.String()
}

// TestTimeMarksMigration applies migration 004 to a log stored before it,
// whose times are out of order as the old stamps could leave them: the
// room's time_from must become the seq after its head and last_at its latest
// time, so that the next entry is stamped after every older one, and the
// index of every entry's time must give way to the marks.
func TestTimeMarksMigration(t *testing.T) {
	pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	s := New(pgdbtest.MustFreshSchema(t))
	if err := pgdb.Migrate(t.Context(), s.pool, "chat", storetest.MigrationsBefore(t, Migrations, "004")); err != nil {
		t.Fatal(err)
	}
	latest := storetest.FillOlderLog(t, s, execSQL)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate() = %v", err)
	}
	var timeFrom, lastAt int64
	var created, marks bool
	err := s.pool.QueryRow(t.Context(), `SELECT time_from, last_at,
		to_regclass('chat_messages_created') IS NOT NULL, to_regclass('chat_messages_marks') IS NOT NULL
		FROM chat_rooms WHERE id = 'older'`).Scan(&timeFrom, &lastAt, &created, &marks)
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckOlderLogMigrated(t, s, latest, timeFrom, lastAt, created, marks)
}

// TestRememberedHeadsAcrossNodes runs two stores on one database, as two
// nodes, appending to the same rooms: rounds of concurrent appends on one
// node (whose later batches commit onto the heads it remembers, in one
// statement), rounds on the other in between (so that the first node's
// remembered heads go stale), rounds on both at once, and a membership change
// on the second node that an older decision on the first must not survive.
// Every append is answered once, as alone; the logs hold exactly what was
// acknowledged, in chains that verify; and the first node did take both the
// remembered path and the stale one.
func TestRememberedHeadsAcrossNodes(t *testing.T) {
	pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	a, b := twoNodes(t)
	ctx := t.Context()
	rooms := []chat.RoomID{"r1", "r2", "r3"}
	members := []chat.MemberRef{{User: "u.alice", Unit: "u1", Role: chat.Owner}, {User: "u.bob", Unit: "u1", Role: chat.Member}}
	for _, id := range rooms {
		mustCreateGroup(t, a, id, members)
	}
	head := func(id chat.RoomID) chat.Seq {
		r, err := a.Room(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r.Head
	}
	acked := map[chat.RoomID]int{}
	var mu sync.Mutex
	// round posts n appends to every room on each of nodes at once, decided
	// as the roles are, as of the rooms' heads when it starts unless asOf
	// says otherwise; refused says which senders' appends must be refused.
	round := func(name string, nodes []*Store, n int, asOf map[chat.RoomID]chat.Seq, refused map[acl.UserID]bool) {
		t.Helper()
		if asOf == nil {
			asOf = map[chat.RoomID]chat.Seq{}
			for _, id := range rooms {
				asOf[id] = head(id)
			}
		}
		var wg sync.WaitGroup
		for _, s := range nodes {
			for _, id := range rooms {
				for i := range n {
					wg.Go(func() {
						user, role := acl.UserID("u.alice"), chat.Owner
						if i%3 == 1 {
							user, role = "u.bob", chat.Member
						}
						m := chat.Message{Room: id, Kind: chat.Text, Sender: user, SenderUnit: "u1", Body: fmt.Sprint(name, " ", i), Countable: true}
						_, err := s.Append(chat.WithSenderRole(ctx, role, asOf[id]), &m, 0)
						switch {
						case refused[user] && !errors.Is(err, chat.ErrRoleChanged):
							t.Errorf("%s: %s's append to %s = %v, want ErrRoleChanged", name, user, id, err)
						case !refused[user] && err != nil:
							t.Errorf("%s: %s's append to %s: %v", name, user, id, err)
						case err == nil:
							mu.Lock()
							acked[id]++
							mu.Unlock()
						}
					})
				}
			}
		}
		wg.Wait()
	}
	for i := range 4 {
		round(fmt.Sprint("a", i), []*Store{a}, 30, nil, nil)
	}
	if a.known.Load() == 0 {
		t.Fatalf("node a committed no batch onto remembered heads in four rounds")
	}
	round("b", []*Store{b}, 5, nil, nil)
	round("a after b", []*Store{a}, 30, nil, nil)
	if a.stale.Load() == 0 {
		t.Errorf("node a found no remembered head stale after node b appended to every room")
	}
	for i := range 3 {
		round(fmt.Sprint("both ", i), []*Store{a, b}, 20, nil, nil)
	}
	// Node b removes bob from every room; node a's decisions made before that
	// must have bob's appends refused, alice's stored.
	before := map[chat.RoomID]chat.Seq{}
	for _, id := range rooms {
		before[id] = head(id)
		rm := chat.Message{Room: id, Kind: chat.MemberRemove, Sender: "u.alice", SenderUnit: "u1",
			Payload: mustPayload(t, chat.MembersChanged{Members: []chat.MemberRef{{User: "u.bob"}}})}
		if _, err := b.Append(ctx, &rm, 0); err != nil {
			t.Fatal(err)
		}
	}
	round("a, bob removed", []*Store{a}, 30, before, map[acl.UserID]bool{"u.bob": true})
	for _, id := range rooms {
		// Entry 1 created the room and the last removed bob.
		if got, want := head(id), chat.Seq(acked[id]+2); got != want {
			t.Errorf("room %s: head %d, want %d (1 + %d acknowledged + 1)", id, got, want, acked[id])
		}
		if err := chat.VerifyRoom(ctx, a, id); err != nil {
			t.Errorf("room %s does not verify: %v", id, err)
		}
	}
	t.Logf("node a: %d batches onto remembered heads, %d stale rooms", a.known.Load(), a.stale.Load())
}

// TestRememberedBatchWithAStaleRoomAndRepeats commits one batch by hand whose
// first room's remembered head has gone stale (another node appended) and
// whose second room holds a post and its retry under the same client id: the
// stale room's entry must be committed by the locked path, the post once, and
// the retry answered with the post as a repeat.
func TestRememberedBatchWithAStaleRoomAndRepeats(t *testing.T) {
	pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	a, b := twoNodes(t)
	ctx := t.Context()
	members := []chat.MemberRef{{User: "u.alice", Unit: "u1", Role: chat.Owner}, {User: "u.bob", Unit: "u1", Role: chat.Member}}
	post := func(s *Store, room chat.RoomID, body, cid string) *chat.Message {
		m := &chat.Message{Room: room, Kind: chat.Text, Sender: "u.bob", SenderUnit: "u1", Body: body, ClientID: cid, Countable: true}
		if _, err := s.Append(ctx, m, 0); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, id := range []chat.RoomID{"ra", "rb"} {
		mustCreateGroup(t, a, id, members)
		post(a, id, "first", "") // node a remembers the head
	}
	post(b, "ra", "from node b", "") // a's remembered head of ra is stale now

	pending := func(room chat.RoomID, body, cid string) *chatsql.Pending {
		return &chatsql.Pending{Ctx: ctx, M: &chat.Message{Room: room, Kind: chat.Text, Sender: "u.bob", SenderUnit: "u1",
			Body: body, ClientID: cid, Countable: true}}
	}
	batch := []*chatsql.Pending{pending("ra", "to the stale room", ""), pending("rb", "posted", "c1"), pending("rb", "posted", "c1")}
	known, stale := a.known.Load(), a.stale.Load()
	a.commitPlain(ctx, batch)
	if a.stale.Load() != stale+1 || a.known.Load() != known+1 {
		t.Errorf("the batch went %d times onto remembered heads with %d stale rooms, want 1 and 1",
			a.known.Load()-known, a.stale.Load()-stale)
	}
	for i, p := range batch {
		if p.Err != nil {
			t.Fatalf("entry %d: %v", i, p.Err)
		}
	}
	if batch[0].M.Seq != 4 || batch[0].Dup {
		t.Errorf("the stale room's entry: seq %d, dup %v; want 4 (after node b's 3), false", batch[0].M.Seq, batch[0].Dup)
	}
	if batch[1].M.Seq != 3 || batch[1].Dup || !batch[2].Dup || batch[2].M.Seq != 3 || batch[2].M.Hash == nil {
		t.Errorf("the post and its retry: seqs %d, %d, dups %v, %v; want 3, 3, false, true",
			batch[1].M.Seq, batch[2].M.Seq, batch[1].Dup, batch[2].Dup)
	}
	for _, id := range []chat.RoomID{"ra", "rb"} {
		if err := chat.VerifyRoom(ctx, a, id); err != nil {
			t.Errorf("room %s does not verify: %v", id, err)
		}
	}
	if r, err := a.Room(ctx, "rb"); err != nil || r.Head != 3 {
		t.Errorf("room rb's head %d (%v), want 3: the retry stored once", r.Head, err)
	}
}

// twoNodes returns two stores on one fresh schema, as two nodes of one
// deployment: each with its own pool, commit lanes and remembered heads.
func twoNodes(t *testing.T) (*Store, *Store) {
	t.Helper()
	url := pgdbtest.URLWithSchema(t)
	node := func() *Store {
		pool, err := pgxpool.New(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s := New(pool)
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	return node(), node()
}

// mustCreateGroup creates group room id on s, owned by unit u1, with members.
func mustCreateGroup(t *testing.T, s *Store, id chat.RoomID, members []chat.MemberRef) {
	t.Helper()
	room := chat.Room{ID: id, Kind: chat.GroupRoom, Name: string(id), OwnerUnit: "u1", Region: "150000", CreatedBy: "u.alice"}
	create := chat.Message{Room: id, Kind: chat.RoomCreate, Sender: "u.alice", SenderUnit: "u1",
		Payload: mustPayload(t, chat.RoomCreated{Kind: chat.GroupRoom, Name: string(id), OwnerUnit: "u1", Region: "150000", Members: members})}
	if err := s.CreateRoom(t.Context(), room, &create); err != nil {
		t.Fatal(err)
	}
}
