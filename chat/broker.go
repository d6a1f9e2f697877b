package chat

import (
	"context"
	"errors"

	"caseroom/acl"
)

// EventType says what an Event carries.
type EventType string

const (
	EvMessage  EventType = "message"  // a new log entry (Seq set)
	EvRead     EventType = "read"     // a read marker moved
	EvTyping   EventType = "typing"   // someone is typing
	EvPresence EventType = "presence" // a user came online or went offline
	EvRevoke   EventType = "revoke"   // a user's sessions were revoked: close their sockets
)

// An Event travels from the node that caused it to every node's Hub. Data is the
// server frame already encoded for clients, so a message is encoded once, not
// once per recipient. Seq is set for log entries only; the others are ephemeral
// and may be lost without harm.
type Event struct {
	Type EventType
	Room RoomID
	Seq  Seq
	User acl.UserID // whom the event is about (reader, typist, revoked user)
	Data []byte
	// For EvMessage: the entry's kind and, for membership kinds, the users it adds
	// or removes, so hubs follow membership without decoding Data.
	Kind  Kind
	Users []acl.UserID
}

// ErrSlowSubscriber ends a subscription whose handler fell too far behind.
var ErrSlowSubscriber = errors.New("chat: broker subscriber too slow")

// A Broker links nodes: every event published on any node reaches the handler of
// every live subscription on every node, in publish order per room. A broker may
// drop events (Redis PUB/SUB does); the Hub fills gaps in a room's Seq from the
// store, so nothing accepted is lost, only delayed.
type Broker interface {
	// Publish sends e to all subscribers. It does not wait for them.
	Publish(ctx context.Context, e Event) error
	// Subscribe calls handle, from one goroutine, with every event published after
	// Subscribe returns. If handle falls too far behind, the subscription ends
	// and done receives ErrSlowSubscriber; cancelling ctx ends it with ctx's error.
	Subscribe(ctx context.Context, handle func(Event)) (done <-chan error, err error)
}
