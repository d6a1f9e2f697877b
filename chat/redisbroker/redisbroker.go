// Package redisbroker links the nodes of a caseroom cluster through Redis
// PUB/SUB: every node publishes its events on one channel and every node's hub
// subscribes to it.
//
// PUB/SUB delivers at most once: an event published while a node's connection
// is down is lost for that node. That is allowed by the chat.Broker contract —
// hubs fill gaps in a room's sequence from the store — and a subscription that
// loses its connection ends (done reports why), so the hub resubscribes and
// brings every session up to date from the store.
package redisbroker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"caseroom/acl"
	"caseroom/chat"
)

// DefaultBuffer is how many received events a subscription holds for its handler
// before it is ended as slow.
const DefaultBuffer = 4096

// A Broker is a chat.Broker on Redis. It is safe for concurrent use.
type Broker struct {
	client  *redis.Client
	channel string
	buffer  int
}

// New returns a broker publishing and subscribing on the channel prefix+"events"
// (prefix separates clusters, or tests, sharing one Redis). buffer <= 0 means
// DefaultBuffer.
func New(client *redis.Client, prefix string, buffer int) *Broker {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Broker{client: client, channel: prefix + "events", buffer: buffer}
}

// header is an event on the channel without its data. A message is the JSON
// header, a newline, then the event's Data as it is: the frame is already
// encoded, so it travels byte for byte, never re-encoded.
type header struct {
	Type  chat.EventType `json:"t"`
	Room  chat.RoomID    `json:"r,omitempty"`
	Seq   chat.Seq       `json:"s,omitempty"`
	User  acl.UserID     `json:"u,omitempty"`
	Kind  chat.Kind      `json:"k,omitempty"`
	Users []acl.UserID   `json:"us,omitempty"`
}

func encode(e chat.Event) []byte {
	h, _ := json.Marshal(header{Type: e.Type, Room: e.Room, Seq: e.Seq, User: e.User, Kind: e.Kind, Users: e.Users})
	b := make([]byte, 0, len(h)+1+len(e.Data))
	b = append(append(append(b, h...), '\n'), e.Data...)
	return b
}

func decode(b []byte) (chat.Event, error) {
	hb, data, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return chat.Event{}, fmt.Errorf("redisbroker: message without header")
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return chat.Event{}, err
	}
	e := chat.Event{Type: h.Type, Room: h.Room, Seq: h.Seq, User: h.User, Kind: h.Kind, Users: h.Users}
	if len(data) > 0 {
		e.Data = data
	}
	return e, nil
}

// Publish sends e to every node. It returns once Redis has taken it.
func (b *Broker) Publish(ctx context.Context, e chat.Event) error {
	if err := b.client.Publish(ctx, b.channel, encode(e)).Err(); err != nil {
		return fmt.Errorf("redisbroker: publish: %w", err)
	}
	return nil
}

// Subscribe calls handle, from one goroutine, with every event published on any
// node after it returns. The subscription ends when ctx is done, when handle
// falls more than the buffer behind (chat.ErrSlowSubscriber), or when the
// connection to Redis fails (that error); done reports which.
func (b *Broker) Subscribe(ctx context.Context, handle func(chat.Event)) (<-chan error, error) {
	ps := b.client.Subscribe(ctx, b.channel)
	// Wait for Redis to confirm, so that the subscription is live on return.
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("redisbroker: subscribe: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	events := make(chan chat.Event, b.buffer)
	done := make(chan error, 1)
	var once sync.Once
	end := func(err error) {
		once.Do(func() {
			cancel()
			ps.Close()
			done <- err
			close(done)
		})
	}
	// Cancelling ctx ends the subscription even while ReceiveMessage is blocked
	// on the connection: end closes it.
	go func() {
		<-ctx.Done()
		end(context.Cause(ctx))
	}()
	// The receiver never waits for the handler: a full buffer ends the
	// subscription instead, so a slow node never holds Redis's output buffer.
	go func() {
		for {
			m, err := ps.ReceiveMessage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					end(context.Cause(ctx))
				} else {
					end(fmt.Errorf("redisbroker: receive: %w", err))
				}
				return
			}
			e, err := decode([]byte(m.Payload))
			if err != nil {
				continue // not ours: another program on the channel
			}
			select {
			case events <- e:
			default:
				end(chat.ErrSlowSubscriber)
				return
			}
		}
	}()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			default:
			}
			select {
			case <-ctx.Done():
				return
			case e := <-events:
				handle(e)
			}
		}
	}()
	return done, nil
}
