package chatws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"caseroom/chat"
)

// Limits of the protocol (docs/protocol.md, "Limits").
const (
	// MaxSinceRooms is the most rooms a hello may name in since.
	MaxSinceRooms = 1000
	// MaxRoomID is the longest room id a client frame may carry, in bytes.
	MaxRoomID = 64
	// MaxTokenLen is the longest access token a hello may carry.
	MaxTokenLen = 8 << 10
	// MaxClientFrame is the read limit of the server: the largest client frame
	// the protocol allows, which is a hello naming MaxSinceRooms rooms. Each
	// since entry is at most `"` + 64-byte id + `":` + 19-digit seq + `,` =
	// 87 bytes (room ids are plain ASCII, so JSON escaping does not grow them;
	// an escaped id counts escaped), so 1000 of them take 87,000 bytes; the
	// token 8,192 and the rest under 100. 128 KiB leaves room for whitespace.
	MaxClientFrame = 128 << 10
	// MaxServerFrame is the largest WebSocket message the server sends, and the
	// read limit clients must set: one message frame of a 16 KiB text whose
	// every byte JSON escapes to six (\u00XX), with a payload of the same
	// order, stays below it; batches are cut at Options.MaxBatch, and backlogs
	// are replayed a page of entries at a time, each entry its own frame.
	MaxServerFrame = 1 << 20
)

// Client frame kinds.
const (
	FrameHello  = "hello"
	FrameTyping = "typing"
	FrameRead   = "read"
	FramePing   = "ping"
)

// ServerFrames lists every frame kind the server sends. docs/protocol.md must
// describe each of them (TestProtocolDocumentsEveryServerFrame), and the tests
// fail if the server is seen sending a kind not in this list.
var ServerFrames = []string{"ready", "message", "caught_up", "typing", "read", "presence", "room_removed", "error", "pong"}

// Client frames. Every client frame is a JSON object whose "type" names its
// kind; fields a kind does not have are an error.
type (
	// Hello is the first frame: the access token (unless the upgrade request
	// carried Authorization: Bearer) and the last seq the client has of each
	// room it knows.
	Hello struct {
		Type  string                   `json:"type"`
		Token string                   `json:"token,omitempty"`
		Since map[chat.RoomID]chat.Seq `json:"since,omitempty"`
	}
	// Typing says the user is typing in Room.
	Typing struct {
		Type string      `json:"type"`
		Room chat.RoomID `json:"room"`
	}
	// Read moves the user's read marker in Room to Seq.
	Read struct {
		Type string      `json:"type"`
		Room chat.RoomID `json:"room"`
		Seq  chat.Seq    `json:"seq"`
	}
	// Ping asks for a pong frame.
	Ping struct {
		Type string `json:"type"`
	}
)

// Server frames of the transport's own; the others are chat's (ReadyFrame,
// MessageFrame, CaughtUpFrame, TypingFrame, ReadFrame, PresenceFrame,
// RoomRemovedFrame).
type (
	// ErrorFrame answers a client frame that was refused; it changes nothing.
	// Frame names the kind of client frame it answers, when known; Rule names
	// the policy rule that refused it (code "denied").
	ErrorFrame struct {
		Type    string `json:"type"` // "error"
		Code    string `json:"code"`
		Message string `json:"message"`
		Frame   string `json:"frame,omitempty"`
		Rule    string `json:"rule,omitempty"`
	}
	// PongFrame answers a ping frame.
	PongFrame struct {
		Type string `json:"type"` // "pong"
	}
)

// Error codes of ErrorFrame.
const (
	CodeBadFrame        = "bad_frame"        // not a JSON object, a field of the wrong type, an unknown field, a binary message
	CodeUnknownFrame    = "unknown_frame"    // a type the server does not know
	CodeUnexpectedHello = "unexpected_hello" // a hello after the first frame
	CodeRateLimited     = "rate_limited"     // too many frames: this one was not processed
	CodeNotFound        = "not_found"        // the room does not exist or is hidden from the user
	CodeInvalid         = "invalid"          // a field's value is not acceptable
	CodeDenied          = "denied"           // the policy refused; see rule
	CodeInternal        = "internal"         // the server failed; try again later
)

// A FrameError is a client frame that cannot be taken; Code is its ErrorFrame
// code.
type FrameError struct {
	Code   string
	Frame  string // the kind, when it was known
	Reason string
}

func (e *FrameError) Error() string { return "chatws: " + e.Code + ": " + e.Reason }

func badFrame(kind, format string, args ...any) error {
	return &FrameError{Code: CodeBadFrame, Frame: kind, Reason: fmt.Sprintf(format, args...)}
}

// DecodeClientFrame decodes one client frame strictly: a single JSON object of
// a known kind, with no field that kind does not have. It returns a *Hello,
// *Typing, *Read or *Ping, or a *FrameError.
func DecodeClientFrame(b []byte) (any, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, badFrame("", "a frame is one JSON object with a string \"type\"")
	}
	var v any
	switch head.Type {
	case FrameHello:
		v = new(Hello)
	case FrameTyping:
		v = new(Typing)
	case FrameRead:
		v = new(Read)
	case FramePing:
		v = new(Ping)
	case "":
		return nil, badFrame("", "a frame needs a \"type\"")
	default:
		return nil, &FrameError{Code: CodeUnknownFrame, Frame: head.Type, Reason: fmt.Sprintf("unknown frame type %q", head.Type)}
	}
	if err := strictUnmarshal(b, v); err != nil {
		return nil, badFrame(head.Type, "%s frame: %v", head.Type, err)
	}
	if err := validate(v); err != nil {
		return nil, err
	}
	return v, nil
}

// strictUnmarshal decodes exactly one JSON value into v, refusing unknown fields.
func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errors.New("more than one JSON value")
	}
	return nil
}

func validRoom(r chat.RoomID) bool { return r != "" && len(r) <= MaxRoomID }

func validate(v any) error {
	switch f := v.(type) {
	case *Hello:
		if len(f.Token) > MaxTokenLen {
			return badFrame(FrameHello, "token longer than %d bytes", MaxTokenLen)
		}
		if len(f.Since) > MaxSinceRooms {
			return badFrame(FrameHello, "since names more than %d rooms", MaxSinceRooms)
		}
		for r, seq := range f.Since {
			if !validRoom(r) || seq < 0 {
				return badFrame(FrameHello, "since: room ids are 1 to %d bytes and seqs not negative", MaxRoomID)
			}
		}
	case *Typing:
		if !validRoom(f.Room) {
			return badFrame(FrameTyping, "room must be 1 to %d bytes", MaxRoomID)
		}
	case *Read:
		if !validRoom(f.Room) || f.Seq < 0 {
			return badFrame(FrameRead, "room must be 1 to %d bytes and seq not negative", MaxRoomID)
		}
	}
	return nil
}

func encode(v any) []byte {
	b, _ := json.Marshal(v) // only the frame types above, which always encode
	return b
}

var pong = encode(PongFrame{Type: "pong"})
