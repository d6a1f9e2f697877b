package chathttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/aclhttp"
	"caseroom/acl/audit"
	aclsqlite "caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/acl/token"
	"caseroom/chat"
	"caseroom/chat/chathttp"
	"caseroom/chat/membroker"
	chatsqlite "caseroom/chat/sqlite"
	"caseroom/configs"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is the rooms API on real SQLite stores, the real auth and the shipped
// policy, mounted behind the access-token middleware as cmd mounts it.
type env struct {
	t       *testing.T
	acl     *aclsqlite.Store
	chat    *chatsqlite.Store
	svc     *chat.Service
	auth    *token.Auth
	clock   *testClock
	url     string
	pass    map[string]string
	tokens  map[string]string
	options chat.Options
}

func mustEnv(t *testing.T, opts chat.Options) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	as, cs := aclsqlite.New(db), chatsqlite.New(db)
	if err := as.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cs.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	kinds, err := acl.LoadUnitKinds(configs.FS, "unit-kinds.json")
	if err != nil {
		t.Fatal(err)
	}
	policy, err := acl.LoadPolicy(configs.FS, "policy.json", acl.KindIDs(kinds))
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	issuer, err := token.LoadIssuer(ctx, as, token.IssuerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	auth := token.NewAuth(as, issuer, token.AuthConfig{PasswordParams: token.PasswordParams{Memory: 64, Time: 1, Threads: 1}}, clock.Now)
	guard := acl.NewGuard(policy, acl.NewRegions(nil), as, clock.Now)
	dir := acl.NewDirectory(as, guard, auth, kinds, clock.Now, nil)
	accounts, err := dir.SeedDemo(acl.WithSubject(ctx, acl.ConsoleSubject()), configs.FS, "demo.json", func() (string, error) { return token.GeneratePassword(), nil })
	if err != nil {
		t.Fatal(err)
	}
	regions, _ := as.Regions(ctx)
	guard.SetRegions(acl.NewRegions(regions))
	log := slog.New(slog.DiscardHandler)
	svc := chat.NewService(cs, membroker.New(0), guard, as, chat.NewRegistry(), clock.Now, log, opts)

	private := http.NewServeMux()
	h := chathttp.NewHandler(svc, log)
	private.Handle("/api/v1/rooms", h)
	private.Handle("/api/v1/rooms/", h)
	srv := httptest.NewServer(auth.Middleware(private, aclhttp.AuthError(log)))
	t.Cleanup(srv.Close)
	e := &env{t: t, acl: as, chat: cs, svc: svc, auth: auth, clock: clock, url: srv.URL,
		pass: map[string]string{}, tokens: map[string]string{}, options: opts}
	for _, a := range accounts {
		e.pass[a.Username] = a.Password
	}
	return e
}

// advance moves the clock on; access tokens expire with it, so users log in again.
func (e *env) advance(d time.Duration) {
	e.clock.Advance(d)
	clear(e.tokens)
}

// token logs username in (once) and returns its access token.
func (e *env) token(username string) string {
	e.t.Helper()
	if tk, ok := e.tokens[username]; ok {
		return tk
	}
	pw, ok := e.pass[username]
	if !ok {
		e.t.Fatalf("no demo account %q", username)
	}
	tk, err := e.auth.Login(context.Background(), username, pw, token.ClientMeta{})
	if err != nil {
		e.t.Fatalf("login %s: %v", username, err)
	}
	e.tokens[username] = tk.Access
	return tk.Access
}

type reply struct {
	status int
	body   []byte
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r reply) code() string {
	var e struct {
		Error struct{ Code, Rule, Field string }
	}
	json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (r reply) rule() string {
	var e struct {
		Error struct{ Code, Rule string }
	}
	json.Unmarshal(r.body, &e)
	return e.Error.Rule
}

// doBytes sends body with contentType as user.
func (e *env) doBytes(method, path, user, contentType string, body []byte) reply {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+e.token(user))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: b}
}

// do sends body (JSON-encoded unless it is a string or []byte, sent as is) as user.
func (e *env) do(method, path, user string, body any) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if body != nil {
		if _, raw := body.([]byte); !raw {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+e.token(user))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: b}
}

func want(t *testing.T, call string, r reply, status int, code string) {
	t.Helper()
	if r.status != status || (code != "" && r.code() != code) {
		t.Errorf("%s = %d %s, want %d %s", call, r.status, r.body, status, code)
	}
}

// head returns a room's head seq read straight from the store.
func (e *env) head(room string) chat.Seq {
	e.t.Helper()
	r, err := e.chat.Room(context.Background(), chat.RoomID(room))
	if err != nil {
		e.t.Fatalf("Room(%s): %v", room, err)
	}
	return r.Head
}

func (e *env) denials() int {
	es, err := e.acl.AuditEntries(context.Background(), audit.StreamDenials, 0, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(es)
}

// unchanged runs f and checks it left room's log as it was.
func (e *env) unchanged(room string, f func()) {
	e.t.Helper()
	before := e.head(room)
	f()
	if after := e.head(room); after != before {
		e.t.Errorf("room %s head moved %d → %d; a refused request must store nothing", room, before, after)
	}
}

const (
	police     = "police.150102.officer1"
	police2    = "police.150102.officer2"
	policeLead = "police.150102.leader1"
	prosecutor = "procuratorate.150102.officer1"
	judge      = "court.150102.officer1"
	supervisor = "committee.150102.supervisor1"
	farSuper   = "committee.150200.supervisor1" // another league's committee
	auditor    = "committee.150000.auditor1"
	sysadmin   = "committee.150000.sysadmin1"
)

// mustRoom makes a group room of owner with members and returns its id.
func (e *env) mustRoom(owner string, members ...string) string {
	e.t.Helper()
	var room struct{ ID string }
	r := e.do("POST", "/api/v1/rooms", owner, map[string]any{"name": "协调群", "members": members})
	if r.status != 201 {
		e.t.Fatalf("create room: %d %s", r.status, r.body)
	}
	r.decode(e.t, &room)
	return room.ID
}

func (e *env) mustPost(room, user, body string) chat.MessageView {
	e.t.Helper()
	r := e.do("POST", "/api/v1/rooms/"+room+"/messages", user, map[string]any{"body": body})
	if r.status != 201 {
		e.t.Fatalf("post as %s: %d %s", user, r.status, r.body)
	}
	var m chat.MessageView
	r.decode(e.t, &m)
	return m
}

func (e *env) history(room, user, query string) []chat.MessageView {
	e.t.Helper()
	r := e.do("GET", "/api/v1/rooms/"+room+"/messages"+query, user, nil)
	if r.status != 200 {
		e.t.Fatalf("history as %s: %d %s", user, r.status, r.body)
	}
	var out struct{ Messages []chat.MessageView }
	r.decode(e.t, &out)
	return out.Messages
}
