package token

import (
	"context"
	"sync"
	"time"

	"caseroom/acl"
)

// sessionReads batches the store reads of concurrent session checks, as group
// commit batches writes: a check that finds a read under way queues, and the
// next read asks for every session queued meanwhile in one query. One of the
// waiting callers leads each read; there is no goroutine of its own.
type sessionReads struct {
	read func(ctx context.Context, sessions []string) (map[string]bool, error) // the store's SessionsActive

	mu      sync.Mutex
	pending map[string][]chan sessionAnswer // guarded by mu
	reading bool                            // guarded by mu: a leader is reading
}

// sessionAnswer is a queued check's answer, or the lead of the next read.
type sessionAnswer struct {
	active bool
	err    error
	lead   bool
}

// sessionReadTimeout bounds one batched read: the leader's own request may
// end while it reads for the others.
const sessionReadTimeout = 10 * time.Second

func newSessionReads(store acl.Store) *sessionReads {
	return &sessionReads{read: store.SessionsActive, pending: map[string][]chan sessionAnswer{}}
}

// active reports whether session exists and is not revoked.
func (r *sessionReads) active(ctx context.Context, session string) (bool, error) {
	ch := make(chan sessionAnswer, 1)
	r.mu.Lock()
	r.pending[session] = append(r.pending[session], ch)
	lead := !r.reading
	r.reading = true
	r.mu.Unlock()
	if !lead {
		if a := <-ch; !a.lead {
			return a.active, a.err
		}
	}

	r.mu.Lock()
	batch := r.pending
	r.pending = map[string][]chan sessionAnswer{}
	r.mu.Unlock()
	ids := make([]string, 0, len(batch))
	for id := range batch {
		ids = append(ids, id)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionReadTimeout)
	active, err := r.read(rctx, ids)
	cancel()
	var mine sessionAnswer
	for id, chs := range batch {
		for _, c := range chs {
			a := sessionAnswer{active: active[id], err: err}
			if c == ch {
				mine = a
			} else {
				c <- a
			}
		}
	}

	// Hand the lead to a check queued meanwhile; it reads for all of them.
	r.mu.Lock()
	r.reading = false
	for _, chs := range r.pending {
		r.reading = true
		chs[0] <- sessionAnswer{lead: true}
		break
	}
	r.mu.Unlock()
	return mine.active, mine.err
}
