package chat_test

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"caseroom/acl"
	"caseroom/chat"
	"caseroom/chat/membroker"
)

// TestHubPresenceCoalesces runs in a synctest bubble, so that the presence
// interval passes on the bubble's clock: a user who leaves and comes back
// within one interval publishes nothing; one who stays away is reported once.
func TestHubPresenceCoalesces(t *testing.T) {
	st := mustStore(t) // opened outside the bubble; only used for reads and appends
	w := &world{t: t, st: st, br: membroker.New(0)}
	w.createRoom("r", "alice", "bob")
	synctest.Test(t, func(t *testing.T) {
		p := startPresence(t, st, chat.HubOptions{PresenceInterval: time.Second})
		defer p.stop()
		join := p.join
		a := join("alice")
		time.Sleep(1500 * time.Millisecond) // one flush: alice online
		synctest.Wait()
		if got := p.got; len(got) != 1 || got[0] != `{"type":"presence","room":"r","online":["alice"]}` {
			t.Fatalf("after alice joined: %q", got)
		}
		a.Close()
		a = join("alice") // back within the interval: nothing to say
		b := join("bob")
		time.Sleep(time.Second)
		synctest.Wait()
		if got := p.got; len(got) != 2 || got[1] != `{"type":"presence","room":"r","online":["bob"]}` {
			t.Fatalf("after alice flapped and bob joined: %q", got)
		}
		a.Close()
		b.Close()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := p.got; len(got) != 3 || got[2] != `{"type":"presence","room":"r","offline":["alice","bob"]}` {
			t.Fatalf("after both left: %q", got)
		}
	})
}

// TestHubPresenceHoldsBackABurst: when an interval brings PresenceBurst
// changes or more (every socket of a node dropped and back, say), presence
// waits until an interval brings fewer, so users who dropped and came back
// are announced neither offline nor online; one who did not come back is
// announced offline once the burst is over; and a burst that never settles is
// published after presenceMaxDefer (5) intervals all the same.
func TestHubPresenceHoldsBackABurst(t *testing.T) {
	st := mustStore(t)
	w := &world{t: t, st: st, br: membroker.New(0)}
	w.createRoom("r", "alice", "bob", "carol")
	synctest.Test(t, func(t *testing.T) {
		p := startPresence(t, st, chat.HubOptions{PresenceInterval: time.Second, PresenceBurst: 3})
		defer p.stop()
		join := p.join
		var got []string
		tick := func() { time.Sleep(time.Second); synctest.Wait(); got = p.got }
		time.Sleep(500 * time.Millisecond) // half way between ticks
		a, b := join("alice"), join("bob")
		tick()
		if want := `{"type":"presence","room":"r","online":["alice","bob"]}`; len(got) != 1 || got[0] != want {
			t.Fatalf("after alice and bob joined: %q, want [%s]", got, want)
		}

		// The storm: all three drop (carol was never there) and two come
		// back an interval later; the burst holds presence back until quiet.
		a.Close()
		b.Close()
		c := join("carol")
		c.Close()
		tick() // 4 changes: held back
		a, b = join("alice"), join("bob")
		c = join("carol")
		tick() // 3 changes: held back
		if len(got) != 1 {
			t.Fatalf("during the burst: %q, want nothing new", got[1:])
		}
		c.Close()
		tick() // 1 change: published; alice and bob cancelled out, carol came and went
		if len(got) != 1 {
			t.Fatalf("after the burst: %q, want nothing new (every change cancelled out)", got[1:])
		}
		b.Close()
		tick()
		if want := `{"type":"presence","room":"r","offline":["bob"]}`; len(got) != 2 || got[1] != want {
			t.Fatalf("after bob left alone: %q, want %s", got[1:], want)
		}

		// A burst that does not settle is published after 5 intervals: carol
		// joins while bob keeps flapping.
		c = join("carol")
		for i := range 6 {
			for range 2 {
				b = join("bob")
				b.Close()
			}
			tick()
			if i < 5 && len(got) != 2 {
				t.Fatalf("interval %d of an unsettled burst: %q, want nothing new", i+1, got[2:])
			}
		}
		if want := `{"type":"presence","room":"r","online":["carol"]}`; len(got) != 3 || got[2] != want {
			t.Fatalf("after 6 intervals of an unsettled burst: %q, want %s", got[2:], want)
		}
	})
}

// presenceHub is a hub running in a synctest bubble, with the presence
// events it published.
type presenceHub struct {
	t    *testing.T
	hub  *chat.Hub
	ctx  context.Context
	got  []string
	stop func()
}

// startPresence starts a hub on st in the calling bubble and records the
// presence events it publishes; stop ends it.
func startPresence(t *testing.T, st chat.Store, opts chat.HubOptions) *presenceHub {
	br := membroker.New(0)
	p := &presenceHub{t: t, hub: chat.NewHub(st, br, slog.New(slog.DiscardHandler), opts)}
	ctx, cancel := context.WithCancel(context.Background())
	p.ctx = ctx
	done, _ := br.Subscribe(ctx, func(e chat.Event) {
		if e.Type == chat.EvPresence {
			p.got = append(p.got, string(e.Data))
		}
	})
	go p.hub.Run(ctx)
	synctest.Wait()
	p.stop = func() { cancel(); <-done }
	return p
}

// join starts a session of user u (of unit-1).
func (p *presenceHub) join(u acl.UserID) *chat.Session {
	s, err := p.hub.Join(p.ctx, acl.Subject{User: u, Unit: "unit-1"}, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}
