package chatclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"caseroom/acl"
	"caseroom/chat"
)

// MaxServerMessage is the read limit a client sets: the largest WebSocket
// message the server sends (docs/protocol.md, "Limits").
const MaxServerMessage = 1 << 20

// A Frame is one server frame (docs/protocol.md). Fields a kind does not have
// are zero; Raw is the frame as it came.
type Frame struct {
	Type    string            `json:"type"`
	Room    chat.RoomID       `json:"room,omitempty"`
	Seq     chat.Seq          `json:"seq,omitempty"`
	User    acl.UserID        `json:"user,omitempty"`
	Rooms   []chat.RoomHead   `json:"rooms,omitempty"`   // ready
	Online  []acl.UserID      `json:"online,omitempty"`  // presence
	Offline []acl.UserID      `json:"offline,omitempty"` // presence
	Code    string            `json:"code,omitempty"`    // error
	Text    string            `json:"-"`                 // error: its "message"
	Frame   string            `json:"frame,omitempty"`   // error: the client frame it answers
	Rule    string            `json:"rule,omitempty"`    // error
	Message *chat.MessageView `json:"-"`                 // message
	Raw     json.RawMessage   `json:"-"`
}

// decodeFrame decodes one frame.
func decodeFrame(b []byte) (Frame, error) {
	var f Frame
	var aux struct {
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return Frame{}, fmt.Errorf("chatclient: frame %.100s: %w", b, err)
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return Frame{}, fmt.Errorf("chatclient: frame %.100s: %w", b, err)
	}
	switch f.Type {
	case "message":
		var m chat.MessageView
		if err := json.Unmarshal(aux.Message, &m); err != nil {
			return Frame{}, fmt.Errorf("chatclient: message frame: %w", err)
		}
		f.Message = &m
	case "error":
		json.Unmarshal(aux.Message, &f.Text)
	}
	f.Raw = append(json.RawMessage(nil), b...)
	return f, nil
}

// A Conn is one WebSocket to the server. Next must be called from one
// goroutine; the senders (Typing, Read, Ping) may be called from any.
type Conn struct {
	ws      *websocket.Conn
	ready   Frame
	pending []Frame
	batches int

	mu    sync.Mutex
	since map[chat.RoomID]chat.Seq // guarded by mu
}

// CloseError is how a Conn ended, when the server said so.
type CloseError = websocket.CloseError

// CloseStatus returns the close code err carries, or -1.
func CloseStatus(err error) int { return int(websocket.CloseStatus(err)) }

// Connect opens the socket, sends hello with the positions since (the last
// seq the client has of each room; nil for none) and waits for the ready
// frame. Connect's error carries the close code when the server refused
// (CloseStatus).
func (c *Client) Connect(ctx context.Context, since map[chat.RoomID]chat.Seq) (*Conn, error) {
	tk, err := c.AccessToken(ctx)
	if err != nil {
		return nil, err
	}
	u := "ws" + strings.TrimPrefix(c.base, "http") + "/api/v1/ws"
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.http})
	if err != nil {
		return nil, fmt.Errorf("chatclient: dial: %w", err)
	}
	ws.SetReadLimit(MaxServerMessage)
	conn := &Conn{ws: ws, since: maps.Clone(since)}
	if conn.since == nil {
		conn.since = map[chat.RoomID]chat.Seq{}
	}
	hello, _ := json.Marshal(map[string]any{"type": "hello", "token": tk, "since": conn.since})
	if err := ws.Write(ctx, websocket.MessageText, hello); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("chatclient: hello: %w", err)
	}
	f, err := conn.next(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	if f.Type != "ready" {
		ws.CloseNow()
		return nil, fmt.Errorf("chatclient: first frame is %q, not ready", f.Type)
	}
	conn.ready = f
	return conn, nil
}

// Resume opens a new socket from where prev left off: prev's positions.
func (c *Client) Resume(ctx context.Context, prev *Conn) (*Conn, error) {
	return c.Connect(ctx, prev.Since())
}

// Ready returns the ready frame the session opened with.
func (c *Conn) Ready() Frame { return c.ready }

// Batches reports how many WebSocket messages carried more than one frame.
func (c *Conn) Batches() int { return c.batches }

// Since returns the resume positions: per room, the seq of the last message
// frame Next returned (or the position Connect was given); rooms reported
// removed are forgotten.
func (c *Conn) Since() map[chat.RoomID]chat.Seq {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.since)
}

// Next returns the next server frame, unpacking coalesced arrays, and tracks
// the resume positions. When the socket has ended it returns why
// (CloseStatus gives the close code, -1 when it just dropped).
func (c *Conn) Next(ctx context.Context) (Frame, error) {
	f, err := c.next(ctx)
	if err != nil {
		return f, err
	}
	switch f.Type {
	case "message":
		c.mu.Lock()
		c.since[f.Room] = max(c.since[f.Room], f.Seq)
		c.mu.Unlock()
	case "room_removed":
		c.mu.Lock()
		delete(c.since, f.Room)
		c.mu.Unlock()
	}
	return f, nil
}

func (c *Conn) next(ctx context.Context) (Frame, error) {
	for len(c.pending) == 0 {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			return Frame{}, err
		}
		if typ != websocket.MessageText {
			return Frame{}, errors.New("chatclient: binary message from the server")
		}
		b = bytes.TrimSpace(b)
		if len(b) > 0 && b[0] == '[' {
			var raws []json.RawMessage
			if err := json.Unmarshal(b, &raws); err != nil {
				return Frame{}, fmt.Errorf("chatclient: batch: %w", err)
			}
			c.batches++
			for _, r := range raws {
				f, err := decodeFrame(r)
				if err != nil {
					return Frame{}, err
				}
				c.pending = append(c.pending, f)
			}
			continue
		}
		f, err := decodeFrame(b)
		if err != nil {
			return Frame{}, err
		}
		c.pending = append(c.pending, f)
	}
	f := c.pending[0]
	c.pending = c.pending[1:]
	return f, nil
}

func (c *Conn) send(ctx context.Context, v any) error {
	b, _ := json.Marshal(v)
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// Typing tells room's members the user is typing.
func (c *Conn) Typing(ctx context.Context, room chat.RoomID) error {
	return c.send(ctx, map[string]any{"type": "typing", "room": room})
}

// Read moves the user's read marker in room to seq.
func (c *Conn) Read(ctx context.Context, room chat.RoomID, seq chat.Seq) error {
	return c.send(ctx, map[string]any{"type": "read", "room": room, "seq": seq})
}

// Ping asks the server for a pong frame.
func (c *Conn) Ping(ctx context.Context) error {
	return c.send(ctx, map[string]any{"type": "ping"})
}

// Close closes the socket normally.
func (c *Conn) Close() error { return c.ws.Close(websocket.StatusNormalClosure, "") }

// Drop closes the socket at once, without a close handshake, as a network
// failure would.
func (c *Conn) Drop() error { return c.ws.CloseNow() }
