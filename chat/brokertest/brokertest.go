// Package brokertest checks a chat.Broker against the contract the Hub relies
// on. Every backend runs the same suite: the in-process broker (the same one
// twice), and the Redis broker (two clients on one server with a per-test
// channel prefix).
package brokertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// wait bounds how long the suite waits for something that should happen at
// once; it only limits a failing test, it measures nothing.
const wait = 20 * time.Second

// Run checks a chat.Broker. newNodes returns two brokers on one backend, as two
// nodes of one deployment see it: the same in-process broker twice, or two
// Redis clients with a per-test channel prefix. Each subtest calls it afresh and
// uses room ids of its own.
func Run(t *testing.T, newNodes func(t *testing.T) (a, b chat.Broker)) {
	t.Run("SubscribeIsLiveWhenItReturns", func(t *testing.T) { liveOnReturn(t, newNodes) })
	t.Run("OrderedPerRoomAcrossNodes", func(t *testing.T) { orderedAcrossNodes(t, newNodes) })
	t.Run("EveryNodeGetsEveryEvent", func(t *testing.T) { everyNode(t, newNodes) })
	t.Run("EventsArriveWhole", func(t *testing.T) { whole(t, newNodes) })
	t.Run("SlowSubscriberIsClosedNotAwaited", func(t *testing.T) { slowIsClosed(t, newNodes) })
	t.Run("CancelEndsSubscription", func(t *testing.T) { cancelEnds(t, newNodes) })
}

// room returns a room id no other test uses.
func room(t *testing.T) chat.RoomID {
	return chat.RoomID(fmt.Sprintf("bt-%s-%s", t.Name(), rand.Text()[:8]))
}

// collector gathers the events a subscription receives.
type collector struct {
	mu     sync.Mutex
	events []chat.Event // guarded by mu
	more   chan struct{}
}

func newCollector() *collector { return &collector{more: make(chan struct{}, 1)} }

func (c *collector) handle(e chat.Event) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// count returns how many events of room r were received so far.
func (c *collector) count(r chat.RoomID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(inRoom(c.events, r))
}

// waitFor waits until ok holds for the events received so far.
func (c *collector) waitFor(t *testing.T, what string, ok func([]chat.Event) bool) []chat.Event {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got := slices.Clone(c.events)
		c.mu.Unlock()
		if ok(got) {
			return got
		}
		select {
		case <-c.more:
		case <-deadline.C:
			t.Fatalf("%s: not within %v; got %d events", what, wait, len(got))
		}
	}
}

// inRoom returns the events of room.
func inRoom(es []chat.Event, r chat.RoomID) []chat.Event {
	var out []chat.Event
	for _, e := range es {
		if e.Room == r {
			out = append(out, e)
		}
	}
	return out
}

func countIn(r chat.RoomID, n int) func([]chat.Event) bool {
	return func(es []chat.Event) bool { return len(inRoom(es, r)) >= n }
}

// mustSubscribe subscribes handle on b until the test ends.
func mustSubscribe(t *testing.T, b chat.Broker, handle func(chat.Event)) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done, err := b.Subscribe(ctx, handle)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return done
}

func mustPublish(t *testing.T, b chat.Broker, e chat.Event) {
	t.Helper()
	if err := b.Publish(context.Background(), e); err != nil {
		t.Fatalf("Publish(%s %s #%d): %v", e.Type, e.Room, e.Seq, err)
	}
}

func msg(r chat.RoomID, seq chat.Seq) chat.Event {
	return chat.Event{Type: chat.EvMessage, Room: r, Seq: seq, Kind: chat.Text,
		Data: fmt.Appendf(nil, `{"type":"message","room":%q,"seq":%d}`, r, seq)}
}

// liveOnReturn: an event published the moment Subscribe returns, from either
// node, reaches the new subscription.
func liveOnReturn(t *testing.T, newNodes func(*testing.T) (a, b chat.Broker)) {
	a, b := newNodes(t)
	for i := range 20 {
		r := room(t)
		c := newCollector()
		mustSubscribe(t, b, c.handle)
		pub := a
		if i%2 == 1 {
			pub = b
		}
		mustPublish(t, pub, msg(r, 1))
		c.waitFor(t, fmt.Sprintf("round %d: event published right after Subscribe", i), countIn(r, 1))
	}
}

// orderedAcrossNodes: the events one goroutine publishes to a room arrive in
// that order at subscriptions on both nodes, interleaved with other rooms.
func orderedAcrossNodes(t *testing.T, newNodes func(*testing.T) (a, b chat.Broker)) {
	a, b := newNodes(t)
	r1, r2 := room(t), room(t)
	const n = 2000
	ca, cb := newCollector(), newCollector()
	mustSubscribe(t, a, ca.handle)
	mustSubscribe(t, b, cb.handle)
	var wg sync.WaitGroup
	for _, r := range []chat.RoomID{r1, r2} {
		wg.Go(func() {
			for seq := chat.Seq(1); seq <= n; seq++ {
				if err := a.Publish(context.Background(), msg(r, seq)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for node, c := range map[string]*collector{"a": ca, "b": cb} {
		for _, r := range []chat.RoomID{r1, r2} {
			got := inRoom(c.waitFor(t, "node "+node+" receives every event", countIn(r, n)), r)
			for i, e := range got {
				if want := chat.Seq(i + 1); e.Seq != want {
					t.Fatalf("node %s, room %s: event %d has seq %d, want %d", node, r, i, e.Seq, want)
				}
			}
		}
	}
}

// everyNode: several subscriptions on each node all receive every event,
// whichever node published it.
func everyNode(t *testing.T, newNodes func(*testing.T) (a, b chat.Broker)) {
	a, b := newNodes(t)
	r := room(t)
	var cs []*collector
	for _, node := range []chat.Broker{a, b, a, b} {
		c := newCollector()
		mustSubscribe(t, node, c.handle)
		cs = append(cs, c)
	}
	const n = 200
	for i := range n {
		pub := a
		if i%3 == 0 {
			pub = b
		}
		mustPublish(t, pub, chat.Event{Type: chat.EvTyping, Room: r, User: acl.UserID(fmt.Sprint("u", i))})
	}
	for k, c := range cs {
		got := inRoom(c.waitFor(t, fmt.Sprintf("subscription %d receives all", k), countIn(r, n)), r)
		if len(got) != n {
			t.Fatalf("subscription %d: %d events, want %d", k, len(got), n)
		}
	}
}

// whole: every field of an event arrives as published.
func whole(t *testing.T, newNodes func(*testing.T) (a, b chat.Broker)) {
	a, b := newNodes(t)
	r := room(t)
	c := newCollector()
	mustSubscribe(t, b, c.handle)
	want := []chat.Event{
		{Type: chat.EvMessage, Room: r, Seq: 7, Kind: chat.MemberAdd, Users: []acl.UserID{"u1", "u2"},
			Data: []byte(`{"type":"message","body":"案件 \"移送\" <&>"}`)},
		{Type: chat.EvRead, Room: r, User: "u1", Data: []byte(`{"type":"read"}`)},
		{Type: chat.EvTyping, Room: r, User: "u2", Data: []byte(`{"type":"typing"}`)},
		{Type: chat.EvPresence, Room: r, User: "u3", Data: []byte(`{"type":"presence"}`)},
		{Type: chat.EvRevoke, Room: r, User: "u4"},
	}
	for _, e := range want {
		mustPublish(t, a, e)
	}
	got := inRoom(c.waitFor(t, "all kinds of event", countIn(r, len(want))), r)
	for i := range want {
		g, w := got[i], want[i]
		if g.Type != w.Type || g.Room != w.Room || g.Seq != w.Seq || g.User != w.User || g.Kind != w.Kind ||
			!bytes.Equal(g.Data, w.Data) || !slices.Equal(g.Users, w.Users) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// slowIsClosed: a handler that stops returning never blocks Publish; its
// subscription ends with chat.ErrSlowSubscriber while the handler is still
// stuck, and another subscription on the same node keeps receiving.
func slowIsClosed(t *testing.T, newNodes func(*testing.T) (a, b chat.Broker)) {
	a, b := newNodes(t)
	r := room(t)
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	stuck := make(chan struct{}, 1)
	slowDone := mustSubscribe(t, b, func(chat.Event) {
		select {
		case stuck <- struct{}{}:
		default:
		}
		<-release
	})
	fast := newCollector()
	mustSubscribe(t, b, fast.handle)

	// Publish until the broker gives up on the slow subscription; every Publish
	// must return while the handler is stuck.
	published := make(chan int, 1)
	go func() {
		const max = 1 << 20
		n := 0
		defer func() { published <- n }()
		for n < max {
			n++
			if err := a.Publish(context.Background(), msg(r, chat.Seq(n))); err != nil {
				t.Errorf("Publish %d: %v", n, err)
				return
			}
			if n%64 == 0 {
				// Let the fast subscription keep up, so that only the stuck
				// one overflows, however a busy machine schedules goroutines.
				for deadline := time.Now().Add(wait); fast.count(r) < n-64 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			select {
			case err := <-slowDone:
				if !errors.Is(err, chat.ErrSlowSubscriber) {
					t.Errorf("slow subscription ended with %v, want chat.ErrSlowSubscriber", err)
				}
				return
			default:
			}
		}
		t.Errorf("slow subscription still open after %d events", max)
	}()
	var n int
	select {
	case n = <-published:
	case <-time.After(2 * wait):
		t.Fatal("Publish blocked behind a stuck handler")
	}
	if t.Failed() {
		return
	}
	fast.waitFor(t, "the fast subscription keeps receiving", countIn(r, n))
	close(release)
}

// cancelEnds: cancelling a subscription's context ends it with the context's
// error, and its handler sees nothing published afterwards.
func cancelEnds(t *testing.T, newNodes func(*testing.T) (a, b chat.Broker)) {
	a, b := newNodes(t)
	r := room(t)
	c := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, err := b.Subscribe(ctx, c.handle)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	mustPublish(t, a, msg(r, 1))
	c.waitFor(t, "event before cancel", countIn(r, 1))
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("done after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(wait):
		t.Fatal("cancel did not end the subscription")
	}
	// A marker subscription shows when later events have been delivered.
	marker := newCollector()
	mustSubscribe(t, b, marker.handle)
	for seq := chat.Seq(2); seq <= 10; seq++ {
		mustPublish(t, a, msg(r, seq))
	}
	marker.waitFor(t, "events after cancel reach a live subscription", countIn(r, 9))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) != 1 {
		t.Fatalf("cancelled subscription received %d events, want 1", len(c.events))
	}
}
