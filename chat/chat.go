// Package chat keeps rooms, their members and their ordered, hash-chained logs.
//
// A room's log is the record: every message, edit, retraction, membership change,
// rename and archive is an entry with the next sequence number of its room (no
// gaps), and each entry carries the hash of the one before, so that altering the
// log is noticed (VerifyRoom). Nothing in the log is updated in place; what
// members see (the latest version of an edited message, a retraction) is derived.
package chat

import (
	"encoding/json"
	"time"

	"caseroom/acl"
)

// RoomID names a room. Seq is a position in a room's log, from 1, without gaps.
type (
	RoomID string
	Seq    int64
)

// RoomKind says what a room is for.
type RoomKind string

const (
	GroupRoom  RoomKind = "group"  // an ordinary group chat
	UnitRoom   RoomKind = "unit"   // a unit's inbox for notices and escalations
	CaseRoom   RoomKind = "case"   // one case; created by casework
	DirectRoom RoomKind = "direct" // two people
)

// RoomRole is a member's role in a room.
type RoomRole string

const (
	Owner     RoomRole = "owner"
	Moderator RoomRole = "moderator"
	Member    RoomRole = "member"
	Observer  RoomRole = "observer" // reads, never posts
)

// ValidRoomRole reports whether r is one of the four room roles.
func ValidRoomRole(r RoomRole) bool {
	return r == Owner || r == Moderator || r == Member || r == Observer
}

// A Room is a group chat. OwnerUnit is the unit that owns it (for a case room,
// the committee of the case's jurisdiction) and Region is that unit's region,
// which decides whose jurisdiction covers the room.
type Room struct {
	ID        RoomID
	Kind      RoomKind
	Name      string
	OwnerUnit acl.UnitID
	Region    acl.RegionCode
	Archived  bool // archived rooms are read-only
	CreatedBy acl.UserID
	CreatedAt time.Time
	Head      Seq       // the last entry's seq
	LastAt    time.Time // when the last entry was stored
}

// A Membership is a user's place in a room. Since is the seq of the entry that
// made them a member.
type Membership struct {
	Room  RoomID
	User  acl.UserID
	Unit  acl.UnitID
	Role  RoomRole
	Since Seq
}

// Kind is the kind of a log entry.
type Kind string

// The kinds chat itself defines. Packages register more (casework's acts) with
// Registry.Register.
const (
	Text    Kind = "text"
	File    Kind = "file"
	System  Kind = "system"  // a notice from the server or a bot
	Edit    Kind = "edit"    // Target is the edited message; Body its new text
	Retract Kind = "retract" // Target is the retracted message

	RoomCreate   Kind = "room.create"   // payload RoomCreated
	RoomRename   Kind = "room.rename"   // payload RoomRenamed
	RoomArchive  Kind = "room.archive"  // payload RoomArchived
	MemberAdd    Kind = "member.add"    // payload MembersChanged
	MemberRemove Kind = "member.remove" // payload MembersChanged
	MemberRole   Kind = "member.role"   // payload MembersChanged
	UnitAdd      Kind = "unit.add"      // payload UnitsChanged: a unit joins as a participant
)

// A Message is one entry of a room's log. The fields above Prev are what the hash
// covers (Canonical); Edited and Retracted are derived from later entries.
type Message struct {
	Room       RoomID
	Seq        Seq
	Kind       Kind
	Sender     acl.UserID
	SenderUnit acl.UnitID
	ClientID   string // the client's id for the post; a repeat returns the first result
	ReplyTo    Seq
	Mentions   []acl.UserID
	Body       string
	Payload    json.RawMessage // structured kinds; stored as the exact bytes given
	Target     Seq             // the entry an edit or retraction is about
	OccurredAt time.Time       // when an act legally happened; zero for chat
	CreatedAt  time.Time       // when the server stored it (microseconds)

	Prev []byte // hash of entry Seq-1; nil for Seq 1
	Hash []byte

	Edited    Seq  // seq of the latest edit of this message, 0 if never edited
	Retracted Seq  // seq of the retraction of this message, 0 if not retracted
	Countable bool // counts as unread for others (messages, not membership noise)
}

// Payloads of chat's own structured kinds.
type (
	// RoomCreated opens every room's log.
	RoomCreated struct {
		Kind      RoomKind       `json:"kind"`
		Name      string         `json:"name"`
		OwnerUnit acl.UnitID     `json:"owner_unit"`
		Region    acl.RegionCode `json:"region"`
		Members   []MemberRef    `json:"members"`
	}
	// MemberRef is one user in a membership change.
	MemberRef struct {
		User acl.UserID `json:"user"`
		Unit acl.UnitID `json:"unit"`
		Role RoomRole   `json:"role,omitempty"`
	}
	// MembersChanged adds, removes or re-roles members.
	MembersChanged struct {
		Members []MemberRef `json:"members"`
	}
	// UnitsChanged adds units as participants.
	UnitsChanged struct {
		Units []acl.UnitID `json:"units"`
	}
	// RoomRenamed gives a room a new name.
	RoomRenamed struct {
		Name string `json:"name"`
	}
	// RoomArchived archives a room (or brings it back, Archived false).
	RoomArchived struct {
		Archived bool `json:"archived"`
	}
	// FileRef is the payload of a File message: the attachment's content hash.
	FileRef struct {
		SHA256 string `json:"sha256"` // hex
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		Type   string `json:"type"` // media type
	}
)

// Canonical is the byte form the entry's hash covers: every field a reader relies
// on, times as Unix microseconds, the payload as the exact bytes stored.
func (m *Message) Canonical() []byte {
	if b, ok := appendCanonical(make([]byte, 0, encodedSize(m)), m); ok {
		return b
	}
	return m.canonicalJSON()
}

// canonicalJSON is Canonical by encoding/json, the definition appendCanonical
// follows.
func (m *Message) canonicalJSON() []byte {
	mentions := m.Mentions
	if mentions == nil {
		mentions = []acl.UserID{}
	}
	var occurred int64
	if !m.OccurredAt.IsZero() {
		occurred = m.OccurredAt.UnixMicro()
	}
	b, _ := json.Marshal(struct {
		Room       RoomID          `json:"room"`
		Seq        Seq             `json:"seq"`
		Kind       Kind            `json:"kind"`
		Sender     acl.UserID      `json:"sender"`
		SenderUnit acl.UnitID      `json:"sender_unit"`
		ClientID   string          `json:"client_id"`
		ReplyTo    Seq             `json:"reply_to"`
		Mentions   []acl.UserID    `json:"mentions"`
		Body       string          `json:"body"`
		Payload    json.RawMessage `json:"payload"`
		Target     Seq             `json:"target"`
		OccurredAt int64           `json:"occurred_at"`
		CreatedAt  int64           `json:"created_at"`
	}{m.Room, m.Seq, m.Kind, m.Sender, m.SenderUnit, m.ClientID, m.ReplyTo, mentions, m.Body,
		rawOrNull(m.Payload), m.Target, occurred, m.CreatedAt.UnixMicro()})
	return b
}

// rawOrNull keeps Canonical deterministic for an empty payload. A payload that is
// not valid JSON never reaches the store (the service validates it), but Marshal
// must not fail on one either, so it is hashed as a JSON string of its bytes.
func rawOrNull(p json.RawMessage) json.RawMessage {
	if len(p) == 0 {
		return json.RawMessage("null")
	}
	if !json.Valid(p) {
		b, _ := json.Marshal(string(p))
		return b
	}
	return p
}

// A ReadMarker is the last seq a user has read in a room.
type ReadMarker struct {
	Room RoomID
	User acl.UserID
	Seq  Seq
	At   time.Time
}

// A RoomSummary is one line of "my rooms".
type RoomSummary struct {
	Room   Room
	Role   RoomRole
	Unread int
	Last   *Message // nil for an empty room; content hidden if retracted
	Read   Seq
}

// A Blob is an attachment's content and what is known about it.
type Blob struct {
	SHA256    string // hex
	Size      int64
	Type      string
	CreatedAt time.Time
}
