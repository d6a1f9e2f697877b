// Package storetest checks any chat.Store against the contract chat needs of it,
// so that the SQLite and PostgreSQL stores answer alike (STYLE.md §6). Each
// backend's store_test.go calls Run with a constructor of fresh, migrated stores
// and a way to run SQL past the store, which the tamper tests need.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/chat"
)

// Exec runs one SQL statement on the database under s, past the store, as an
// intruder with database access would. Statements use $1, $2… placeholders,
// which PostgreSQL and modernc.org/sqlite both accept, and only SQL the two
// dialects share. Exec fails t if the statement fails.
type Exec func(t *testing.T, s chat.Store, query string, args ...any)

// Run runs the conformance suite. Every subtest gets its own store from
// newStore: migrated, empty, and released when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) chat.Store, exec Exec) {
	tests := []struct {
		name string
		run  func(t *testing.T, s chat.Store)
	}{
		{"CreateRoomMakesMembers", createRoomMakesMembers},
		{"SeqsHaveNoGaps", seqsHaveNoGaps},
		{"ConcurrentAppendsNeverShareASeq", concurrentAppendsNeverShareASeq},
		{"ConcurrentAppendsMixedOutcomes", concurrentAppendsMixedOutcomes},
		{"SenderRoleCheckedAtCommit", senderRoleCheckedAtCommit},
		{"SenderDecisionsAsOfHeads", senderDecisionsAsOfHeads},
		{"RoomAccessAgrees", roomAccessAgrees},
		{"MemberHeadsAgree", memberHeadsAgree},
		{"ClientIDIsIdempotent", clientIDIsIdempotent},
		{"IfHeadConflict", ifHeadConflict},
		{"ArchivedRoomRefusesPosts", archivedRoomRefusesPosts},
		{"InvalidInputStoresNothing", invalidInputStoresNothing},
		{"ReadBackRehashesExactly", readBackRehashesExactly},
		{"EditAndRetractSetDerivedFields", editAndRetractSetDerivedFields},
		{"VersionsListEdits", versionsListEdits},
		{"HistoryAfterBeforeAndTime", historyAfterBeforeAndTime},
		{"HistoryLimitIsCapped", historyLimitIsCapped},
		{"StampsNeverGoBack", stampsNeverGoBack},
		{"HistoryByTimeFindsEveryEntry", historyByTimeFindsEveryEntry},
		{"RoomsOfUnreadAndOrder", roomsOfUnreadAndOrder},
		{"MarkReadIsMonotonic", markReadIsMonotonic},
		{"MembershipEffects", membershipEffects},
		{"BlobRoundTripAndRoomScope", blobRoundTripAndRoomScope},
		{"BlobHashMismatchRefused", blobHashMismatchRefused},
		{"UnknownRoomNotFound", unknownRoomNotFound},
		{"Ping", ping},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
	tamper := []struct {
		name string
		run  func(t *testing.T, s chat.Store, exec Exec)
	}{
		{"TamperUpdateBody", tamperUpdateBody},
		{"TamperUpdateAnyHashedColumn", tamperUpdateAnyHashedColumn},
		{"TamperDeleteEntry", tamperDeleteEntry},
		{"TamperInsertForgedEntry", tamperInsertForgedEntry},
		{"TamperReorderEntries", tamperReorderEntries},
		{"HistoryByTimeOverOlderEntries", historyByTimeOverOlderEntries},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			if exec == nil {
				t.Fatal("storetest.Run was given no Exec: the tamper tests cannot run")
			}
			tc.run(t, newStore(t), exec)
		})
	}
}

// The people and units of the fixtures.
const (
	alice acl.UserID = "alice"
	bob   acl.UserID = "bob"
	carol acl.UserID = "carol"
	dave  acl.UserID = "dave"

	unitA acl.UnitID = "150000-committee"
	unitB acl.UnitID = "150100-police"
	unitC acl.UnitID = "150100-procuratorate"
	unitD acl.UnitID = "150100-court"

	region acl.RegionCode = "150000"
)

var unitOf = map[acl.UserID]acl.UnitID{alice: unitA, bob: unitB, carol: unitC, dave: unitD}

// base is when the fixtures with fixed times happen.
var base = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// ref is user as a member with role ("" for the default).
func ref(user acl.UserID, role chat.RoomRole) chat.MemberRef {
	return chat.MemberRef{User: user, Unit: unitOf[user], Role: role}
}

// newRoom returns a group room owned by unitA and the entry that opens it,
// created by alice, naming members.
func newRoom(id chat.RoomID, kind chat.RoomKind, members ...chat.MemberRef) (chat.Room, *chat.Message) {
	r := chat.Room{ID: id, Kind: kind, Name: "room " + string(id), OwnerUnit: unitA, Region: region, CreatedBy: alice}
	created := &chat.Message{
		Room: id, Kind: chat.RoomCreate, Sender: alice, SenderUnit: unitA,
		Payload: mustJSON(chat.RoomCreated{Kind: kind, Name: r.Name, OwnerUnit: unitA, Region: region, Members: members}),
	}
	return r, created
}

// mustCreate creates a group room with members and returns its entry 1.
func mustCreate(t *testing.T, s chat.Store, id chat.RoomID, members ...chat.MemberRef) chat.Message {
	t.Helper()
	return mustCreateAt(t, s, id, time.Time{}, members...)
}

// mustCreateAt creates a group room whose entry 1 is stored at at (now if zero).
func mustCreateAt(t *testing.T, s chat.Store, id chat.RoomID, at time.Time, members ...chat.MemberRef) chat.Message {
	t.Helper()
	r, created := newRoom(id, chat.GroupRoom, members...)
	created.CreatedAt = at
	if err := s.CreateRoom(t.Context(), r, created); err != nil {
		t.Fatalf("CreateRoom(%s) = %v, want nil", id, err)
	}
	return *created
}

// text is a countable text message of sender in room.
func text(room chat.RoomID, sender acl.UserID, body string) chat.Message {
	return chat.Message{Room: room, Kind: chat.Text, Sender: sender, SenderUnit: unitOf[sender], Body: body, Countable: true}
}

// event is an entry of kind with payload v, posted by alice, not countable.
func event(room chat.RoomID, kind chat.Kind, v any) chat.Message {
	return chat.Message{Room: room, Kind: kind, Sender: alice, SenderUnit: unitA, Payload: mustJSON(v)}
}

// mustAppend appends m and returns it as stored.
func mustAppend(t *testing.T, s chat.Store, m chat.Message, ifHead chat.Seq) chat.Message {
	t.Helper()
	dup, err := s.Append(t.Context(), &m, ifHead)
	if err != nil || dup {
		t.Fatalf("Append(%s, %s %q, ifHead %d) = %v, %v; want false, nil", m.Room, m.Kind, m.Body, ifHead, dup, err)
	}
	return m
}

// mustPost appends a text message of sender and returns it as stored.
func mustPost(t *testing.T, s chat.Store, room chat.RoomID, sender acl.UserID, body string) chat.Message {
	t.Helper()
	return mustAppend(t, s, text(room, sender, body), 0)
}

// mustPostAt appends a text message stored at at.
func mustPostAt(t *testing.T, s chat.Store, room chat.RoomID, sender acl.UserID, body string, at time.Time) chat.Message {
	t.Helper()
	m := text(room, sender, body)
	m.CreatedAt = at
	return mustAppend(t, s, m, 0)
}

// mustRoom returns room as stored.
func mustRoom(t *testing.T, s chat.Store, id chat.RoomID) chat.Room {
	t.Helper()
	r, err := s.Room(t.Context(), id)
	if err != nil {
		t.Fatalf("Room(%s) = %v, want nil", id, err)
	}
	return r
}

// mustHead returns the head of room.
func mustHead(t *testing.T, s chat.Store, id chat.RoomID) chat.Seq {
	t.Helper()
	return mustRoom(t, s, id).Head
}

// mustMessage returns an entry.
func mustMessage(t *testing.T, s chat.Store, room chat.RoomID, seq chat.Seq) chat.Message {
	t.Helper()
	m, err := s.Message(t.Context(), room, seq)
	if err != nil {
		t.Fatalf("Message(%s, %d) = %v, want nil", room, seq, err)
	}
	return m
}

// mustHistory returns a page of room's log.
func mustHistory(t *testing.T, s chat.Store, room chat.RoomID, q chat.HistoryQuery) []chat.Message {
	t.Helper()
	ms, err := s.History(t.Context(), room, q)
	if err != nil {
		t.Fatalf("History(%s, %+v) = %v, want nil", room, q, err)
	}
	return ms
}

// mustAll returns room's whole log, page by page.
func mustAll(t *testing.T, s chat.Store, room chat.RoomID) []chat.Message {
	t.Helper()
	var all []chat.Message
	for {
		var after chat.Seq
		if len(all) > 0 {
			after = all[len(all)-1].Seq
		}
		page := mustHistory(t, s, room, chat.HistoryQuery{After: after, Limit: chat.MaxPage})
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
	}
}

// mustVerify checks room's chain.
func mustVerify(t *testing.T, s chat.Store, room chat.RoomID) {
	t.Helper()
	if err := chat.VerifyRoom(t.Context(), s, room); err != nil {
		t.Fatalf("VerifyRoom(%s) = %v, want nil", room, err)
	}
}

// checkRehash checks that m, as a store returned it, hashes to its Hash.
func checkRehash(t *testing.T, call string, m chat.Message) {
	t.Helper()
	if got := audit.Next(m.Prev, m.Canonical()); !bytes.Equal(got, m.Hash) {
		t.Errorf("%s: entry %d does not re-hash to its Hash: canonical %s", call, m.Seq, m.Canonical())
	}
}

// checkErr checks that err wraps want.
func checkErr(t *testing.T, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", call, err, want)
	}
}

func seqs(ms []chat.Message) []chat.Seq {
	out := make([]chat.Seq, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

// span returns the seqs from..to.
func span(from, to chat.Seq) []chat.Seq {
	var out []chat.Seq
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("storetest: marshal %T: %v", v, err))
	}
	return b
}

// sameEntry reports how got differs from want in what the hash covers and the
// chain fields, or "" when it does not.
func sameEntry(got, want chat.Message) string {
	switch {
	case !bytes.Equal(got.Canonical(), want.Canonical()):
		return fmt.Sprintf("canonical %s, want %s", got.Canonical(), want.Canonical())
	case !bytes.Equal(got.Prev, want.Prev):
		return fmt.Sprintf("prev %x, want %x", got.Prev, want.Prev)
	case !bytes.Equal(got.Hash, want.Hash):
		return fmt.Sprintf("hash %x, want %x", got.Hash, want.Hash)
	}
	return ""
}

func createRoomMakesMembers(t *testing.T, s chat.Store) {
	ctx := t.Context()
	r, created := newRoom("r1", chat.GroupRoom, ref(alice, chat.Owner), ref(bob, ""))
	if err := s.CreateRoom(ctx, r, created); err != nil {
		t.Fatalf("CreateRoom(r1) = %v, want nil", err)
	}
	if created.Seq != 1 || created.Prev != nil || created.CreatedAt.IsZero() {
		t.Errorf("CreateRoom(r1) filled seq %d, prev %x, created %v; want 1, nil, now", created.Seq, created.Prev, created.CreatedAt)
	}
	if want := audit.Next(nil, created.Canonical()); !bytes.Equal(created.Hash, want) {
		t.Errorf("CreateRoom(r1) filled hash %x, want %x", created.Hash, want)
	}
	got := mustRoom(t, s, "r1")
	want := r
	want.CreatedAt, want.Head, want.LastAt = created.CreatedAt, 1, created.CreatedAt
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.LastAt.Equal(want.LastAt) {
		t.Errorf("Room(r1) created %v, last %v; want both %v", got.CreatedAt, got.LastAt, created.CreatedAt)
	}
	got.CreatedAt, got.LastAt, want.CreatedAt, want.LastAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Errorf("Room(r1) = %+v, want %+v", got, want)
	}
	first := mustMessage(t, s, "r1", 1)
	if d := sameEntry(first, *created); d != "" || first.Kind != chat.RoomCreate {
		t.Errorf("Message(r1, 1): kind %s, %s; want room.create as CreateRoom filled it", first.Kind, d)
	}

	members, err := s.Members(ctx, "r1")
	wantMembers := []chat.Membership{
		{Room: "r1", User: alice, Unit: unitA, Role: chat.Owner, Since: 1},
		{Room: "r1", User: bob, Unit: unitB, Role: chat.Member, Since: 1},
	}
	if err != nil || !slices.Equal(members, wantMembers) {
		t.Errorf("Members(r1) = %+v, %v; want %+v, nil", members, err, wantMembers)
	}
	if m, err := s.Membership(ctx, "r1", bob); err != nil || m != wantMembers[1] {
		t.Errorf("Membership(r1, bob) = %+v, %v; want %+v, nil", m, err, wantMembers[1])
	}
	_, err = s.Membership(ctx, "r1", carol)
	checkErr(t, "Membership(r1, carol)", err, chat.ErrNotFound)
	if ms, err := s.Memberships(ctx, alice); err != nil || !slices.Equal(ms, wantMembers[:1]) {
		t.Errorf("Memberships(alice) = %+v, %v; want %+v, nil", ms, err, wantMembers[:1])
	}

	// The same id again is refused and changes nothing.
	r2, again := newRoom("r1", chat.GroupRoom, ref(carol, chat.Owner))
	checkErr(t, "CreateRoom(r1) again", s.CreateRoom(ctx, r2, again), chat.ErrExists)
	if head := mustHead(t, s, "r1"); head != 1 {
		t.Errorf("Room(r1).Head after a second CreateRoom = %d, want 1", head)
	}
	_, err = s.Membership(ctx, "r1", carol)
	checkErr(t, "Membership(r1, carol) after a second CreateRoom", err, chat.ErrNotFound)

	// One unit room per unit.
	u1, c1 := newRoom("unit-a-inbox", chat.UnitRoom)
	if err := s.CreateRoom(ctx, u1, c1); err != nil {
		t.Fatalf("CreateRoom(unit room of %s) = %v, want nil", unitA, err)
	}
	u2, c2 := newRoom("unit-a-inbox-2", chat.UnitRoom)
	checkErr(t, "CreateRoom(second unit room of "+string(unitA)+")", s.CreateRoom(ctx, u2, c2), chat.ErrExists)
	_, err = s.Room(ctx, "unit-a-inbox-2")
	checkErr(t, "Room(unit-a-inbox-2)", err, chat.ErrNotFound)
	if got, err := s.UnitRoom(ctx, unitA); err != nil || got.ID != "unit-a-inbox" {
		t.Errorf("UnitRoom(%s) = %s, %v; want unit-a-inbox, nil", unitA, got.ID, err)
	}
	_, err = s.UnitRoom(ctx, unitB)
	checkErr(t, "UnitRoom(unitB) before it has one", err, chat.ErrNotFound)
	u3, c3 := newRoom("unit-b-inbox", chat.UnitRoom)
	u3.OwnerUnit = unitB
	c3.Payload = mustJSON(chat.RoomCreated{Kind: chat.UnitRoom, Name: u3.Name, OwnerUnit: unitB, Region: region})
	if err := s.CreateRoom(ctx, u3, c3); err != nil {
		t.Errorf("CreateRoom(unit room of %s) = %v, want nil", unitB, err)
	}

	// A room whose first entry does not describe it is refused.
	bad, badCreated := newRoom("bad", chat.GroupRoom)
	badCreated.Kind = chat.Text
	checkErr(t, "CreateRoom(bad) opened by a text entry", s.CreateRoom(ctx, bad, badCreated), chat.ErrInvalid)
	bad, badCreated = newRoom("bad", chat.GroupRoom)
	bad.Name = "another name"
	checkErr(t, "CreateRoom(bad) named otherwise in its payload", s.CreateRoom(ctx, bad, badCreated), chat.ErrInvalid)
	bad, badCreated = newRoom("bad", chat.GroupRoom)
	bad.Archived = true
	checkErr(t, "CreateRoom(bad) archived", s.CreateRoom(ctx, bad, badCreated), chat.ErrInvalid)
	bad, badCreated = newRoom("bad", chat.GroupRoom)
	badCreated.Room = "elsewhere"
	checkErr(t, "CreateRoom(bad) opened by an entry of another room", s.CreateRoom(ctx, bad, badCreated), chat.ErrInvalid)
	_, err = s.Room(ctx, "bad")
	checkErr(t, "Room(bad)", err, chat.ErrNotFound)

	// Times the caller gives are kept, in microseconds.
	at := base.Add(1234567 * time.Nanosecond)
	r4, c4 := newRoom("r4", chat.GroupRoom)
	r4.CreatedAt, c4.CreatedAt = at, at
	if err := s.CreateRoom(ctx, r4, c4); err != nil {
		t.Fatalf("CreateRoom(r4) = %v, want nil", err)
	}
	wantAt := at.Truncate(time.Microsecond)
	if got := mustRoom(t, s, "r4"); !got.CreatedAt.Equal(wantAt) || !got.LastAt.Equal(wantAt) || !c4.CreatedAt.Equal(wantAt) {
		t.Errorf("CreateRoom(r4 at %v): room created %v, last %v, entry %v; want all %v", at, got.CreatedAt, got.LastAt, c4.CreatedAt, wantAt)
	}
}

func seqsHaveNoGaps(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, ""))
	for i := range 10 {
		m := mustPost(t, s, "r1", bob, fmt.Sprintf("post %d", i))
		if want := chat.Seq(i + 2); m.Seq != want {
			t.Errorf("Append(r1, post %d) seq = %d, want %d", i, m.Seq, want)
		}
		// Refused appends take no seq.
		stale := text("r1", bob, "stale")
		_, err := s.Append(ctx, &stale, 1)
		checkErr(t, "Append(r1, ifHead 1)", err, chat.ErrConflict)
		edit := text("r1", bob, "edit of nothing")
		edit.Kind, edit.Target = chat.Edit, 999
		_, err = s.Append(ctx, &edit, 0)
		checkErr(t, "Append(r1, edit of 999)", err, chat.ErrInvalid)
	}
	all := mustAll(t, s, "r1")
	if got, want := seqs(all), span(1, 11); !slices.Equal(got, want) {
		t.Fatalf("History(r1) seqs = %v, want %v", got, want)
	}
	for i, m := range all {
		if i > 0 && !bytes.Equal(m.Prev, all[i-1].Hash) {
			t.Errorf("History(r1): entry %d prev %x, want the hash of entry %d, %x", m.Seq, m.Prev, all[i-1].Seq, all[i-1].Hash)
		}
		checkRehash(t, "History(r1)", m)
	}
	if head := mustHead(t, s, "r1"); head != 11 {
		t.Errorf("Room(r1).Head = %d, want 11", head)
	}
	mustVerify(t, s, "r1")
}

func concurrentAppendsNeverShareASeq(t *testing.T, s chat.Store) {
	const (
		writers = 50
		posts   = 20
	)
	rooms := []chat.RoomID{"r0", "r1", "r2"}
	for _, r := range rooms {
		mustCreate(t, s, r, ref(alice, chat.Owner), ref(bob, ""))
	}
	got := make([][]chat.Message, writers) // got[w] is what writer w stored
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range posts {
				m := text(rooms[(w+i)%len(rooms)], bob, fmt.Sprintf("writer %d post %d", w, i))
				if _, err := s.Append(t.Context(), &m, 0); err != nil {
					t.Errorf("Append(%s, writer %d post %d) = %v, want nil", m.Room, w, i, err)
					return
				}
				got[w] = append(got[w], m)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	stored := map[chat.RoomID]map[chat.Seq]chat.Message{}
	for _, r := range rooms {
		stored[r] = map[chat.Seq]chat.Message{}
	}
	for _, ms := range got {
		for _, m := range ms {
			if prior, ok := stored[m.Room][m.Seq]; ok {
				t.Errorf("Append gave %q and %q the same seq %d in %s", prior.Body, m.Body, m.Seq, m.Room)
			}
			stored[m.Room][m.Seq] = m
		}
	}
	for _, r := range rooms {
		n := chat.Seq(len(stored[r]) + 1)
		all := mustAll(t, s, r)
		if got, want := seqs(all), span(1, n); !slices.Equal(got, want) {
			t.Errorf("History(%s) seqs = %v, want %v", r, got, want)
			continue
		}
		for _, m := range all[1:] {
			if d := sameEntry(m, stored[r][m.Seq]); d != "" {
				t.Errorf("History(%s) entry %d: %s (as Append returned it)", r, m.Seq, d)
			}
		}
		if head := mustHead(t, s, r); head != n {
			t.Errorf("Room(%s).Head = %d, want %d", r, head, n)
		}
		mustVerify(t, s, r)
	}
}

func clientIDIsIdempotent(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, ""))
	m := text("r1", alice, "first")
	m.ClientID = "c-1"
	first := mustAppend(t, s, m, 0)

	again := text("r1", alice, "second try, other body")
	again.ClientID = "c-1"
	dup, err := s.Append(ctx, &again, 0)
	if err != nil || !dup {
		t.Fatalf("Append(r1, client id c-1 again) = %v, %v; want true, nil", dup, err)
	}
	if d := sameEntry(again, first); d != "" || again.Seq != first.Seq {
		t.Errorf("Append(r1, client id c-1 again) filled seq %d, %s; want the first entry, %d", again.Seq, d, first.Seq)
	}
	if head := mustHead(t, s, "r1"); head != first.Seq {
		t.Errorf("Room(r1).Head after a repeated client id = %d, want %d", head, first.Seq)
	}

	// A repeat is reported as such even when the room has moved on.
	mustPost(t, s, "r1", bob, "moving on")
	late := text("r1", alice, "late retry")
	late.ClientID = "c-1"
	dup, err = s.Append(ctx, &late, first.Seq)
	if err != nil || !dup || late.Seq != first.Seq {
		t.Errorf("Append(r1, client id c-1, stale ifHead %d) = %v, %v, seq %d; want true, nil, %d", first.Seq, dup, err, late.Seq, first.Seq)
	}

	// Client ids are the sender's own.
	other := text("r1", bob, "bob's")
	other.ClientID = "c-1"
	if got := mustAppend(t, s, other, 0); got.Seq == first.Seq {
		t.Errorf("Append(r1, bob, client id c-1) seq = %d, the seq of alice's c-1", got.Seq)
	}

	// Concurrent repeats store one entry, and every caller gets it.
	const n = 20
	head := mustHead(t, s, "r1")
	results := make([]chat.Message, n)
	dups := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m := text("r1", alice, fmt.Sprintf("racer %d", i))
			m.ClientID = "c-2"
			d, err := s.Append(t.Context(), &m, 0)
			if err != nil {
				t.Errorf("Append(r1, client id c-2, racer %d) = %v, want nil", i, err)
			}
			results[i], dups[i] = m, d
		})
	}
	wg.Wait()
	stored := 0
	for i := range n {
		if !dups[i] {
			stored++
		}
		if d := sameEntry(results[i], results[0]); d != "" {
			t.Errorf("Append(r1, client id c-2): racer %d got %s (racer 0's)", i, d)
		}
	}
	if stored != 1 {
		t.Errorf("Append(r1, client id c-2) × %d stored %d entries, want 1", n, stored)
	}
	if got := mustHead(t, s, "r1"); got != head+1 {
		t.Errorf("Room(r1).Head after %d racing repeats = %d, want %d", n, got, head+1)
	}

	// Even in an archived room.
	mustAppend(t, s, event("r1", chat.RoomArchive, chat.RoomArchived{Archived: true}), 0)
	archived := text("r1", alice, "retry after archive")
	archived.ClientID = "c-1"
	dup, err = s.Append(ctx, &archived, 0)
	if err != nil || !dup || archived.Seq != first.Seq {
		t.Errorf("Append(archived r1, client id c-1) = %v, %v, seq %d; want true, nil, %d", dup, err, archived.Seq, first.Seq)
	}
	mustVerify(t, s, "r1")
}

func ifHeadConflict(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner))
	if got := mustAppend(t, s, text("r1", alice, "on 1"), 1); got.Seq != 2 {
		t.Errorf("Append(r1, ifHead 1) seq = %d, want 2", got.Seq)
	}
	stale := text("r1", alice, "also on 1")
	dup, err := s.Append(ctx, &stale, 1)
	checkErr(t, "Append(r1, ifHead 1) at head 2", err, chat.ErrConflict)
	if dup || stale.Seq != 0 || stale.Hash != nil {
		t.Errorf("Append(r1, ifHead 1) at head 2 reported dup %v and filled seq %d, hash %x; want false, 0, nil", dup, stale.Seq, stale.Hash)
	}
	if head := mustHead(t, s, "r1"); head != 2 {
		t.Errorf("Room(r1).Head after a conflict = %d, want 2", head)
	}
	if got := mustAppend(t, s, text("r1", alice, "on 2"), 2); got.Seq != 3 {
		t.Errorf("Append(r1, ifHead 2) seq = %d, want 3", got.Seq)
	}
	mustVerify(t, s, "r1")
}

func archivedRoomRefusesPosts(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, ""))
	mustAppend(t, s, event("r1", chat.RoomArchive, chat.RoomArchived{Archived: true}), 0)
	if !mustRoom(t, s, "r1").Archived {
		t.Fatal("Room(r1).Archived after room.archive = false, want true")
	}
	for _, m := range []chat.Message{
		text("r1", bob, "too late"),
		event("r1", chat.MemberAdd, chat.MembersChanged{Members: []chat.MemberRef{ref(carol, "")}}),
		event("r1", chat.RoomRename, chat.RoomRenamed{Name: "renamed"}),
		event("r1", chat.RoomArchive, chat.RoomArchived{Archived: true}),
	} {
		_, err := s.Append(ctx, &m, 0)
		checkErr(t, fmt.Sprintf("Append(archived r1, %s)", m.Kind), err, chat.ErrArchived)
	}
	if head := mustHead(t, s, "r1"); head != 2 {
		t.Errorf("Room(r1).Head after refused posts = %d, want 2", head)
	}
	mustAppend(t, s, event("r1", chat.RoomArchive, chat.RoomArchived{Archived: false}), 0)
	if mustRoom(t, s, "r1").Archived {
		t.Error("Room(r1).Archived after bringing it back = true, want false")
	}
	if got := mustPost(t, s, "r1", bob, "back again"); got.Seq != 4 {
		t.Errorf("Append(r1) after bringing it back: seq %d, want 4", got.Seq)
	}
	mustVerify(t, s, "r1")
}

func invalidInputStoresNothing(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, ""))
	mustPost(t, s, "r1", bob, "hello")
	withPayload := func(kind chat.Kind, payload string) chat.Message {
		m := event("r1", kind, nil)
		m.Payload = json.RawMessage(payload)
		return m
	}
	withText := func(edit func(m *chat.Message)) chat.Message {
		m := text("r1", bob, "fine")
		edit(&m)
		return m
	}
	for _, tc := range []struct {
		name string
		m    chat.Message
	}{
		{"member.add payload not JSON", withPayload(chat.MemberAdd, `{"members":`)},
		{"member.add payload null", withPayload(chat.MemberAdd, `null`)},
		{"member.add no payload", withPayload(chat.MemberAdd, ``)},
		{"member.add nobody", withPayload(chat.MemberAdd, `{"members":[]}`)},
		{"member.add without unit", withPayload(chat.MemberAdd, `{"members":[{"user":"carol"}]}`)},
		{"member.add unknown role", withPayload(chat.MemberAdd, `{"members":[{"user":"carol","unit":"u","role":"king"}]}`)},
		{"member.add twice in one", withPayload(chat.MemberAdd, `{"members":[{"user":"carol","unit":"u"},{"user":"carol","unit":"u"}]}`)},
		{"member.role without role", withPayload(chat.MemberRole, `{"members":[{"user":"bob"}]}`)},
		{"member.remove of a non-member", withPayload(chat.MemberRemove, `{"members":[{"user":"dave"}]}`)},
		{"member.remove of a member and a non-member", withPayload(chat.MemberRemove, `{"members":[{"user":"bob"},{"user":"dave"}]}`)},
		{"unit.add nothing", withPayload(chat.UnitAdd, `{"units":[]}`)},
		{"room.rename to nothing", withPayload(chat.RoomRename, `{"name":"  "}`)},
		{"room.archive without payload", withPayload(chat.RoomArchive, ``)},
		{"second room.create", withPayload(chat.RoomCreate, string(mustJSON(chat.RoomCreated{Kind: chat.GroupRoom, Name: "x"})))},
		{"edit of nothing", withText(func(m *chat.Message) { m.Kind, m.Target = chat.Edit, 0 })},
		{"edit of the room.create", withText(func(m *chat.Message) { m.Kind, m.Target = chat.Edit, 1 })},
		{"retract of a missing entry", withText(func(m *chat.Message) { m.Kind, m.Target = chat.Retract, 99 })},
		{"no kind", withText(func(m *chat.Message) { m.Kind = "" })},
		{"body not UTF-8", withText(func(m *chat.Message) { m.Body = "bad \xff byte" })},
		{"body with NUL", withText(func(m *chat.Message) { m.Body = "nul \x00 byte" })},
		{"mention not UTF-8", withText(func(m *chat.Message) { m.Mentions = []acl.UserID{"\xfe"} })},
		{"client id not UTF-8", withText(func(m *chat.Message) { m.ClientID = "\xfe" })},
	} {
		m := tc.m
		dup, err := s.Append(ctx, &m, 0)
		checkErr(t, "Append(r1, "+tc.name+")", err, chat.ErrInvalid)
		if dup || m.Seq != 0 {
			t.Errorf("Append(r1, %s) reported dup %v, seq %d; want false, 0", tc.name, dup, m.Seq)
		}
	}
	if head := mustHead(t, s, "r1"); head != 2 {
		t.Errorf("Room(r1).Head after refused entries = %d, want 2", head)
	}
	if ms, err := s.Members(ctx, "r1"); err != nil || len(ms) != 2 {
		t.Errorf("Members(r1) after refused entries = %+v, %v; want alice and bob", ms, err)
	}
	mustVerify(t, s, "r1")
}

func readBackRehashesExactly(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, ""))
	msg := func(edit func(m *chat.Message)) chat.Message {
		m := text("r1", bob, "plain")
		edit(&m)
		return m
	}
	cases := []struct {
		name string
		m    chat.Message
	}{
		{"zero occurred_at, no mentions, no payload", msg(func(m *chat.Message) {})},
		{"empty mentions", msg(func(m *chat.Message) { m.Mentions = []acl.UserID{} })},
		{"mentions in the order given", msg(func(m *chat.Message) { m.Mentions = []acl.UserID{carol, alice, "<script>&"} })},
		{"payload bytes kept as given", msg(func(m *chat.Message) {
			m.Kind = "casework.transfer"
			m.Payload = json.RawMessage("{\"z\": 1,  \"a\" : [3, 2,1], \"\u4e2d\":\"\\u6587\"}\n")
		})},
		{"payload null", msg(func(m *chat.Message) { m.Payload = json.RawMessage("null") })},
		{"payload not JSON", msg(func(m *chat.Message) { m.Payload = json.RawMessage("not json") })},
		{"occurred_at in nanoseconds", msg(func(m *chat.Message) { m.OccurredAt = base.Add(-36*time.Hour + 987654321) })},
		{"created_at given in nanoseconds", msg(func(m *chat.Message) { m.CreatedAt = time.Now().Add(123456789) })},
		{"every field", msg(func(m *chat.Message) {
			m.ClientID, m.ReplyTo, m.Target = "client-7", 2, 0
			m.Body = "移送审查起诉 \U0001F4CE \"quoted\" \\ <b>"
			m.Mentions = []acl.UserID{alice}
			m.OccurredAt = base.In(time.FixedZone("CST", 8*3600))
		})},
	}
	for _, tc := range cases {
		stored := mustAppend(t, s, tc.m, 0)
		call := "Append(r1, " + tc.name + ")"
		checkRehash(t, call, stored)
		if !stored.CreatedAt.Equal(stored.CreatedAt.Truncate(time.Microsecond)) {
			t.Errorf("%s filled created_at %v, want whole microseconds", call, stored.CreatedAt)
		}
		got := mustMessage(t, s, "r1", stored.Seq)
		call = fmt.Sprintf("Message(r1, %d) (%s)", stored.Seq, tc.name)
		checkRehash(t, call, got)
		if d := sameEntry(got, stored); d != "" {
			t.Errorf("%s: %s (as Append returned it)", call, d)
		}
		if len(tc.m.Payload) > 0 && !bytes.Equal(got.Payload, tc.m.Payload) {
			t.Errorf("%s payload = %q, want the bytes given, %q", call, got.Payload, tc.m.Payload)
		}
		if len(tc.m.Payload) == 0 && len(got.Payload) != 0 {
			t.Errorf("%s payload = %q, want none", call, got.Payload)
		}
		if !slices.Equal(got.Mentions, tc.m.Mentions) && len(got.Mentions)+len(tc.m.Mentions) > 0 {
			t.Errorf("%s mentions = %q, want %q", call, got.Mentions, tc.m.Mentions)
		}
		if got.OccurredAt.IsZero() != tc.m.OccurredAt.IsZero() || !got.OccurredAt.Equal(tc.m.OccurredAt.Truncate(time.Microsecond)) {
			t.Errorf("%s occurred_at = %v, want %v in microseconds", call, got.OccurredAt, tc.m.OccurredAt)
		}
		if got.Countable != tc.m.Countable || got.ClientID != tc.m.ClientID || got.Body != tc.m.Body {
			t.Errorf("%s countable %v, client id %q, body %q; want %v, %q, %q", call, got.Countable, got.ClientID, got.Body, tc.m.Countable, tc.m.ClientID, tc.m.Body)
		}
	}
	for _, m := range mustAll(t, s, "r1") {
		checkRehash(t, "History(r1)", m)
	}
	links, err := s.Chain(ctx, "r1", 0, chat.MaxPage)
	if err != nil || len(links) != len(cases)+1 {
		t.Fatalf("Chain(r1, 0) = %d links, %v; want %d, nil", len(links), err, len(cases)+1)
	}
	for _, l := range links {
		m := mustMessage(t, s, "r1", l.Seq)
		if !bytes.Equal(l.Canonical, m.Canonical()) || !bytes.Equal(l.Hash, m.Hash) || !bytes.Equal(l.Prev, m.Prev) {
			t.Errorf("Chain(r1, 0) link %d = %s, want the canonical bytes, prev and hash of Message(r1, %d)", l.Seq, l.Canonical, l.Seq)
		}
	}
	mustVerify(t, s, "r1")
}

func editAndRetractSetDerivedFields(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, ""))
	orig := mustPost(t, s, "r1", bob, "draft") // 2
	attachment := chat.Message{Room: "r1", Kind: chat.File, Sender: bob, SenderUnit: unitB, Countable: true,
		Payload: mustJSON(chat.FileRef{SHA256: "00", Name: "a.pdf", Size: 1, Type: "application/pdf"})}
	file := mustAppend(t, s, attachment, 0) // 3
	edit := func(target chat.Seq, body string) chat.Message {
		m := text("r1", bob, body)
		m.Kind, m.Target, m.Countable = chat.Edit, target, false
		return m
	}
	retract := func(target chat.Seq) chat.Message {
		m := text("r1", bob, "")
		m.Kind, m.Target, m.Countable = chat.Retract, target, false
		return m
	}
	e1 := mustAppend(t, s, edit(orig.Seq, "better"), 0) // 4
	if got := mustMessage(t, s, "r1", orig.Seq); got.Edited != e1.Seq || got.Retracted != 0 {
		t.Errorf("Message(r1, %d) after one edit: edited %d, retracted %d; want %d, 0", orig.Seq, got.Edited, got.Retracted, e1.Seq)
	}
	e2 := mustAppend(t, s, edit(orig.Seq, "best"), 0) // 5
	if got := mustMessage(t, s, "r1", orig.Seq); got.Edited != e2.Seq {
		t.Errorf("Message(r1, %d) after two edits: edited %d, want %d", orig.Seq, got.Edited, e2.Seq)
	}
	_, err := s.Append(ctx, ptr(edit(file.Seq, "files have no text")), 0)
	checkErr(t, "Append(r1, edit of a file)", err, chat.ErrInvalid)
	_, err = s.Append(ctx, ptr(edit(e1.Seq, "edit of an edit")), 0)
	checkErr(t, "Append(r1, edit of an edit)", err, chat.ErrInvalid)

	r := mustAppend(t, s, retract(orig.Seq), 0) // 6
	got := mustMessage(t, s, "r1", orig.Seq)
	if got.Edited != e2.Seq || got.Retracted != r.Seq {
		t.Errorf("Message(r1, %d) after retraction: edited %d, retracted %d; want %d, %d", orig.Seq, got.Edited, got.Retracted, e2.Seq, r.Seq)
	}
	if got.Body != "draft" {
		t.Errorf("Message(r1, %d) body after edits and retraction = %q, want the original, \"draft\"", orig.Seq, got.Body)
	}
	checkRehash(t, "Message(r1) after edits and retraction", got)
	_, err = s.Append(ctx, ptr(edit(orig.Seq, "after retraction")), 0)
	checkErr(t, "Append(r1, edit of a retracted message)", err, chat.ErrInvalid)
	_, err = s.Append(ctx, ptr(retract(orig.Seq)), 0)
	checkErr(t, "Append(r1, second retraction)", err, chat.ErrInvalid)
	_, err = s.Append(ctx, ptr(retract(1)), 0)
	checkErr(t, "Append(r1, retraction of the room.create)", err, chat.ErrInvalid)
	fr := mustAppend(t, s, retract(file.Seq), 0) // 7
	if got := mustMessage(t, s, "r1", file.Seq); got.Retracted != fr.Seq || got.Edited != 0 {
		t.Errorf("Message(r1, %d) (file) after retraction: edited %d, retracted %d; want 0, %d", file.Seq, got.Edited, got.Retracted, fr.Seq)
	}
	for _, seq := range []chat.Seq{e1.Seq, e2.Seq, r.Seq} {
		if got := mustMessage(t, s, "r1", seq); got.Edited != 0 || got.Retracted != 0 || got.Countable {
			t.Errorf("Message(r1, %d) (an edit or retraction): edited %d, retracted %d, countable %v; want 0, 0, false", seq, got.Edited, got.Retracted, got.Countable)
		}
	}
	if head := mustHead(t, s, "r1"); head != 7 {
		t.Errorf("Room(r1).Head = %d, want 7", head)
	}
	mustVerify(t, s, "r1")
}

func versionsListEdits(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, ""))
	orig := mustPost(t, s, "r1", bob, "v1") // 2
	edit := func(body string) chat.Message {
		m := text("r1", bob, body)
		m.Kind, m.Target, m.Countable = chat.Edit, orig.Seq, false
		return m
	}
	e1 := mustAppend(t, s, edit("v2"), 0) // 3
	other := mustPost(t, s, "r1", alice, "unrelated")
	e2 := mustAppend(t, s, edit("v3"), 0) // 5
	vs, err := s.Versions(ctx, "r1", orig.Seq)
	if err != nil || !slices.Equal(seqs(vs), []chat.Seq{e1.Seq, e2.Seq}) {
		t.Fatalf("Versions(r1, %d) = %v, %v; want seqs %v, nil", orig.Seq, seqs(vs), err, []chat.Seq{e1.Seq, e2.Seq})
	}
	for i, want := range []chat.Message{e1, e2} {
		if d := sameEntry(vs[i], want); d != "" || vs[i].Body != want.Body {
			t.Errorf("Versions(r1, %d)[%d] body %q, %s; want %q", orig.Seq, i, vs[i].Body, d, want.Body)
		}
		checkRehash(t, "Versions(r1)", vs[i])
	}
	if vs, err := s.Versions(ctx, "r1", other.Seq); err != nil || len(vs) != 0 {
		t.Errorf("Versions(r1, %d) of an unedited message = %v, %v; want none, nil", other.Seq, seqs(vs), err)
	}
	_, err = s.Versions(ctx, "r1", 99)
	checkErr(t, "Versions(r1, 99)", err, chat.ErrNotFound)
	_, err = s.Versions(ctx, "nowhere", 1)
	checkErr(t, "Versions(nowhere, 1)", err, chat.ErrNotFound)
}

func historyAfterBeforeAndTime(t *testing.T, s chat.Store) {
	// Entry n is stored at base + n minutes.
	at := func(seq chat.Seq) time.Time { return base.Add(time.Duration(seq) * time.Minute) }
	mustCreateAt(t, s, "r1", at(1), ref(alice, chat.Owner), ref(bob, ""))
	for seq := chat.Seq(2); seq <= 30; seq++ {
		mustPostAt(t, s, "r1", bob, fmt.Sprintf("post %d", seq), at(seq))
	}
	for _, tc := range []struct {
		q    chat.HistoryQuery
		want []chat.Seq
	}{
		{chat.HistoryQuery{After: 10, Limit: 5}, span(11, 15)},
		{chat.HistoryQuery{After: 28, Limit: 5}, span(29, 30)},
		{chat.HistoryQuery{After: 30}, nil},
		{chat.HistoryQuery{Before: 10, Limit: 5}, span(5, 9)},
		{chat.HistoryQuery{Before: 3, Limit: 5}, span(1, 2)},
		{chat.HistoryQuery{Before: 1}, nil},
		{chat.HistoryQuery{After: 10, Before: 13}, span(11, 12)},
		{chat.HistoryQuery{Limit: 5}, span(1, 5)},
		{chat.HistoryQuery{Before: 31, Limit: 5}, span(26, 30)},
		{chat.HistoryQuery{}, span(1, 30)},
		{chat.HistoryQuery{Since: at(10), Until: at(15)}, span(10, 14)},
		{chat.HistoryQuery{Since: at(10), Limit: 3}, span(10, 12)},
		{chat.HistoryQuery{Since: at(10).Add(500 * time.Nanosecond), Limit: 3}, span(11, 13)},
		{chat.HistoryQuery{Until: at(5)}, span(1, 4)},
		{chat.HistoryQuery{Until: at(5).Add(time.Nanosecond)}, span(1, 5)},
		{chat.HistoryQuery{Before: 20, Since: at(10), Limit: 3}, span(17, 19)},
		{chat.HistoryQuery{Before: 20, Until: at(10), Limit: 3}, span(7, 9)},
		{chat.HistoryQuery{After: 20, Since: at(10), Until: at(25)}, span(21, 24)},
		{chat.HistoryQuery{Since: at(31)}, nil},
	} {
		ms := mustHistory(t, s, "r1", tc.q)
		if got := seqs(ms); !slices.Equal(got, tc.want) && len(got)+len(tc.want) > 0 {
			t.Errorf("History(r1, %+v) seqs = %v, want %v", tc.q, got, tc.want)
		}
		for _, m := range ms {
			if !m.CreatedAt.Equal(at(m.Seq)) {
				t.Errorf("History(r1, %+v): entry %d created %v, want %v", tc.q, m.Seq, m.CreatedAt, at(m.Seq))
			}
		}
	}
}

func historyLimitIsCapped(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, ""))
	const n = chat.MaxPage + 20 // entries after the room.create
	for i := range n {
		mustPost(t, s, "r1", bob, fmt.Sprintf("post %d", i))
	}
	last := chat.Seq(n + 1)
	for _, tc := range []struct {
		q    chat.HistoryQuery
		want []chat.Seq
	}{
		{chat.HistoryQuery{}, span(1, 50)},
		{chat.HistoryQuery{Limit: -5}, span(1, 50)},
		{chat.HistoryQuery{Limit: 10 * chat.MaxPage}, span(1, chat.MaxPage)},
		{chat.HistoryQuery{After: 1, Limit: 10 * chat.MaxPage}, span(2, chat.MaxPage+1)},
		{chat.HistoryQuery{After: 1}, span(2, 51)},
		{chat.HistoryQuery{Before: last + 1}, span(last-49, last)},
		{chat.HistoryQuery{Before: last, Limit: 10 * chat.MaxPage}, span(last-chat.MaxPage, last-1)},
	} {
		if got := seqs(mustHistory(t, s, "r1", tc.q)); !slices.Equal(got, tc.want) {
			t.Errorf("History(r1, %+v) = %d entries %v…, want %d entries %v…", tc.q, len(got), got[:min(3, len(got))], len(tc.want), tc.want[:3])
		}
	}
	links, err := s.Chain(ctx, "r1", 0, 10*chat.MaxPage)
	if err != nil || len(links) != chat.MaxPage {
		t.Errorf("Chain(r1, 0, %d) = %d links, %v; want %d, nil", 10*chat.MaxPage, len(links), err, chat.MaxPage)
	}
	if got := seqs(mustAll(t, s, "r1")); !slices.Equal(got, span(1, last)) {
		t.Errorf("History(r1) paged forward from 0 = %d entries, want %d", len(got), last)
	}
	mustVerify(t, s, "r1") // across pages
}

func roomsOfUnreadAndOrder(t *testing.T, s chat.Store) {
	ctx := t.Context()
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	mustCreateAt(t, s, "r-a", at(0), ref(alice, chat.Owner), ref(bob, ""))
	mustCreateAt(t, s, "r-b", at(1), ref(alice, chat.Moderator), ref(bob, ""))
	mustCreateAt(t, s, "r-d", at(2), ref(alice, ""), ref(bob, ""))
	mustCreateAt(t, s, "r-c", at(2), ref(alice, chat.Observer), ref(bob, ""))
	mustCreateAt(t, s, "r-x", at(3), ref(bob, chat.Owner)) // not alice's

	mustPostAt(t, s, "r-a", bob, "a1", at(10))                     // 2
	mustPostAt(t, s, "r-a", bob, "a2", at(11))                     // 3
	mustPostAt(t, s, "r-a", bob, "a3", at(12))                     // 4
	lastA := mustPostAt(t, s, "r-a", alice, "alice's own", at(13)) // 5
	lastB := mustPostAt(t, s, "r-b", bob, "b1", at(20))            // 2
	join := event("r-b", chat.MemberAdd, chat.MembersChanged{Members: []chat.MemberRef{ref(carol, "")}})
	join.CreatedAt = at(21)
	mustAppend(t, s, join, 0) // 3: membership noise is not countable

	type line struct {
		room   chat.RoomID
		role   chat.RoomRole
		unread int
		read   chat.Seq
		last   chat.Seq
	}
	check := func(user acl.UserID, want []line) {
		t.Helper()
		sums, err := s.RoomsOf(ctx, user)
		if err != nil {
			t.Fatalf("RoomsOf(%s) = %v, want nil", user, err)
		}
		var got []line
		for _, sum := range sums {
			l := line{room: sum.Room.ID, role: sum.Role, unread: sum.Unread, read: sum.Read}
			if sum.Last != nil {
				l.last = sum.Last.Seq
				checkRehash(t, "RoomsOf("+string(user)+").Last", *sum.Last)
				if !sum.Last.Countable {
					t.Errorf("RoomsOf(%s): last entry of %s is not countable", user, sum.Room.ID)
				}
			}
			if sum.Room.Head == 0 || sum.Room.Name == "" {
				t.Errorf("RoomsOf(%s): room %+v, want it filled in", user, sum.Room)
			}
			got = append(got, l)
		}
		if !slices.Equal(got, want) {
			t.Errorf("RoomsOf(%s) =\n\t%+v\nwant\n\t%+v", user, got, want)
		}
	}
	check(alice, []line{
		{"r-b", chat.Moderator, 1, 0, lastB.Seq},
		{"r-a", chat.Owner, 3, 0, lastA.Seq},
		{"r-c", chat.Observer, 0, 0, 0},
		{"r-d", chat.Member, 0, 0, 0},
	})
	if _, err := s.MarkRead(ctx, "r-a", alice, 3, at(30)); err != nil {
		t.Fatalf("MarkRead(r-a, alice, 3) = %v, want nil", err)
	}
	// A newcomer does not inherit unread entries from before they joined.
	check(carol, []line{{"r-b", chat.Member, 0, 0, lastB.Seq}})
	newer := mustPostAt(t, s, "r-b", bob, "b2", at(40))
	check(carol, []line{{"r-b", chat.Member, 1, 0, newer.Seq}})
	check(alice, []line{
		{"r-b", chat.Moderator, 2, 0, newer.Seq},
		{"r-a", chat.Owner, 1, 3, lastA.Seq},
		{"r-c", chat.Observer, 0, 0, 0},
		{"r-d", chat.Member, 0, 0, 0},
	})
	if sums, err := s.RoomsOf(ctx, dave); err != nil || len(sums) != 0 {
		t.Errorf("RoomsOf(dave) = %+v, %v; want none, nil", sums, err)
	}
}

func markReadIsMonotonic(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, ""))
	for i := range 4 {
		mustPost(t, s, "r1", bob, fmt.Sprint(i)) // 2..5
	}
	t1, t2, t3 := base, base.Add(time.Minute), base.Add(2*time.Minute)
	for _, tc := range []struct {
		user acl.UserID
		seq  chat.Seq
		at   time.Time
		want chat.Seq
	}{
		{alice, 3, t1, 3},
		{alice, 2, t2, 3},  // never back
		{alice, 99, t3, 5}, // never past the head
		{bob, 0, t1, 0},
		{bob, -7, t2, 0},
		{bob, 4, t3, 4},
	} {
		got, err := s.MarkRead(ctx, "r1", tc.user, tc.seq, tc.at)
		if err != nil || got != tc.want {
			t.Errorf("MarkRead(r1, %s, %d) = %d, %v; want %d, nil", tc.user, tc.seq, got, err, tc.want)
		}
	}
	markers, err := s.ReadMarkers(ctx, "r1")
	want := []chat.ReadMarker{{Room: "r1", User: alice, Seq: 5, At: t3}, {Room: "r1", User: bob, Seq: 4, At: t3}}
	if err != nil || len(markers) != len(want) {
		t.Fatalf("ReadMarkers(r1) = %+v, %v; want %+v, nil", markers, err, want)
	}
	for i := range want {
		if markers[i].Room != want[i].Room || markers[i].User != want[i].User || markers[i].Seq != want[i].Seq || !markers[i].At.Equal(want[i].At) {
			t.Errorf("ReadMarkers(r1)[%d] = %+v, want %+v", i, markers[i], want[i])
		}
	}
	// The time of a marker is when it last moved.
	if _, err := s.MarkRead(ctx, "r1", alice, 4, base.Add(time.Hour)); err != nil {
		t.Fatalf("MarkRead(r1, alice, 4) = %v, want nil", err)
	}
	if markers, err := s.ReadMarkers(ctx, "r1"); err != nil || !markers[0].At.Equal(t3) {
		t.Errorf("ReadMarkers(r1)[0] after a marker that did not move = %+v, %v; want at %v", markers, err, t3)
	}
	_, err = s.MarkRead(ctx, "nowhere", alice, 1, t1)
	checkErr(t, "MarkRead(nowhere, alice, 1)", err, chat.ErrNotFound)
	if empty := mustCreate(t, s, "r2"); empty.Seq != 1 {
		t.Fatalf("CreateRoom(r2) seq %d, want 1", empty.Seq)
	}
	if markers, err := s.ReadMarkers(ctx, "r2"); err != nil || len(markers) != 0 {
		t.Errorf("ReadMarkers(r2) = %+v, %v; want none, nil", markers, err)
	}
}

func membershipEffects(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, ""))
	members := func(v ...chat.MemberRef) chat.MembersChanged { return chat.MembersChanged{Members: v} }
	wantMember := func(call string, user acl.UserID, role chat.RoomRole, since chat.Seq) {
		t.Helper()
		m, err := s.Membership(ctx, "r1", user)
		want := chat.Membership{Room: "r1", User: user, Unit: unitOf[user], Role: role, Since: since}
		if err != nil || m != want {
			t.Errorf("Membership(r1, %s) after %s = %+v, %v; want %+v, nil", user, call, m, err, want)
		}
	}

	add := mustAppend(t, s, event("r1", chat.MemberAdd, members(ref(carol, ""), ref(dave, chat.Observer))), 0)
	wantMember("member.add carol, dave", carol, chat.Member, add.Seq)
	wantMember("member.add carol, dave", dave, chat.Observer, add.Seq)
	mustAppend(t, s, event("r1", chat.MemberAdd, members(ref(bob, chat.Moderator))), 0)
	wantMember("member.add bob as moderator", bob, chat.Moderator, 1)
	mustAppend(t, s, event("r1", chat.MemberAdd, members(ref(bob, ""))), 0)
	wantMember("member.add bob without a role", bob, chat.Moderator, 1)
	mustAppend(t, s, event("r1", chat.MemberRole, members(ref(bob, chat.Observer))), 0)
	wantMember("member.role bob observer", bob, chat.Observer, 1)

	mustAppend(t, s, event("r1", chat.MemberRemove, members(chat.MemberRef{User: carol})), 0)
	_, err := s.Membership(ctx, "r1", carol)
	checkErr(t, "Membership(r1, carol) after member.remove", err, chat.ErrNotFound)
	if ms, err := s.Memberships(ctx, carol); err != nil || len(ms) != 0 {
		t.Errorf("Memberships(carol) after member.remove = %+v, %v; want none, nil", ms, err)
	}
	head := mustHead(t, s, "r1")
	for _, m := range []chat.Message{
		event("r1", chat.MemberRemove, members(chat.MemberRef{User: carol})),
		event("r1", chat.MemberRole, members(ref(carol, chat.Moderator))),
	} {
		_, err := s.Append(ctx, &m, 0)
		checkErr(t, fmt.Sprintf("Append(r1, %s of a non-member)", m.Kind), err, chat.ErrInvalid)
	}
	if got := mustHead(t, s, "r1"); got != head {
		t.Errorf("Room(r1).Head after refused membership changes = %d, want %d", got, head)
	}
	again := mustAppend(t, s, event("r1", chat.MemberAdd, members(ref(carol, ""))), 0)
	wantMember("member.add carol again", carol, chat.Member, again.Seq)

	got, err := s.Members(ctx, "r1")
	wantUsers := []acl.UserID{alice, bob, carol, dave}
	var users []acl.UserID
	for _, m := range got {
		users = append(users, m.User)
	}
	if err != nil || !slices.Equal(users, wantUsers) {
		t.Errorf("Members(r1) users = %v, %v; want %v, nil", users, err, wantUsers)
	}

	if units, err := s.Units(ctx, "r1"); err != nil || len(units) != 0 {
		t.Errorf("Units(r1) before unit.add = %v, %v; want none, nil", units, err)
	}
	mustAppend(t, s, event("r1", chat.UnitAdd, chat.UnitsChanged{Units: []acl.UnitID{unitC, unitB}}), 0)
	mustAppend(t, s, event("r1", chat.UnitAdd, chat.UnitsChanged{Units: []acl.UnitID{unitD, unitC}}), 0)
	wantUnits := []acl.UnitID{unitB, unitC, unitD}
	slices.Sort(wantUnits)
	if units, err := s.Units(ctx, "r1"); err != nil || !slices.Equal(units, wantUnits) {
		t.Errorf("Units(r1) = %v, %v; want %v, nil", units, err, wantUnits)
	}

	mustAppend(t, s, event("r1", chat.RoomRename, chat.RoomRenamed{Name: "专案组"}), 0)
	if r := mustRoom(t, s, "r1"); r.Name != "专案组" {
		t.Errorf("Room(r1).Name after room.rename = %q, want %q", r.Name, "专案组")
	}

	mustCreate(t, s, "r0", ref(bob, chat.Owner))
	r2 := mustCreate(t, s, "r2", ref(bob, chat.Owner))
	add2 := mustAppend(t, s, event("r2", chat.MemberAdd, members(ref(alice, ""))), 0)
	ms, err := s.Memberships(ctx, alice)
	want := []chat.Membership{
		{Room: "r1", User: alice, Unit: unitA, Role: chat.Owner, Since: 1},
		{Room: "r2", User: alice, Unit: unitA, Role: chat.Member, Since: add2.Seq},
	}
	if err != nil || !slices.Equal(ms, want) {
		t.Errorf("Memberships(alice) = %+v, %v; want %+v, nil (r2 opened at %d)", ms, err, want, r2.Seq)
	}
	mustVerify(t, s, "r1")
}

func blobRoundTripAndRoomScope(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner))
	mustCreate(t, s, "r2", ref(alice, chat.Owner))
	content := bytes.Repeat([]byte("起诉意见书 page\x00\xff"), 1000)
	b := blobOf(content, "application/pdf")
	if err := s.PutBlob(ctx, "r1", b, bytes.NewReader(content)); err != nil {
		t.Fatalf("PutBlob(r1, %s) = %v, want nil", b.SHA256[:8], err)
	}
	mustOpen := func(room chat.RoomID) {
		t.Helper()
		got, rc, err := s.OpenBlob(ctx, room, b.SHA256)
		if err != nil {
			t.Fatalf("OpenBlob(%s, %s) = %v, want nil", room, b.SHA256[:8], err)
		}
		defer rc.Close()
		data := new(bytes.Buffer)
		if _, err := data.ReadFrom(rc); err != nil {
			t.Fatalf("OpenBlob(%s, %s): read: %v", room, b.SHA256[:8], err)
		}
		if !bytes.Equal(data.Bytes(), content) {
			t.Errorf("OpenBlob(%s, %s) content is %d bytes, want the %d put", room, b.SHA256[:8], data.Len(), len(content))
		}
		if got.SHA256 != b.SHA256 || got.Size != b.Size || got.Type != b.Type || got.CreatedAt.IsZero() {
			t.Errorf("OpenBlob(%s, %s) = %+v, want %+v with a creation time", room, b.SHA256[:8], got, b)
		}
		if st, err := s.StatBlob(ctx, room, b.SHA256); err != nil || st != got {
			t.Errorf("StatBlob(%s, %s) = %+v, %v; want %+v, nil (what OpenBlob said)", room, b.SHA256[:8], st, err, got)
		}
	}
	mustOpen("r1")
	_, _, err := s.OpenBlob(ctx, "r2", b.SHA256)
	checkErr(t, "OpenBlob(r2, a blob only r1 holds)", err, chat.ErrNotFound)
	_, err = s.StatBlob(ctx, "r2", b.SHA256)
	checkErr(t, "StatBlob(r2, a blob only r1 holds)", err, chat.ErrNotFound)
	if err := s.PutBlob(ctx, "r2", b, bytes.NewReader(content)); err != nil {
		t.Fatalf("PutBlob(r2, the same blob) = %v, want nil", err)
	}
	mustOpen("r2")
	if err := s.PutBlob(ctx, "r1", b, bytes.NewReader(content)); err != nil {
		t.Errorf("PutBlob(r1, the same blob again) = %v, want nil", err)
	}
	empty := blobOf(nil, "text/plain")
	if err := s.PutBlob(ctx, "r1", empty, bytes.NewReader(nil)); err != nil {
		t.Errorf("PutBlob(r1, empty blob) = %v, want nil", err)
	}
	_, _, err = s.OpenBlob(ctx, "r1", blobOf([]byte("never put"), "").SHA256)
	checkErr(t, "OpenBlob(r1, a blob never put)", err, chat.ErrNotFound)
	_, err = s.StatBlob(ctx, "r1", blobOf([]byte("never put"), "").SHA256)
	checkErr(t, "StatBlob(r1, a blob never put)", err, chat.ErrNotFound)
	err = s.PutBlob(ctx, "nowhere", b, bytes.NewReader(content))
	checkErr(t, "PutBlob(nowhere)", err, chat.ErrNotFound)
}

func blobHashMismatchRefused(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner))
	content := []byte("the real content")
	b := blobOf(content, "text/plain")
	for _, tc := range []struct {
		name    string
		b       chat.Blob
		content []byte
	}{
		{"other content", b, []byte("the fake content")},
		{"longer content", b, append(slices.Clone(content), '!')},
		{"shorter content", b, content[:5]},
		{"size smaller than content", chat.Blob{SHA256: b.SHA256, Size: 5, Type: b.Type}, content},
		{"hash in uppercase", chat.Blob{SHA256: upper(b.SHA256), Size: b.Size, Type: b.Type}, content},
		{"hash not hex", chat.Blob{SHA256: "zz" + b.SHA256[2:], Size: b.Size, Type: b.Type}, content},
		{"negative size", chat.Blob{SHA256: b.SHA256, Size: -1, Type: b.Type}, content},
	} {
		err := s.PutBlob(ctx, "r1", tc.b, bytes.NewReader(tc.content))
		checkErr(t, "PutBlob(r1, "+tc.name+")", err, chat.ErrInvalid)
	}
	_, _, err := s.OpenBlob(ctx, "r1", b.SHA256)
	checkErr(t, "OpenBlob(r1) after refused puts", err, chat.ErrNotFound)
}

func unknownRoomNotFound(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r1", ref(alice, chat.Owner))
	const nowhere chat.RoomID = "nowhere"
	m := text(nowhere, alice, "hello?")
	b := blobOf([]byte("x"), "text/plain")
	calls := map[string]func() error{
		"Room":     func() error { _, err := s.Room(ctx, nowhere); return err },
		"UnitRoom": func() error { _, err := s.UnitRoom(ctx, "no-unit"); return err },
		"Append":   func() error { _, err := s.Append(ctx, &m, 0); return err },
		"Message":  func() error { _, err := s.Message(ctx, nowhere, 1); return err },
		"History":  func() error { _, err := s.History(ctx, nowhere, chat.HistoryQuery{}); return err },
		"History by time": func() error {
			_, err := s.History(ctx, nowhere, chat.HistoryQuery{Since: base, Until: base.Add(time.Hour)})
			return err
		},
		"Versions":    func() error { _, err := s.Versions(ctx, nowhere, 1); return err },
		"Chain":       func() error { _, err := s.Chain(ctx, nowhere, 0, 10); return err },
		"Membership":  func() error { _, err := s.Membership(ctx, nowhere, alice); return err },
		"Members":     func() error { _, err := s.Members(ctx, nowhere); return err },
		"Units":       func() error { _, err := s.Units(ctx, nowhere); return err },
		"MarkRead":    func() error { _, err := s.MarkRead(ctx, nowhere, alice, 1, base); return err },
		"ReadMarkers": func() error { _, err := s.ReadMarkers(ctx, nowhere); return err },
		"PutBlob":     func() error { return s.PutBlob(ctx, nowhere, b, bytes.NewReader([]byte("x"))) },
		"OpenBlob":    func() error { _, _, err := s.OpenBlob(ctx, nowhere, b.SHA256); return err },
		"VerifyRoom":  func() error { return chat.VerifyRoom(ctx, s, nowhere) },
		"Message of a seq past the head": func() error {
			_, err := s.Message(ctx, "r1", 2)
			return err
		},
	}
	names := make([]string, 0, len(calls))
	for name := range calls {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		checkErr(t, name+"("+string(nowhere)+")", calls[name](), chat.ErrNotFound)
	}
	if m.Seq != 0 {
		t.Errorf("Append(nowhere) filled seq %d, want 0", m.Seq)
	}
	// An existing room with nothing in a list is no error.
	if ms, err := s.History(ctx, "r1", chat.HistoryQuery{After: 1}); err != nil || len(ms) != 0 {
		t.Errorf("History(r1, after its head) = %v, %v; want none, nil", seqs(ms), err)
	}
	if links, err := s.Chain(ctx, "r1", 1, 10); err != nil || len(links) != 0 {
		t.Errorf("Chain(r1, after its head) = %d links, %v; want none, nil", len(links), err)
	}
}

func ping(t *testing.T, s chat.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping() = %v, want nil", err)
	}
}

func ptr[T any](v T) *T { return &v }

// blobOf describes content as PutBlob wants it.
func blobOf(content []byte, typ string) chat.Blob {
	sum := sha256.Sum256(content)
	return chat.Blob{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)), Type: typ}
}

func upper(s string) string { return strings.ToUpper(s) }
