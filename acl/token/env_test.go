package token

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
)

// A clock is a controllable now for Auth: tests advance it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Directory of every test store.
const (
	zhangPassword = "correct horse battery"
	liPassword    = "another long password"
	unitID        = acl.UnitID("150102-procuratorate")
	zhangID       = acl.UserID("u-zhang")
	liID          = acl.UserID("u-li")
	botID         = acl.UserID("bot-deadline")
)

// An env is one node's Auth on a real SQLite acl store, with a clock and a
// record of every secret the test handled, which no audit detail may contain.
type env struct {
	t      *testing.T
	ctx    context.Context
	store  *sqlite.Store
	issuer *Issuer
	clock  *clock
	auth   *Auth

	mu      sync.Mutex
	secrets []string // guarded by mu
}

// mustEnv opens a fresh store in t.TempDir(), seeds a county procuratorate
// with users zhang (officer, leader), li (officer) and a bot, and returns one
// node. At cleanup it checks that the auth audit chain verifies and holds no
// secret.
func mustEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "acl.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	st := sqlite.New(db)
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	iss, err := LoadIssuer(ctx, st, IssuerConfig{})
	if err != nil {
		t.Fatalf("LoadIssuer: %v", err)
	}
	e := &env{t: t, ctx: ctx, store: st, issuer: iss, clock: &clock{t: t0}}
	e.auth = e.newNode()
	e.secrets = []string{zhangPassword, liPassword}

	dir := func(action, target string) audit.Record {
		return audit.Record{Stream: audit.StreamDirectory, At: t0, Actor: "test", Action: action, Target: target, Outcome: audit.OK, Detail: "{}"}
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("seed %s: %v", what, err)
		}
	}
	must("regions", st.PutRegions(ctx, []acl.Region{
		{Code: "150000", Name: "内蒙古自治区", Level: acl.LevelProvince},
		{Code: "150100", Parent: "150000", Name: "呼和浩特市", Level: acl.LevelLeague},
		{Code: "150102", Parent: "150100", Name: "新城区", Level: acl.LevelCounty},
	}, dir("region.put", "150000")))
	must("unit", st.CreateUnit(ctx, acl.Unit{ID: unitID, Kind: "procuratorate", Region: "150102", Name: "新城区人民检察院", CreatedAt: t0}, dir("unit.create", string(unitID))))
	for _, u := range []struct {
		u  acl.User
		pw string
	}{
		{acl.User{ID: zhangID, Username: "zhangsan", Name: "张三", Unit: unitID, Roles: []acl.Role{acl.Officer, acl.Leader}, CreatedAt: t0}, zhangPassword},
		{acl.User{ID: liID, Username: "lisi", Name: "李四", Unit: unitID, Roles: []acl.Role{acl.Officer}, CreatedAt: t0}, liPassword},
		{acl.User{ID: botID, Username: "deadline-bot", Name: "期限提醒", Unit: unitID, Bot: true, CreatedAt: t0}, ""},
	} {
		hash := ""
		if u.pw != "" {
			hash = mustHash(t, u.pw)
		}
		must("user "+string(u.u.ID), st.CreateUser(ctx, u.u, hash, dir("user.create", string(u.u.ID))))
	}
	t.Cleanup(e.checkAudit)
	return e
}

// newNode returns another node's Auth on the same store, key and clock.
func (e *env) newNode() *Auth {
	return NewAuth(e.store, e.issuer, AuthConfig{PasswordParams: fastParams}, e.clock.Now)
}

func mustHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := HashPassword(pw, fastParams)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	return h
}

// secret adds s to what no audit detail may contain.
func (e *env) secret(s ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, s...)
}

// login logs in through node a (e.auth when nil) and fails the test on error.
func (e *env) mustLogin(a *Auth, username, pw string) Tokens {
	e.t.Helper()
	if a == nil {
		a = e.auth
	}
	e.secret(pw)
	tk, err := a.Login(e.ctx, username, pw, ClientMeta{IP: "10.0.0.7", UserAgent: "test/1.0"})
	if err != nil {
		e.t.Fatalf("Login(%q): %v", username, err)
	}
	e.secret(tk.Access, tk.Refresh)
	return tk
}

func (e *env) login(username, pw string) (Tokens, error) {
	e.secret(pw)
	tk, err := e.auth.Login(e.ctx, username, pw, ClientMeta{IP: "10.0.0.7", UserAgent: "test/1.0"})
	e.secret(tk.Access, tk.Refresh)
	return tk, err
}

func (e *env) refresh(a *Auth, tok string) (Tokens, error) {
	if a == nil {
		a = e.auth
	}
	tk, err := a.Refresh(e.ctx, tok)
	e.secret(tk.Access, tk.Refresh)
	return tk, err
}

// request sends a GET with access token tok through node a's middleware and
// returns the subject the handler saw and the error onError saw.
func (e *env) request(a *Auth, tok string) (acl.Subject, error) {
	if a == nil {
		a = e.auth
	}
	var got acl.Subject
	var gotErr error
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := acl.SubjectFrom(r.Context())
		if !ok {
			e.t.Errorf("handler reached without a subject")
		}
		got = s
	}), func(w http.ResponseWriter, r *http.Request, err error) {
		gotErr = err
		w.WriteHeader(http.StatusUnauthorized)
	})
	r := httptest.NewRequest("GET", "/api/rooms", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	h.ServeHTTP(httptest.NewRecorder(), r)
	if gotErr == nil && got.User == "" {
		e.t.Errorf("middleware neither served nor refused")
	}
	return got, gotErr
}

// authEntries returns the whole auth audit stream.
func (e *env) authEntries() []audit.Entry {
	e.t.Helper()
	es, err := e.store.AuditEntries(e.ctx, audit.StreamAuth, 0, 10000)
	if err != nil {
		e.t.Fatalf("AuditEntries: %v", err)
	}
	return es
}

// entriesSince returns the auth entries after the first n.
func (e *env) entriesSince(n int) []audit.Entry {
	e.t.Helper()
	return e.authEntries()[n:]
}

// checkAudit verifies the auth chain and that no record holds a secret.
func (e *env) checkAudit() {
	es := e.authEntries()
	if err := audit.Verify(es); err != nil {
		e.t.Errorf("auth audit chain: %v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, en := range es {
		all := strings.Join([]string{en.Actor, en.Action, en.Target, en.Detail}, "\x00")
		for _, s := range e.secrets {
			if s != "" && strings.Contains(all, s) {
				e.t.Errorf("audit entry %d (%s) holds a secret %.12q…: %s", en.Seq, en.Action, s, en.Detail)
			}
		}
	}
}

// wantEntry fails unless en has action, outcome and target, and its detail
// contains each of details.
func wantEntry(t *testing.T, en audit.Entry, action, outcome string, target acl.UserID, details ...string) {
	t.Helper()
	if en.Stream != audit.StreamAuth || en.Action != action || en.Outcome != outcome || en.Target != string(target) {
		t.Errorf("audit entry %d = %s %s %s on %q, want %s %s %s on %q (detail %s)",
			en.Seq, en.Stream, en.Action, en.Outcome, en.Target, audit.StreamAuth, action, outcome, target, en.Detail)
	}
	for _, d := range details {
		if !strings.Contains(en.Detail, d) {
			t.Errorf("audit entry %d (%s) detail %s lacks %s", en.Seq, en.Action, en.Detail, d)
		}
	}
}
