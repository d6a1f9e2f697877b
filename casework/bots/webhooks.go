package bots

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// The headers of a webhook request.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
	// under the webhook's secret. The body names its own delivery id and time,
	// so a receiver can refuse replays.
	SignatureHeader = "X-Caseroom-Signature"
	DeliveryHeader  = "X-Caseroom-Delivery" // the delivery id: the same on every retry
	EventHeader     = "X-Caseroom-Event"    // the entry's kind
)

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header is body's signature under secret,
// comparing in constant time. Receivers (cmd/caseroom-digest) use it.
func VerifySignature(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(Sign(secret, body)))
}

// An Event is the body of a webhook request: one entry of a room, as members
// see it (a retracted entry without its content).
type Event struct {
	Delivery string           `json:"delivery"`
	Webhook  string           `json:"webhook"`
	Bot      acl.UserID       `json:"bot"`
	Kind     chat.Kind        `json:"kind"`
	Room     chat.RoomID      `json:"room"`
	Seq      chat.Seq         `json:"seq"`
	Attempt  int              `json:"attempt"` // from 1
	SentAt   time.Time        `json:"sent_at"`
	Message  chat.MessageView `json:"message"`
}

// DispatcherOptions tune a Dispatcher. Zero fields take the defaults stated.
type DispatcherOptions struct {
	Backoff     time.Duration // wait before the first retry, doubling after each; default 30s
	MaxBackoff  time.Duration // the longest wait; default 1h
	MaxAttempts int           // attempts before a delivery is given up; default 8
	Batch       int           // entries read or deliveries sent per round; default 100
	Lock        time.Duration // how long a claimed delivery is hidden from other nodes; default 1m
	Client      *http.Client  // default: 10s timeout, redirects not followed
}

// A Dispatcher feeds webhooks: Poll queues the new entries of their rooms
// (reading each room as the bot, so the ACL still decides), and Deliver sends
// what is due, signed, retrying with exponential backoff. Several nodes may run
// one each: the feed cursors and the delivery claims keep them from queueing
// or sending a delivery twice at once. A delivery is at least once: a
// receiver that answered too late gets it again, with the same delivery id.
type Dispatcher struct {
	store Store
	chat  *chat.Service
	plat  *Platform
	now   func() time.Time
	log   *slog.Logger
	opts  DispatcherOptions
}

// NewDispatcher returns a Dispatcher of plat's webhooks.
func NewDispatcher(plat *Platform, now func() time.Time, log *slog.Logger, opts DispatcherOptions) *Dispatcher {
	if opts.Backoff <= 0 {
		opts.Backoff = 30 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Hour
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.Batch <= 0 {
		opts.Batch = 100
	}
	if opts.Lock <= 0 {
		opts.Lock = time.Minute
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{store: plat.store, chat: plat.chat, plat: plat, now: now, log: log, opts: opts}
}

// Poll queues, for every active webhook, the entries of the chosen kinds that
// its rooms have got since its feed cursors, and reports how many it queued.
// A webhook whose token is no longer active, or whose bot is disabled, gets
// nothing; a room the bot is no longer a member of is skipped.
func (d *Dispatcher) Poll(ctx context.Context) (int, error) {
	hooks, err := d.store.Webhooks(ctx, "")
	if err != nil {
		return 0, err
	}
	now := d.now()
	queued := 0
	for _, w := range hooks {
		t, err := d.store.Token(ctx, w.Token)
		if err != nil || !t.Active(now) || !t.Scope.Read {
			continue
		}
		who, ok := d.botSubject(ctx, w.Bot)
		if !ok {
			continue
		}
		for _, room := range w.Rooms {
			if !t.Scope.HasRoom(room) {
				continue
			}
			n, err := d.pollRoom(ctx, w, who, room, now)
			if err != nil {
				return queued, err
			}
			queued += n
		}
	}
	return queued, nil
}

func (d *Dispatcher) botSubject(ctx context.Context, id acl.UserID) (acl.Subject, bool) {
	u, err := d.plat.dir.User(ctx, id)
	if err != nil || !u.Bot || u.Disabled {
		return acl.Subject{}, false
	}
	unit, err := d.plat.dir.Unit(ctx, u.Unit)
	if err != nil || unit.Disabled {
		return acl.Subject{}, false
	}
	return acl.Subject{User: u.ID, Name: u.Name, Unit: unit.ID, UnitKind: unit.Kind, Region: unit.Region, Roles: u.Roles, Bot: true}, true
}

func (d *Dispatcher) pollRoom(ctx context.Context, w Webhook, who acl.Subject, room chat.RoomID, now time.Time) (int, error) {
	// Asking chat as a non-member would be refused and audited on every poll;
	// membership is the first thing the ACL asks of a bot, so ask it here.
	if _, err := d.chat.Store().Membership(ctx, room, who.User); err != nil {
		return 0, nil
	}
	from, err := d.store.FeedCursor(ctx, w.ID, room)
	if err != nil {
		return 0, err
	}
	ms, _, err := d.chat.History(acl.WithSubject(ctx, who), room, chat.HistoryQuery{After: from, Limit: d.opts.Batch})
	var denied *acl.DeniedError
	if errors.Is(err, chat.ErrNotFound) || errors.As(err, &denied) {
		return 0, nil
	}
	if err != nil || len(ms) == 0 {
		return 0, err
	}
	var ds []Delivery
	for _, m := range ms {
		if slices.Contains(w.Kinds, m.Kind) && m.Sender != who.User {
			ds = append(ds, Delivery{ID: "d" + randomHex(10), Seq: m.Seq, Kind: m.Kind, NextAt: now, CreatedAt: now})
		}
	}
	moved, err := d.store.Enqueue(ctx, w.ID, room, from, ms[len(ms)-1].Seq, ds)
	if err != nil || !moved {
		return 0, err
	}
	return len(ds), nil
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// Deliver sends the deliveries due now, one attempt each, and reports how many
// were delivered. A 2xx answer delivers; anything else (or no answer) is
// retried after Backoff·2^(attempts-1), at most MaxBackoff, until MaxAttempts.
func (d *Dispatcher) Deliver(ctx context.Context) (int, error) {
	now := d.now()
	ds, err := d.store.ClaimDeliveries(ctx, now, now.Add(d.opts.Lock), d.opts.Batch)
	if err != nil {
		return 0, err
	}
	hooks := map[string]Webhook{}
	delivered := 0
	for _, dl := range ds {
		w, ok := hooks[dl.Hook]
		if !ok {
			if w, err = d.store.Webhook(ctx, dl.Hook); err != nil {
				return delivered, err
			}
			hooks[dl.Hook] = w
		}
		if d.attempt(ctx, w, &dl, now) {
			delivered++
		}
		if err := d.store.FinishAttempt(ctx, dl); err != nil {
			return delivered, err
		}
	}
	return delivered, nil
}

// attempt sends dl once and records the outcome in it.
func (d *Dispatcher) attempt(ctx context.Context, w Webhook, dl *Delivery, now time.Time) bool {
	dl.Attempts++
	m, err := d.chat.Store().Message(ctx, dl.Room, dl.Seq)
	if err != nil {
		dl.State, dl.LastError = DeliveryFailed, "entry unreadable: "+err.Error()
		return false
	}
	body, _ := json.Marshal(Event{Delivery: dl.ID, Webhook: w.ID, Bot: w.Bot, Kind: dl.Kind, Room: dl.Room, Seq: dl.Seq,
		Attempt: dl.Attempts, SentAt: now.UTC(), Message: chat.View(&m)})
	status, err := d.post(ctx, w, dl, body, now)
	dl.LastStatus = status
	if err == nil && status >= 200 && status < 300 {
		dl.State, dl.LastError, dl.DeliveredAt = DeliveryDelivered, "", now
		return true
	}
	if err != nil {
		dl.LastError = clip(err.Error())
	} else {
		dl.LastError = "HTTP " + strconv.Itoa(status)
	}
	if dl.Attempts >= d.opts.MaxAttempts {
		dl.State = DeliveryFailed
		d.log.WarnContext(ctx, "webhook delivery given up", "webhook", w.ID, "delivery", dl.ID, "attempts", dl.Attempts, "last", dl.LastError)
		return false
	}
	dl.State, dl.NextAt = DeliveryPending, now.Add(d.Backoff(dl.Attempts))
	return false
}

// Backoff returns the wait after the n-th failed attempt.
func (d *Dispatcher) Backoff(n int) time.Duration {
	b := d.opts.Backoff
	for i := 1; i < n && b < d.opts.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.opts.MaxBackoff)
}

func (d *Dispatcher) post(ctx context.Context, w Webhook, dl *Delivery, body []byte, now time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "caseroom-webhooks/1")
	req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	req.Header.Set(DeliveryHeader, dl.ID)
	req.Header.Set(EventHeader, string(dl.Kind))
	res, err := d.opts.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, nil
}

// Run polls and delivers every interval until ctx ends.
func (d *Dispatcher) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := d.Poll(ctx); err != nil && ctx.Err() == nil {
			d.log.WarnContext(ctx, "webhook poll failed", "err", err)
		}
		if _, err := d.Deliver(ctx); err != nil && ctx.Err() == nil {
			d.log.WarnContext(ctx, "webhook delivery failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
