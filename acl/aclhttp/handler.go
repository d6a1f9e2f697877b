// Package aclhttp is the HTTP API of sign-in and directory administration:
// login, refresh and logout, the signed-in user, regions, units, users, roles,
// password resets, unlocks and the acl audit streams. Every handler decodes its
// request strictly (acl/httpjson), calls one method of token.Auth or
// acl.Directory, and answers a view type, never a domain struct.
package aclhttp

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/acl/httpjson"
	"caseroom/acl/token"
)

// A Route is a method and a path pattern NewHandler serves, for cmd's routing
// and the OpenAPI test.
type Route struct{ Method, Pattern string }

// Routes lists every route NewHandler serves. The three under /api/v1/auth/ are
// public; every other one needs the subject in the request context, which cmd
// puts there by mounting token.Auth.Middleware before the handler.
func Routes() []Route {
	return []Route{
		{"POST", "/api/v1/auth/login"},
		{"POST", "/api/v1/auth/refresh"},
		{"POST", "/api/v1/auth/logout"},
		{"GET", "/api/v1/me"},
		{"GET", "/api/v1/regions"},
		{"GET", "/api/v1/units"},
		{"POST", "/api/v1/units"},
		{"GET", "/api/v1/units/{unit}"},
		{"PATCH", "/api/v1/units/{unit}"},
		{"GET", "/api/v1/users"},
		{"POST", "/api/v1/users"},
		{"GET", "/api/v1/users/{user}"},
		{"PATCH", "/api/v1/users/{user}"},
		{"PUT", "/api/v1/users/{user}/roles"},
		{"POST", "/api/v1/users/{user}/password"},
		{"POST", "/api/v1/users/{user}/unlock"},
		{"GET", "/api/v1/audit/{stream}"},
	}
}

// PublicRoutes are the routes of Routes that need no access token.
func PublicRoutes() []Route { return Routes()[:3] }

// Auth is what the handler needs of *token.Auth.
type Auth interface {
	Login(ctx context.Context, username, password string, meta token.ClientMeta) (token.Tokens, error)
	Refresh(ctx context.Context, refreshToken string) (token.Tokens, error)
	Logout(ctx context.Context, refreshTokenOrSession string) error
}

var _ Auth = (*token.Auth)(nil)

type handler struct {
	dir  *acl.Directory
	auth Auth
	log  *slog.Logger
}

// NewHandler returns the handler of Routes over dir and auth, logging to log.
func NewHandler(dir *acl.Directory, auth Auth, log *slog.Logger) http.Handler {
	h := &handler{dir: dir, auth: auth, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/auth/login", h.login)
	mux.HandleFunc("POST /api/v1/auth/refresh", h.refresh)
	mux.HandleFunc("POST /api/v1/auth/logout", h.logout)
	mux.HandleFunc("GET /api/v1/me", h.me)
	mux.HandleFunc("GET /api/v1/regions", h.regions)
	mux.HandleFunc("GET /api/v1/units", h.units)
	mux.HandleFunc("POST /api/v1/units", h.createUnit)
	mux.HandleFunc("GET /api/v1/units/{unit}", h.unit)
	mux.HandleFunc("PATCH /api/v1/units/{unit}", h.patchUnit)
	mux.HandleFunc("GET /api/v1/users", h.users)
	mux.HandleFunc("POST /api/v1/users", h.createUser)
	mux.HandleFunc("GET /api/v1/users/{user}", h.user)
	mux.HandleFunc("PATCH /api/v1/users/{user}", h.patchUser)
	mux.HandleFunc("PUT /api/v1/users/{user}/roles", h.setRoles)
	mux.HandleFunc("POST /api/v1/users/{user}/password", h.resetPassword)
	mux.HandleFunc("POST /api/v1/users/{user}/unlock", h.unlock)
	mux.HandleFunc("GET /api/v1/audit/{stream}", h.audit)
	return mux
}

// writeError sends err in the error envelope; a 401 carries the Bearer
// challenge of RFC 6750.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, h.log, err)
}

func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, acl.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="caseroom"`)
	case errors.Is(err, acl.ErrTokenExpired), errors.Is(err, acl.ErrTokenInvalid), errors.Is(err, acl.ErrTokenReused):
		w.Header().Set("WWW-Authenticate", `Bearer realm="caseroom", error="invalid_token"`)
	}
	httpjson.Error(w, r, log, err)
}

// AuthError is the onError of token.Auth.Middleware for the JSON API: the error
// envelope (unauthenticated, token_expired, token_invalid; 500 for a store
// failure, logged to log) with the Bearer challenge of RFC 6750.
func AuthError(log *slog.Logger) func(w http.ResponseWriter, r *http.Request, err error) {
	return func(w http.ResponseWriter, r *http.Request, err error) { writeError(w, r, log, err) }
}

// The views: what clients see, never the domain structs.

type userView struct {
	ID        string   `json:"id"`
	Username  string   `json:"username"`
	Name      string   `json:"name"`
	Unit      string   `json:"unit"`
	Roles     []string `json:"roles"`
	Bot       bool     `json:"bot"`
	Disabled  bool     `json:"disabled"`
	CreatedAt string   `json:"created_at,omitempty"`
}

func viewUser(u acl.User) userView {
	return userView{ID: string(u.ID), Username: u.Username, Name: u.Name, Unit: string(u.Unit),
		Roles: roleStrings(u.Roles), Bot: u.Bot, Disabled: u.Disabled, CreatedAt: rfc3339(u.CreatedAt)}
}

// meView is the signed-in user, as login, refresh and /me answer it.
type meView struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Name     string   `json:"name"`
	Unit     string   `json:"unit"`
	UnitName string   `json:"unit_name"`
	UnitKind string   `json:"unit_kind"`
	Region   string   `json:"region"`
	Roles    []string `json:"roles"`
}

type unitView struct {
	ID             string `json:"id"`
	Kind           string `json:"kind"`
	KindName       string `json:"kind_name"` // the kind's Chinese name
	Region         string `json:"region"`
	Name           string `json:"name"`
	NonTerritorial bool   `json:"non_territorial"`
	Disabled       bool   `json:"disabled"`
	CreatedAt      string `json:"created_at,omitempty"`
}

func (h *handler) viewUnit(u acl.Unit) unitView {
	k, _ := h.dir.Kind(u.Kind)
	return unitView{ID: string(u.ID), Kind: string(u.Kind), KindName: k.ZH, Region: string(u.Region), Name: u.Name,
		NonTerritorial: u.NonTerritorial, Disabled: u.Disabled, CreatedAt: rfc3339(u.CreatedAt)}
}

type regionView struct {
	Code   string `json:"code"`
	Parent string `json:"parent"`
	Name   string `json:"name"`
	Pinyin string `json:"pinyin"`
	Level  int    `json:"level"`
	Kind   string `json:"kind"`
}

type tokensView struct {
	AccessToken      string `json:"access_token"`
	AccessExpiresAt  string `json:"access_expires_at"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresAt string `json:"refresh_expires_at"`
	User             meView `json:"user"`
}

type entryView struct {
	Stream  string          `json:"stream"`
	Seq     int64           `json:"seq"`
	At      string          `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Target  string          `json:"target"`
	Outcome string          `json:"outcome"`
	Detail  json.RawMessage `json:"detail"`
	Prev    string          `json:"prev"` // hex; "" for seq 1
	Hash    string          `json:"hash"` // hex
}

func viewEntry(e audit.Entry) entryView {
	detail := json.RawMessage(e.Detail)
	if !json.Valid(detail) {
		detail, _ = json.Marshal(e.Detail) // kept as a string
	}
	return entryView{Stream: e.Stream, Seq: e.Seq, At: e.At.UTC().Format(time.RFC3339Nano), Actor: e.Actor,
		Action: e.Action, Target: e.Target, Outcome: e.Outcome, Detail: detail,
		Prev: hex.EncodeToString(e.Prev), Hash: hex.EncodeToString(e.Hash)}
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func roleStrings(rs []acl.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

func toRoles(ss []string) []acl.Role {
	out := make([]acl.Role, len(ss))
	for i, s := range ss {
		out[i] = acl.Role(s)
	}
	return out
}

// Sign-in.

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// clientIP is the peer address of r, for the audit record. Behind a proxy this
// is the proxy; cmd decides whether to trust forwarded headers.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	in, err := httpjson.Decode[loginRequest](r, 0)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	t, err := h.auth.Login(r.Context(), in.Username, in.Password, token.ClientMeta{IP: clientIP(r), UserAgent: r.UserAgent()})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.respondTokens(w, r, t)
}

func (h *handler) refresh(w http.ResponseWriter, r *http.Request) {
	in, err := httpjson.Decode[refreshRequest](r, 0)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if in.RefreshToken == "" {
		h.writeError(w, r, acl.Invalid("refresh_token", "is required"))
		return
	}
	t, err := h.auth.Refresh(r.Context(), in.RefreshToken)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.respondTokens(w, r, t)
}

// respondTokens answers the tokens of a new or refreshed session with the user
// they are for, read from the directory as that user.
func (h *handler) respondTokens(w http.ResponseWriter, r *http.Request, t token.Tokens) {
	me, err := h.meOf(acl.WithSubject(r.Context(), t.Subject), t.Subject)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpjson.Respond(w, http.StatusOK, tokensView{
		AccessToken: t.Access, AccessExpiresAt: rfc3339(t.AccessExpires),
		RefreshToken: t.Refresh, RefreshExpiresAt: rfc3339(t.RefreshExpires),
		User: me,
	})
}

// meOf is the view of subject s, with its username and unit name from the
// directory (read as s).
func (h *handler) meOf(ctx context.Context, s acl.Subject) (meView, error) {
	me := meView{ID: string(s.User), Name: s.Name, Unit: string(s.Unit), UnitKind: string(s.UnitKind),
		Region: string(s.Region), Roles: roleStrings(s.Roles)}
	u, err := h.dir.User(ctx, s.User)
	if err != nil {
		return meView{}, err
	}
	me.Username = u.Username
	unit, err := h.dir.Unit(ctx, s.Unit)
	if err != nil {
		return meView{}, err
	}
	me.UnitName = unit.Name
	return me, nil
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	in, err := httpjson.Decode[refreshRequest](r, 0)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if in.RefreshToken == "" {
		h.writeError(w, r, acl.Invalid("refresh_token", "is required"))
		return
	}
	if err := h.auth.Logout(r.Context(), in.RefreshToken); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// subject returns the signed-in subject of r, or writes 401.
func (h *handler) subject(w http.ResponseWriter, r *http.Request) (acl.Subject, bool) {
	s, ok := acl.SubjectFrom(r.Context())
	if !ok {
		h.writeError(w, r, acl.ErrUnauthenticated)
	}
	return s, ok
}

func (h *handler) me(w http.ResponseWriter, r *http.Request) {
	s, ok := h.subject(w, r)
	if !ok {
		return
	}
	if s.Bot {
		// A bot has no unit of staff to show; answer what its token says.
		httpjson.Respond(w, http.StatusOK, meView{ID: string(s.User), Name: s.Name, Unit: string(s.Unit),
			UnitKind: string(s.UnitKind), Region: string(s.Region), Roles: roleStrings(s.Roles)})
		return
	}
	me, err := h.meOf(r.Context(), s)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpjson.Respond(w, http.StatusOK, me)
}

// The directory.

func (h *handler) regions(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	rs, err := h.dir.Regions(r.Context())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := make([]regionView, len(rs))
	for i, x := range rs {
		out[i] = regionView{Code: string(x.Code), Parent: string(x.Parent), Name: x.Name, Pinyin: x.Pinyin, Level: x.Level, Kind: x.Kind}
	}
	httpjson.Respond(w, http.StatusOK, map[string]any{"regions": out})
}

func (h *handler) units(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	q := r.URL.Query()
	us, err := h.dir.Units(r.Context(), acl.UnitFilter{Region: acl.RegionCode(q.Get("region")), Kind: acl.UnitKind(q.Get("kind"))})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := make([]unitView, len(us))
	for i, u := range us {
		out[i] = h.viewUnit(u)
	}
	httpjson.Respond(w, http.StatusOK, map[string]any{"units": out})
}

type createUnitRequest struct {
	ID             string `json:"id"` // optional: "<region>-<kind>" when empty
	Kind           string `json:"kind"`
	Region         string `json:"region"`
	Name           string `json:"name"`
	NonTerritorial bool   `json:"non_territorial"`
}

func (h *handler) createUnit(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	in, err := httpjson.Decode[createUnitRequest](r, 0)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	u, err := h.dir.CreateUnit(r.Context(), acl.Unit{ID: acl.UnitID(in.ID), Kind: acl.UnitKind(in.Kind),
		Region: acl.RegionCode(in.Region), Name: in.Name, NonTerritorial: in.NonTerritorial})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/units/"+string(u.ID))
	httpjson.Respond(w, http.StatusCreated, h.viewUnit(u))
}

func (h *handler) unit(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	u, err := h.dir.Unit(r.Context(), acl.UnitID(r.PathValue("unit")))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpjson.Respond(w, http.StatusOK, h.viewUnit(u))
}

// disabledRequest is the body of PATCH on a unit or a user: the one field that
// can change.
type disabledRequest struct {
	Disabled *bool `json:"disabled"`
}

func decodeDisabled(r *http.Request) (bool, error) {
	in, err := httpjson.Decode[disabledRequest](r, 0)
	if err != nil {
		return false, err
	}
	if in.Disabled == nil {
		return false, acl.Invalid("disabled", "is required")
	}
	return *in.Disabled, nil
}

func (h *handler) patchUnit(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	disabled, err := decodeDisabled(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	id := acl.UnitID(r.PathValue("unit"))
	if err := h.dir.DisableUnit(r.Context(), id, disabled); err != nil {
		h.writeError(w, r, err)
		return
	}
	u, err := h.dir.Unit(r.Context(), id)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpjson.Respond(w, http.StatusOK, h.viewUnit(u))
}

func (h *handler) users(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	us, err := h.dir.Users(r.Context(), acl.UserFilter{Unit: acl.UnitID(r.URL.Query().Get("unit"))})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := make([]userView, len(us))
	for i, u := range us {
		out[i] = viewUser(u)
	}
	httpjson.Respond(w, http.StatusOK, map[string]any{"users": out})
}

type createUserRequest struct {
	Username string   `json:"username"`
	Name     string   `json:"name"`
	Unit     string   `json:"unit"`
	Roles    []string `json:"roles"`
	Password string   `json:"password"` // optional: generated and answered once when empty
}

type createdUserView struct {
	User     userView `json:"user"`
	Password string   `json:"password,omitempty"` // the generated password, shown only in this answer
}

func (h *handler) createUser(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	in, err := httpjson.Decode[createUserRequest](r, 0)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	u, generated, err := h.dir.CreateUser(r.Context(), acl.NewUser{Username: in.Username, Name: in.Name,
		Unit: acl.UnitID(in.Unit), Roles: toRoles(in.Roles), Password: in.Password})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+string(u.ID))
	httpjson.Respond(w, http.StatusCreated, createdUserView{User: viewUser(u), Password: generated})
}

func (h *handler) user(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	u, err := h.dir.User(r.Context(), acl.UserID(r.PathValue("user")))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpjson.Respond(w, http.StatusOK, viewUser(u))
}

func (h *handler) patchUser(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	disabled, err := decodeDisabled(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	id := acl.UserID(r.PathValue("user"))
	if err := h.dir.DisableUser(r.Context(), id, disabled); err != nil {
		h.writeError(w, r, err)
		return
	}
	u, err := h.dir.User(r.Context(), id)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpjson.Respond(w, http.StatusOK, viewUser(u))
}

type rolesRequest struct {
	Roles *[]string `json:"roles"`
}

func (h *handler) setRoles(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	in, err := httpjson.Decode[rolesRequest](r, 0)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if in.Roles == nil {
		h.writeError(w, r, acl.Invalid("roles", "is required (an empty list removes every role)"))
		return
	}
	u, err := h.dir.SetRoles(r.Context(), acl.UserID(r.PathValue("user")), toRoles(*in.Roles))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpjson.Respond(w, http.StatusOK, viewUser(u))
}

type passwordRequest struct {
	Password string `json:"password"` // optional: generated when empty
}

func (h *handler) resetPassword(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	var in passwordRequest
	if r.ContentLength != 0 { // the body is optional
		var err error
		if in, err = httpjson.Decode[passwordRequest](r, 0); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	generated, err := h.dir.ResetPassword(r.Context(), acl.UserID(r.PathValue("user")), in.Password)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if generated == "" {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	httpjson.Respond(w, http.StatusOK, map[string]string{"password": generated})
}

func (h *handler) unlock(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	if err := h.dir.Unlock(r.Context(), acl.UserID(r.PathValue("user"))); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// defaultAuditLimit is the page of GET /api/v1/audit/{stream} without "limit";
// acl.Directory.Audit allows up to 1000.
const defaultAuditLimit = 100

type entriesView struct {
	Entries []entryView `json:"entries"`
	// NextAfter is the "after" of the next page: the last seq answered, or the
	// request's after when nothing was.
	NextAfter int64 `json:"next_after"`
}

// audit answers a page of an acl audit stream: directory (auditors), auth and
// denials (auditors and security administrators), to readers at the region
// root only, since these streams span the whole region; see acl.Directory.Audit.
func (h *handler) audit(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.subject(w, r); !ok {
		return
	}
	q := r.URL.Query()
	after, limit := int64(0), defaultAuditLimit
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			h.writeError(w, r, acl.Invalid("after", "must be a whole number"))
			return
		}
		after = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			h.writeError(w, r, acl.Invalid("limit", "must be a whole number"))
			return
		}
		limit = n
	}
	es, err := h.dir.Audit(r.Context(), r.PathValue("stream"), after, limit)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := entriesView{Entries: make([]entryView, len(es)), NextAfter: after}
	for i, e := range es {
		out.Entries[i] = viewEntry(e)
		out.NextAfter = e.Seq
	}
	httpjson.Respond(w, http.StatusOK, out)
}
