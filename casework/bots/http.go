package bots

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"caseroom/acl"
	"caseroom/acl/httpjson"
	"caseroom/chat"
)

// A Route is a method and a path pattern a handler of this package serves, for
// cmd's routing and the OpenAPI check.
type Route struct{ Method, Pattern string }

// Routes lists every route NewHandler serves. They need an access token: cmd
// mounts NewHandler behind acl/token's middleware.
func Routes() []Route {
	return []Route{
		{"GET", "/api/v1/due"},
		{"POST", "/api/v1/bots"},
		{"GET", "/api/v1/bots/{bot}/tokens"},
		{"POST", "/api/v1/bots/{bot}/tokens"},
		{"DELETE", "/api/v1/bots/{bot}/tokens/{token}"},
		{"GET", "/api/v1/bots/{bot}/webhooks"},
		{"POST", "/api/v1/bots/{bot}/webhooks"},
		{"DELETE", "/api/v1/bots/{bot}/webhooks/{webhook}"},
		{"GET", "/api/v1/bots/{bot}/webhooks/{webhook}/deliveries"},
	}
}

// BotRoutes lists every route NewBotHandler serves. They take a bot token
// ("Authorization: Bearer crb_…"), not an access token: cmd mounts
// NewBotHandler beside the middleware, not behind it.
func BotRoutes() []Route {
	return []Route{
		{"GET", "/api/v1/bot/me"},
		{"GET", "/api/v1/bot/rooms/{room}/messages"},
		{"POST", "/api/v1/bot/rooms/{room}/messages"},
		{"GET", "/api/v1/bot/due"},
	}
}

// NewHandler returns the due lists and bot administration. It expects the
// subject in the request context.
func NewHandler(p *Platform, due *Due, now func() time.Time, log *slog.Logger) http.Handler {
	h := &handler{p: p, due: due, now: now, log: log}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/due", h.dueList())
	mux.Handle("POST /api/v1/bots", h.createBot())
	mux.Handle("GET /api/v1/bots/{bot}/tokens", h.tokens())
	mux.Handle("POST /api/v1/bots/{bot}/tokens", h.issueToken())
	mux.Handle("DELETE /api/v1/bots/{bot}/tokens/{token}", h.revokeToken())
	mux.Handle("GET /api/v1/bots/{bot}/webhooks", h.webhooks())
	mux.Handle("POST /api/v1/bots/{bot}/webhooks", h.addWebhook())
	mux.Handle("DELETE /api/v1/bots/{bot}/webhooks/{webhook}", h.deleteWebhook())
	mux.Handle("GET /api/v1/bots/{bot}/webhooks/{webhook}/deliveries", h.deliveries())
	return mux
}

// NewBotHandler returns the bots' gateway: each request is authenticated by
// its bot token (Platform.Authenticate) and checked against the token's scope.
func NewBotHandler(p *Platform, now func() time.Time, log *slog.Logger) http.Handler {
	h := &handler{p: p, due: p.due, now: now, log: log}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/bot/me", h.bot(h.me))
	mux.Handle("GET /api/v1/bot/rooms/{room}/messages", h.bot(h.botHistory))
	mux.Handle("POST /api/v1/bot/rooms/{room}/messages", h.bot(h.botPost))
	mux.Handle("GET /api/v1/bot/due", h.bot(h.botDue))
	return mux
}

type handler struct {
	p   *Platform
	due *Due
	now func() time.Time
	log *slog.Logger
}

// writeError maps bots' and chat's errors to statuses and stable codes and
// leaves the rest to httpjson.Error (a *acl.DeniedError is 403 with its rule).
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ie *chat.InvalidError
	switch {
	case errors.Is(err, ErrRateLimit), errors.Is(err, chat.ErrRateLimit):
		w.Header().Set("Retry-After", "1")
		httpjson.WriteError(w, http.StatusTooManyRequests, httpjson.ErrorInfo{Code: "rate_limited", Message: "too many requests; slow down"})
	case errors.Is(err, ErrNotFound), errors.Is(err, chat.ErrNotFound):
		httpjson.WriteError(w, http.StatusNotFound, httpjson.ErrorInfo{Code: "not_found", Message: "not found"})
	case errors.Is(err, ErrExists):
		httpjson.WriteError(w, http.StatusConflict, httpjson.ErrorInfo{Code: "exists", Message: "already exists"})
	case errors.Is(err, ErrInvalidScope):
		httpjson.WriteError(w, http.StatusBadRequest, httpjson.ErrorInfo{Code: "invalid", Field: "scope", Message: `scope: must be "mine", "unit" or "jurisdiction"`})
	case errors.As(err, &ie):
		httpjson.WriteError(w, http.StatusBadRequest, httpjson.ErrorInfo{Code: "invalid", Message: ie.Field + ": " + ie.Reason, Field: ie.Field})
	case errors.Is(err, chat.ErrArchived):
		httpjson.WriteError(w, http.StatusConflict, httpjson.ErrorInfo{Code: "room_archived", Message: "the room is archived and read-only"})
	case errors.Is(err, acl.ErrTokenInvalid), errors.Is(err, acl.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="caseroom-bots"`)
		httpjson.WriteError(w, http.StatusUnauthorized, httpjson.ErrorInfo{Code: "token_invalid", Message: "the bot token is not valid"})
	default:
		httpjson.Error(w, r, h.log, err)
	}
}

func (h *handler) respond(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpjson.Respond(w, status, v)
}

// ---- Views ----

// DueItemView is one clock of a due list as the API shows it.
type DueItemView struct {
	Case        string          `json:"case"`
	CaseNumber  string          `json:"case_number,omitempty"`
	Room        chat.RoomID     `json:"room"`
	Region      acl.RegionCode  `json:"region"`
	Clock       string          `json:"clock"`
	Row         string          `json:"row"`
	NameZH      string          `json:"name_zh"`
	NameEN      string          `json:"name_en"`
	Basis       string          `json:"basis"`
	Suspect     string          `json:"suspect,omitempty"`
	Holder      acl.UnitID      `json:"holder"`
	State       string          `json:"state"` // running or paused
	Due         time.Time       `json:"due"`
	LastDay     string          `json:"last_day"`
	LeftSeconds int64           `json:"left_seconds"`
	Overdue     bool            `json:"overdue"`
	Strict      bool            `json:"strict"`
	Provisional bool            `json:"provisional"`
	Extensions  []ExtensionNote `json:"extensions"`
}

// DueListView is the answer of GET /api/v1/due and GET /api/v1/bot/due.
type DueListView struct {
	Scope string        `json:"scope"`
	Unit  acl.UnitID    `json:"unit,omitempty"`
	At    time.Time     `json:"at"`
	Items []DueItemView `json:"items"`
}

func dueView(scope string, unit acl.UnitID, at time.Time, items []DueItem) DueListView {
	out := DueListView{Scope: scope, Unit: unit, At: at.UTC(), Items: make([]DueItemView, len(items))}
	for i, it := range items {
		ext := it.Extensions
		if ext == nil {
			ext = []ExtensionNote{}
		}
		for j := range ext {
			ext[j].RequestBy = ext[j].RequestBy.UTC()
		}
		out.Items[i] = DueItemView{Case: it.Case, CaseNumber: it.CaseNumber, Room: it.Room, Region: it.Region, Clock: it.Clock, Row: it.Row,
			NameZH: it.NameZH, NameEN: it.NameEN, Basis: it.Basis, Suspect: it.Suspect, Holder: it.Holder, State: string(it.State),
			Due: it.Due.UTC(), LastDay: it.LastDay, LeftSeconds: int64(it.Left / time.Second), Overdue: it.Overdue(),
			Strict: it.Strict, Provisional: it.Provisional, Extensions: ext}
	}
	return out
}

// BotView is a bot principal as the API shows it.
type BotView struct {
	ID        acl.UserID `json:"id"`
	Username  string     `json:"username"`
	Name      string     `json:"name"`
	Unit      acl.UnitID `json:"unit"`
	CreatedAt time.Time  `json:"created_at"`
}

// TokenView is a bot token as the API shows it; Secret only when issued.
type TokenView struct {
	ID        string     `json:"id"`
	Bot       acl.UserID `json:"bot"`
	Name      string     `json:"name"`
	Scope     Scope      `json:"scope"`
	CreatedBy acl.UserID `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Token     string     `json:"token,omitempty"` // the secret to send, shown once
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func tokenView(t Token, secret string) TokenView {
	if t.Scope.Rooms == nil {
		t.Scope.Rooms = []chat.RoomID{}
	}
	return TokenView{ID: t.ID, Bot: t.Bot, Name: t.Name, Scope: t.Scope, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt.UTC(),
		ExpiresAt: timePtr(t.ExpiresAt), RevokedAt: timePtr(t.RevokedAt), Token: secret}
}

// WebhookView is a webhook as the API shows it; Secret only when added.
type WebhookView struct {
	ID        string        `json:"id"`
	Bot       acl.UserID    `json:"bot"`
	Token     string        `json:"token"`
	URL       string        `json:"url"`
	Kinds     []chat.Kind   `json:"kinds"`
	Rooms     []chat.RoomID `json:"rooms"`
	CreatedAt time.Time     `json:"created_at"`
	Secret    string        `json:"secret,omitempty"` // the HMAC key, shown once
}

func webhookView(w Webhook, secret string) WebhookView {
	return WebhookView{ID: w.ID, Bot: w.Bot, Token: w.Token, URL: w.URL, Kinds: w.Kinds, Rooms: w.Rooms, CreatedAt: w.CreatedAt.UTC(), Secret: secret}
}

// DeliveryView is one webhook delivery as the API shows it.
type DeliveryView struct {
	ID          string      `json:"id"`
	Room        chat.RoomID `json:"room"`
	Seq         chat.Seq    `json:"seq"`
	Kind        chat.Kind   `json:"kind"`
	State       string      `json:"state"`
	Attempts    int         `json:"attempts"`
	NextAt      time.Time   `json:"next_at"`
	LastStatus  int         `json:"last_status,omitempty"`
	LastError   string      `json:"last_error,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
	DeliveredAt *time.Time  `json:"delivered_at,omitempty"`
}

// ---- Users' routes ----

func (h *handler) dueList() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope := r.URL.Query().Get("scope")
		if scope == "" {
			scope = ScopeMine
		}
		items, err := h.due.List(r.Context(), scope)
		h.respond(w, r, http.StatusOK, dueView(scope, "", h.now(), items), err)
	})
}

type createBotRequest struct {
	Username string     `json:"username"`
	Name     string     `json:"name"`
	Unit     acl.UnitID `json:"unit"`
}

func (h *handler) createBot() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[createBotRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		u, err := h.p.CreateBot(r.Context(), NewBot{Username: in.Username, Name: in.Name, Unit: in.Unit})
		h.respond(w, r, http.StatusCreated, BotView{ID: u.ID, Username: u.Username, Name: u.Name, Unit: u.Unit, CreatedAt: u.CreatedAt.UTC()}, err)
	})
}

func (h *handler) tokens() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts, err := h.p.Tokens(r.Context(), acl.UserID(r.PathValue("bot")))
		out := make([]TokenView, len(ts))
		for i, t := range ts {
			out[i] = tokenView(t, "")
		}
		h.respond(w, r, http.StatusOK, map[string]any{"tokens": out}, err)
	})
}

type issueTokenRequest struct {
	Name      string    `json:"name"`
	Scope     Scope     `json:"scope"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (h *handler) issueToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[issueTokenRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		t, secret, err := h.p.IssueToken(r.Context(), acl.UserID(r.PathValue("bot")), NewToken{Name: in.Name, Scope: in.Scope, ExpiresAt: in.ExpiresAt})
		h.respond(w, r, http.StatusCreated, tokenView(t, secret), err)
	})
}

func (h *handler) revokeToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h.p.RevokeToken(r.Context(), acl.UserID(r.PathValue("bot")), r.PathValue("token"))
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (h *handler) webhooks() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := h.p.Webhooks(r.Context(), acl.UserID(r.PathValue("bot")))
		out := make([]WebhookView, len(ws))
		for i, wh := range ws {
			out[i] = webhookView(wh, "")
		}
		h.respond(w, r, http.StatusOK, map[string]any{"webhooks": out}, err)
	})
}

type addWebhookRequest struct {
	Token string        `json:"token"`
	URL   string        `json:"url"`
	Kinds []chat.Kind   `json:"kinds"`
	Rooms []chat.RoomID `json:"rooms"`
}

func (h *handler) addWebhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := httpjson.Decode[addWebhookRequest](r, 0)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		wh, secret, err := h.p.AddWebhook(r.Context(), acl.UserID(r.PathValue("bot")), NewWebhook{Token: in.Token, URL: in.URL, Kinds: in.Kinds, Rooms: in.Rooms})
		h.respond(w, r, http.StatusCreated, webhookView(wh, secret), err)
	})
}

func (h *handler) deleteWebhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.p.DeleteWebhook(r.Context(), acl.UserID(r.PathValue("bot")), r.PathValue("webhook")); err != nil {
			h.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (h *handler) deliveries() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ds, err := h.p.Deliveries(r.Context(), acl.UserID(r.PathValue("bot")), r.PathValue("webhook"))
		out := make([]DeliveryView, len(ds))
		for i, d := range ds {
			out[i] = DeliveryView{ID: d.ID, Room: d.Room, Seq: d.Seq, Kind: d.Kind, State: d.State, Attempts: d.Attempts,
				NextAt: d.NextAt.UTC(), LastStatus: d.LastStatus, LastError: d.LastError, CreatedAt: d.CreatedAt.UTC(), DeliveredAt: timePtr(d.DeliveredAt)}
		}
		h.respond(w, r, http.StatusOK, map[string]any{"deliveries": out}, err)
	})
}

// ---- The bots' gateway ----

// bot authenticates the request's bot token and calls f with its caller.
func (h *handler) bot(f func(w http.ResponseWriter, r *http.Request, c Caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			h.writeError(w, r, acl.ErrUnauthenticated)
			return
		}
		c, err := h.p.Authenticate(r.Context(), strings.TrimSpace(tok))
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		f(w, r.WithContext(acl.WithSubject(r.Context(), c.Subject)), c)
	})
}

// MeView is what GET /api/v1/bot/me answers: the bot and its token's scope.
type MeView struct {
	Bot       acl.UserID `json:"bot"`
	Name      string     `json:"name"`
	Unit      acl.UnitID `json:"unit"`
	Token     string     `json:"token"` // the token's id
	Scope     Scope      `json:"scope"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (h *handler) me(w http.ResponseWriter, r *http.Request, c Caller) {
	sc := c.Token.Scope
	if sc.Rooms == nil {
		sc.Rooms = []chat.RoomID{}
	}
	httpjson.Respond(w, http.StatusOK, MeView{Bot: c.Subject.User, Name: c.Subject.Name, Unit: c.Subject.Unit, Token: c.Token.ID,
		Scope: sc, ExpiresAt: timePtr(c.Token.ExpiresAt)})
}

type botPostRequest struct {
	ClientID string          `json:"client_id"`
	Kind     chat.Kind       `json:"kind"`
	Body     string          `json:"body"`
	Payload  json.RawMessage `json:"payload"`
	ReplyTo  chat.Seq        `json:"reply_to"`
	Mentions []acl.UserID    `json:"mentions"`
}

func (h *handler) botPost(w http.ResponseWriter, r *http.Request, c Caller) {
	in, err := httpjson.Decode[botPostRequest](r, 256<<10)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	m, dup, err := h.p.Post(r.Context(), c, chat.RoomID(r.PathValue("room")), chat.Post{ClientID: in.ClientID, Kind: in.Kind,
		Body: in.Body, Payload: in.Payload, ReplyTo: in.ReplyTo, Mentions: in.Mentions})
	status := http.StatusCreated
	if dup {
		status = http.StatusOK
	}
	h.respond(w, r, status, chat.View(&m), err)
}

func (h *handler) botHistory(w http.ResponseWriter, r *http.Request, c Caller) {
	v := r.URL.Query()
	var q chat.HistoryQuery
	for _, p := range []struct {
		name string
		to   *chat.Seq
	}{{"after", &q.After}, {"before", &q.Before}} {
		if s := v.Get(p.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				h.writeError(w, r, &chat.InvalidError{Field: p.name, Reason: "must be a sequence number"})
				return
			}
			*p.to = chat.Seq(n)
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > chat.MaxPage {
			h.writeError(w, r, &chat.InvalidError{Field: "limit", Reason: fmt.Sprintf("must be 1 to %d", chat.MaxPage)})
			return
		}
		q.Limit = n
	}
	ms, err := h.p.History(r.Context(), c, chat.RoomID(r.PathValue("room")), q)
	out := make([]chat.MessageView, len(ms))
	for i := range ms {
		out[i] = chat.View(&ms[i])
	}
	h.respond(w, r, http.StatusOK, map[string]any{"messages": out}, err)
}

func (h *handler) botDue(w http.ResponseWriter, r *http.Request, c Caller) {
	unit := acl.UnitID(r.URL.Query().Get("unit"))
	if unit == "" {
		unit = c.Subject.Unit
	}
	items, err := h.p.Due(r.Context(), c, unit)
	h.respond(w, r, http.StatusOK, dueView(ScopeUnit, unit, h.now(), items), err)
}
