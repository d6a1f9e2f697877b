package chatclient_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/aclhttp"
	"caseroom/acl/pgdb/pgdbtest"
	aclpostgres "caseroom/acl/postgres"
	aclsqlite "caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/acl/token"
	"caseroom/chat"
	"caseroom/chat/chathttp"
	"caseroom/chat/chatws"
	"caseroom/chat/membroker"
	chatpostgres "caseroom/chat/postgres"
	chatsqlite "caseroom/chat/sqlite"
	"caseroom/configs"
)

// server is caseroom's chat as cmd wires it — the auth endpoints, the rooms
// API behind the token middleware and the socket — on real stores (SQLite, or
// PostgreSQL in a fresh schema), the real auth and the shipped policy.
type server struct {
	url   string
	store chat.Store
	svc   *chat.Service
	pass  map[string]string // username → password of the demo accounts
}

type migrator interface{ Migrate(context.Context) error }

func mustServer(t *testing.T, backend string, hubOpts chat.HubOptions) *server {
	t.Helper()
	ctx := context.Background()
	var (
		as interface {
			acl.Store
			migrator
		}
		cs interface {
			chat.Store
			migrator
		}
	)
	switch backend {
	case "sqlite":
		db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "c.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		as, cs = aclsqlite.New(db), chatsqlite.New(db)
	case "postgres":
		pool := pgdbtest.MustFreshSchema(t) // skips unless CASEROOM_TEST_POSTGRES is set
		as, cs = aclpostgres.New(pool), chatpostgres.New(pool)
	default:
		t.Fatalf("no backend %q", backend)
	}
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
	issuer, err := token.LoadIssuer(ctx, as, token.IssuerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	auth := token.NewAuth(as, issuer, token.AuthConfig{PasswordParams: token.PasswordParams{Memory: 64, Time: 1, Threads: 1}}, time.Now)
	guard := acl.NewGuard(policy, acl.NewRegions(nil), as, time.Now)
	dir := acl.NewDirectory(as, guard, auth, kinds, time.Now, nil)
	accounts, err := dir.SeedDemo(acl.WithSubject(ctx, acl.ConsoleSubject()), configs.FS, "demo.json", func() (string, error) { return token.GeneratePassword(), nil })
	if err != nil {
		t.Fatal(err)
	}
	regions, _ := as.Regions(ctx)
	guard.SetRegions(acl.NewRegions(regions))
	log := slog.New(slog.DiscardHandler)
	br := membroker.New(0)
	svc := chat.NewService(cs, br, guard, as, chat.NewRegistry(), time.Now, log, chat.Options{PostRate: 1e6})
	hub := chat.NewHub(cs, br, log, hubOpts)
	hctx, cancel := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); hub.Run(hctx) }()

	mux := http.NewServeMux()
	acls := aclhttp.NewHandler(dir, auth, log)
	for _, r := range aclhttp.PublicRoutes() {
		mux.Handle(r.Method+" "+r.Pattern, acls)
	}
	mux.Handle("GET /api/v1/ws", chatws.NewHandler(hub, svc, auth.VerifyAccess, chatws.Options{FrameRate: 1000, FrameBurst: 1000}, log))
	private := http.NewServeMux()
	rooms := chathttp.NewHandler(svc, log)
	private.Handle("/api/v1/rooms", rooms)
	private.Handle("/api/v1/rooms/", rooms)
	private.Handle("/api/v1/", acls)
	mux.Handle("/api/v1/", auth.Middleware(private, aclhttp.AuthError(log)))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); cancel(); <-ran })
	s := &server{url: srv.URL, store: cs, svc: svc, pass: map[string]string{}}
	for _, a := range accounts {
		s.pass[a.Username] = a.Password
	}
	return s
}

// staff returns the usernames of officers, leaders and clerks, sorted.
func (s *server) staff() []string {
	var out []string
	for u := range s.pass {
		if strings.Contains(u, ".officer") || strings.Contains(u, ".leader") || strings.Contains(u, ".clerk") {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}
