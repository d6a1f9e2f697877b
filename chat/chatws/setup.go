package chatws

import (
	"sync"
	"time"
)

// A setupPool runs the deep part of a socket's setup — the token check and the
// hub's join, with its database read — on a few long-lived goroutines instead
// of each connection's own. The runtime starts every new goroutine with the
// average stack in use (/gc/stack/starting-size), and a stack that grew past
// that size is not kept for reuse when its goroutine ends; so when thousands
// of connection goroutines each grew deep during a burst of connections, each
// socket's reader started with 8 KiB of stack instead of 4, and the dead
// stacks piled up until the next collection. The workers grow once and stay.
type setupPool struct {
	mu      sync.Mutex
	running int // workers; guarded by mu
	jobs    chan func()
}

const (
	// setupWorkers bounds the setups at once. Not tightly: in a reconnect
	// storm the joins must reach the database queue early, ahead of the
	// backlog reads of the sessions already joined (32 workers took the
	// storm of docs/performance.md from 9 s to 10–17 s).
	setupWorkers = 1024
	setupIdle    = 30 * time.Second // a worker with nothing to do this long ends
)

func newSetupPool() *setupPool { return &setupPool{jobs: make(chan func(), 4096)} }

// run runs f on a worker and waits for it.
func (p *setupPool) run(f func()) {
	done := make(chan struct{})
	p.mu.Lock()
	p.jobs <- func() { f(); close(done) }
	if p.running < setupWorkers {
		p.running++
		go p.worker()
	}
	p.mu.Unlock()
	<-done
}

// worker runs jobs until it has had none for setupIdle. It decides to end
// under p.mu, as run queues under p.mu: a job queued before the decision is
// seen by it, one queued after finds the worker count lowered and starts one.
func (p *setupPool) worker() {
	t := time.NewTimer(setupIdle)
	defer t.Stop()
	for {
		select {
		case job := <-p.jobs:
			job()
			t.Reset(setupIdle)
		case <-t.C:
			p.mu.Lock()
			if len(p.jobs) > 0 {
				p.mu.Unlock()
				t.Reset(setupIdle)
				continue
			}
			p.running--
			p.mu.Unlock()
			return
		}
	}
}
