package aclhttp_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"caseroom/acl"
	"caseroom/acl/aclhttp"
	"caseroom/acl/audit"
	"caseroom/acl/httpjson"
	"caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/acl/token"
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

// A server is the acl API on a real SQLite store and the real token.Auth, mounted
// as cmd/caseroomd mounts it: the auth routes open, the rest behind the
// access-token middleware, on a loopback listener.
type server struct {
	t        *testing.T
	store    *sqlite.Store
	auth     *token.Auth
	dir      *acl.Directory
	clock    *testClock
	url      string
	password map[string]string // username → password
}

const (
	court     = "150102-court"
	committee = "150000-committee"
)

func mustServer(t *testing.T) *server {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "acl.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := sqlite.New(db)
	if err := st.Migrate(ctx); err != nil {
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
	clk := &testClock{t: time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)}
	iss, err := token.LoadIssuer(ctx, st, token.IssuerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	auth := token.NewAuth(st, iss, token.AuthConfig{PasswordParams: token.PasswordParams{Memory: 64, Time: 1, Threads: 1}}, clk.Now)
	guard := acl.NewGuard(policy, acl.NewRegions(nil), st, clk.Now)
	log := slog.New(slog.DiscardHandler)
	dir := acl.NewDirectory(st, guard, auth, kinds, clk.Now, log)
	dir.GeneratePassword = func() (string, error) { return token.GeneratePassword(), nil }
	dir.OnSessionsRevoked = auth.ForgetUser

	s := &server{t: t, store: st, auth: auth, dir: dir, clock: clk, password: map[string]string{}}
	console := acl.WithSubject(ctx, acl.ConsoleSubject())
	rs, err := acl.LoadRegions(configs.FS, "regions.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.ImportRegions(console, rs); err != nil {
		t.Fatal(err)
	}
	for _, u := range []acl.Unit{
		{Kind: "court", Region: "150102", Name: "呼和浩特市新城区人民法院"},
		{Kind: acl.Committee, Region: "150000", Name: "中共内蒙古自治区委员会政法委员会"},
	} {
		if _, err := dir.CreateUnit(console, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, nu := range []acl.NewUser{
		{Username: "sys.admin", Name: "系统管理员", Unit: committee, Roles: []acl.Role{acl.SysAdmin}},
		{Username: "sec.admin", Name: "安全管理员", Unit: committee, Roles: []acl.Role{acl.SecAdmin}},
		{Username: "audit.one", Name: "审计员", Unit: committee, Roles: []acl.Role{acl.Auditor}},
		{Username: "court.officer1", Name: "新城区法院 法官1", Unit: court, Roles: []acl.Role{acl.Officer}},
	} {
		_, pw, err := dir.CreateUser(console, nu)
		if err != nil {
			t.Fatal(err)
		}
		s.password[nu.Username] = pw
	}

	h := aclhttp.NewHandler(dir, auth, log)
	mux := http.NewServeMux()
	for _, r := range aclhttp.PublicRoutes() {
		mux.Handle(r.Method+" "+r.Pattern, h)
	}
	mux.Handle("/api/v1/", auth.Middleware(h, aclhttp.AuthError(log)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// A reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %q", r.status, r.body)
	}
	return m
}

// errorCode returns the code of an error envelope, "" for anything else.
func (r reply) errorCode() string {
	var e httpjson.ErrorBody
	json.Unmarshal(r.body, &e)
	return e.Error.Code
}

// do sends body (a string or []byte as it is, anything else as JSON) with the
// bearer token tok when not empty.
func (s *server) do(method, path, tok string, body any) reply {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(s.t.Context(), method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// want checks status and, when code is not empty, the error code.
func want(t *testing.T, call string, r reply, status int, code string) {
	t.Helper()
	if r.status != status || (code != "" && r.errorCode() != code) {
		t.Errorf("%s = %d %s, want %d %s", call, r.status, r.body, status, code)
	}
}

type tokens struct {
	Access, Refresh string
	body            map[string]any
}

func (s *server) login(username string) tokens {
	s.t.Helper()
	r := s.do("POST", "/api/v1/auth/login", "", map[string]string{"username": username, "password": s.password[strings.ToLower(strings.TrimSpace(username))]})
	if r.status != http.StatusOK {
		s.t.Fatalf("login %s = %d %s", username, r.status, r.body)
	}
	m := r.json(s.t)
	return tokens{Access: m["access_token"].(string), Refresh: m["refresh_token"].(string), body: m}
}

// directory is the directory and every credential as JSON; credentials=false
// leaves the failure counters and lockouts out.
func (s *server) directory(credentials bool) string {
	s.t.Helper()
	ctx := context.Background()
	units, err := s.store.Units(ctx, acl.UnitFilter{})
	if err != nil {
		s.t.Fatal(err)
	}
	users, err := s.store.Users(ctx, acl.UserFilter{})
	if err != nil {
		s.t.Fatal(err)
	}
	state := map[string]any{"units": units, "users": users}
	if credentials {
		var cs []acl.Credentials
		for _, u := range users {
			c, err := s.store.Credentials(ctx, u.Username)
			if err != nil {
				s.t.Fatal(err)
			}
			cs = append(cs, c)
		}
		state["credentials"] = cs
	}
	b, _ := json.Marshal(state)
	return string(b)
}

func (s *server) entries(stream string) []audit.Entry {
	s.t.Helper()
	es, err := s.store.AuditEntries(context.Background(), stream, 0, 1_000_000)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := audit.Verify(es); err != nil {
		s.t.Fatalf("audit.Verify(%s) = %v", stream, err)
	}
	return es
}

// unchanged runs f and checks that the directory (credentials included) and its
// audit stream are as before, and that the denials stream grew by denials.
func (s *server) unchanged(name string, denials int, f func()) {
	s.t.Helper()
	before, dir, den := s.directory(true), len(s.entries(audit.StreamDirectory)), len(s.entries(audit.StreamDenials))
	f()
	if s.directory(true) != before {
		s.t.Errorf("%s changed the directory", name)
	}
	if n := len(s.entries(audit.StreamDirectory)); n != dir {
		s.t.Errorf("%s: the directory stream has %d entries, want %d", name, n, dir)
	}
	if n := len(s.entries(audit.StreamDenials)) - den; n != denials {
		s.t.Errorf("%s: the denials stream grew by %d, want %d", name, n, denials)
	}
}

func TestLoginRefreshLogout(t *testing.T) {
	s := mustServer(t)
	tok := s.login("Court.Officer1 ") // usernames are trimmed and compared lowercase
	user := tok.body["user"].(map[string]any)
	for k, v := range map[string]any{"id": "court.officer1", "username": "court.officer1", "name": "新城区法院 法官1",
		"unit": court, "unit_kind": "court", "region": "150102", "unit_name": "呼和浩特市新城区人民法院"} {
		if user[k] != v {
			t.Errorf("login user.%s = %v, want %v", k, user[k], v)
		}
	}
	if roles, _ := user["roles"].([]any); len(roles) != 1 || roles[0] != "officer" {
		t.Errorf("login user.roles = %v, want [officer]", user["roles"])
	}
	for _, k := range []string{"access_expires_at", "refresh_expires_at"} {
		if _, err := time.Parse(time.RFC3339, tok.body[k].(string)); err != nil {
			t.Errorf("login %s = %v: %v", k, tok.body[k], err)
		}
	}
	if strings.Contains(string(s.do("GET", "/api/v1/me", tok.Access, nil).body), "password") {
		t.Error("/me mentions a password")
	}
	me := s.do("GET", "/api/v1/me", tok.Access, nil)
	want(t, "GET /me", me, http.StatusOK, "")
	if m := me.json(t); m["username"] != "court.officer1" || m["unit_kind"] != "court" {
		t.Errorf("GET /me = %s", me.body)
	}

	// Refresh rotates: the new pair works, and the spent refresh token, presented
	// again, revokes the whole family.
	r := s.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": tok.Refresh})
	want(t, "refresh", r, http.StatusOK, "")
	next := r.json(t)
	if next["user"].(map[string]any)["username"] != "court.officer1" {
		t.Errorf("refresh user = %v", next["user"])
	}
	access2, refresh2 := next["access_token"].(string), next["refresh_token"].(string)
	want(t, "GET /me with the refreshed token", s.do("GET", "/api/v1/me", access2, nil), http.StatusOK, "")
	want(t, "refresh replay", s.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": tok.Refresh}), http.StatusUnauthorized, "token_reused")
	want(t, "refresh with the family's newest token after a replay", s.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": refresh2}), http.StatusUnauthorized, "token_invalid")
	want(t, "access token of the revoked family", s.do("GET", "/api/v1/me", access2, nil), http.StatusUnauthorized, "token_invalid")
	var reused bool
	for _, e := range s.entries(audit.StreamAuth) {
		reused = reused || (e.Action == token.ActionRefresh && e.Outcome == audit.Failed && strings.Contains(e.Detail, "token_reused"))
	}
	if !reused {
		t.Error("the replay left no failed refresh in the auth stream")
	}

	// Logout ends the session at once.
	tok = s.login("court.officer1")
	want(t, "logout", s.do("POST", "/api/v1/auth/logout", "", map[string]string{"refresh_token": tok.Refresh}), http.StatusNoContent, "")
	want(t, "GET /me after logout", s.do("GET", "/api/v1/me", tok.Access, nil), http.StatusUnauthorized, "token_invalid")
	want(t, "refresh after logout", s.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": tok.Refresh}), http.StatusUnauthorized, "")
	want(t, "logout without a token", s.do("POST", "/api/v1/auth/logout", "", map[string]string{}), http.StatusBadRequest, "invalid")
}

func TestLoginFailures(t *testing.T) {
	s := mustServer(t)
	dir := s.directory(false)
	authBefore := len(s.entries(audit.StreamAuth))
	wrong := s.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "court.officer1", "password": "not the right password"})
	want(t, "login with a wrong password", wrong, http.StatusUnauthorized, "bad_credentials")
	unknown := s.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "no.such.user", "password": "not the right password"})
	want(t, "login of an unknown user", unknown, http.StatusUnauthorized, "bad_credentials")
	if !bytes.Equal(wrong.body, unknown.body) {
		t.Errorf("unknown user answered %s, wrong password %s: they must look alike", unknown.body, wrong.body)
	}
	// Three more wrong passwords, then the fifth locks the account.
	for range 3 {
		want(t, "wrong password", s.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "court.officer1", "password": "still not right"}), http.StatusUnauthorized, "bad_credentials")
	}
	locked := s.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "court.officer1", "password": "still not right"})
	want(t, "fifth wrong password", locked, http.StatusForbidden, "account_locked")
	var e httpjson.ErrorBody
	json.Unmarshal(locked.body, &e)
	if until, err := time.Parse(time.RFC3339, e.Error.Until); err != nil || !until.Equal(s.clock.Now().Add(15*time.Minute)) {
		t.Errorf("locked until %q, want now+15m", e.Error.Until)
	}
	right := s.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "court.officer1", "password": s.password["court.officer1"]})
	want(t, "right password while locked", right, http.StatusForbidden, "account_locked")

	// Nothing changed but the failure counter and the audit record.
	if s.directory(false) != dir {
		t.Error("failed logins changed the directory")
	}
	es := s.entries(audit.StreamAuth)[authBefore:]
	if len(es) < 7 {
		t.Errorf("the auth stream gained %d entries for 7 refused logins", len(es))
	}
	for _, e := range es {
		if strings.Contains(e.Detail, "still not right") || strings.Contains(e.Detail, s.password["court.officer1"]) {
			t.Errorf("an audit entry holds a password: %s", e.Detail)
		}
	}
	c, _ := s.store.Credentials(context.Background(), "court.officer1")
	if c.LockedUntil.IsZero() {
		t.Error("the account is not locked in the store")
	}

	// The lock ends after 15 minutes, or when a security administrator lifts it.
	sec := s.login("sec.admin")
	want(t, "unlock", s.do("POST", "/api/v1/users/court.officer1/unlock", sec.Access, nil), http.StatusNoContent, "")
	s.login("court.officer1")
}

func TestBadBodiesChangeNothing(t *testing.T) {
	s := mustServer(t)
	sys := s.login("sys.admin")
	huge := `{"username":"` + strings.Repeat("a", httpjson.DefaultLimit) + `","password":"x"}`
	for _, tt := range []struct {
		name, path, tok string
		body            any
		status          int
		code            string
	}{
		{"malformed login", "/api/v1/auth/login", "", `{"username":`, 400, "malformed_json"},
		{"oversized login", "/api/v1/auth/login", "", huge, 413, "body_too_large"},
		{"unknown field in login", "/api/v1/auth/login", "", `{"username":"court.officer1","password":"x","remember":true}`, 400, "unknown_field"},
		{"two values in login", "/api/v1/auth/login", "", `{"username":"a","password":"b"}{}`, 400, "malformed_json"},
		{"wrong type in login", "/api/v1/auth/login", "", `{"username":1,"password":"x"}`, 400, "invalid_json_type"},
		{"malformed refresh", "/api/v1/auth/refresh", "", `[`, 400, "malformed_json"},
		{"unknown field in refresh", "/api/v1/auth/refresh", "", `{"token":"x"}`, 400, "unknown_field"},
		{"malformed create user", "/api/v1/users", sys.Access, `{"username":"x",`, 400, "malformed_json"},
		{"oversized create user", "/api/v1/users", sys.Access, strings.Replace(huge, "password", "name", 1), 413, "body_too_large"},
		{"unknown field in create user", "/api/v1/users", sys.Access, `{"username":"new.user","name":"新","unit":"150102-court","admin":true}`, 400, "unknown_field"},
		{"unknown field in create unit", "/api/v1/units", sys.Access, `{"kind":"court","region":"150105","name":"赛罕区人民法院","budget":1}`, 400, "unknown_field"},
		{"missing disabled", "/api/v1/users/court.officer1", sys.Access, `{}`, 400, "invalid"},
	} {
		method := "POST"
		if tt.name == "missing disabled" {
			method = "PATCH"
		}
		s.unchanged(tt.name, 0, func() {
			want(t, tt.name, s.do(method, tt.path, tt.tok, tt.body), tt.status, tt.code)
		})
	}
	// A body that is not JSON by its content type.
	req, _ := http.NewRequest("POST", s.url+"/api/v1/auth/login", strings.NewReader("username=a&password=b"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form-encoded login = %d, want 415", resp.StatusCode)
	}
}

// forge signs claims like an access token's with method and key.
func forge(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBadTokensAreRefused(t *testing.T) {
	s := mustServer(t)
	tok := s.login("sys.admin")
	now := s.clock.Now()
	claims := jwt.MapClaims{"iss": "caseroom", "aud": "caseroom", "sub": "sys.admin", "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "jti": "x", "sid": "s", "unit": committee, "unit_kind": "committee",
		"region": "150000", "roles": []string{"sysadmin", "secadmin", "auditor"}, "name": "forged"}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	payload, _ := json.Marshal(claims)
	algNone := header + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	// The server's public key used as an HMAC secret: the classic algorithm swap.
	seed, err := s.store.SigningKey(context.Background(), token.SigningKeyName, token.GenerateSigningKey)
	if err != nil {
		t.Fatal(err)
	}
	swapped := forge(t, jwt.SigningMethodHS256, []byte(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)), claims)
	for _, tt := range []struct {
		name, header, code string
	}{
		{"no token", "", "unauthenticated"},
		{"not a bearer token", "Basic c3lzLmFkbWluOng=", "unauthenticated"},
		{"garbage", "Bearer not.a.jwt", "token_invalid"},
		{"signed with another key", "Bearer " + forge(t, jwt.SigningMethodEdDSA, otherKey, claims), "token_invalid"},
		{"alg none", "Bearer " + algNone, "token_invalid"},
		{"alg swapped to HS256", "Bearer " + swapped, "token_invalid"},
	} {
		s.unchanged(tt.name, 0, func() {
			req, _ := http.NewRequest("POST", s.url+"/api/v1/users", strings.NewReader(`{"username":"forged.user","name":"伪造","unit":"150102-court"}`))
			req.Header.Set("Content-Type", "application/json")
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r := reply{status: resp.StatusCode, body: b}
			want(t, tt.name, r, http.StatusUnauthorized, tt.code)
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: no WWW-Authenticate challenge", tt.name)
			}
		})
	}
	// An expired token: the one from login, ten minutes and more later.
	s.clock.Advance(token.DefaultAccessTTL + time.Minute)
	s.unchanged("expired token", 0, func() {
		want(t, "expired token", s.do("POST", "/api/v1/users", tok.Access, map[string]string{"username": "late.user", "name": "迟到", "unit": court}), http.StatusUnauthorized, "token_expired")
	})
}

func TestAdministrationFollowsSeparationOfDuties(t *testing.T) {
	s := mustServer(t)
	sys, sec := s.login("sys.admin"), s.login("sec.admin")

	// The sysadmin opens a unit and an account…
	r := s.do("POST", "/api/v1/units", sys.Access, map[string]any{"kind": "procuratorate", "region": "150102", "name": "呼和浩特市新城区人民检察院"})
	want(t, "POST /units", r, http.StatusCreated, "")
	if m := r.json(t); m["id"] != "150102-procuratorate" || m["kind_name"] != "人民检察院" || r.header.Get("Location") != "/api/v1/units/150102-procuratorate" {
		t.Errorf("POST /units = %s (Location %q)", r.body, r.header.Get("Location"))
	}
	r = s.do("POST", "/api/v1/users", sys.Access, map[string]any{"username": "proc.officer1", "name": "新城区检察院 检察官1", "unit": "150102-procuratorate"})
	want(t, "POST /users", r, http.StatusCreated, "")
	created := r.json(t)
	password, _ := created["password"].(string)
	if password == "" || created["user"].(map[string]any)["id"] != "proc.officer1" {
		t.Fatalf("POST /users = %s, want the user and its generated password", r.body)
	}
	// …and cannot grant roles, on creation or after.
	s.unchanged("sysadmin grants", 2, func() {
		want(t, "sysadmin PUT roles", s.do("PUT", "/api/v1/users/proc.officer1/roles", sys.Access, map[string]any{"roles": []string{"officer"}}), http.StatusForbidden, "forbidden")
		r := s.do("POST", "/api/v1/users", sys.Access, map[string]any{"username": "proc.leader1", "name": "负责人", "unit": "150102-procuratorate", "roles": []string{"leader"}})
		want(t, "sysadmin POST /users with roles", r, http.StatusForbidden, "forbidden")
		var e httpjson.ErrorBody
		json.Unmarshal(r.body, &e)
		if e.Error.Rule != "secadmin-security" || e.Error.Message == "" {
			t.Errorf("refusal = %+v, want rule secadmin-security with a reason", e.Error)
		}
	})
	// The secadmin grants, but opens no accounts and grants nothing to itself.
	r = s.do("PUT", "/api/v1/users/proc.officer1/roles", sec.Access, map[string]any{"roles": []string{"officer"}})
	want(t, "secadmin PUT roles", r, http.StatusOK, "")
	if roles := r.json(t)["roles"].([]any); len(roles) != 1 || roles[0] != "officer" {
		t.Errorf("PUT roles = %s", r.body)
	}
	s.unchanged("secadmin oversteps", 4, func() {
		r := s.do("POST", "/api/v1/users", sec.Access, map[string]any{"username": "x.user", "name": "某人", "unit": court})
		want(t, "secadmin POST /users", r, http.StatusForbidden, "forbidden")
		if !strings.Contains(string(r.body), `"rule":"sysadmin-directory"`) {
			t.Errorf("secadmin POST /users = %s, want rule sysadmin-directory", r.body)
		}
		r = s.do("PUT", "/api/v1/users/sec.admin/roles", sec.Access, map[string]any{"roles": []string{"secadmin", "supervisor"}})
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), `"rule":"no-self-grant"`) {
			t.Errorf("self-grant = %d %s, want 403 no-self-grant", r.status, r.body)
		}
		r = s.do("PUT", "/api/v1/users/proc.officer1/roles", sec.Access, map[string]any{"roles": []string{"sysadmin", "auditor"}})
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), `"rule":"separate-admin-roles"`) {
			t.Errorf("sysadmin+auditor = %d %s, want 403 separate-admin-roles", r.status, r.body)
		}
		want(t, "secadmin PATCH user", s.do("PATCH", "/api/v1/users/proc.officer1", sec.Access, map[string]any{"disabled": true}), http.StatusForbidden, "forbidden")
	})
	den := s.entries(audit.StreamDenials)
	if last := den[len(den)-1]; last.Actor != "sec.admin" || last.Action != string(acl.DisableUser) {
		t.Errorf("last denial = %+v", last.Record)
	}

	// Invalid input answers the field.
	s.unchanged("invalid input", 0, func() {
		for _, tt := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"username": "ab", "name": "某人", "unit": court}, "username"},
			{map[string]any{"username": "ok.user", "name": "", "unit": court}, "name"},
			{map[string]any{"username": "ok.user", "name": "某人", "unit": "nowhere"}, "unit"},
			{map[string]any{"username": "ok.user", "name": "某人", "unit": court, "password": "short"}, "password"},
		} {
			r := s.do("POST", "/api/v1/users", sys.Access, tt.body)
			var e httpjson.ErrorBody
			json.Unmarshal(r.body, &e)
			if r.status != http.StatusBadRequest || e.Error.Code != "invalid" || e.Error.Field != tt.field {
				t.Errorf("POST /users %v = %d %s, want 400 invalid %s", tt.body, r.status, r.body, tt.field)
			}
		}
		want(t, "PUT roles without roles", s.do("PUT", "/api/v1/users/proc.officer1/roles", sec.Access, map[string]any{}), http.StatusBadRequest, "invalid")
		want(t, "PUT roles of nobody", s.do("PUT", "/api/v1/users/nobody/roles", sec.Access, map[string]any{"roles": []string{}}), http.StatusNotFound, "not_found")
		want(t, "taken username", s.do("POST", "/api/v1/users", sys.Access, map[string]any{"username": "proc.officer1", "name": "重名", "unit": court}), http.StatusConflict, "exists")
		want(t, "GET unknown user", s.do("GET", "/api/v1/users/nobody", sys.Access, nil), http.StatusNotFound, "not_found")
		want(t, "GET unknown unit", s.do("GET", "/api/v1/units/150102-nothing", sys.Access, nil), http.StatusNotFound, "not_found")
	})

	// Disabling a user refuses their live access token at once.
	off := tokens{}
	s.password["proc.officer1"] = password
	off = s.login("proc.officer1")
	want(t, "officer GET /me", s.do("GET", "/api/v1/me", off.Access, nil), http.StatusOK, "")
	r = s.do("PATCH", "/api/v1/users/proc.officer1", sys.Access, map[string]any{"disabled": true})
	want(t, "PATCH user disabled", r, http.StatusOK, "")
	if r.json(t)["disabled"] != true {
		t.Errorf("PATCH user = %s", r.body)
	}
	want(t, "disabled user's access token", s.do("GET", "/api/v1/me", off.Access, nil), http.StatusUnauthorized, "token_invalid")
	want(t, "disabled user's refresh", s.do("POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": off.Refresh}), http.StatusUnauthorized, "")
	want(t, "disabled user's login", s.do("POST", "/api/v1/auth/login", "", map[string]string{"username": "proc.officer1", "password": password}), http.StatusForbidden, "account_disabled")
	want(t, "PATCH user enabled", s.do("PATCH", "/api/v1/users/proc.officer1", sys.Access, map[string]any{"disabled": false}), http.StatusOK, "")

	// A password reset generates one when none is given, and ends sessions.
	off = s.login("proc.officer1")
	r = s.do("POST", "/api/v1/users/proc.officer1/password", sec.Access, nil)
	want(t, "reset without a body", r, http.StatusOK, "")
	newPassword, _ := r.json(t)["password"].(string)
	if newPassword == "" || newPassword == password {
		t.Fatalf("reset = %s, want a new generated password", r.body)
	}
	want(t, "access token after reset", s.do("GET", "/api/v1/me", off.Access, nil), http.StatusUnauthorized, "token_invalid")
	s.password["proc.officer1"] = newPassword
	s.login("proc.officer1")
	want(t, "reset with a chosen password", s.do("POST", "/api/v1/users/proc.officer1/password", sec.Access, map[string]string{"password": "a chosen long passphrase"}), http.StatusNoContent, "")
	want(t, "sysadmin resets", s.do("POST", "/api/v1/users/proc.officer1/password", sys.Access, nil), http.StatusForbidden, "forbidden")

	// Units: filters and disabling.
	r = s.do("GET", "/api/v1/units?region=150102&kind=court", sys.Access, nil)
	if us := r.json(t)["units"].([]any); len(us) != 1 || us[0].(map[string]any)["id"] != court {
		t.Errorf("GET /units?region=150102&kind=court = %s", r.body)
	}
	r = s.do("PATCH", "/api/v1/units/150102-procuratorate", sys.Access, map[string]any{"disabled": true})
	if r.status != http.StatusOK || r.json(t)["disabled"] != true {
		t.Errorf("PATCH unit = %d %s", r.status, r.body)
	}
	r = s.do("GET", "/api/v1/users?unit=150102-procuratorate", sys.Access, nil)
	if us := r.json(t)["users"].([]any); len(us) != 1 || us[0].(map[string]any)["username"] != "proc.officer1" {
		t.Errorf("GET /users?unit= = %s", r.body)
	}
	if strings.Contains(string(r.body), "hash") || strings.Contains(string(r.body), "argon2") {
		t.Errorf("GET /users leaks credentials: %s", r.body)
	}
	r = s.do("GET", "/api/v1/regions", off.Access, nil) // off's token was revoked by the reset
	want(t, "GET /regions with a revoked token", r, http.StatusUnauthorized, "token_invalid")
	r = s.do("GET", "/api/v1/regions", sys.Access, nil)
	if rs := r.json(t)["regions"].([]any); len(rs) != 116 {
		t.Errorf("GET /regions = %d regions, want 116", len(rs))
	}
}

func TestAuditOverHTTP(t *testing.T) {
	s := mustServer(t)
	aud, sec, sys := s.login("audit.one"), s.login("sec.admin"), s.login("sys.admin")
	r := s.do("GET", "/api/v1/audit/directory?after=0&limit=5", aud.Access, nil)
	want(t, "auditor GET /audit/directory", r, http.StatusOK, "")
	var page struct {
		Entries []struct {
			Seq        int64
			Prev, Hash string
			Detail     json.RawMessage
		}
		NextAfter int64 `json:"next_after"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil || len(page.Entries) != 5 || page.NextAfter != 5 {
		t.Fatalf("GET /audit/directory = %s", r.body)
	}
	for i, e := range page.Entries {
		if i > 0 && e.Prev != page.Entries[i-1].Hash {
			t.Errorf("entry %d prev %s, want the hash before it", e.Seq, e.Prev)
		}
		if _, err := hex.DecodeString(e.Hash); err != nil || !json.Valid(e.Detail) {
			t.Errorf("entry %d hash %q detail %s", e.Seq, e.Hash, e.Detail)
		}
	}
	r = s.do("GET", "/api/v1/audit/directory?after=5&limit=1000", aud.Access, nil)
	json.Unmarshal(r.body, &page)
	if len(page.Entries) == 0 || page.Entries[0].Seq != 6 {
		t.Errorf("second page = %s", r.body)
	}
	want(t, "secadmin GET /audit/auth", s.do("GET", "/api/v1/audit/auth", sec.Access, nil), http.StatusOK, "")
	want(t, "secadmin GET /audit/denials", s.do("GET", "/api/v1/audit/denials", sec.Access, nil), http.StatusOK, "")
	s.unchanged("refused audit reads", 3, func() {
		want(t, "secadmin GET /audit/directory", s.do("GET", "/api/v1/audit/directory", sec.Access, nil), http.StatusForbidden, "forbidden")
		want(t, "sysadmin GET /audit/auth", s.do("GET", "/api/v1/audit/auth", sys.Access, nil), http.StatusForbidden, "forbidden")
		want(t, "officer GET /audit/denials", s.do("GET", "/api/v1/audit/denials", s.login("court.officer1").Access, nil), http.StatusForbidden, "forbidden")
	})
	want(t, "unknown stream", s.do("GET", "/api/v1/audit/rooms", aud.Access, nil), http.StatusNotFound, "not_found")
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after=-1", "after=y"} {
		r := s.do("GET", "/api/v1/audit/directory?"+q, aud.Access, nil)
		want(t, "GET /audit/directory?"+q, r, http.StatusBadRequest, "invalid")
	}
}

// TestEveryRouteIsServed checks that NewHandler answers every pattern of
// Routes, so that cmd's routing and the OpenAPI test can trust the list.
func TestEveryRouteIsServed(t *testing.T) {
	s := mustServer(t)
	h := aclhttp.NewHandler(s.dir, s.auth, slog.New(slog.DiscardHandler))
	seen := map[string]bool{}
	for _, rt := range aclhttp.Routes() {
		key := rt.Method + " " + rt.Pattern
		if seen[key] {
			t.Errorf("route %s listed twice", key)
		}
		seen[key] = true
		path := strings.NewReplacer("{unit}", court, "{user}", "court.officer1", "{stream}", "directory").Replace(rt.Pattern)
		req := httptest.NewRequest(rt.Method, path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		public := slices.Contains(aclhttp.PublicRoutes(), rt)
		switch {
		case public && w.Code != http.StatusBadRequest:
			t.Errorf("%s without a body = %d %s, want 400", key, w.Code, w.Body)
		case !public && w.Code != http.StatusUnauthorized:
			t.Errorf("%s without a subject = %d %s, want 401", key, w.Code, w.Body)
		}
	}
	for _, rt := range aclhttp.PublicRoutes() {
		if !strings.HasPrefix(rt.Pattern, "/api/v1/auth/") {
			t.Errorf("public route %v is not an auth route", rt)
		}
	}
}
