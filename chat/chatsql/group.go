package chatsql

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"caseroom/chat"
)

// Group commit, for both stores.
//
// Appends queue in a group; one of the callers, the leader, takes what is
// queued and commits it as one batch while the others wait, then hands the
// lead to the first caller queued meanwhile. So a commit (a WAL flush) is
// shared by every append that arrived while the previous one was flushing,
// each append is answered only after the commit that holds it, and there is
// no goroutine or timer of its own: under light load a batch is one append,
// committed at once. Batches run one after another, so the entries of a room
// are committed, and their commit hooks called, in seq order.

// MaxBatch bounds the appends of one batch.
const MaxBatch = 256

// A Pending is one Append waiting for its batch.
type Pending struct {
	Ctx    context.Context // the caller's, for its commit hook
	M      *chat.Message
	IfHead chat.Seq
	Want   *chat.SenderDecision // the sender role the caller decided on (WantRole), or nil
	Dup    bool                 // the answer: a repeated client id
	Err    error                // the answer: why it was not stored
	wake   chan bool            // true: lead the next batches; false: answered
}

type Group struct {
	mu      sync.Mutex
	queue   []*Pending // guarded by mu
	leading bool       // guarded by mu: a leader is committing

	batches, entries, nanos atomic.Uint64 // for Stats
}

// GroupStats counts a group's work since it started: batches committed (or
// failed), the appends they held, and the time spent committing them. The
// entries per batch say how much the commits are shared.
//
// The PostgreSQL store also counts the batches it committed onto heads it
// remembered, in one statement (Known), and the rooms of such batches whose
// head had moved meanwhile and were committed again with their heads locked
// (Stale).
type GroupStats struct {
	Batches, Entries uint64
	Committing       time.Duration
	Known, Stale     uint64
}

// Stats returns the group's counts so far.
func (g *Group) Stats() GroupStats {
	return GroupStats{Batches: g.batches.Load(), Entries: g.entries.Load(), Committing: time.Duration(g.nanos.Load())}
}

// Do queues p and returns once a batch holding it has been committed (or has
// failed): p.Dup and p.Err are then its answer. commit answers every pending
// of the batch it is given.
func (g *Group) Do(p *Pending, commit func(batch []*Pending)) {
	p.wake = make(chan bool, 1)
	g.mu.Lock()
	g.queue = append(g.queue, p)
	if g.leading {
		g.mu.Unlock()
		if lead := <-p.wake; !lead {
			return
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}
	for answered := false; !answered; {
		g.mu.Lock()
		n := min(len(g.queue), MaxBatch)
		batch := make([]*Pending, n)
		copy(batch, g.queue)
		g.queue = append(g.queue[:0], g.queue[n:]...)
		g.mu.Unlock()
		start := time.Now()
		commit(batch)
		g.nanos.Add(uint64(time.Since(start)))
		g.batches.Add(1)
		g.entries.Add(uint64(n))
		for _, q := range batch {
			if q == p {
				answered = true
			} else {
				q.wake <- false
			}
		}
	}
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.leading = false
	} else {
		g.queue[0].wake <- true // the lead passes on; its caller takes the queue
	}
	g.mu.Unlock()
}

// Hook calls the commit hook of p's caller with the entry stored.
func (p *Pending) Hook() {
	if f := chat.CommitHook(p.Ctx); f != nil {
		f(p.M)
	}
}
