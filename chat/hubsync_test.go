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
		br := membroker.New(0)
		hub := chat.NewHub(st, br, slog.New(slog.DiscardHandler), chat.HubOptions{PresenceInterval: time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got [][]byte
		done, _ := br.Subscribe(ctx, func(e chat.Event) {
			if e.Type == chat.EvPresence {
				got = append(got, e.Data)
			}
		})
		go hub.Run(ctx)
		synctest.Wait()
		join := func(u acl.UserID) *chat.Session {
			s, err := hub.Join(ctx, acl.Subject{User: u, Unit: "unit-1"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		a := join("alice")
		time.Sleep(1500 * time.Millisecond) // one flush: alice online
		synctest.Wait()
		if len(got) != 1 || string(got[0]) != `{"type":"presence","room":"r","online":["alice"]}` {
			t.Fatalf("after alice joined: %q", got)
		}
		a.Close()
		a = join("alice") // back within the interval: nothing to say
		b := join("bob")
		time.Sleep(time.Second)
		synctest.Wait()
		if len(got) != 2 || string(got[1]) != `{"type":"presence","room":"r","online":["bob"]}` {
			t.Fatalf("after alice flapped and bob joined: %q", got)
		}
		a.Close()
		b.Close()
		time.Sleep(time.Second)
		synctest.Wait()
		if len(got) != 3 || string(got[2]) != `{"type":"presence","room":"r","offline":["alice","bob"]}` {
			t.Fatalf("after both left: %q", got)
		}
		cancel()
		<-done
	})
}
