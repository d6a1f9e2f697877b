// Package membroker is the in-process chat.Broker of a single node: Publish hands
// each event to every subscription's bounded buffer without waiting, and one
// goroutine per subscription drains its buffer into the handler.
//
// A log entry or a revocation that finds a subscription's buffer full ends it
// with chat.ErrSlowSubscriber at once (its done channel reports it even while
// its handler is still busy), so a slow handler never slows Publish or the
// other subscriptions; the Hub fills any gap a resubscribe leaves from the
// store. An ephemeral event (read, typing, presence) that finds the buffer full
// is dropped for that subscription instead, as chat.Event allows: a burst of
// presence in a reconnect storm must not cost every session a refill. Events
// are never dropped for a subscription that keeps up.
package membroker

import (
	"context"
	"sync"

	"caseroom/chat"
)

// DefaultBuffer is the number of events a subscription may have waiting for its
// handler before it is ended as slow: room for a reconnect storm's burst of
// joins and presence (a resubscription costs every session a refill from the
// store), about 6 MiB when full.
const DefaultBuffer = 1 << 16

// A Broker is an in-process chat.Broker. The zero value is not usable: call New.
// It is safe for concurrent use.
type Broker struct {
	buffer int

	// mu serializes Publish, so that every subscription sees the events of a
	// room in one order, the order of the Publish calls; it also guards subs.
	mu   sync.Mutex
	subs map[*sub]struct{}
}

// New returns a Broker whose subscriptions buffer up to buffer events each
// (DefaultBuffer when buffer <= 0).
func New(buffer int) *Broker {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Broker{buffer: buffer, subs: map[*sub]struct{}{}}
}

// sub is one subscription.
type sub struct {
	events chan chat.Event
	stop   chan struct{} // closed when the subscription ends, for whatever reason
	done   chan error    // buffered 1: receives why it ended, then is closed
	once   sync.Once     // ends the subscription once
	handle func(chat.Event)
}

// end ends s with err: its goroutine stops before the next event and done
// reports err. It never blocks.
func (s *sub) end(err error) {
	s.once.Do(func() {
		close(s.stop)
		s.done <- err
		close(s.done)
	})
}

// Publish hands e to every live subscription. It never waits for a handler: a
// subscription whose buffer is full is ended with chat.ErrSlowSubscriber, or,
// for an ephemeral event, skipped. It fails only when ctx is already done.
func (b *Broker) Publish(ctx context.Context, e chat.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.events <- e:
		default:
			if ephemeral(e) {
				continue // may be lost without harm; the subscription goes on
			}
			delete(b.subs, s)
			s.end(chat.ErrSlowSubscriber)
		}
	}
	return nil
}

// ephemeral reports whether e may be dropped: not a log entry, whose loss
// costs a refill, nor a revocation, which must end sessions.
func ephemeral(e chat.Event) bool {
	return e.Type != chat.EvMessage && e.Type != chat.EvRevoke
}

// Subscribe registers handle for every event published after it returns;
// handle is called from one goroutine, in publish order. The subscription ends
// when ctx is done (done receives ctx's error) or when handle falls more than
// the buffer behind (done receives chat.ErrSlowSubscriber); either way handle
// is not called again once the call in progress, if any, returns.
func (b *Broker) Subscribe(ctx context.Context, handle func(chat.Event)) (<-chan error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &sub{
		events: make(chan chat.Event, b.buffer),
		stop:   make(chan struct{}),
		done:   make(chan error, 1),
		handle: handle,
	}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go b.run(ctx, s)
	return s.done, nil
}

func (b *Broker) run(ctx context.Context, s *sub) {
	defer func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()
	for {
		// stop is checked first so that an ended subscription never calls
		// handle again, even with events left in its buffer.
		select {
		case <-s.stop:
			return
		default:
		}
		select {
		case <-s.stop:
			return
		case <-ctx.Done():
			s.end(ctx.Err())
			return
		case e := <-s.events:
			s.handle(e)
		}
	}
}
