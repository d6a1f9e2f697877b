package chatws

import (
	"bytes"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The pool runs every job, never more than setupWorkers at once, and its
// workers end once idle — and a later job starts one again.
func TestSetupPoolBoundsAndEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newSetupPool(func(int) {})
		var on, most, ran atomic.Int32
		release := make(chan struct{})
		var wg sync.WaitGroup
		for range 3 * setupWorkers {
			wg.Go(func() {
				p.run(func() {
					n := on.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					<-release
					on.Add(-1)
					ran.Add(1)
				})
			})
		}
		synctest.Wait()
		if got := on.Load(); got != setupWorkers {
			t.Fatalf("%d jobs ran at once with more waiting, want %d", got, setupWorkers)
		}
		close(release)
		wg.Wait()
		if ran.Load() != 3*setupWorkers || most.Load() != setupWorkers {
			t.Fatalf("ran %d jobs (want %d), at most %d at once (want %d)", ran.Load(), 3*setupWorkers, most.Load(), setupWorkers)
		}
		time.Sleep(setupIdle + time.Second)
		synctest.Wait()
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if running != 0 {
			t.Fatalf("%d workers still running after %v idle", running, setupIdle)
		}
		done := false
		p.run(func() { done = true })
		if !done {
			t.Fatal("a job after the workers ended did not run")
		}
		time.Sleep(setupIdle + time.Second) // its worker ends too
	})
}

// afterBurst runs once per burst of at least burstSetups setups, and only
// once no setup has run for burstQuiet; fewer setups never call it.
func TestSetupPoolSeesABurstEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var made []int
		p := newSetupPool(func(n int) { mu.Lock(); made = append(made, n); mu.Unlock() })
		calls := func() []int { mu.Lock(); defer mu.Unlock(); return slices.Clone(made) }
		setups := func(n int) {
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() { p.run(func() {}) })
			}
			wg.Wait()
		}
		setups(burstSetups - 1)
		time.Sleep(2 * burstQuiet)
		synctest.Wait()
		if c := calls(); len(c) != 0 {
			t.Fatalf("afterBurst called %v after %d setups, fewer than a burst", c, burstSetups-1)
		}
		// The burst goes on past its threshold, one setup a second: no call
		// until a quiet spell, then one with every setup counted.
		setups(1)
		for range 5 {
			time.Sleep(burstQuiet / 2)
			setups(1)
			synctest.Wait()
			if c := calls(); len(c) != 0 {
				t.Fatalf("afterBurst called %v while setups went on", c)
			}
		}
		time.Sleep(burstQuiet + time.Second)
		synctest.Wait()
		if c := calls(); len(c) != 1 || c[0] != burstSetups+5 {
			t.Fatalf("afterBurst calls %v, want one with %d setups", c, burstSetups+5)
		}
		// A second burst counts afresh.
		setups(burstSetups)
		time.Sleep(burstQuiet + time.Second)
		synctest.Wait()
		if c := calls(); len(c) != 2 || c[1] != burstSetups {
			t.Fatalf("afterBurst calls %v, want a second with %d setups", c, burstSetups)
		}
		time.Sleep(setupIdle + time.Second) // the workers end
	})
}

// countingConn counts the writes that reach the connection.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	buf    bytes.Buffer
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

// While held, writes collect and go out in one write at send; released, they
// go straight through.
func TestConnWriterHoldsUntilSend(t *testing.T) {
	conn := &countingConn{}
	o := &connWriter{conn: conn}
	o.Write([]byte("a"))
	if conn.writes != 1 {
		t.Fatalf("an unheld write made %d writes, want 1", conn.writes)
	}
	o.hold()
	o.Write([]byte("b"))
	o.Write([]byte("c"))
	if conn.writes != 1 || o.held() != 2 {
		t.Fatalf("held writes reached the connection: %d writes, %d bytes held", conn.writes, o.held())
	}
	if err := o.send(false); err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("d"))
	if err := o.send(true); err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("e"))
	if conn.writes != 4 || conn.buf.String() != "abcde" {
		t.Fatalf("writes %d, bytes %q; want 4 writes of abcde (a, bc, d, e)", conn.writes, conn.buf.String())
	}
	if err := o.send(true); err != nil || conn.writes != 4 {
		t.Fatalf("send with nothing held: err %v, writes %d", err, conn.writes)
	}
}
