package chat

import (
	"context"
	"errors"
	"io"
	"time"

	"caseroom/acl"
)

// Errors of chat. Transports map each to a stable code.
var (
	ErrNotFound  = errors.New("chat: not found") // missing, or hidden from the caller
	ErrExists    = errors.New("chat: already exists")
	ErrConflict  = errors.New("chat: the room has moved on") // Append's IfHead did not hold
	ErrArchived  = errors.New("chat: room is archived")
	ErrTooLarge  = errors.New("chat: too large")
	ErrInvalid   = errors.New("chat: invalid input")
	ErrRateLimit = errors.New("chat: rate limit exceeded")
	// ErrRoleChanged: the sender's membership of the room was not, at commit,
	// what WithSenderRole said the caller decided on; nothing was stored.
	ErrRoleChanged = errors.New("chat: the sender's membership changed")
)

// An InvalidError says which input field is wrong and why; it wraps ErrInvalid.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return "chat: invalid " + e.Field + ": " + e.Reason }
func (e *InvalidError) Unwrap() error { return ErrInvalid }

func invalid(field, reason string) error { return &InvalidError{Field: field, Reason: reason} }

// HistoryQuery selects a page of a room's log. With After set, entries after it
// in ascending order; with Before set, entries before it, returned in ascending
// order too (the page closest to Before); with Since/Until, entries stored in
// that time range. Limit caps the page (the store applies at most MaxPage).
type HistoryQuery struct {
	After  Seq
	Before Seq
	Since  time.Time
	Until  time.Time
	Limit  int
}

// MaxPage is the largest page a store returns, whatever Limit asks.
const MaxPage = 500

// A Link is one entry as the chain verifier sees it.
type Link struct {
	Seq       Seq
	Prev      []byte
	Hash      []byte
	Canonical []byte
}

// Store is what chat needs from storage. One implementation per database
// (chat/sqlite, chat/postgres), both checked by chat/storetest.
type Store interface {
	// CreateRoom stores a new room whose log opens with created (kind RoomCreate,
	// its payload naming the first members), which gets seq 1. r.ID must be new.
	CreateRoom(ctx context.Context, r Room, created *Message) error
	// Room returns a room, or ErrNotFound.
	Room(ctx context.Context, id RoomID) (Room, error)
	// UnitRoom returns the unit room of unit, or ErrNotFound.
	UnitRoom(ctx context.Context, unit acl.UnitID) (Room, error)

	// Append stores m as the next entry of its room, in one transaction with its
	// effect: membership kinds change the members, RoomRename and RoomArchive the
	// room, Edit and Retract the derived fields of their target. It sets m.Seq,
	// m.Prev, m.Hash and m.CreatedAt (now, in microseconds). If ifHead is not zero
	// and the room's head is not ifHead, it stores nothing and answers ErrConflict.
	// If m.ClientID is set and the sender already posted that id in the room, it
	// stores nothing, fills m with the stored entry and reports dup.
	Append(ctx context.Context, m *Message, ifHead Seq) (dup bool, err error)

	// Message returns one entry, or ErrNotFound.
	Message(ctx context.Context, room RoomID, seq Seq) (Message, error)
	// History returns a page of entries, in ascending seq order.
	History(ctx context.Context, room RoomID, q HistoryQuery) ([]Message, error)
	// Versions returns the Edit entries whose target is seq, in order.
	Versions(ctx context.Context, room RoomID, seq Seq) ([]Message, error)
	// Chain returns up to limit links after seq, in order, for verification.
	Chain(ctx context.Context, room RoomID, after Seq, limit int) ([]Link, error)

	// RoomAccess returns a room and user's membership of it in one read, for
	// every request's access check: the membership's Role is "" when user is
	// not a member. A missing room is ErrNotFound.
	RoomAccess(ctx context.Context, room RoomID, user acl.UserID) (Room, Membership, error)
	// Membership returns user's membership of room, or ErrNotFound.
	Membership(ctx context.Context, room RoomID, user acl.UserID) (Membership, error)
	// Members returns the members of room, ordered by user id.
	Members(ctx context.Context, room RoomID) ([]Membership, error)
	// Units returns the participating units of room, ordered.
	Units(ctx context.Context, room RoomID) ([]acl.UnitID, error)
	// RoomsOf returns user's rooms with unread counts and last messages, most
	// recently active first.
	RoomsOf(ctx context.Context, user acl.UserID) ([]RoomSummary, error)
	// MemberHeads returns the rooms user is a member of with their heads, in
	// one read, ordered by room: what a session needs to start.
	MemberHeads(ctx context.Context, user acl.UserID) ([]RoomHead, error)
	// Memberships returns the rooms user is a member of with their heads, for resume.
	Memberships(ctx context.Context, user acl.UserID) ([]Membership, error)

	// MarkRead moves user's read marker in room forward to seq (never back) and
	// reports the marker now stored.
	MarkRead(ctx context.Context, room RoomID, user acl.UserID, seq Seq, at time.Time) (Seq, error)
	// ReadMarkers returns the read markers of room.
	ReadMarkers(ctx context.Context, room RoomID) ([]ReadMarker, error)

	// PutBlob stores content under its SHA-256 (content is read to the end; the
	// store checks the hash and size it is given) and records that room holds it.
	PutBlob(ctx context.Context, room RoomID, b Blob, content io.Reader) error
	// OpenBlob returns a blob room holds, or ErrNotFound (also when the blob exists
	// but was never uploaded to room). The caller closes the reader.
	OpenBlob(ctx context.Context, room RoomID, sha256 string) (Blob, io.ReadCloser, error)
	// StatBlob returns what OpenBlob would, without the content (a file post
	// checks its attachment with it, not reading up to 50 MiB).
	StatBlob(ctx context.Context, room RoomID, sha256 string) (Blob, error)

	// Ping checks the database answers.
	Ping(ctx context.Context) error
}

// commitHookKey is the context key of WithCommitHook.
type commitHookKey struct{}

// WithCommitHook returns ctx carrying f, for Store.Append: a store that
// commits several appends at once (group commit) calls f with the entry it
// stored for this call, right after the commit and before Append returns, and
// calls the hooks of one commit, and of successive commits, in seq order per
// room. So a Service that publishes from f publishes a room's entries in
// order on this node even while many appends to the room are in flight. A
// duplicate (dup) or a failed append does not call f; a store may also never
// call it, and the caller then publishes after Append returns.
func WithCommitHook(ctx context.Context, f func(*Message)) context.Context {
	return context.WithValue(ctx, commitHookKey{}, f)
}

// senderRoleKey is the context key of WithSenderRole.
type senderRoleKey struct{}

// WithSenderRole returns ctx carrying the sender's room role ("" for none)
// that the caller's access decision rested on, for Store.Append, and asOf,
// the room's head when that membership was read: the store checks at commit
// that the sender's role is still role and, if it is not, stores nothing and
// answers ErrRoleChanged. So a decision made on a cached or earlier read of
// the membership holds at commit. A store may skip reading the role when no
// entry after asOf changed the room's members.
func WithSenderRole(ctx context.Context, role RoomRole, asOf Seq) context.Context {
	return context.WithValue(ctx, senderRoleKey{}, SenderDecision{Role: role, AsOf: asOf})
}

// A SenderDecision is what WithSenderRole put in a context.
type SenderDecision struct {
	Role RoomRole
	AsOf Seq
}

// SenderRole returns the decision WithSenderRole put in ctx, and whether there is one.
func SenderRole(ctx context.Context) (SenderDecision, bool) {
	d, ok := ctx.Value(senderRoleKey{}).(SenderDecision)
	return d, ok
}

// CommitHook returns the hook WithCommitHook put in ctx, or nil.
func CommitHook(ctx context.Context) func(*Message) {
	f, _ := ctx.Value(commitHookKey{}).(func(*Message))
	return f
}
