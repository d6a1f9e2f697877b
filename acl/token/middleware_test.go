package token

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
)

func TestAuthenticateReadsBearerHeader(t *testing.T) {
	e := mustEnv(t)
	tk := e.mustLogin(nil, "zhangsan", zhangPassword)
	for _, tc := range []struct {
		header string
		want   error // nil: authenticated
	}{
		{"", acl.ErrUnauthenticated},
		{"Bearer", acl.ErrUnauthenticated},
		{"Bearer ", acl.ErrUnauthenticated},
		{"Basic " + tk.Access, acl.ErrUnauthenticated},
		{tk.Access, acl.ErrUnauthenticated},
		{"Bearer " + tk.Access, nil},
		{"bearer " + tk.Access, nil},
		{"Bearer  " + tk.Access + " ", nil},
		{"Bearer " + tk.Refresh, acl.ErrTokenInvalid},
		{"Bearer " + tk.Access + "x", acl.ErrTokenInvalid},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		s, err := e.auth.Authenticate(r)
		if tc.want == nil && (err != nil || s.User != zhangID) {
			t.Errorf("Authenticate(%.30q…) = %+v, %v; want zhang", tc.header, s, err)
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("Authenticate(%.30q…) = %v, want %v", tc.header, err, tc.want)
		}
	}
}

func TestMiddlewareDefaultErrors(t *testing.T) {
	e := mustEnv(t)
	tk := e.mustLogin(nil, "zhangsan", zhangPassword)
	served := 0
	h := e.auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, ok := acl.SubjectFrom(r.Context()); !ok || s.User != zhangID {
			t.Errorf("handler subject %+v, %v", s, ok)
		}
		served++
	}), nil)
	do := func(auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/api/rooms", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do("Bearer " + tk.Access); w.Code != http.StatusOK || served != 1 {
		t.Errorf("good token: status %d, served %d", w.Code, served)
	}
	for _, tc := range []struct{ auth, challenge string }{
		{"", `Bearer realm="caseroom"`},
		{"Bearer nonsense", `error="invalid_token"`},
	} {
		w := do(tc.auth)
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), tc.challenge) {
			t.Errorf("Authorization %q: status %d, WWW-Authenticate %q; want 401 with %s", tc.auth, w.Code, w.Header().Get("WWW-Authenticate"), tc.challenge)
		}
	}
	e.clock.Advance(10*time.Minute + DefaultLeeway)
	if w := do("Bearer " + tk.Access); w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "expired") {
		t.Errorf("expired token: status %d, WWW-Authenticate %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if served != 1 {
		t.Errorf("handler served %d requests, want only the good one", served)
	}
}

func TestVerifyAccessExpiresAndRevokes(t *testing.T) {
	e := mustEnv(t)
	tk := e.mustLogin(nil, "zhangsan", zhangPassword)
	if s, err := e.auth.VerifyAccess(e.ctx, tk.Access); err != nil || s.Session != tk.Subject.Session {
		t.Fatalf("VerifyAccess = %+v, %v", s, err)
	}
	e.clock.Advance(10*time.Minute + DefaultLeeway)
	if _, err := e.auth.VerifyAccess(e.ctx, tk.Access); !errors.Is(err, acl.ErrTokenExpired) {
		t.Errorf("VerifyAccess after 10m: %v, want acl.ErrTokenExpired", err)
	}
	// The session outlives its access token: refresh gives a working one.
	next, err := e.refresh(nil, tk.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.auth.Logout(e.ctx, next.Refresh); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth.VerifyAccess(e.ctx, next.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("VerifyAccess after logout: %v, want acl.ErrTokenInvalid", err)
	}
}

// Another node caches "active" for at most MaxSessionCacheTTL: it sees a logout
// made elsewhere within that window, and the node that made it at once.
func TestOtherNodeSeesRevocationWithinTwoSeconds(t *testing.T) {
	e := mustEnv(t)
	nodeA, nodeB := e.auth, e.newNode()
	tk := e.mustLogin(nodeA, "zhangsan", zhangPassword)
	for _, n := range []*Auth{nodeA, nodeB} {
		if _, err := e.request(n, tk.Access); err != nil {
			t.Fatal(err)
		}
	}
	if err := nodeA.Logout(acl.WithSubject(e.ctx, tk.Subject), tk.Subject.Session); err != nil {
		t.Fatal(err)
	}
	if _, err := e.request(nodeA, tk.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("node A after its own logout: %v, want acl.ErrTokenInvalid", err)
	}
	e.clock.Advance(MaxSessionCacheTTL - time.Millisecond)
	if _, err := e.request(nodeB, tk.Access); err != nil {
		t.Errorf("node B within the window still accepts (documented): %v", err)
	}
	e.clock.Advance(time.Millisecond)
	if _, err := e.request(nodeB, tk.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("node B %v after the logout: %v, want acl.ErrTokenInvalid", MaxSessionCacheTTL, err)
	}

	// A node without a cache reads the store every time.
	nodeC := NewAuth(e.store, e.issuer, AuthConfig{PasswordParams: fastParams, SessionCacheTTL: -1}, e.clock.Now)
	tk2 := e.mustLogin(nodeA, "zhangsan", zhangPassword)
	if _, err := e.request(nodeC, tk2.Access); err != nil {
		t.Fatal(err)
	}
	if err := nodeA.Logout(e.ctx, tk2.Refresh); err != nil {
		t.Fatal(err)
	}
	if _, err := e.request(nodeC, tk2.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("uncached node after a logout elsewhere: %v, want acl.ErrTokenInvalid", err)
	}
}

// A reused refresh token presented to one node revokes the session for the
// others within the window too.
func TestReuseOnOneNodeRevokesEverywhere(t *testing.T) {
	e := mustEnv(t)
	nodeA, nodeB := e.auth, e.newNode()
	tk := e.mustLogin(nodeA, "zhangsan", zhangPassword)
	next, err := e.refresh(nodeB, tk.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.request(nodeB, next.Access); err != nil {
		t.Fatal(err)
	}
	if _, err := e.refresh(nodeA, tk.Refresh); !errors.Is(err, acl.ErrTokenReused) {
		t.Fatalf("reuse on node A: %v", err)
	}
	if _, err := e.request(nodeA, next.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("node A at once: %v, want acl.ErrTokenInvalid", err)
	}
	e.clock.Advance(MaxSessionCacheTTL)
	if _, err := e.request(nodeB, next.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("node B after the window: %v, want acl.ErrTokenInvalid", err)
	}
}

// Bot tokens carry no session; the check is that the bot is still enabled.
func TestBotAccessTokens(t *testing.T) {
	e := mustEnv(t)
	bot := acl.Subject{User: botID, Name: "期限提醒", Unit: unitID, UnitKind: "procuratorate", Region: "150102", Bot: true}
	tok, _, err := e.issuer.Issue(bot, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.secret(tok)
	if s, err := e.request(nil, tok); err != nil || !s.Bot || s.User != botID {
		t.Fatalf("bot token: %+v, %v", s, err)
	}
	if err := e.store.SetUserDisabled(e.ctx, botID, true, e.clock.Now(), audit.Record{Stream: audit.StreamDirectory, At: t0, Action: "user.disable", Outcome: audit.OK}); err != nil {
		t.Fatal(err)
	}
	e.auth.ForgetUser(botID)
	if _, err := e.request(nil, tok); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("disabled bot's token: %v, want acl.ErrTokenInvalid", err)
	}
	// A "bot" token for a user who is not a bot, or does not exist, is refused.
	for _, id := range []acl.UserID{zhangID, "bot-ghost"} {
		s := bot
		s.User = id
		tok, _, _ := e.issuer.Issue(s, e.clock.Now())
		if _, err := e.request(nil, tok); !errors.Is(err, acl.ErrTokenInvalid) {
			t.Errorf("bot token for %s: %v, want acl.ErrTokenInvalid", id, err)
		}
	}
}

// Requests and revocations at once: run with -race. Once ForgetUser has
// returned, no request may be let through.
func TestConcurrentRequestsAndRevocation(t *testing.T) {
	e := mustEnv(t)
	tks := make([]Tokens, 4)
	for i := range tks {
		tks[i] = e.mustLogin(nil, "zhangsan", zhangPassword)
	}
	var wg, started sync.WaitGroup
	stop := make(chan struct{})
	for i := range 8 {
		started.Add(1)
		wg.Go(func() {
			e.auth.VerifyAccess(e.ctx, tks[i%len(tks)].Access)
			started.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				e.auth.VerifyAccess(e.ctx, tks[i%len(tks)].Access)
			}
		})
	}
	started.Wait() // the cache holds the sessions as active
	if err := e.store.SetPassword(e.ctx, zhangID, mustHash(t, "yet another password"), e.clock.Now(),
		audit.Record{Stream: audit.StreamDirectory, At: t0, Action: "user.password", Outcome: audit.OK}); err != nil {
		t.Fatal(err)
	}
	e.auth.ForgetUser(zhangID)
	for _, tk := range tks {
		if _, err := e.auth.VerifyAccess(e.ctx, tk.Access); !errors.Is(err, acl.ErrTokenInvalid) {
			t.Errorf("VerifyAccess after ForgetUser: %v, want acl.ErrTokenInvalid", err)
		}
	}
	close(stop)
	wg.Wait()
	for _, tk := range tks {
		if _, err := e.auth.VerifyAccess(e.ctx, tk.Access); !errors.Is(err, acl.ErrTokenInvalid) {
			t.Errorf("VerifyAccess after the readers stopped: %v, want acl.ErrTokenInvalid", err)
		}
	}
}

// With a live revocation feed a node trusts its cached answer for
// FeedSessionCacheTTL, and the feed's word ends it at once; when the feed stops
// the window is MaxSessionCacheTTL again, and when it starts every cached
// answer is dropped (revocations meanwhile were not announced).
func TestFeedLengthensTheCacheAndEndsIt(t *testing.T) {
	e := mustEnv(t)
	nodeA, nodeB := e.auth, e.newNode()
	nodeB.FeedLive(true)
	tk := e.mustLogin(nodeA, "zhangsan", zhangPassword)
	if _, err := e.request(nodeB, tk.Access); err != nil {
		t.Fatal(err)
	}
	if err := nodeA.Logout(acl.WithSubject(e.ctx, tk.Subject), tk.Subject.Session); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(FeedSessionCacheTTL - time.Second)
	if _, err := e.request(nodeB, tk.Access); err != nil {
		t.Errorf("node B with a live feed, before the feed's word: %v, want the cached answer", err)
	}
	nodeB.ForgetSession(tk.Subject.Session) // the feed's word
	if _, err := e.request(nodeB, tk.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("node B after the feed announced the logout: %v, want acl.ErrTokenInvalid", err)
	}

	// The feed stops: answers older than MaxSessionCacheTTL are stale.
	tk2 := e.mustLogin(nodeA, "zhangsan", zhangPassword)
	if _, err := e.request(nodeB, tk2.Access); err != nil {
		t.Fatal(err)
	}
	if err := nodeA.Logout(acl.WithSubject(e.ctx, tk2.Subject), tk2.Subject.Session); err != nil {
		t.Fatal(err)
	}
	nodeB.FeedLive(false)
	e.clock.Advance(MaxSessionCacheTTL)
	if _, err := e.request(nodeB, tk2.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("node B %v after a logout with the feed stopped: %v, want acl.ErrTokenInvalid", MaxSessionCacheTTL, err)
	}

	// The feed starts again: what was cached before is read again.
	tk3 := e.mustLogin(nodeA, "zhangsan", zhangPassword)
	if _, err := e.request(nodeB, tk3.Access); err != nil {
		t.Fatal(err)
	}
	if err := nodeA.Logout(acl.WithSubject(e.ctx, tk3.Subject), tk3.Subject.Session); err != nil {
		t.Fatal(err)
	}
	nodeB.FeedLive(true)
	if _, err := e.request(nodeB, tk3.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("node B when its feed started, after a logout it was not told of: %v, want acl.ErrTokenInvalid", err)
	}
}
