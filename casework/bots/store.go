package bots

import (
	"context"
	"errors"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// Errors of bots. Transports map each to a stable code.
var (
	ErrNotFound  = errors.New("bots: not found")
	ErrExists    = errors.New("bots: already exists")
	ErrRateLimit = errors.New("bots: rate limit exceeded")
)

// A Cursor is how far the schedule of one clock key has got: the last point of
// its plan that was handled (posted, or found already posted). It only saves
// work: the room log, where each reminder's client id is unique, is what makes
// a reminder happen once.
type Cursor struct {
	Key       string // OpenClock.Key
	Room      chat.RoomID
	Point     string    // the point handled last
	At        time.Time // when that point was due
	Due       time.Time // the clock's due instant, for pruning
	Seq       chat.Seq  // the case-room entry that carried it
	UpdatedAt time.Time
}

// A Token is a bot's credential: the SHA-256 of an opaque secret, the bot it
// acts as, and the scope it may act in. The secret itself is shown once, when
// the token is issued, and never stored.
type Token struct {
	ID        string
	Bot       acl.UserID
	Name      string
	Hash      []byte // SHA-256 of the secret
	Scope     Scope
	CreatedBy acl.UserID
	CreatedAt time.Time
	ExpiresAt time.Time // zero: does not expire
	RevokedAt time.Time // zero: not revoked
}

// Active reports whether t may be used at now.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// A Webhook sends the entries of chosen kinds in the rooms of its token's scope
// to a URL, signed with its secret.
type Webhook struct {
	ID        string
	Bot       acl.UserID
	Token     string // the token whose scope it reads with
	URL       string
	Secret    string // the HMAC-SHA256 key; shown once, kept to sign
	Kinds     []chat.Kind
	Rooms     []chat.RoomID // within the token's scope
	CreatedBy acl.UserID
	CreatedAt time.Time
	DeletedAt time.Time // zero while active
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // gave up after the last attempt
)

// A Delivery is one entry to send to one webhook, with its attempts.
type Delivery struct {
	ID          string
	Hook        string
	Room        chat.RoomID
	Seq         chat.Seq
	Kind        chat.Kind
	State       string
	Attempts    int
	NextAt      time.Time // when the next attempt is due
	LastStatus  int       // HTTP status of the last attempt; 0 when it got none
	LastError   string
	CreatedAt   time.Time
	DeliveredAt time.Time
}

// Store is what bots needs from storage: the schedule's cursors and lease, bot
// tokens, webhooks and their delivery queue, in tables prefixed bots_ (migration
// domain "bots"). One implementation per database (bots/sqlite, bots/postgres),
// both checked by bots/storetest. Missing rows answer ErrNotFound.
type Store interface {
	// Cursors returns the stored cursors of keys, by key; keys without one are absent.
	Cursors(ctx context.Context, keys []string) (map[string]Cursor, error)
	// Advance stores c as its key's cursor unless the stored one is at c.At or
	// later, and reports whether it moved. A cursor never moves back.
	Advance(ctx context.Context, c Cursor) (bool, error)
	// PruneCursors deletes the cursors of clocks due before before.
	PruneCursors(ctx context.Context, before time.Time) (int, error)
	// Lease gives lease name to holder until until, if it is free at now
	// (never taken, expired, or already holder's), and reports whether holder
	// has it now. Two callers racing for a free lease cannot both get it.
	Lease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	// ReleaseLease frees name if holder has it.
	ReleaseLease(ctx context.Context, name, holder string) error

	// CreateToken stores a new token; an existing id is ErrExists.
	CreateToken(ctx context.Context, t Token) error
	// Token returns the token with id, revoked or not.
	Token(ctx context.Context, id string) (Token, error)
	// Tokens returns the tokens of bot, oldest first.
	Tokens(ctx context.Context, bot acl.UserID) ([]Token, error)
	// RevokeToken revokes token id as of at (a revoked token stays revoked) and
	// deletes the webhooks that read with it.
	RevokeToken(ctx context.Context, id string, at time.Time) error

	// CreateWebhook stores a new webhook; an existing id is ErrExists.
	CreateWebhook(ctx context.Context, w Webhook) error
	// Webhook returns the webhook with id, deleted or not.
	Webhook(ctx context.Context, id string) (Webhook, error)
	// Webhooks returns the active webhooks of bot, or of every bot when bot is "".
	Webhooks(ctx context.Context, bot acl.UserID) ([]Webhook, error)
	// DeleteWebhook deletes webhook id as of at; its pending deliveries are dropped.
	DeleteWebhook(ctx context.Context, id string, at time.Time) error

	// FeedCursor returns the last seq of room that webhook hook has queued (0: none).
	FeedCursor(ctx context.Context, hook string, room chat.RoomID) (chat.Seq, error)
	// Enqueue queues ds and moves the feed cursor of (hook, room) from from to
	// to, in one transaction, if the cursor is still at from; otherwise it does
	// nothing and reports false (another node queued them). A delivery for a
	// (hook, room, seq) already queued is not queued twice.
	Enqueue(ctx context.Context, hook string, room chat.RoomID, from, to chat.Seq, ds []Delivery) (bool, error)
	// ClaimDeliveries returns up to limit pending deliveries due at now, oldest
	// first, and hides them from other claims until lockUntil, so that two
	// nodes do not send one delivery at the same time.
	ClaimDeliveries(ctx context.Context, now, lockUntil time.Time, limit int) ([]Delivery, error)
	// FinishAttempt stores the outcome of an attempt at d (State, Attempts,
	// NextAt, LastStatus, LastError, DeliveredAt) and releases the claim.
	FinishAttempt(ctx context.Context, d Delivery) error
	// Deliveries returns the deliveries of webhook hook, oldest first.
	Deliveries(ctx context.Context, hook string) ([]Delivery, error)
}
