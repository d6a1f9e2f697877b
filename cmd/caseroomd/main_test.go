package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"caseroom/acl/pgdb/pgdbtest"
)

// server is caseroomd started by run, as main starts it, on a free port.
type server struct {
	base     string
	accounts map[string]string // username → password, from the demo table
	stop     func() error      // cancels run's context (as SIGTERM does) and returns run's error
}

// env returns a getenv over vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// testEnv is the environment of a test server: SQLite in a temporary
// directory (or PostgreSQL when dsn is given), a free port, fast password hashing.
func testEnv(t *testing.T, dsn string) map[string]string {
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "caseroom.db")
	}
	return map[string]string{
		"CASEROOM_ADDR":          "127.0.0.1:0",
		"CASEROOM_DATABASE":      dsn,
		"CASEROOM_ARGON2_MEMORY": "64",
		"CASEROOM_LOG_LEVEL":     "warn",
	}
}

var listening = regexp.MustCompile(`^caseroomd listening on (http://\S+)$`)

// mustServe starts `caseroomd serve args…` and waits until it listens, reading
// the demo accounts it prints on the way.
func mustServe(t *testing.T, vars map[string]string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		err := run(ctx, append([]string{"serve"}, args...), env(vars), pw, &syncWriter{w: &stderr})
		pw.Close()
		errc <- err
	}()
	s := &server{accounts: map[string]string{}}
	sc := bufio.NewScanner(pr)
	deadline := time.AfterFunc(60*time.Second, func() { pr.CloseWithError(fmt.Errorf("no listening line within 60s")) })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		if m := listening.FindStringSubmatch(line); m != nil {
			s.base = m[1]
			break
		}
		if f := strings.Fields(line); len(f) >= 5 && strings.Count(f[1], "-") == 4 {
			s.accounts[f[0]] = f[1]
		}
	}
	if s.base == "" {
		cancel()
		t.Fatalf("caseroomd did not start: %v\nstderr:\n%s", <-errc, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	var once sync.Once
	var runErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(30 * time.Second):
				runErr = fmt.Errorf("run did not return within 30s of cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { s.stop() })
	return s
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// call sends a JSON request and decodes the JSON answer into out (if not nil).
func (s *server) call(t *testing.T, method, path, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

func (s *server) login(t *testing.T, username string) string {
	t.Helper()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if code := s.call(t, "POST", "/api/v1/auth/login", "", map[string]string{"username": username, "password": s.accounts[username]}, &out); code != 200 {
		t.Fatalf("login %s: status %d", username, code)
	}
	return out.AccessToken
}

type apiError struct {
	Error struct {
		Code string `json:"code"`
		Rule string `json:"rule"`
	} `json:"error"`
}

// TestServeDemoIsUsable is the README's run command end to end: the server
// starts on SQLite with nothing else, the demo accounts log in, two users of
// different agencies chat, health and readiness answer, and SIGTERM (context
// cancel) shuts it down cleanly.
func TestServeDemoIsUsable(t *testing.T) {
	s := mustServe(t, testEnv(t, ""), "-demo")
	if len(s.accounts) < 50 {
		t.Fatalf("demo printed %d accounts, want the seeded directory", len(s.accounts))
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"} {
		resp, err := http.Get(s.base + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s = %v, %v; want 200", path, resp, err)
		}
		resp.Body.Close()
	}
	police := s.login(t, "police.150102.officer1")
	prosecutor := s.login(t, "procuratorate.150102.officer1")
	// The deadline bot is a named user of the root committee from the first start.
	var bot struct {
		ID   string
		Unit string
	}
	if code := s.call(t, "GET", "/api/v1/users/deadline-bot", police, nil, &bot); code != 200 || bot.Unit != "150000-committee" {
		t.Errorf("GET /users/deadline-bot = %d %+v, want the bot at 150000-committee", code, bot)
	}

	var room struct{ ID string }
	if code := s.call(t, "POST", "/api/v1/rooms", police, map[string]any{"name": "协调群", "members": []string{"procuratorate.150102.officer1"}}, &room); code != 201 {
		t.Fatalf("create room: status %d", code)
	}
	var posted struct{ Seq int64 }
	if code := s.call(t, "POST", "/api/v1/rooms/"+room.ID+"/messages", police, map[string]any{"client_id": "m1", "body": "请查收案卷"}, &posted); code != 201 || posted.Seq != 2 {
		t.Fatalf("post: status %d seq %d, want 201 and seq 2", code, posted.Seq)
	}
	var hist struct {
		Messages []struct {
			Seq    int64
			Sender string
			Body   string
		}
	}
	s.call(t, "GET", "/api/v1/rooms/"+room.ID+"/messages?after=1", prosecutor, nil, &hist)
	if len(hist.Messages) != 1 || hist.Messages[0].Body != "请查收案卷" || hist.Messages[0].Sender != "police.150102.officer1" {
		t.Fatalf("prosecutor's history = %+v, want the police officer's message", hist.Messages)
	}
	// A court officer is not a member: the room does not exist for them.
	court := s.login(t, "court.150102.officer1")
	var e apiError
	if code := s.call(t, "GET", "/api/v1/rooms/"+room.ID+"/messages", court, nil, &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("non-member history: status %d code %q, want 404 not_found", code, e.Error.Code)
	}
	if code := s.call(t, "GET", "/api/v1/rooms", "", nil, &e); code != 401 || e.Error.Code != "unauthenticated" {
		t.Errorf("no token: status %d code %q, want 401 unauthenticated", code, e.Error.Code)
	}
	if err := s.stop(); err != nil {
		t.Errorf("graceful shutdown: run returned %v", err)
	}
}

// TestServeRestartKeepsDataAndKey: a second start on the same database finds its
// migrations applied, its signing key (tokens from before still verify) and its data.
func TestServeRestartKeepsDataAndKey(t *testing.T) {
	vars := testEnv(t, "")
	s := mustServe(t, vars, "-demo")
	token := s.login(t, "police.150102.officer1")
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	s2 := mustServe(t, vars)
	var me struct{ ID string }
	if code := s2.call(t, "GET", "/api/v1/me", token, nil, &me); code != 200 || me.ID != "police.150102.officer1" {
		t.Errorf("token from before the restart: status %d me %+v; want 200 for the same user", code, me)
	}
}

// TestBadSettingsStopTheStart: each bad setting names itself.
func TestBadSettingsStopTheStart(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "c.conf")
	os.WriteFile(conf, []byte("CASEROOM_ADDR=127.0.0.1:0\nCASEROOM_COLOUR=blue\n"), 0o600)
	tests := []struct {
		vars map[string]string
		args []string
		want string
	}{
		{map[string]string{"CASEROOM_ADDR": "nonsense"}, nil, "CASEROOM_ADDR"},
		{map[string]string{"CASEROOM_DATABASE": "mysql://x"}, nil, "CASEROOM_DATABASE"},
		{map[string]string{"CASEROOM_ACCESS_TTL": "forever"}, nil, "CASEROOM_ACCESS_TTL"},
		{map[string]string{"CASEROOM_LOGIN_MAX_FAILURES": "0"}, nil, "CASEROOM_LOGIN_MAX_FAILURES"},
		{map[string]string{"CASEROOM_LOG_LEVEL": "loud"}, nil, "CASEROOM_LOG_LEVEL"},
		{map[string]string{"CASEROOM_REDIS": "memcached://x"}, nil, "CASEROOM_REDIS"},
		{map[string]string{"CASEROOM_CONFIGS": "/no/such/dir"}, nil, "CASEROOM_CONFIGS"},
		{nil, []string{"-config", conf}, "CASEROOM_COLOUR"},
	}
	for _, tt := range tests {
		err := run(context.Background(), append([]string{"serve"}, tt.args...), env(tt.vars), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("serve with %v %v = %v, want an error naming %s", tt.vars, tt.args, err, tt.want)
		}
	}
}

// TestBadConfigsDataStopsTheStart: a broken data file names file and field.
func TestBadConfigsDataStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"unit-kinds.json", "regions.csv", "demo.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o600)
	}
	os.WriteFile(filepath.Join(dir, "policy.json"), []byte(`{"rules":[{"id":"x","actions":["room.fly"],"reason":"r"}]}`), 0o600)
	vars := testEnv(t, "")
	vars["CASEROOM_CONFIGS"] = dir
	err := run(context.Background(), []string{"serve"}, env(vars), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "policy.json") || !strings.Contains(err.Error(), `rules[0].actions[0]: unknown action "room.fly"`) {
		t.Errorf("serve with a bad policy = %v, want an error naming policy.json and the field", err)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, env(nil), &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "caseroomd ") {
		t.Errorf("version = %q, %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"frobnicate"}, env(nil), io.Discard, io.Discard); err == nil {
		t.Error("an unknown command did not fail")
	}
}

// TestConcurrentMigrateOnPostgres: nodes starting at once against one
// PostgreSQL all succeed and leave one set of migrations applied.
func TestConcurrentMigrateOnPostgres(t *testing.T) {
	dsn := pgdbtest.URLWithSchema(t)
	vars := testEnv(t, dsn)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			errs[i] = run(context.Background(), []string{"migrate"}, env(vars), io.Discard, io.Discard)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrate %d: %v", i, err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, env(vars), &out, io.Discard); err != nil || !strings.Contains(out.String(), "0 applied") {
		t.Errorf("a later migrate = %q, %v; want nothing left to apply", out.String(), err)
	}
}

// TestServeOnPostgres: the same usable server on PostgreSQL.
func TestServeOnPostgres(t *testing.T) {
	s := mustServe(t, testEnv(t, pgdbtest.URLWithSchema(t)), "-demo")
	police := s.login(t, "police.150102.officer1")
	var room struct{ ID string }
	if code := s.call(t, "POST", "/api/v1/rooms", police, map[string]any{"name": "协调群"}, &room); code != 201 {
		t.Fatalf("create room on PostgreSQL: status %d", code)
	}
	resp, err := http.Get(s.base + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz on PostgreSQL = %v, %v", resp, err)
	}
	resp.Body.Close()
}
