package token

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"caseroom/acl/sqlite"
)

// gatedStore counts the batched session reads it passes to the real store and
// holds the first one until released.
type gatedStore struct {
	store   *sqlite.Store
	calls   atomic.Int64
	first   chan struct{} // closed when the first read has started
	release chan struct{} // the first read returns when this closes
}

func (g *gatedStore) SessionsActive(ctx context.Context, sessions []string) (map[string]bool, error) {
	if g.calls.Add(1) == 1 {
		close(g.first)
		<-g.release
	}
	return g.store.SessionsActive(ctx, sessions)
}

// TestSessionReadsBatch: checks that arrive while a read is under way are
// answered by one read for all of them, each with its own session's state.
func TestSessionReadsBatch(t *testing.T) {
	e := mustEnv(t)
	var sessions []string
	want := map[string]bool{}
	for i := range 8 {
		tk := e.mustLogin(nil, "zhangsan", zhangPassword)
		sessions = append(sessions, tk.Subject.Session)
		want[tk.Subject.Session] = true
		if i%3 == 0 {
			if err := e.auth.Logout(e.ctx, tk.Refresh); err != nil {
				t.Fatal(err)
			}
			want[tk.Subject.Session] = false
		}
	}
	sessions = append(sessions, "no-such-session")
	want["no-such-session"] = false

	g := &gatedStore{store: e.store, first: make(chan struct{}), release: make(chan struct{})}
	r := &sessionReads{read: g.SessionsActive, pending: map[string][]chan sessionAnswer{}}

	type answer struct {
		active bool
		err    error
	}
	got := make([]answer, len(sessions)+1)
	var wg sync.WaitGroup
	wg.Go(func() { a, err := r.active(e.ctx, sessions[0]); got[0] = answer{a, err} })
	<-g.first // the first check is reading; the others queue behind it
	for i, s := range sessions {
		wg.Go(func() { a, err := r.active(e.ctx, s); got[i+1] = answer{a, err} })
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		n := 0
		for _, chs := range r.pending {
			n += len(chs)
		}
		r.mu.Unlock()
		if n == len(sessions) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	wg.Wait()

	if got[0].err != nil || got[0].active != want[sessions[0]] {
		t.Errorf("first check of %s = %v, %v; want %v", sessions[0], got[0].active, got[0].err, want[sessions[0]])
	}
	for i, s := range sessions {
		if a := got[i+1]; a.err != nil || a.active != want[s] {
			t.Errorf("check of %s = %v, %v; want %v", s, a.active, a.err, want[s])
		}
	}
	if n := g.calls.Load(); n != 2 {
		t.Errorf("%d store reads for %d checks, want 2 (the first, then one for all that queued behind it)", n, len(sessions)+1)
	}
}
