package chatws_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/aclhttp"
	aclsqlite "caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/acl/token"
	"caseroom/chat"
	"caseroom/chat/chathttp"
	"caseroom/chat/chatws"
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

// env is the server as cmd wires it, on real SQLite, the real auth and the
// shipped policy: the auth endpoints, the rooms API behind the token
// middleware, and the socket.
type env struct {
	t      *testing.T
	chat   *chatsqlite.Store
	svc    *chat.Service
	hub    *chat.Hub
	broker chat.Broker
	auth   *token.Auth
	issuer *token.Issuer
	clock  *testClock
	url    string
	pass   map[string]string

	mu       sync.Mutex
	subjects map[string]acl.Subject
	tokens   map[string]string
}

func mustEnv(t *testing.T, wsOpts chatws.Options, hubOpts chat.HubOptions) *env {
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
	// A real date: the clock runs with real time from it, so that the
	// heartbeats and timeouts of the socket, which use real time, agree.
	clock := &testClock{t: time.Now()}
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
	br := membroker.New(0)
	svc := chat.NewService(cs, br, guard, as, chat.NewRegistry(), clock.Now, log, chat.Options{PostRate: 1e6})
	hub := chat.NewHub(cs, br, log, hubOpts)
	hctx, cancel := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); hub.Run(hctx) }()

	mux := http.NewServeMux()
	acls := aclhttp.NewHandler(dir, auth, log)
	for _, r := range aclhttp.PublicRoutes() {
		mux.Handle(r.Method+" "+r.Pattern, acls)
	}
	mux.Handle("GET /api/v1/ws", chatws.NewHandler(hub, svc, auth.VerifyAccess, wsOpts, log))
	private := http.NewServeMux()
	rooms := chathttp.NewHandler(svc, log)
	private.Handle("/api/v1/rooms", rooms)
	private.Handle("/api/v1/rooms/", rooms)
	private.Handle("/api/v1/", acls)
	mux.Handle("/api/v1/", auth.Middleware(private, aclhttp.AuthError(log)))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); cancel(); <-ran })

	e := &env{t: t, chat: cs, svc: svc, hub: hub, broker: br, auth: auth, issuer: issuer, clock: clock, url: srv.URL,
		pass: map[string]string{}, subjects: map[string]acl.Subject{}, tokens: map[string]string{}}
	for _, a := range accounts {
		e.pass[a.Username] = a.Password
	}
	return e
}

// login signs username in (once) and returns its access token and subject.
func (e *env) login(username string) (string, acl.Subject) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if tk, ok := e.tokens[username]; ok {
		return tk, e.subjects[username]
	}
	pw, ok := e.pass[username]
	if !ok {
		e.t.Fatalf("no demo account %q", username)
	}
	tk, err := e.auth.Login(context.Background(), username, pw, token.ClientMeta{})
	if err != nil {
		e.t.Fatalf("login %s: %v", username, err)
	}
	e.tokens[username], e.subjects[username] = tk.Access, tk.Subject
	return tk.Access, tk.Subject
}

func (e *env) as(username string) context.Context {
	_, s := e.login(username)
	return acl.WithSubject(context.Background(), s)
}

// mustRoom creates a group room of owner with members; it returns its id.
func (e *env) mustRoom(owner string, members ...string) chat.RoomID {
	e.t.Helper()
	var ids []acl.UserID
	for _, m := range members {
		_, s := e.login(m)
		ids = append(ids, s.User)
	}
	r, err := e.svc.CreateRoom(e.as(owner), chat.NewRoom{Name: "协调群", Members: ids})
	if err != nil {
		e.t.Fatalf("CreateRoom: %v", err)
	}
	return r.ID
}

func (e *env) mustPost(user string, room chat.RoomID, body string) chat.Message {
	e.t.Helper()
	m, _, err := e.svc.Post(e.as(user), room, chat.Post{Body: body})
	if err != nil {
		e.t.Fatalf("Post as %s: %v", user, err)
	}
	return m
}

const (
	police     = "police.150102.officer1"
	police2    = "police.150102.officer2"
	prosecutor = "procuratorate.150102.officer1"
	judge      = "court.150102.officer1"
)
