package chatclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/pgdb/pgdbtest"
	"caseroom/chat"
	"caseroom/chat/chatclient"
)

// The randomized resume test: 50 clients in 10 rooms while 10,000 posts,
// edits, retractions and membership changes go through the HTTP API. Clients
// drop their sockets at random — during the backlog replay, right at the
// switch to live, and while live — stay away for a while, and resume from the
// positions they track. Every client checks, frame by frame, that each room's
// entries come exactly once and in order (each message frame carries the seq
// after the last one it has; a room starts over only at seq 1 or at the entry
// that adds the user); at the end every client resumes once more and must hold
// each of its rooms up to the room's head, and exactly the rooms it is a member
// of. CASEROOM_TEST_SEED replays a run; -short runs 1,000 operations.

func TestRandomizedResumeSQLite(t *testing.T) { randomizedResume(t, "sqlite") }

func TestRandomizedResumePostgres(t *testing.T) {
	pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
	randomizedResume(t, "postgres")
}

const (
	nClients = 50
	nRooms   = 10
)

// progress counts operations done; listeners wait on it to stay away while
// the log grows.
type progress struct {
	mu   sync.Mutex
	n    int
	done bool
	ch   chan struct{}
}

func (p *progress) now() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *progress) advance() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.n%10 == 0 {
		close(p.ch)
		p.ch = make(chan struct{})
	}
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	close(p.ch)
}

// wait returns when n reaches target or the operations are over; it reports
// whether they are over.
func (p *progress) wait(target int) (over bool) {
	for {
		p.mu.Lock()
		if p.done || p.n >= target {
			over := p.done
			p.mu.Unlock()
			return over
		}
		ch := p.ch
		p.mu.Unlock()
		<-ch
	}
}

func (p *progress) over() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// listener is one client's socket side: it tracks its position in each room
// and checks every frame against it.
type listener struct {
	t    *testing.T
	c    *chatclient.Client
	me   acl.UserID
	rng  *rand.Rand
	last map[chat.RoomID]chat.Seq // the rooms it holds, and the last seq of each

	frames, backlogDrops, switchDrops, liveDrops int
}

func addsMe(m *chat.MessageView, me acl.UserID) bool {
	if m.Kind != chat.MemberAdd && m.Kind != chat.RoomCreate {
		return false
	}
	var p chat.MembersChanged
	json.Unmarshal(m.Payload, &p)
	return slices.ContainsFunc(p.Members, func(r chat.MemberRef) bool { return r.User == me })
}

// take checks one frame and moves the positions.
func (l *listener) take(f chatclient.Frame) {
	l.frames++
	switch f.Type {
	case "message":
		last, held := l.last[f.Room]
		switch {
		case held && f.Seq == last+1:
		case held:
			l.t.Errorf("%s, room %s: got seq %d after %d (a gap or a duplicate)", l.me, f.Room, f.Seq, last)
		case f.Seq == 1, addsMe(f.Message, l.me):
		default:
			l.t.Errorf("%s, room %s: first entry seq %d, neither the room's first nor the user's add", l.me, f.Room, f.Seq)
		}
		l.last[f.Room] = f.Seq
	case "room_removed":
		delete(l.last, f.Room)
	case "caught_up":
		if l.last[f.Room] != f.Seq {
			l.t.Errorf("%s, room %s: caught_up at %d, but the last entry received is %d", l.me, f.Room, f.Seq, l.last[f.Room])
		}
	}
}

// run connects, reads and drops until the operations are over.
func (l *listener) run(ctx context.Context, p *progress) {
	for !p.over() && !l.t.Failed() {
		conn, err := l.c.Connect(ctx, l.last)
		if err != nil {
			l.t.Errorf("%s: connect: %v", l.me, err)
			return
		}
		pending := map[chat.RoomID]bool{} // rooms whose backlog is still coming
		for _, r := range conn.Ready().Rooms {
			pending[r.Room] = true
		}
		mode := l.rng.IntN(3)
		k := 1 + l.rng.IntN(60)
		// Mode 2 stays live for a while and is dropped from outside; every mode
		// is dropped when the operations are over, since no frame may come.
		target := 1 << 62
		if mode == 2 {
			target = p.now() + l.rng.IntN(200)
		}
		go func() {
			p.wait(target)
			conn.Drop()
		}()
		for n := 0; ; n++ {
			f, err := conn.Next(ctx)
			if err != nil {
				if mode == 2 {
					l.liveDrops++
				}
				break
			}
			l.take(f)
			if f.Type == "caught_up" || f.Type == "room_removed" {
				delete(pending, f.Room)
			}
			if mode == 0 && n >= k {
				if len(pending) > 0 {
					l.backlogDrops++
				} else {
					l.liveDrops++
				}
				conn.Drop()
				break
			}
			if mode == 1 && f.Type == "caught_up" {
				l.switchDrops++
				conn.Drop()
				break
			}
		}
		// Stay away while the log grows, so that the next backlog is long.
		p.wait(p.now() + l.rng.IntN(300))
	}
}

// final resumes once more after the operations and reads every backlog.
func (l *listener) final(ctx context.Context) (map[chat.RoomID]chat.Seq, error) {
	conn, err := l.c.Connect(ctx, l.last)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	heads := map[chat.RoomID]chat.Seq{}
	pending := map[chat.RoomID]bool{}
	for _, r := range conn.Ready().Rooms {
		heads[r.Room] = r.Head
		pending[r.Room] = true
	}
	// A held room that ready leaves out must end with room_removed; wait for
	// that too, or a user left with no rooms would read nothing at all.
	for r := range l.last {
		if _, ok := heads[r]; !ok {
			pending[r] = true
		}
	}
	for len(pending) > 0 {
		f, err := conn.Next(ctx)
		if err != nil {
			return nil, err
		}
		l.take(f)
		// Nobody changes membership now, so each room of ready ends with
		// caught_up (a room_removed inside a backlog may be followed by the
		// entry that adds the user again).
		switch _, inReady := heads[f.Room]; {
		case f.Type == "caught_up", f.Type == "room_removed" && !inReady:
			delete(pending, f.Room)
		}
	}
	return heads, nil
}

// roomState is what one driver knows of its room: members, and the messages
// each member may still edit or retract.
type roomState struct {
	id       chat.RoomID
	owner    int
	members  map[int]bool
	authored map[int][]chat.Seq
}

func randomizedResume(t *testing.T, backend string) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CASEROOM_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("CASEROOM_TEST_SEED=%d", seed)
	nOps := 10000
	if testing.Short() {
		nOps = 1000
	}
	s := mustServer(t, backend, chat.HubOptions{Page: 40}) // small pages: many page boundaries in each backlog
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	staff := s.staff()
	if len(staff) < nClients {
		t.Fatalf("%d staff accounts in the demo directory, want %d", len(staff), nClients)
	}
	clients := make([]*chatclient.Client, nClients)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range nClients {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := chatclient.Login(ctx, s.url, staff[i], s.pass[staff[i]])
			if err != nil {
				t.Errorf("login %s: %v", staff[i], err)
				return
			}
			clients[i] = c
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	rng := rand.New(rand.NewPCG(seed, 1))
	rooms := make([]*roomState, nRooms)
	for i := range nRooms {
		st := &roomState{owner: i, members: map[int]bool{i: true}, authored: map[int][]chat.Seq{}}
		var ids []acl.UserID
		for _, j := range rng.Perm(nClients)[:15] {
			if j != i {
				st.members[j] = true
				ids = append(ids, clients[j].User().ID)
			}
		}
		r, err := clients[i].CreateRoom(ctx, fmt.Sprint("随机群 ", i), ids)
		if err != nil {
			t.Fatalf("create room: %v", err)
		}
		st.id = r.ID
		rooms[i] = st
	}

	p := &progress{ch: make(chan struct{})}
	listeners := make([]*listener, nClients)
	var lwg sync.WaitGroup
	for i := range nClients {
		listeners[i] = &listener{t: t, c: clients[i], me: clients[i].User().ID, rng: rand.New(rand.NewPCG(seed, uint64(100+i))), last: map[chat.RoomID]chat.Seq{}}
		lwg.Go(func() { listeners[i].run(ctx, p) })
	}

	var ops [4]atomic.Int64 // posts, edits, retractions, membership changes
	var dwg sync.WaitGroup
	for i, st := range rooms {
		dwg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(1000+i)))
			owner := clients[st.owner]
			for range nOps / nRooms {
				if t.Failed() {
					return
				}
				members := make([]int, 0, len(st.members))
				for m := range st.members {
					members = append(members, m)
				}
				slices.Sort(members)
				who := members[rng.IntN(len(members))]
				var err error
				switch x := rng.Float64(); {
				case x < 0.08 && len(st.authored[who]) > 0:
					seqs := st.authored[who]
					_, err = clients[who].Edit(ctx, st.id, seqs[rng.IntN(len(seqs))], fmt.Sprint("改 ", rng.Int()))
					ops[1].Add(1)
				case x < 0.14 && len(st.authored[who]) > 0:
					seqs := st.authored[who]
					k := rng.IntN(len(seqs))
					_, err = clients[who].Retract(ctx, st.id, seqs[k])
					st.authored[who] = slices.Delete(seqs, k, k+1)
					ops[2].Add(1)
				case x >= 0.94:
					j := rng.IntN(nClients)
					if st.members[j] && j != st.owner {
						_, err = owner.RemoveMember(ctx, st.id, clients[j].User().ID)
						delete(st.members, j)
						delete(st.authored, j)
					} else if !st.members[j] {
						_, err = owner.AddMembers(ctx, st.id, []acl.UserID{clients[j].User().ID}, "")
						st.members[j] = true
					}
					ops[3].Add(1)
				default:
					var m chat.MessageView
					m, _, err = clients[who].Post(ctx, st.id, chatclient.PostRequest{ClientID: fmt.Sprint("c", rng.Int64()), Body: fmt.Sprint("案情通报 ", rng.Int())})
					if err == nil {
						st.authored[who] = append(st.authored[who], m.Seq)
					}
					ops[0].Add(1)
				}
				if err != nil {
					t.Errorf("room %s: operation by %s: %v", st.id, clients[who].User().ID, err)
				}
				p.advance()
			}
		})
	}
	dwg.Wait()
	p.finish()
	lwg.Wait()
	if t.Failed() {
		return
	}

	var frames, backlogDrops, switchDrops, liveDrops int
	for i, l := range listeners {
		heads, err := l.final(ctx)
		if err != nil {
			t.Fatalf("%s: final resume: %v", l.me, err)
		}
		var want []chat.RoomID
		for _, st := range rooms {
			if st.members[i] {
				want = append(want, st.id)
				if got := l.last[st.id]; got != heads[st.id] {
					t.Errorf("%s, room %s: holds up to %d, head is %d", l.me, st.id, got, heads[st.id])
				}
				r, err := s.store.Room(ctx, st.id)
				if err != nil || r.Head != heads[st.id] {
					t.Errorf("room %s: store head %d (%v), ready said %d", st.id, r.Head, err, heads[st.id])
				}
			}
		}
		var got []chat.RoomID
		for r := range l.last {
			got = append(got, r)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: holds rooms %v, is a member of %v", l.me, got, want)
		}
		frames += l.frames
		backlogDrops += l.backlogDrops
		switchDrops += l.switchDrops
		liveDrops += l.liveDrops
	}
	t.Logf("%s: %d posts, %d edits, %d retractions, %d membership changes; %d frames checked; drops: %d during backlog, %d at the switch to live, %d live",
		backend, ops[0].Load(), ops[1].Load(), ops[2].Load(), ops[3].Load(), frames, backlogDrops, switchDrops, liveDrops)
	if backlogDrops == 0 || switchDrops == 0 || liveDrops == 0 {
		t.Errorf("the run did not drop sockets at every kind of point (seed %d)", seed)
	}
}
