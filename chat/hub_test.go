package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/sqlitedb"
	"caseroom/chat"
	"caseroom/chat/membroker"
	"caseroom/chat/sqlite"
)

// waitLimit bounds how long a test waits for frames; it only limits a failing
// test and measures nothing.
const waitLimit = 30 * time.Second

func mustStore(t *testing.T) chat.Store {
	t.Helper()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := sqlite.New(db)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// world is a store, a broker and a running hub, with helpers that append and
// publish the way chat.Service does.
type world struct {
	t   *testing.T
	st  chat.Store
	br  chat.Broker
	hub *chat.Hub
}

func newWorld(t *testing.T, br chat.Broker, opts chat.HubOptions) *world {
	t.Helper()
	if br == nil {
		br = membroker.New(0)
	}
	w := &world{t: t, st: mustStore(t), br: br}
	w.hub = chat.NewHub(w.st, br, slog.New(slog.DiscardHandler), opts)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); w.hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran })
	w.waitSubscribed()
	return w
}

// waitSubscribed waits until the hub's subscription delivers: it joins a probe
// user to a probe room and waits for a live typing frame.
func (w *world) waitSubscribed() {
	w.t.Helper()
	room := chat.RoomID("probe")
	w.createRoom(room, "probe")
	s := w.join("probe", nil)
	defer s.Close()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		w.br.Publish(context.Background(), chat.Event{Type: chat.EvTyping, Room: room, User: "x", Data: chat.EncodeTyping(room, "x")})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		for {
			fs, err := s.Next(ctx)
			if err != nil {
				break
			}
			for _, f := range fs {
				if decode(w.t, f).Type == "typing" {
					cancel()
					return
				}
			}
		}
		cancel()
	}
	w.t.Fatal("hub never subscribed")
}

func (w *world) subject(u acl.UserID) acl.Subject {
	return acl.Subject{User: u, Unit: "unit-1", Session: "s-" + string(u)}
}

func (w *world) createRoom(room chat.RoomID, members ...acl.UserID) {
	w.t.Helper()
	refs := make([]chat.MemberRef, len(members))
	for i, u := range members {
		refs[i] = chat.MemberRef{User: u, Unit: "unit-1", Role: chat.Member}
	}
	payload, _ := json.Marshal(chat.RoomCreated{Kind: chat.GroupRoom, Name: string(room), OwnerUnit: "unit-1", Region: "150000", Members: refs})
	m := &chat.Message{Room: room, Kind: chat.RoomCreate, Sender: members[0], SenderUnit: "unit-1", Payload: payload}
	r := chat.Room{ID: room, Kind: chat.GroupRoom, Name: string(room), OwnerUnit: "unit-1", Region: "150000", CreatedBy: members[0]}
	if err := w.st.CreateRoom(context.Background(), r, m); err != nil {
		w.t.Fatalf("CreateRoom %s: %v", room, err)
	}
	w.publish(m)
}

// appendOnly stores an entry without publishing it, as if the broker lost it.
func (w *world) appendOnly(m *chat.Message) {
	w.t.Helper()
	if m.Sender == "" {
		m.Sender, m.SenderUnit = "u-poster", "unit-1"
	}
	if _, err := w.st.Append(context.Background(), m, 0); err != nil {
		w.t.Errorf("Append to %s: %v", m.Room, err)
	}
}

func (w *world) publish(m *chat.Message) {
	ev := chat.Event{Type: chat.EvMessage, Room: m.Room, Seq: m.Seq, Kind: m.Kind, Data: chat.EncodeMessage(m)}
	if m.Kind == chat.MemberAdd || m.Kind == chat.MemberRemove {
		var p chat.MembersChanged
		json.Unmarshal(m.Payload, &p)
		for _, r := range p.Members {
			ev.Users = append(ev.Users, r.User)
		}
	}
	w.br.Publish(context.Background(), ev)
}

func (w *world) post(room chat.RoomID, body string) chat.Seq {
	m := &chat.Message{Room: room, Kind: chat.Text, Body: body}
	w.appendOnly(m)
	w.publish(m)
	return m.Seq
}

func (w *world) members(room chat.RoomID, kind chat.Kind, users ...acl.UserID) chat.Seq {
	w.t.Helper()
	var p chat.MembersChanged
	for _, u := range users {
		p.Members = append(p.Members, chat.MemberRef{User: u, Unit: "unit-1", Role: chat.Member})
	}
	payload, _ := json.Marshal(p)
	m := &chat.Message{Room: room, Kind: kind, Payload: payload}
	w.appendOnly(m)
	w.publish(m)
	return m.Seq
}

func (w *world) join(u acl.UserID, since map[chat.RoomID]chat.Seq) *chat.Session {
	w.t.Helper()
	s, err := w.hub.Join(context.Background(), w.subject(u), since)
	if err != nil {
		w.t.Fatalf("Join %s: %v", u, err)
	}
	return s
}

// frame is any server frame, decoded loosely for the tests' checks.
type frame struct {
	Type    string          `json:"type"`
	Room    chat.RoomID     `json:"room"`
	Seq     chat.Seq        `json:"seq"`
	User    acl.UserID      `json:"user"`
	Rooms   []chat.RoomHead `json:"rooms"`
	Online  []acl.UserID    `json:"online"`
	Offline []acl.UserID    `json:"offline"`
	Message chat.MessageView
}

func decode(t *testing.T, b []byte) frame {
	t.Helper()
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	if f.Type == "message" {
		var m chat.MessageFrame
		json.Unmarshal(b, &m)
		f.Message = m.Message
	}
	return f
}

// reader collects a session's frames and checks per-room order as they come:
// every message frame of a room must carry the next seq after the last one.
type reader struct {
	t      *testing.T
	s      *chat.Session
	mu     sync.Mutex
	frames []frame
	last   map[chat.RoomID]chat.Seq
	more   chan struct{}
	err    error
	done   chan struct{}
}

// read starts reading s; since gives the positions the session resumed from.
func read(t *testing.T, s *chat.Session, since map[chat.RoomID]chat.Seq) *reader {
	r := &reader{t: t, s: s, last: map[chat.RoomID]chat.Seq{}, more: make(chan struct{}, 1), done: make(chan struct{})}
	for k, v := range since {
		r.last[k] = v
	}
	go r.loop()
	t.Cleanup(func() { s.Close(); <-r.done })
	return r
}

func (r *reader) loop() {
	defer close(r.done)
	for {
		fs, err := r.s.Next(context.Background())
		r.mu.Lock()
		if err != nil {
			r.err = err
			r.mu.Unlock()
			r.signal()
			return
		}
		for _, b := range fs {
			f := decode(r.t, b)
			if f.Type == "message" {
				want := r.last[f.Room] + 1
				if f.Seq != want && !(r.last[f.Room] == 0 && f.Message.Kind == chat.MemberAdd) {
					r.t.Errorf("%s: room %s: got seq %d, want %d", r.s.Subject().User, f.Room, f.Seq, want)
				}
				r.last[f.Room] = f.Seq
			}
			if f.Type == "room_removed" {
				delete(r.last, f.Room) // a later add starts afresh
			}
			r.frames = append(r.frames, f)
		}
		r.mu.Unlock()
		r.signal()
	}
}

func (r *reader) signal() {
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// waitFor waits until ok holds for the frames so far, and returns them.
func (r *reader) waitFor(what string, ok func(fs []frame) bool) []frame {
	r.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		fs := slices.Clone(r.frames)
		err := r.err
		r.mu.Unlock()
		if ok(fs) {
			return fs
		}
		if err != nil {
			r.t.Fatalf("%s: session ended (%v) before %s; %d frames", r.s.Subject().User, err, what, len(fs))
		}
		select {
		case <-r.more:
		case <-deadline.C:
			r.mu.Lock()
			last := fmt.Sprint(r.last)
			r.mu.Unlock()
			r.t.Fatalf("%s: not within %v: %s; %d frames, last seqs %s", r.s.Subject().User, waitLimit, what, len(fs), last)
		}
	}
}

func (r *reader) lastSeq(room chat.RoomID) chat.Seq {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[room]
}

func hasSeq(room chat.RoomID, seq chat.Seq) func([]frame) bool {
	return func(fs []frame) bool {
		return slices.ContainsFunc(fs, func(f frame) bool { return f.Type == "message" && f.Room == room && f.Seq >= seq })
	}
}

func hasFrame(typ string, room chat.RoomID) func([]frame) bool {
	return func(fs []frame) bool {
		return slices.ContainsFunc(fs, func(f frame) bool { return f.Type == typ && f.Room == room })
	}
}

func messages(fs []frame, room chat.RoomID) []chat.Seq {
	var out []chat.Seq
	for _, f := range fs {
		if f.Type == "message" && f.Room == room {
			out = append(out, f.Seq)
		}
	}
	return out
}

func seqRange(from, to chat.Seq) []chat.Seq {
	var out []chat.Seq
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestHubReadyThenBacklogThenLive(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{})
	w.createRoom("r1", "alice", "bob")
	for i := range 20 {
		w.post("r1", fmt.Sprint("m", i))
	}
	r := read(t, w.join("alice", map[chat.RoomID]chat.Seq{"r1": 5}), map[chat.RoomID]chat.Seq{"r1": 5})
	fs := r.waitFor("caught_up", hasFrame("caught_up", "r1"))
	if fs[0].Type != "ready" || fs[0].User != "alice" || len(fs[0].Rooms) != 1 || fs[0].Rooms[0] != (chat.RoomHead{Room: "r1", Head: 21}) {
		t.Fatalf("first frame %+v, want ready for alice with r1 at head 21", fs[0])
	}
	if got, want := messages(fs, "r1"), seqRange(6, 21); !slices.Equal(got, want) {
		t.Fatalf("backlog %v, want %v", got, want)
	}
	if last := fs[len(fs)-1]; last.Type != "caught_up" || last.Seq != 21 {
		t.Fatalf("last frame %+v, want caught_up at 21", last)
	}
	seq := w.post("r1", "live")
	r.waitFor("live message", hasSeq("r1", seq))
}

// TestHubResumeWhilePosting resumes sessions while other goroutines keep
// posting: each must see every entry after its since exactly once, in order.
func TestHubResumeWhilePosting(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{Page: 37}) // a small page: many pages, many switch points
	rooms := []chat.RoomID{"a", "b", "c"}
	for _, room := range rooms {
		w.createRoom(room, "alice", "bob", "carol")
		for i := range 150 {
			w.post(room, fmt.Sprint(i))
		}
	}
	stop := make(chan struct{})
	var posters sync.WaitGroup
	final := map[chat.RoomID]chat.Seq{}
	var finalMu sync.Mutex
	for _, room := range rooms {
		posters.Go(func() {
			var last chat.Seq
			for i := 0; ; i++ {
				select {
				case <-stop:
					finalMu.Lock()
					final[room] = last
					finalMu.Unlock()
					return
				default:
				}
				last = w.post(room, fmt.Sprint("live ", i))
			}
		})
	}
	var readers []*reader
	for k, u := range []acl.UserID{"alice", "bob", "carol", "alice", "bob"} {
		since := map[chat.RoomID]chat.Seq{"a": chat.Seq(10 * k), "b": chat.Seq(140 - 10*k)}
		// room "c" is not in since: the whole log.
		readers = append(readers, read(t, w.join(u, since), since))
	}
	for _, r := range readers { // let every resume overlap the posting
		r.waitFor("caught up in a, b and c", func(fs []frame) bool {
			return hasFrame("caught_up", "a")(fs) && hasFrame("caught_up", "b")(fs) && hasFrame("caught_up", "c")(fs)
		})
	}
	close(stop)
	posters.Wait()
	for k, r := range readers {
		for _, room := range rooms {
			fs := r.waitFor(fmt.Sprintf("reader %d: room %s up to %d", k, room, final[room]), hasSeq(room, final[room]))
			from := chat.Seq(1)
			switch room {
			case "a":
				from = chat.Seq(10*k) + 1
			case "b":
				from = chat.Seq(140-10*k) + 1
			}
			if got, want := messages(fs, room), seqRange(from, final[room]); !slices.Equal(got, want) {
				t.Fatalf("reader %d, room %s: %d entries from %v, want %d from %d", k, room, len(got), got[:min(5, len(got))], len(want), from)
			}
		}
	}
}

// TestHubFillsGapFromStore: entries the broker lost come from the store, in
// order, before the event that revealed the gap.
func TestHubFillsGapFromStore(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{})
	w.createRoom("r", "alice")
	r := read(t, w.join("alice", nil), nil)
	r.waitFor("caught up", hasFrame("caught_up", "r"))
	for range 5 {
		w.appendOnly(&chat.Message{Room: "r", Kind: chat.Text, Body: "lost"})
	}
	seq := w.post("r", "seen")
	fs := r.waitFor("the entry after the gap", hasSeq("r", seq))
	if got, want := messages(fs, "r"), seqRange(1, seq); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestHubPerRoomOrder: concurrent posters in several rooms; every session sees
// each room in seq order with nothing missing.
func TestHubPerRoomOrder(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{})
	rooms := []chat.RoomID{"p", "q", "r", "s"}
	users := []acl.UserID{"u1", "u2", "u3", "u4", "u5", "u6"}
	for _, room := range rooms {
		w.createRoom(room, users...)
	}
	var readers []*reader
	for _, u := range users {
		readers = append(readers, read(t, w.join(u, map[chat.RoomID]chat.Seq{"p": 1, "q": 1, "r": 1, "s": 1}), map[chat.RoomID]chat.Seq{"p": 1, "q": 1, "r": 1, "s": 1}))
	}
	var wg sync.WaitGroup
	const n = 200
	for _, room := range rooms {
		for range 2 {
			wg.Go(func() {
				for i := range n {
					w.post(room, fmt.Sprint(i))
				}
			})
		}
	}
	wg.Wait()
	for _, r := range readers {
		for _, room := range rooms {
			fs := r.waitFor("all of "+string(room), hasSeq(room, 1+2*n))
			if got := messages(fs, room); !slices.Equal(got, seqRange(2, 1+2*n)) {
				t.Fatalf("%s, room %s: %d entries, not 2..%d in order", r.s.Subject().User, room, len(got), 1+2*n)
			}
		}
	}
}

// TestHubSlowConsumerIsCutOff: a session that stops reading is ended with
// ErrSlowConsumer; the others in the room keep receiving everything.
func TestHubSlowConsumerIsCutOff(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{SendQueue: 50})
	w.createRoom("r", "fast", "slow")
	fast := read(t, w.join("fast", map[chat.RoomID]chat.Seq{"r": 1}), map[chat.RoomID]chat.Seq{"r": 1})
	slow := w.join("slow", map[chat.RoomID]chat.Seq{"r": 1})
	defer slow.Close()
	fast.waitFor("caught up", hasFrame("caught_up", "r"))
	for caught := false; !caught; { // read the backlog, then stop reading
		fs, err := slow.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			caught = caught || decode(t, f).Type == "caught_up"
		}
	}
	var last chat.Seq
	for i := range 200 {
		last = w.post("r", fmt.Sprint(i))
	}
	select {
	case <-slow.Done():
	case <-time.After(waitLimit):
		t.Fatal("slow session not ended")
	}
	if err := slow.Err(); !errors.Is(err, chat.ErrSlowConsumer) {
		t.Fatalf("slow session ended with %v, want ErrSlowConsumer", err)
	}
	if st := w.hub.Stats(); st.SlowConsumers != 1 || st.Sessions != 2 {
		t.Fatalf("Stats after the cut = %+v, want 1 slow consumer and both sessions still joined (not closed yet)", st)
	}
	if _, err := slow.Next(context.Background()); !errors.Is(err, chat.ErrSlowConsumer) {
		t.Fatalf("Next after the cut: %v", err)
	}
	fs := fast.waitFor("every entry", hasSeq("r", last))
	if got := messages(fs, "r"); !slices.Equal(got, seqRange(2, last)) {
		t.Fatalf("fast session got %d entries, want 2..%d", len(got), last)
	}
}

// TestHubMembershipLive: a user added while connected gets the member.add
// entry and what follows; removed, they get the removal, room_removed, and
// nothing after.
func TestHubMembershipLive(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{})
	w.createRoom("r", "alice")
	w.createRoom("home", "bob")
	w.post("r", "before bob")
	bob := read(t, w.join("bob", nil), nil)
	bob.waitFor("caught up", hasFrame("caught_up", "home"))

	add := w.members("r", chat.MemberAdd, "bob")
	after := w.post("r", "hello bob")
	fs := bob.waitFor("entry after his add", hasSeq("r", after))
	if got := messages(fs, "r"); !slices.Equal(got, []chat.Seq{add, after}) {
		t.Fatalf("bob got %v in r, want [%d %d]", got, add, after)
	}
	w.post("r", "typing next")
	w.br.Publish(context.Background(), chat.Event{Type: chat.EvTyping, Room: "r", User: "alice", Data: chat.EncodeTyping("r", "alice")})
	bob.waitFor("typing in r", hasFrame("typing", "r"))

	rm := w.members("r", chat.MemberRemove, "bob")
	fs = bob.waitFor("room_removed", hasFrame("room_removed", "r"))
	if i := slices.IndexFunc(fs, func(f frame) bool { return f.Type == "room_removed" }); fs[i-1].Seq != rm || fs[i].Seq != rm {
		t.Fatalf("room_removed %+v not right after the removal entry %d", fs[i], rm)
	}
	w.post("r", "bob is gone")
	homeSeq := w.post("home", "marker")
	fs = bob.waitFor("marker in home", hasSeq("home", homeSeq))
	if got := messages(fs, "r"); got[len(got)-1] != rm {
		t.Fatalf("bob got %v in r after his removal at %d", got, rm)
	}
	if rs := bob.s.Rooms(); !slices.Equal(rs, []chat.RoomID{"home"}) {
		t.Fatalf("bob's rooms %v, want [home]", rs)
	}
	// Added again: from the new add on.
	again := w.members("r", chat.MemberAdd, "bob")
	fs = bob.waitFor("re-added", hasSeq("r", again))
	if got := messages(fs, "r"); got[len(got)-1] != again {
		t.Fatalf("bob got %v, want the re-add %d last", got, again)
	}
}

// TestHubMembershipWhileAway: on resume, rooms joined meanwhile are replayed
// whole and rooms left meanwhile are reported removed.
func TestHubMembershipWhileAway(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{})
	w.createRoom("old", "alice", "bob")
	w.createRoom("new", "alice")
	w.post("old", "1")
	w.post("new", "1")
	w.members("new", chat.MemberAdd, "bob")
	w.members("old", chat.MemberRemove, "bob")
	since := map[chat.RoomID]chat.Seq{"old": 2}
	bob := read(t, w.join("bob", since), since)
	fs := bob.waitFor("caught up in new", hasFrame("caught_up", "new"))
	if got := messages(fs, "new"); !slices.Equal(got, []chat.Seq{1, 2, 3}) {
		t.Fatalf("new: got %v, want the whole log 1..3", got)
	}
	if !hasFrame("room_removed", "old")(fs) {
		t.Fatalf("no room_removed for old in %+v", fs)
	}
	if got := messages(fs, "old"); len(got) != 0 {
		t.Fatalf("old: got %v after removal", got)
	}
}

// TestHubRemovedDuringBacklog: a removal and re-add inside the backlog are
// replayed as the live path would have sent them.
func TestHubRemovedDuringBacklog(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{Page: 3})
	w.createRoom("r", "alice", "bob")
	w.post("r", "2")
	rm := w.members("r", chat.MemberRemove, "bob")
	w.post("r", "4 unseen")
	w.post("r", "5 unseen")
	add := w.members("r", chat.MemberAdd, "bob")
	last := w.post("r", "7")
	since := map[chat.RoomID]chat.Seq{"r": 1}
	bob := read(t, w.join("bob", since), since)
	fs := bob.waitFor("caught up", hasFrame("caught_up", "r"))
	if got, want := messages(fs, "r"), []chat.Seq{2, rm, add, last}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestHubJoinRaceWithAdd: a user added while Join is reading memberships
// gets the room either way.
func TestHubAddAtJoin(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{})
	for i := range 20 {
		room := chat.RoomID(fmt.Sprint("r", i))
		w.createRoom(room, "alice")
		done := make(chan chat.Seq)
		go func() { done <- w.members(room, chat.MemberAdd, "bob") }()
		s := read(t, w.join("bob", nil), nil)
		add := <-done
		w.post(room, "after")
		s.waitFor("entries after the add", hasSeq(room, add+1))
		s.s.Close()
	}
}

func TestHubRevoke(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{})
	w.createRoom("r", "alice", "bob")
	a1, a2, b := w.join("alice", nil), w.join("alice", nil), w.join("bob", nil)
	defer a1.Close()
	defer a2.Close()
	defer b.Close()
	w.br.Publish(context.Background(), chat.Event{Type: chat.EvRevoke, User: "alice"})
	for _, s := range []*chat.Session{a1, a2} {
		select {
		case <-s.Done():
		case <-time.After(waitLimit):
			t.Fatal("revoked session still open")
		}
		if !errors.Is(s.Err(), chat.ErrRevoked) {
			t.Fatalf("ended with %v, want ErrRevoked", s.Err())
		}
	}
	if b.Err() != nil {
		t.Fatalf("bob's session ended too: %v", b.Err())
	}
}

func TestHubPresence(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{PresenceInterval: 10 * time.Millisecond})
	w.createRoom("r", "alice", "bob")
	alice := read(t, w.join("alice", nil), nil)
	alice.waitFor("caught up", hasFrame("caught_up", "r"))
	b := w.join("bob", nil)
	fs := alice.waitFor("bob online", func(fs []frame) bool {
		return slices.ContainsFunc(fs, func(f frame) bool { return f.Type == "presence" && slices.Contains(f.Online, "bob") })
	})
	_ = fs
	b.Close()
	alice.waitFor("bob offline", func(fs []frame) bool {
		return slices.ContainsFunc(fs, func(f frame) bool { return f.Type == "presence" && slices.Contains(f.Offline, "bob") })
	})
}

// lossyBroker wraps a real broker and ends its first subscription as slow
// after a few events, dropping what follows, as a broker under pressure does.
type lossyBroker struct {
	chat.Broker
	mu    sync.Mutex
	count int
	after atomic.Int64
}

func (b *lossyBroker) Subscribe(ctx context.Context, handle func(chat.Event)) (<-chan error, error) {
	b.mu.Lock()
	b.count++
	first := b.count == 1
	b.mu.Unlock()
	if !first {
		return b.Broker.Subscribe(ctx, handle)
	}
	done := make(chan error, 1)
	var n int
	var once sync.Once
	inner, err := b.Broker.Subscribe(ctx, func(e chat.Event) {
		n++
		if int64(n) > b.after.Load() {
			once.Do(func() { done <- chat.ErrSlowSubscriber })
			return
		}
		handle(e)
	})
	if err != nil {
		return nil, err
	}
	go func() {
		if err := <-inner; err != nil {
			select {
			case done <- err:
			default:
			}
		}
	}()
	return done, nil
}

// TestHubResubscribesAndRefills: after the hub's subscription is ended as
// slow, sessions are brought up to date from the store.
func TestHubResubscribesAndRefills(t *testing.T) {
	lb := &lossyBroker{Broker: membroker.New(0)}
	lb.after.Store(1 << 30)
	w := newWorld(t, lb, chat.HubOptions{})
	w.createRoom("r", "alice")
	alice := read(t, w.join("alice", nil), nil)
	alice.waitFor("caught up", hasFrame("caught_up", "r"))
	lb.after.Store(0) // the first subscription drops everything from now on
	var last chat.Seq
	for i := range 30 {
		last = w.post("r", fmt.Sprint(i))
	}
	fs := alice.waitFor("every entry", hasSeq("r", last))
	if got := messages(fs, "r"); !slices.Equal(got, seqRange(1, last)) {
		t.Fatalf("got %v, want 1..%d", got, last)
	}
}

// historyCounter counts the store's History reads (backlogs and gap fills).
type historyCounter struct {
	chat.Store
	n atomic.Int64
}

func (c *historyCounter) History(ctx context.Context, room chat.RoomID, q chat.HistoryQuery) ([]chat.Message, error) {
	c.n.Add(1)
	return c.Store.History(ctx, room, q)
}

// TestHubJoinAtHeads: a client that has every room up to its head (a
// reconnect storm) gets ready and caught_up with no store read per room, and
// sessions that join at the heads while others post get every later entry
// exactly once, in order.
func TestHubJoinAtHeads(t *testing.T) {
	hc := &historyCounter{Store: mustStore(t)}
	br := membroker.New(0)
	w := &world{t: t, st: hc, br: br}
	w.hub = chat.NewHub(hc, br, slog.New(slog.DiscardHandler), chat.HubOptions{PresenceInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); w.hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran })
	w.waitSubscribed()

	rooms := []chat.RoomID{"a", "b", "c"}
	heads := map[chat.RoomID]chat.Seq{}
	for _, room := range rooms {
		w.createRoom(room, "alice", "bob")
		for i := range 5 {
			heads[room] = w.post(room, fmt.Sprint(i))
		}
	}
	// Wait until the posts above have been dispatched: the broker keeps
	// order, so a typing frame seen after them comes after their dispatch.
	probe := read(t, w.join("bob", heads), heads)
	w.br.Publish(context.Background(), chat.Event{Type: chat.EvTyping, Room: "c", User: "x", Data: chat.EncodeTyping("c", "x")})
	probe.waitFor("the typing frame", hasFrame("typing", "c"))
	before := hc.n.Load()
	r := read(t, w.join("alice", heads), heads)
	r.waitFor("caught up in a, b and c", func(fs []frame) bool {
		return hasFrame("caught_up", "a")(fs) && hasFrame("caught_up", "b")(fs) && hasFrame("caught_up", "c")(fs)
	})
	if n := hc.n.Load() - before; n != 0 {
		t.Errorf("joining at the heads read the store's history %d times, want 0", n)
	}
	next := w.post("b", "live")
	if fs := r.waitFor("the live entry", hasSeq("b", next)); !slices.Equal(messages(fs, "b"), []chat.Seq{next}) {
		t.Errorf("room b after joining at %d: entries %v, want [%d]", heads["b"], messages(fs, "b"), next)
	}

	// Join at the heads as they are read, while posts go on.
	stop := make(chan struct{})
	var posters sync.WaitGroup
	final := map[chat.RoomID]chat.Seq{}
	var finalMu sync.Mutex
	for _, room := range rooms {
		posters.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					if i > 3 {
						return
					}
				default:
				}
				seq := w.post(room, fmt.Sprint("live ", i))
				finalMu.Lock()
				final[room] = seq
				finalMu.Unlock()
			}
		})
	}
	type joined struct {
		r     *reader
		since map[chat.RoomID]chat.Seq
	}
	var js []joined
	for k := range 20 {
		since := map[chat.RoomID]chat.Seq{}
		for _, room := range rooms {
			rm, err := hc.Store.Room(context.Background(), room)
			if err != nil {
				t.Fatal(err)
			}
			since[room] = rm.Head
		}
		u := []acl.UserID{"alice", "bob"}[k%2]
		js = append(js, joined{read(t, w.join(u, since), since), since})
	}
	close(stop)
	posters.Wait()
	// One more entry in each room, after every join: a join that read a head
	// whose post had not yet returned to its poster would otherwise have
	// nothing to wait for.
	for _, room := range rooms {
		final[room] = w.post(room, "last")
	}
	for k, j := range js {
		for _, room := range rooms {
			fs := j.r.waitFor(fmt.Sprintf("reader %d: room %s up to %d", k, room, final[room]), hasSeq(room, final[room]))
			if got, want := messages(fs, room), seqRange(j.since[room]+1, final[room]); !slices.Equal(got, want) {
				t.Fatalf("reader %d, room %s joined at %d: %d entries from %v, want %d", k, room, j.since[room], len(got), got[:min(5, len(got))], len(want))
			}
		}
	}
}

// Revoke ends, on this node only, the sessions of a user, or those joined
// with one session id, and no others.
func TestHubRevokeBySessionOrUser(t *testing.T) {
	w := newWorld(t, nil, chat.HubOptions{})
	w.createRoom("r1", "alice", "bob")
	join := func(u acl.UserID, session string) *chat.Session {
		who := w.subject(u)
		who.Session = session
		s, err := w.hub.Join(context.Background(), who, nil)
		if err != nil {
			t.Fatalf("Join %s/%s: %v", u, session, err)
		}
		return s
	}
	a1, a1again, a2, b1 := join("alice", "sa1"), join("alice", "sa1"), join("alice", "sa2"), join("bob", "sb1")
	if st := w.hub.Stats(); st.Sessions != 4 || st.Users != 2 || st.Revoked != 0 {
		t.Fatalf("Stats after four joins = %+v, want 4 sessions of 2 users, none revoked", st)
	}
	// Subjects names each login once: alice's sa1 twice joined counts once.
	var got []string
	for _, who := range w.hub.Subjects() {
		got = append(got, string(who.User)+"/"+who.Session)
	}
	slices.Sort(got)
	if want := []string{"alice/sa1", "alice/sa2", "bob/sb1"}; !slices.Equal(got, want) {
		t.Fatalf("Subjects() = %q, want %q", got, want)
	}
	ended := func(s *chat.Session) bool {
		select {
		case <-s.Done():
			return errors.Is(s.Err(), chat.ErrRevoked)
		default:
			return false
		}
	}
	w.hub.Revoke("", "sa1")
	if !ended(a1) || !ended(a1again) {
		t.Fatal("Revoke by session did not end both sessions joined with it")
	}
	if ended(a2) || ended(b1) {
		t.Fatal("Revoke by session ended another session")
	}
	w.hub.Revoke("", "") // names nothing: ends nothing
	if ended(a2) || ended(b1) {
		t.Fatal("Revoke of nothing ended a session")
	}
	w.hub.Revoke("alice", "")
	if !ended(a2) {
		t.Fatal("Revoke by user did not end the user's session")
	}
	if ended(b1) {
		t.Fatal("Revoke of alice ended bob's session")
	}
	if st := w.hub.Stats(); st.Revoked != 3 || st.Sessions != 4 {
		t.Fatalf("Stats after the revocations = %+v, want 3 revoked, 4 sessions until closed", st)
	}
	for _, s := range []*chat.Session{a1, a1again, a2, b1} {
		s.Close()
	}
	if st := w.hub.Stats(); st.Sessions != 0 || st.Users != 0 {
		t.Fatalf("Stats after closing every session = %+v, want none", st)
	}
}
