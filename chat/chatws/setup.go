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
//
// The pool also sees a burst end. During one the collector sets its goals
// from a heap full of setups in flight, and the heap then grows to them: at
// 19,900 sockets the process held about 800 MB for the two minutes until the
// runtime's periodic collection, against 260 MB live. So once burstSetups
// setups have run and none for burstQuiet, the pool calls afterBurst (the
// handler's collects and returns the free memory to the system) once.
type setupPool struct {
	mu         sync.Mutex
	running    int       // workers; guarded by mu
	setups     int       // setups since the last afterBurst; guarded by mu
	last       time.Time // when the latest setup ended; guarded by mu
	afterBurst func(setups int)
	jobs       chan func()
}

const (
	// setupWorkers bounds the setups at once. Not tightly: in a reconnect
	// storm the joins must reach the database queue early, ahead of the
	// backlog reads of the sessions already joined (32 workers took the
	// storm of docs/performance.md from 9 s to 10–17 s).
	setupWorkers = 1024
	setupIdle    = 30 * time.Second // a worker with nothing to do this long ends

	// A burst is this many setups, over once none has run for burstQuiet.
	burstSetups = 1000
	burstQuiet  = 2 * time.Second
)

func newSetupPool(afterBurst func(setups int)) *setupPool {
	return &setupPool{jobs: make(chan func(), 4096), afterBurst: afterBurst}
}

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
	p.mu.Lock()
	p.setups++
	p.last = time.Now()
	if p.setups == burstSetups { // one check pending per burst
		time.AfterFunc(burstQuiet, p.checkBurst)
	}
	p.mu.Unlock()
}

// checkBurst calls afterBurst if no setup has ended for burstQuiet, or looks
// again when that will be so.
func (p *setupPool) checkBurst() {
	p.mu.Lock()
	if wait := burstQuiet - time.Since(p.last); wait > 0 {
		p.mu.Unlock()
		time.AfterFunc(wait, p.checkBurst)
		return
	}
	n := p.setups
	p.setups = 0
	p.mu.Unlock()
	p.afterBurst(n)
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
