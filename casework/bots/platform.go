package bots

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/chat"
)

// Directory is what the Platform needs of the directory: acl.Store is one.
type Directory interface {
	User(ctx context.Context, id acl.UserID) (acl.User, error)
	Unit(ctx context.Context, id acl.UnitID) (acl.Unit, error)
	// CreateUser stores a new user (here: a bot, with no password) with the
	// audit record of its creation, in one transaction.
	CreateUser(ctx context.Context, u acl.User, passwordHash string, rec audit.Record) error
	Audit(ctx context.Context, rec audit.Record) error
}

// PlatformOptions tune a Platform. Zero fields take the defaults stated.
type PlatformOptions struct {
	// Rate is how many gateway requests per second each bot may make; default 5.
	Rate float64
	// Burst is how many it may make at once above the rate; default 2×Rate.
	Burst int
	// AllowHTTP lets webhooks use http:// URLs; default only https://. Tests
	// use it for their loopback servers.
	AllowHTTP bool
	// CheckBot, if set, answers whether a bot subject may still act (the bot
	// exists and is enabled): token.Auth.CheckSession, which caches the answer
	// and hears of a bot disabled on this node at once. Without it the Platform
	// reads the directory on every request.
	CheckBot func(ctx context.Context, s acl.Subject) error
}

func (o *PlatformOptions) defaults() {
	if o.Rate <= 0 {
		o.Rate = 5
	}
	if o.Burst <= 0 {
		o.Burst = max(1, int(2*o.Rate))
	}
}

// A Platform keeps bot principals, their scoped tokens and their webhooks, and
// is the gateway through which bots post and read. Administration is the
// system administrator's (it needs user.create, as making any account does);
// what a bot may do in a room is its scope's and then the ACL's.
type Platform struct {
	store Store
	dir   Directory
	guard *acl.Guard
	chat  *chat.Service
	kinds *chat.Registry
	due   *Due
	now   func() time.Time
	log   *slog.Logger
	opts  PlatformOptions
	rate  *limiter
}

// NewPlatform returns a Platform. kinds is the chat.Service's registry, for
// the kinds a scope or a webhook may name; due answers bots' due lists.
func NewPlatform(store Store, dir Directory, guard *acl.Guard, svc *chat.Service, kinds *chat.Registry, due *Due,
	now func() time.Time, log *slog.Logger, opts PlatformOptions) *Platform {
	opts.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Platform{store: store, dir: dir, guard: guard, chat: svc, kinds: kinds, due: due, now: now, log: log, opts: opts,
		rate: newLimiter(opts.Rate, opts.Burst, now)}
}

// ---- Administration ----

// NewBot is what CreateBot needs.
type NewBot struct {
	Username string     // 3–64 characters of [a-z0-9._-]; the bot's user id
	Name     string     // display name, e.g. 每日期限摘要
	Unit     acl.UnitID // the unit the bot acts for
}

// CreateBot makes a bot principal: a user of unit with Bot set, no password
// and no roles. It needs user.create (sysadmin). A taken username answers
// acl.ErrExists.
func (p *Platform) CreateBot(ctx context.Context, nb NewBot) (acl.User, error) {
	who, err := subject(ctx)
	if err != nil {
		return acl.User{}, err
	}
	username := strings.ToLower(strings.TrimSpace(nb.Username))
	unit, err := p.dir.Unit(ctx, nb.Unit)
	if errors.Is(err, acl.ErrNotFound) {
		return acl.User{}, acl.Invalid("unit", fmt.Sprintf("unknown unit %q", nb.Unit))
	}
	if err != nil {
		return acl.User{}, err
	}
	res := acl.Resource{Kind: "user", ID: username, Unit: unit.ID, Region: unit.Region}
	if _, err := p.guard.Check(ctx, who, acl.CreateUser, res); err != nil {
		return acl.User{}, err
	}
	if !validUsername(username) {
		return acl.User{}, acl.Invalid("username", "3 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
	}
	name := strings.TrimSpace(nb.Name)
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return acl.User{}, acl.Invalid("name", "1 to 64 characters")
	}
	if unit.Disabled {
		return acl.User{}, acl.Invalid("unit", fmt.Sprintf("unit %s is disabled", unit.ID))
	}
	u := acl.User{ID: acl.UserID(username), Username: username, Name: name, Unit: unit.ID, Bot: true,
		CreatedAt: p.now().UTC().Truncate(time.Microsecond)}
	rec := p.record(who, "bot.create", "user:"+username, map[string]any{"name": name, "unit": unit.ID})
	if err := p.dir.CreateUser(ctx, u, "", rec); err != nil {
		return acl.User{}, fmt.Errorf("bots: create bot %s: %w", username, err)
	}
	return u, nil
}

func validUsername(s string) bool {
	if len(s) < 3 || len(s) > 64 || slices.Contains([]string{string(acl.ConsoleUser), "system", "root", "admin", "anonymous"}, s) {
		return false
	}
	for i, r := range s {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || (i > 0 && (r == '.' || r == '_' || r == '-'))
		if !ok {
			return false
		}
	}
	return true
}

// adminBot checks that who may administer bot id (user.create on its unit) and
// returns it; an unknown id, or a user who is not a bot, is ErrNotFound.
func (p *Platform) adminBot(ctx context.Context, who acl.Subject, id acl.UserID) (acl.User, error) {
	u, err := p.dir.User(ctx, id)
	if errors.Is(err, acl.ErrNotFound) || (err == nil && !u.Bot) {
		return acl.User{}, ErrNotFound
	}
	if err != nil {
		return acl.User{}, err
	}
	unit, err := p.dir.Unit(ctx, u.Unit)
	if err != nil {
		return acl.User{}, err
	}
	res := acl.Resource{Kind: "user", ID: string(u.ID), Unit: unit.ID, Region: unit.Region}
	if _, err := p.guard.Check(ctx, who, acl.CreateUser, res); err != nil {
		return acl.User{}, err
	}
	return u, nil
}

// NewToken is what IssueToken needs.
type NewToken struct {
	Name      string
	Scope     Scope
	ExpiresAt time.Time // zero: does not expire
}

// tokenPrefix starts every bot token, so that one pasted where it should not
// be is easy to find.
const tokenPrefix = "crb_"

// IssueToken gives bot a new token with scope and returns it with its secret,
// the string the bot sends ("crb_<id>.<secret>"), which is shown only now.
func (p *Platform) IssueToken(ctx context.Context, bot acl.UserID, nt NewToken) (Token, string, error) {
	who, err := subject(ctx)
	if err != nil {
		return Token{}, "", err
	}
	u, err := p.adminBot(ctx, who, bot)
	if err != nil {
		return Token{}, "", err
	}
	name := strings.TrimSpace(nt.Name)
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return Token{}, "", acl.Invalid("name", "1 to 64 characters")
	}
	if err := nt.Scope.validate(p.kinds); err != nil {
		return Token{}, "", err
	}
	for i, unit := range nt.Scope.Due {
		if unit != u.Unit {
			return Token{}, "", acl.Invalid(fmt.Sprintf("scope.due[%d]", i), "a bot reads the due list of its own unit only")
		}
	}
	now := p.now().UTC().Truncate(time.Microsecond)
	if !nt.ExpiresAt.IsZero() && !nt.ExpiresAt.After(now) {
		return Token{}, "", acl.Invalid("expires_at", "must be in the future")
	}
	id := "t" + strings.ToLower(rand.Text()[:16])
	secret := strings.ToLower(rand.Text())
	sum := sha256.Sum256([]byte(secret))
	t := Token{ID: id, Bot: u.ID, Name: name, Hash: sum[:], Scope: nt.Scope, CreatedBy: who.User, CreatedAt: now,
		ExpiresAt: nt.ExpiresAt.UTC().Truncate(time.Microsecond)}
	if err := p.store.CreateToken(ctx, t); err != nil {
		return Token{}, "", err
	}
	scope, _ := json.Marshal(t.Scope)
	if err := p.dir.Audit(ctx, p.record(who, "bot.token.issue", "user:"+string(u.ID), map[string]any{"token": id, "scope": string(scope)})); err != nil {
		return Token{}, "", err
	}
	return t, tokenPrefix + id + "." + secret, nil
}

// Tokens returns bot's tokens (their hashes cleared).
func (p *Platform) Tokens(ctx context.Context, bot acl.UserID) ([]Token, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := p.adminBot(ctx, who, bot); err != nil {
		return nil, err
	}
	ts, err := p.store.Tokens(ctx, bot)
	for i := range ts {
		ts[i].Hash = nil
	}
	return ts, err
}

// RevokeToken revokes bot's token id, and with it the webhooks that read with it.
func (p *Platform) RevokeToken(ctx context.Context, bot acl.UserID, id string) error {
	who, err := subject(ctx)
	if err != nil {
		return err
	}
	if _, err := p.adminBot(ctx, who, bot); err != nil {
		return err
	}
	t, err := p.store.Token(ctx, id)
	if err != nil || t.Bot != bot {
		return ErrNotFound
	}
	if err := p.store.RevokeToken(ctx, id, p.now()); err != nil {
		return err
	}
	return p.dir.Audit(ctx, p.record(who, "bot.token.revoke", "user:"+string(bot), map[string]any{"token": id}))
}

// NewWebhook is what AddWebhook needs.
type NewWebhook struct {
	Token string        // the token whose scope the webhook reads with; it must allow reading
	URL   string        // https:// (http:// only with AllowHTTP)
	Kinds []chat.Kind   // the kinds of entries to send
	Rooms []chat.RoomID // rooms of the token's scope; empty means all of them
}

// AddWebhook subscribes url to the entries of kinds in rooms, from the rooms'
// current heads on, and returns the webhook with its signing secret, which is
// shown only now.
func (p *Platform) AddWebhook(ctx context.Context, bot acl.UserID, nw NewWebhook) (Webhook, string, error) {
	who, err := subject(ctx)
	if err != nil {
		return Webhook{}, "", err
	}
	if _, err := p.adminBot(ctx, who, bot); err != nil {
		return Webhook{}, "", err
	}
	t, err := p.store.Token(ctx, nw.Token)
	if err != nil || t.Bot != bot || !t.Active(p.now()) {
		return Webhook{}, "", acl.Invalid("token", "no active token of this bot with that id")
	}
	if !t.Scope.Read {
		return Webhook{}, "", acl.Invalid("token", "the token's scope does not allow reading")
	}
	if err := p.checkURL(nw.URL); err != nil {
		return Webhook{}, "", err
	}
	if len(nw.Kinds) == 0 || len(nw.Kinds) > 50 {
		return Webhook{}, "", acl.Invalid("kinds", "name 1 to 50 kinds")
	}
	for i, k := range nw.Kinds {
		if _, ok := p.kinds.Spec(k); !ok {
			return Webhook{}, "", acl.Invalid(fmt.Sprintf("kinds[%d]", i), fmt.Sprintf("unknown kind %q", k))
		}
	}
	rooms := nw.Rooms
	if len(rooms) == 0 {
		rooms = t.Scope.Rooms
	}
	if len(rooms) == 0 {
		return Webhook{}, "", acl.Invalid("rooms", "the webhook would read no room")
	}
	for i, r := range rooms {
		if !t.Scope.HasRoom(r) {
			return Webhook{}, "", acl.Invalid(fmt.Sprintf("rooms[%d]", i), "not in the token's scope")
		}
	}
	secret := "whsec_" + hex.EncodeToString(randomBytes(32))
	w := Webhook{ID: "h" + strings.ToLower(rand.Text()[:16]), Bot: bot, Token: t.ID, URL: nw.URL, Secret: secret,
		Kinds: slices.Clone(nw.Kinds), Rooms: slices.Clone(rooms), CreatedBy: who.User, CreatedAt: p.now().UTC().Truncate(time.Microsecond)}
	if err := p.store.CreateWebhook(ctx, w); err != nil {
		return Webhook{}, "", err
	}
	// Start each feed at the room's head: a webhook hears of what comes after it.
	for _, r := range rooms {
		room, err := p.chat.Store().Room(ctx, r)
		if errors.Is(err, chat.ErrNotFound) {
			continue
		}
		if err != nil {
			return Webhook{}, "", err
		}
		if _, err := p.store.Enqueue(ctx, w.ID, r, 0, room.Head, nil); err != nil {
			return Webhook{}, "", err
		}
	}
	if err := p.dir.Audit(ctx, p.record(who, "bot.webhook.add", "user:"+string(bot), map[string]any{"webhook": w.ID, "token": t.ID, "url": w.URL})); err != nil {
		return Webhook{}, "", err
	}
	return w, secret, nil
}

func (p *Platform) checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || len(raw) > 2000:
		return acl.Invalid("url", "must be an absolute URL")
	case u.User != nil:
		return acl.Invalid("url", "must not carry a user or password")
	case u.Scheme == "https", u.Scheme == "http" && p.opts.AllowHTTP:
		return nil
	}
	return acl.Invalid("url", "must be https")
}

// Webhooks returns bot's active webhooks, their secrets cleared.
func (p *Platform) Webhooks(ctx context.Context, bot acl.UserID) ([]Webhook, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := p.adminBot(ctx, who, bot); err != nil {
		return nil, err
	}
	ws, err := p.store.Webhooks(ctx, bot)
	for i := range ws {
		ws[i].Secret = ""
	}
	return ws, err
}

// DeleteWebhook deletes bot's webhook id; its pending deliveries are dropped.
func (p *Platform) DeleteWebhook(ctx context.Context, bot acl.UserID, id string) error {
	who, err := subject(ctx)
	if err != nil {
		return err
	}
	if _, err := p.adminBot(ctx, who, bot); err != nil {
		return err
	}
	w, err := p.store.Webhook(ctx, id)
	if err != nil || w.Bot != bot || !w.DeletedAt.IsZero() {
		return ErrNotFound
	}
	if err := p.store.DeleteWebhook(ctx, id, p.now()); err != nil {
		return err
	}
	return p.dir.Audit(ctx, p.record(who, "bot.webhook.delete", "user:"+string(bot), map[string]any{"webhook": id}))
}

// Deliveries returns the deliveries of bot's webhook id, for its administrator.
func (p *Platform) Deliveries(ctx context.Context, bot acl.UserID, id string) ([]Delivery, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := p.adminBot(ctx, who, bot); err != nil {
		return nil, err
	}
	w, err := p.store.Webhook(ctx, id)
	if err != nil || w.Bot != bot {
		return nil, ErrNotFound
	}
	return p.store.Deliveries(ctx, id)
}

func (p *Platform) record(who acl.Subject, action, target string, detail map[string]any) audit.Record {
	b, _ := json.Marshal(detail)
	return audit.Record{Stream: audit.StreamDirectory, At: p.now(), Actor: string(who.User), Action: action,
		Target: target, Outcome: audit.OK, Detail: string(b)}
}

// ---- The gateway ----

// A Caller is a bot as a token presents it: its subject and the token's scope.
type Caller struct {
	Subject acl.Subject
	Token   Token
}

// Authenticate checks a bot token ("crb_<id>.<secret>") and returns its
// caller. A malformed, unknown, wrong, expired or revoked token, or one of a
// bot that is disabled, gone, or in a disabled unit, answers an error wrapping
// acl.ErrTokenInvalid; which of them it was is not told.
func (p *Platform) Authenticate(ctx context.Context, bearer string) (Caller, error) {
	invalid := fmt.Errorf("bots: %w", acl.ErrTokenInvalid)
	rest, ok := strings.CutPrefix(bearer, tokenPrefix)
	id, secret, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || len(id) > 40 || len(secret) > 100 {
		return Caller{}, invalid
	}
	t, err := p.store.Token(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Caller{}, invalid
	}
	if err != nil {
		return Caller{}, err
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], t.Hash) != 1 || !t.Active(p.now()) {
		return Caller{}, invalid
	}
	u, err := p.dir.User(ctx, t.Bot)
	if errors.Is(err, acl.ErrNotFound) {
		return Caller{}, invalid
	}
	if err != nil {
		return Caller{}, err
	}
	unit, err := p.dir.Unit(ctx, u.Unit)
	if err != nil && !errors.Is(err, acl.ErrNotFound) {
		return Caller{}, err
	}
	if !u.Bot || u.Disabled || err != nil || unit.Disabled {
		return Caller{}, invalid
	}
	s := acl.Subject{User: u.ID, Name: u.Name, Unit: unit.ID, UnitKind: unit.Kind, Region: unit.Region, Roles: u.Roles, Bot: true}
	if p.opts.CheckBot != nil {
		if err := p.opts.CheckBot(ctx, s); err != nil {
			return Caller{}, err
		}
	}
	return Caller{Subject: s, Token: t}, nil
}

// refuse audits a scope refusal like an ACL denial and returns it.
func (p *Platform) refuse(ctx context.Context, c Caller, a acl.Action, room chat.RoomID, d *acl.DeniedError) error {
	detail, _ := json.Marshal(map[string]string{"rule": d.Rule, "kind": "room", "unit": string(c.Subject.Unit), "token": c.Token.ID})
	rec := audit.Record{Stream: audit.StreamDenials, At: p.now(), Actor: string(c.Subject.User), Action: string(a),
		Target: "room:" + clip(string(room)), Outcome: audit.Denied, Detail: string(detail)}
	if err := p.dir.Audit(ctx, rec); err != nil {
		return err
	}
	return d
}

func clip(s string) string {
	if len(s) <= 128 {
		return s
	}
	return strings.ToValidUTF8(s[:128], "") + "…"
}

// Post posts in as caller in room: the token's scope must name the room and
// the kind, and then chat.Service.Post decides as for anyone (the bot must be
// a member; the policy rule must allow bots). A refusal changes nothing but
// the denials audit stream.
func (p *Platform) Post(ctx context.Context, c Caller, room chat.RoomID, in chat.Post) (chat.Message, bool, error) {
	if in.Kind == "" {
		in.Kind = chat.Text
	}
	// The rate counts refused requests too, so that a bot cannot flood the
	// denials stream.
	if !p.rate.allow(string(c.Subject.User)) {
		return chat.Message{}, false, ErrRateLimit
	}
	if d := c.Token.Scope.check(acl.PostMessage, room, in.Kind); d != nil {
		return chat.Message{}, false, p.refuse(ctx, c, acl.PostMessage, room, d)
	}
	return p.chat.Post(acl.WithSubject(ctx, c.Subject), room, in)
}

// History returns a page of room's log for caller: the scope must name the
// room and allow reading, and then chat.Service.History decides.
func (p *Platform) History(ctx context.Context, c Caller, room chat.RoomID, q chat.HistoryQuery) ([]chat.Message, error) {
	if !p.rate.allow(string(c.Subject.User)) {
		return nil, ErrRateLimit
	}
	if d := c.Token.Scope.check(acl.ReadRoom, room, ""); d != nil {
		return nil, p.refuse(ctx, c, acl.ReadRoom, room, d)
	}
	ms, _, err := p.chat.History(acl.WithSubject(ctx, c.Subject), room, q)
	return ms, err
}

// Due returns the due list of unit for caller: the scope must name the unit,
// which must be the bot's own.
func (p *Platform) Due(ctx context.Context, c Caller, unit acl.UnitID) ([]DueItem, error) {
	if unit == "" {
		unit = c.Subject.Unit
	}
	if !p.rate.allow(string(c.Subject.User)) {
		return nil, ErrRateLimit
	}
	if !slices.Contains(c.Token.Scope.Due, unit) || unit != c.Subject.Unit {
		d := &acl.DeniedError{Rule: RuleScopeDue, Reason: "This bot token may not read that unit's due list."}
		detail, _ := json.Marshal(map[string]string{"rule": d.Rule, "kind": "unit", "unit": string(c.Subject.Unit), "token": c.Token.ID})
		rec := audit.Record{Stream: audit.StreamDenials, At: p.now(), Actor: string(c.Subject.User), Action: "due.read",
			Target: "unit:" + clip(string(unit)), Outcome: audit.Denied, Detail: string(detail)}
		if err := p.dir.Audit(ctx, rec); err != nil {
			return nil, err
		}
		return nil, d
	}
	if p.due == nil {
		return []DueItem{}, nil
	}
	return p.due.unit(ctx, unit)
}

// subject returns the acting subject of ctx.
func subject(ctx context.Context) (acl.Subject, error) {
	who, ok := acl.SubjectFrom(ctx)
	if !ok || who.User == "" {
		return acl.Subject{}, acl.ErrUnauthenticated
	}
	return who, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return b
}

// limiter is a token bucket per key (a bot), in memory on this node: a bot
// spread over several nodes gets the rate on each.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket // guarded by mu
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket, reporting whether there was one.
func (l *limiter) allow(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if now.After(b.at) {
		b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
