package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"caseroom/acl"
	"caseroom/chat"
	"caseroom/chat/chatsql"
)

// concurrentAppendsMixedOutcomes runs many appends at once, as a store that
// commits them in groups sees them: posts to open rooms, posts to an archived
// room and to a room that does not exist, stale ifHeads, edits, and the same
// client id sent several times at once. Each append must get its own answer,
// exactly what it would get alone; the logs must chain; and the commit hooks
// (chat.WithCommitHook) of a room must be called in seq order, once per new
// entry, before Append returns.
func concurrentAppendsMixedOutcomes(t *testing.T, s chat.Store) {
	rooms := []chat.RoomID{"r0", "r1", "r2"}
	for _, r := range rooms {
		mustCreate(t, s, r, ref(alice, chat.Owner), ref(bob, ""))
	}
	mustCreate(t, s, "shut", ref(alice, chat.Owner), ref(bob, ""))
	// A post stored before the room was archived, whose retries (the client
	// lost the answer) come in with the others: each is answered with it.
	early := text("shut", bob, "before the archive")
	early.ClientID = "early"
	early = mustAppend(t, s, early, 0)
	mustAppend(t, s, event("shut", chat.RoomArchive, chat.RoomArchived{Archived: true}), 0)
	target := mustPost(t, s, "r0", bob, "to be edited")

	var hookMu sync.Mutex
	hooked := map[chat.RoomID][]chat.Seq{}
	hook := func(m *chat.Message) {
		hookMu.Lock()
		hooked[m.Room] = append(hooked[m.Room], m.Seq)
		hookMu.Unlock()
	}

	type commitStats interface{ CommitStats() chatsql.GroupStats }
	var before chatsql.GroupStats
	if cs, ok := s.(commitStats); ok {
		before = cs.CommitStats()
	}
	const writers, posts = 40, 15
	type outcome struct {
		m        chat.Message
		dup      bool
		err      error
		hookSeen bool
	}
	got := make([][]outcome, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range posts {
				var m chat.Message
				var ifHead chat.Seq
				switch {
				case i == 6 && w%2 == 0:
					m = text("shut", bob, "before the archive")
					m.ClientID = "early"
				case i%5 == 1:
					m = text("shut", bob, fmt.Sprintf("w%d p%d to an archived room", w, i))
				case i%5 == 2 && w%4 == 0:
					m = text("nowhere", bob, fmt.Sprintf("w%d p%d to no room", w, i))
				case i%5 == 3:
					m = text(rooms[w%len(rooms)], bob, fmt.Sprintf("w%d p%d stale", w, i))
					ifHead = 1 // long gone
				case i == 4 && w%8 == 0:
					m = chat.Message{Room: "r0", Kind: chat.Edit, Sender: bob, SenderUnit: unitOf[bob], Target: target.Seq, Body: fmt.Sprintf("edit by w%d", w)}
				default:
					m = text(rooms[(w+i)%len(rooms)], bob, fmt.Sprintf("w%d p%d", w, i))
					if i%5 == 4 {
						m.ClientID = fmt.Sprintf("same-%d", i) // sent by every writer at once
						m.Room = "r1"
					}
				}
				seen := false
				ctx := chat.WithCommitHook(t.Context(), func(e *chat.Message) { seen = true; hook(e) })
				dup, err := s.Append(ctx, &m, ifHead)
				got[w] = append(got[w], outcome{m: m, dup: dup, err: err, hookSeen: seen})
			}
		})
	}
	wg.Wait()
	if cs, ok := s.(commitStats); ok {
		after := cs.CommitStats()
		batches, entries := after.Batches-before.Batches, after.Entries-before.Entries
		if entries != writers*posts || batches == 0 || batches > entries || after.Committing <= before.Committing {
			t.Errorf("CommitStats moved by %d batches, %d entries, %v; want %d entries, in at least one batch and at most one each, and some time",
				batches, entries, after.Committing-before.Committing, writers*posts)
		}
	}

	// The entry each client id stored: the one answer that is not a dup.
	byClient := map[string]chat.Message{}
	for _, os := range got {
		for _, o := range os {
			if o.err == nil && !o.dup && o.m.ClientID != "" {
				if prior, ok := byClient[o.m.ClientID]; ok {
					t.Errorf("client id %s stored twice: as %d and %d", o.m.ClientID, prior.Seq, o.m.Seq)
				}
				byClient[o.m.ClientID] = o.m
			}
		}
	}
	stored := map[chat.RoomID]map[chat.Seq]chat.Message{}
	for w, os := range got {
		for i, o := range os {
			name := fmt.Sprintf("writer %d append %d (%s in %s)", w, i, o.m.Kind, o.m.Room)
			switch {
			case o.m.Room == "shut" && o.m.ClientID == "early":
				if o.err != nil || !o.dup {
					t.Errorf("%s: a retry of a post stored before the archive = dup %v, %v; want it answered with that post", name, o.dup, o.err)
				} else if d := sameEntry(o.m, early); d != "" {
					t.Errorf("%s: a retry of a post stored before the archive answered %s", name, d)
				}
			case o.m.Room == "shut":
				if !errors.Is(o.err, chat.ErrArchived) {
					t.Errorf("%s = %v, want chat.ErrArchived", name, o.err)
				}
			case o.m.Room == "nowhere":
				if !errors.Is(o.err, chat.ErrNotFound) {
					t.Errorf("%s = %v, want chat.ErrNotFound", name, o.err)
				}
			case i%5 == 3:
				if !errors.Is(o.err, chat.ErrConflict) {
					t.Errorf("%s with a stale ifHead = %v, want chat.ErrConflict", name, o.err)
				}
			case o.err != nil:
				t.Errorf("%s = %v, want nil", name, o.err)
			case o.m.ClientID != "" && o.dup:
				if d := sameEntry(o.m, byClient[o.m.ClientID]); d != "" {
					t.Errorf("%s: client id %s answered %s, want the entry it stored", name, o.m.ClientID, d)
				}
			}
			if o.err != nil || o.dup {
				if o.hookSeen {
					t.Errorf("%s: the commit hook was called for an append that stored nothing", name)
				}
				continue
			}
			if stored[o.m.Room] == nil {
				stored[o.m.Room] = map[chat.Seq]chat.Message{}
			}
			if prior, ok := stored[o.m.Room][o.m.Seq]; ok {
				t.Errorf("%s got seq %d, as did %q", name, o.m.Seq, prior.Body)
			}
			stored[o.m.Room][o.m.Seq] = o.m
		}
	}
	for i := 4; i < posts; i += 5 {
		if _, ok := byClient[fmt.Sprintf("same-%d", i)]; !ok {
			t.Errorf("client id same-%d: no append stored it", i)
		}
	}
	for _, r := range rooms {
		all := mustAll(t, s, r)
		for _, m := range all {
			if m.Seq <= 1 || (r == "r0" && m.Seq == target.Seq) {
				continue
			}
			want, ok := stored[r][m.Seq]
			if !ok {
				t.Errorf("History(%s) has entry %d that no Append returned", r, m.Seq)
				continue
			}
			if d := sameEntry(m, want); d != "" {
				t.Errorf("History(%s) entry %d: %s (as Append returned it)", r, m.Seq, d)
			}
		}
		mustVerify(t, s, r)
		var want []chat.Seq
		for seq := range stored[r] {
			want = append(want, seq)
		}
		slices.Sort(want)
		hookMu.Lock()
		h := slices.Clone(hooked[r])
		hookMu.Unlock()
		if !slices.Equal(h, want) {
			t.Errorf("commit hooks of %s ran for seqs %v, want %v in this order", r, h, want)
		}
	}
	if m := mustMessage(t, s, "r0", target.Seq); m.Edited == 0 {
		t.Errorf("Message(r0, %d).Edited = 0 after concurrent edits, want the latest edit's seq", target.Seq)
	}
}

// roomAccessAgrees checks RoomAccess against Room and Membership: for a
// member, a non-member, a removed member and a missing room.
func roomAccessAgrees(t *testing.T, s chat.Store) {
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, chat.Moderator), ref(carol, ""))
	mustAppend(t, s, event("r1", chat.MemberRemove, chat.MembersChanged{Members: []chat.MemberRef{ref(carol, "")}}), 0)
	mustPost(t, s, "r1", bob, "hello")
	want := mustRoom(t, s, "r1")
	for _, u := range []acl.UserID{alice, bob, carol, dave} {
		r, m, err := s.RoomAccess(t.Context(), "r1", u)
		if err != nil {
			t.Errorf("RoomAccess(r1, %s) = %v, want nil", u, err)
			continue
		}
		if r != want {
			t.Errorf("RoomAccess(r1, %s) room = %+v, want %+v as Room has it", u, r, want)
		}
		wm, err := s.Membership(t.Context(), "r1", u)
		if errors.Is(err, chat.ErrNotFound) {
			wm = chat.Membership{}
		} else if err != nil {
			t.Fatalf("Membership(r1, %s) = %v", u, err)
		}
		if m != wm {
			t.Errorf("RoomAccess(r1, %s) membership = %+v, want %+v as Membership has it", u, m, wm)
		}
	}
	if _, _, err := s.RoomAccess(t.Context(), "nowhere", alice); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("RoomAccess(nowhere) = %v, want chat.ErrNotFound", err)
	}
}

// memberHeadsAgree checks MemberHeads against Memberships and Room.
func memberHeadsAgree(t *testing.T, s chat.Store) {
	mustCreate(t, s, "r1", ref(alice, chat.Owner), ref(bob, ""))
	mustCreate(t, s, "r2", ref(bob, chat.Owner))
	mustCreate(t, s, "r3", ref(alice, chat.Owner), ref(bob, ""))
	mustPost(t, s, "r1", bob, "one")
	mustPost(t, s, "r1", alice, "two")
	mustAppend(t, s, event("r3", chat.MemberRemove, chat.MembersChanged{Members: []chat.MemberRef{ref(bob, "")}}), 0)
	for _, u := range []acl.UserID{alice, bob, dave} {
		got, err := s.MemberHeads(t.Context(), u)
		if err != nil {
			t.Fatalf("MemberHeads(%s) = %v", u, err)
		}
		ms, err := s.Memberships(t.Context(), u)
		if err != nil {
			t.Fatalf("Memberships(%s) = %v", u, err)
		}
		var want []chat.RoomHead
		for _, m := range ms {
			want = append(want, chat.RoomHead{Room: m.Room, Head: mustHead(t, s, m.Room)})
		}
		if !slices.Equal(got, want) {
			t.Errorf("MemberHeads(%s) = %v, want %v", u, got, want)
		}
	}
}

// senderRoleCheckedAtCommit: an append whose caller names the sender role it
// decided on (chat.WithSenderRole) is stored only if the sender has that role
// in the room at commit ("" for none); otherwise nothing is stored and the
// answer is chat.ErrRoleChanged. Appends alone and many at once (a store that
// commits in groups checks each entry of a batch) get the same answers; an
// append without a role is not checked.
func senderRoleCheckedAtCommit(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r", ref(alice, chat.Owner), ref(bob, chat.Member))
	// Decisions made on a read of the room as of an unknown head: every one
	// must have its role checked.
	as := func(role chat.RoomRole) context.Context { return chat.WithSenderRole(ctx, role, 0) }

	m := text("r", bob, "as a member")
	if _, err := s.Append(as(chat.Member), &m, 0); err != nil {
		t.Fatalf("bob, a member, appending as member: %v", err)
	}
	for _, c := range []struct {
		who  acl.UserID
		role chat.RoomRole
	}{{bob, chat.Moderator}, {bob, ""}, {carol, chat.Member}, {alice, chat.Member}} {
		head := mustHead(t, s, "r")
		m := text("r", c.who, "wrong role")
		_, err := s.Append(as(c.role), &m, 0)
		checkErr(t, fmt.Sprintf("%s appending as %q", c.who, c.role), err, chat.ErrRoleChanged)
		if got := mustHead(t, s, "r"); got != head {
			t.Errorf("%s appending as %q moved the head %d → %d", c.who, c.role, head, got)
		}
	}
	m = text("r", carol, "a non-member, as none")
	if _, err := s.Append(as(""), &m, 0); err != nil {
		t.Errorf("carol, no member, appending as none: %v", err)
	}
	m = text("r", carol, "no role named")
	if _, err := s.Append(ctx, &m, 0); err != nil {
		t.Errorf("carol appending with no role named: %v", err)
	}

	// Bob is removed; then many appends at once, half naming his old role.
	mustAppend(t, s, event("r", chat.MemberRemove, chat.MembersChanged{Members: []chat.MemberRef{ref(bob, "")}}), 0)
	head := mustHead(t, s, "r")
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m := text("r", alice, fmt.Sprint("alice ", i))
			role := chat.Owner
			if i%2 == 1 {
				m = text("r", bob, fmt.Sprint("bob ", i))
				role = chat.Member
			}
			_, errs[i] = s.Append(as(role), &m, 0)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 1 {
			checkErr(t, fmt.Sprintf("removed bob's append %d", i), err, chat.ErrRoleChanged)
		} else if err != nil {
			t.Errorf("alice's append %d: %v", i, err)
		}
	}
	if got, want := mustHead(t, s, "r"), head+n/2; got != want {
		t.Errorf("head %d after the concurrent appends, want %d (alice's only)", got, want)
	}
	mustVerify(t, s, "r")
}

// senderDecisionsAsOfHeads: appends whose callers name the head their
// decision was made at (chat.SenderDecision.AsOf) are stored when no entry
// since that head changed the room's members — a store may then take the
// role as decided without reading it — and checked against the role at
// commit when one did. Rounds of concurrent appends, so that a store that
// commits in groups and remembers heads takes both of its paths, with
// membership changes between them: every append of a round decided before a
// change whose sender's role it changed is refused, every other is stored
// once, in a chain that verifies.
func senderDecisionsAsOfHeads(t *testing.T, s chat.Store) {
	ctx := t.Context()
	mustCreate(t, s, "r", ref(alice, chat.Owner), ref(bob, chat.Member), ref(carol, chat.Member))
	roles := map[acl.UserID]chat.RoomRole{alice: chat.Owner, bob: chat.Member, carol: chat.Member}
	changes := []chat.Message{
		event("r", chat.MemberAdd, chat.MembersChanged{Members: []chat.MemberRef{ref(dave, "")}}),
		event("r", chat.MemberRole, chat.MembersChanged{Members: []chat.MemberRef{ref(carol, chat.Moderator)}}),
		event("r", chat.MemberRemove, chat.MembersChanged{Members: []chat.MemberRef{ref(bob, "")}}),
	}
	stored := 0
	for round := range 2 * len(changes) {
		asOf := mustHead(t, s, "r")
		decided := maps.Clone(roles) // the roles as of asOf
		// Every other round a membership changes after the decisions.
		if round%2 == 1 {
			c := changes[round/2]
			mustAppend(t, s, c, 0)
			var mc chat.MembersChanged
			if err := json.Unmarshal(c.Payload, &mc); err != nil {
				t.Fatal(err)
			}
			for _, m := range mc.Members {
				switch c.Kind {
				case chat.MemberRemove:
					delete(roles, m.User)
				default:
					roles[m.User] = chatsql.RoleOrMember(m.Role)
				}
			}
		}
		senders := slices.Sorted(maps.Keys(decided))
		const n = 48
		errs := make([]error, n)
		who := make([]acl.UserID, n)
		var wg sync.WaitGroup
		for i := range n {
			who[i] = senders[i%len(senders)]
			wg.Go(func() {
				m := text("r", who[i], fmt.Sprintf("round %d post %d", round, i))
				_, errs[i] = s.Append(chat.WithSenderRole(ctx, decided[who[i]], asOf), &m, 0)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if roles[who[i]] == decided[who[i]] {
				if err != nil {
					t.Errorf("round %d: %s's append %d, decided as %q at %d, still so: %v", round, who[i], i, decided[who[i]], asOf, err)
				}
				stored++
				continue
			}
			checkErr(t, fmt.Sprintf("round %d: %s's append %d, decided as %q at %d, now %q", round, who[i], i, decided[who[i]], asOf, roles[who[i]]),
				err, chat.ErrRoleChanged)
		}
	}
	if got, want := mustHead(t, s, "r"), chat.Seq(1+len(changes)+stored); got != want {
		t.Errorf("head %d after the rounds, want %d (1 + %d changes + %d posts)", got, want, len(changes), stored)
	}
	mustVerify(t, s, "r")
}
