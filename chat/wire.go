package chat

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"caseroom/acl"
)

// MessageView is a log entry as clients see it, over HTTP and over the socket
// alike. For members, a retracted message keeps its place but loses its body and
// payload; auditors get the full view (Full).
type MessageView struct {
	Room       RoomID          `json:"room"`
	Seq        Seq             `json:"seq"`
	Kind       Kind            `json:"kind"`
	Sender     acl.UserID      `json:"sender"`
	SenderUnit acl.UnitID      `json:"sender_unit"`
	ClientID   string          `json:"client_id,omitempty"`
	ReplyTo    Seq             `json:"reply_to,omitempty"`
	Mentions   []acl.UserID    `json:"mentions,omitempty"`
	Body       string          `json:"body,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	Target     Seq             `json:"target,omitempty"`
	OccurredAt *time.Time      `json:"occurred_at,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	Edited     Seq             `json:"edited,omitempty"`    // seq of the latest edit
	Retracted  Seq             `json:"retracted,omitempty"` // seq of the retraction
	Hash       string          `json:"hash"`
}

// View returns m as a member sees it: a retracted message, and an edit of one,
// without its content.
func View(m *Message) MessageView {
	v := Full(m)
	if m.Retracted != 0 {
		v.Body, v.Payload, v.Mentions = "", nil, nil
	}
	return v
}

// Full returns m with everything, for auditors.
func Full(m *Message) MessageView {
	v := MessageView{
		Room: m.Room, Seq: m.Seq, Kind: m.Kind, Sender: m.Sender, SenderUnit: m.SenderUnit,
		ClientID: m.ClientID, ReplyTo: m.ReplyTo, Mentions: m.Mentions, Body: m.Body,
		Payload: m.Payload, Target: m.Target, CreatedAt: m.CreatedAt.UTC(),
		Edited: m.Edited, Retracted: m.Retracted, Hash: hex.EncodeToString(m.Hash),
	}
	if !m.OccurredAt.IsZero() {
		t := m.OccurredAt.UTC()
		v.OccurredAt = &t
	}
	return v
}

// MessageFrame is the server frame that carries one log entry to members:
// {"type":"message","room":…,"seq":…,"message":{…}}. It is encoded once per
// entry and the same bytes go to every member's socket.
type MessageFrame struct {
	Type    string      `json:"type"` // "message"
	Room    RoomID      `json:"room"`
	Seq     Seq         `json:"seq"`
	Message MessageView `json:"message"`
}

// EncodeMessage returns the frame for m as members see it.
func EncodeMessage(m *Message) []byte {
	v := View(m)
	b := make([]byte, 0, encodedSize(m))
	b = append(b, `{"type":"message","room":`...)
	b = appendJSONString(b, string(m.Room))
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, int64(m.Seq), 10)
	b = append(b, `,"message":`...)
	if b, ok := appendView(b, &v); ok {
		return append(b, '}')
	}
	b, _ = json.Marshal(MessageFrame{Type: "message", Room: m.Room, Seq: m.Seq, Message: v})
	return b
}

// ReadFrame tells a room's members that user has read up to seq.
type ReadFrame struct {
	Type string     `json:"type"` // "read"
	Room RoomID     `json:"room"`
	User acl.UserID `json:"user"`
	Seq  Seq        `json:"seq"`
}

// TypingFrame tells a room's members that user is typing.
type TypingFrame struct {
	Type string     `json:"type"` // "typing"
	Room RoomID     `json:"room"`
	User acl.UserID `json:"user"`
}

// EncodeRead returns the read frame.
func EncodeRead(room RoomID, user acl.UserID, seq Seq) []byte {
	b, _ := json.Marshal(ReadFrame{Type: "read", Room: room, User: user, Seq: seq})
	return b
}

// EncodeTyping returns the typing frame.
func EncodeTyping(room RoomID, user acl.UserID) []byte {
	b, _ := json.Marshal(TypingFrame{Type: "typing", Room: room, User: user})
	return b
}
