package membroker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"caseroom/chat"
	"caseroom/chat/brokertest"
	"caseroom/chat/membroker"
)

func TestBroker(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) (a, b chat.Broker) {
		// The contract, not the default size, is under test: a small buffer keeps
		// the slow-subscriber case short on a busy machine.
		br := membroker.New(4096)
		return br, br // one process: both "nodes" share the broker
	})
}

// TestSlowSubscriberEndsAtOnce: with a handler stuck, the event that finds
// the buffer full ends the subscription at once, Publish never waits, and the
// stuck handler is not called again once released.
func TestSlowSubscriberEndsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := membroker.New(8)
		release := make(chan struct{})
		var calls atomic.Int64
		done, err := br.Subscribe(t.Context(), func(chat.Event) {
			calls.Add(1)
			<-release
		})
		if err != nil {
			t.Fatal(err)
		}
		publish := func(n int) {
			for i := range n {
				if err := br.Publish(context.Background(), chat.Event{Type: chat.EvMessage, Room: "r", Seq: chat.Seq(i + 1)}); err != nil {
					t.Fatal(err)
				}
			}
		}
		publish(1)
		synctest.Wait() // the handler holds event 1; the buffer is empty
		publish(8)      // fills the buffer
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("ended with %v while the buffer had room", err)
		default:
		}
		publish(1) // one too many
		select {
		case err := <-done:
			if !errors.Is(err, chat.ErrSlowSubscriber) {
				t.Fatalf("ended with %v, want ErrSlowSubscriber", err)
			}
		default:
			t.Fatal("the subscription did not end when its buffer overflowed")
		}
		close(release)
		synctest.Wait()
		if n := calls.Load(); n != 1 {
			t.Fatalf("handler called %d times, want 1 (the buffered events are dropped)", n)
		}
	})
}

// TestEphemeralOverflowIsDropped: typing and presence events that find a
// stuck subscription's buffer full are dropped for it, and it goes on; a log
// entry that finds it full still ends it.
func TestEphemeralOverflowIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := membroker.New(4)
		release := make(chan struct{})
		var got []chat.Event
		done, err := br.Subscribe(t.Context(), func(e chat.Event) {
			got = append(got, e)
			<-release
		})
		if err != nil {
			t.Fatal(err)
		}
		publish := func(e chat.Event) {
			if err := br.Publish(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		publish(chat.Event{Type: chat.EvMessage, Room: "r", Seq: 1})
		synctest.Wait() // the handler holds entry 1
		for range 100 {
			publish(chat.Event{Type: chat.EvPresence, Room: "r", Data: []byte(`{}`)})
			publish(chat.Event{Type: chat.EvTyping, Room: "r", Data: []byte(`{}`)})
		}
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("a burst of ephemeral events ended the subscription: %v", err)
		default:
		}
		publish(chat.Event{Type: chat.EvMessage, Room: "r", Seq: 2}) // the buffer is full of ephemeral events
		select {
		case err := <-done:
			if !errors.Is(err, chat.ErrSlowSubscriber) {
				t.Fatalf("ended with %v, want ErrSlowSubscriber", err)
			}
		default:
			t.Fatal("a log entry that found the buffer full did not end the subscription")
		}
		close(release)
	})
}
