package bots_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/aclhttp"
	"caseroom/acl/audit"
	"caseroom/acl/token"
	"caseroom/casework/bots"
	"caseroom/chat"
)

// server is a node with the platform and its two handlers on a loopback
// server, mounted as cmd mounts them: the gateway beside the access-token
// middleware, the rest behind it.
type server struct {
	*node
	src  *memSource
	plat *bots.Platform
	due  *bots.Due
	disp *bots.Dispatcher
	srv  *httptest.Server
}

func newServer(t *testing.T, start time.Time, opts bots.PlatformOptions) *server {
	t.Helper()
	d, _ := mustDomain(t)
	n := openNode(t, sqliteBackend(t), &testClock{t: start})
	n.seed()
	regions, err := n.acl.Regions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := &server{node: n, src: newSource(d)}
	s.due = bots.NewDue(s.src, n.guard, regions, n.clock.Now)
	opts.AllowHTTP = true // the test's webhook receivers are loopback http servers
	opts.CheckBot = n.auth.CheckSession
	log := slog.New(slog.DiscardHandler)
	s.plat = bots.NewPlatform(n.store, n.acl, n.guard, n.chat, n.reg, s.due, n.clock.Now, log, opts)
	s.disp = bots.NewDispatcher(s.plat, n.clock.Now, log, bots.DispatcherOptions{MaxAttempts: 4})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/bot/", bots.NewBotHandler(s.plat, n.clock.Now, log))
	mux.Handle("/api/v1/", n.auth.Middleware(bots.NewHandler(s.plat, s.due, n.clock.Now, log), aclhttp.AuthError(log)))
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// login returns an access token of user.
func (s *server) login(t *testing.T, user string) string {
	t.Helper()
	tk, err := s.auth.Login(context.Background(), user, s.pw[user], token.ClientMeta{IP: "127.0.0.1"})
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return tk.Access
}

// call sends a request with bearer and decodes the answer into out (if not
// nil), returning the status and the error envelope's code and rule.
func (s *server) call(t *testing.T, method, path, bearer string, body, out any) (status int, code, rule string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.srv.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Rule string }
		}
		json.Unmarshal(b, &e)
		return res.StatusCode, e.Error.Code, e.Error.Rule
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return res.StatusCode, "", ""
}

// botWithToken creates bot name at unit as the system administrator, makes it
// a member of rooms, and issues it a token of scope.
func (s *server) botWithToken(t *testing.T, name string, unit acl.UnitID, rooms []chat.RoomID, scope bots.Scope) (string, bots.TokenView) {
	t.Helper()
	admin := s.login(t, "sys.admin")
	if st, code, _ := s.call(t, "POST", "/api/v1/bots", admin, map[string]any{"username": name, "name": "摘要机器人", "unit": unit}, nil); st != http.StatusCreated {
		t.Fatalf("create bot: %d %s", st, code)
	}
	owner := acl.WithSubject(context.Background(), acl.Subject{User: "committee.sup1", Unit: committee, UnitKind: acl.Committee, Region: county, Roles: []acl.Role{acl.Supervisor}})
	for _, r := range rooms {
		if _, err := s.chat.AddMembers(owner, r, []acl.UserID{acl.UserID(name)}, chat.Member); err != nil {
			t.Fatalf("add bot to %s: %v", r, err)
		}
	}
	var tv bots.TokenView
	if st, code, _ := s.call(t, "POST", "/api/v1/bots/"+name+"/tokens", admin, map[string]any{"name": "main", "scope": scope}, &tv); st != http.StatusCreated || !strings.HasPrefix(tv.Token, "crb_") {
		t.Fatalf("issue token: %d %s %+v", st, code, tv)
	}
	return tv.Token, tv
}

// snapshot is the state a refused request must not change: every room's log
// and the bot tokens.
func (s *server) snapshot(t *testing.T, rooms ...chat.RoomID) string {
	t.Helper()
	var b strings.Builder
	for _, r := range rooms {
		for _, m := range s.log(r) {
			fmt.Fprintf(&b, "%s/%d %s %s\n", m.Room, m.Seq, m.Kind, m.Body)
		}
	}
	return b.String()
}

// A bot token used outside its scope is refused naming the rule, audited, and
// changes nothing; inside its scope the ACL still decides (a room the bot is
// not a member of is not found); a revoked token, a disabled bot and a
// forged token are refused; a bot over its rate is slowed down.
func TestBotScopeRefusals(t *testing.T) {
	start := bj(2026, time.March, 2, 9, 0)
	s := newServer(t, start, bots.PlatformOptions{Rate: 1, Burst: 3})
	caseA, caseB, caseC := s.openCase("scope-a"), s.openCase("scope-b"), s.openCase("scope-c")
	courtRoom := s.unitRoom(court)
	// The bot is a member of A, B and its unit's room; its token names A, C
	// and the unit room, may post text, may not read.
	tok, tv := s.botWithToken(t, "digest-bot", court, []chat.RoomID{caseA, caseB}, bots.Scope{
		Rooms: []chat.RoomID{caseA, caseC, courtRoom}, Post: []chat.Kind{chat.Text}, Due: []acl.UnitID{court}})
	if _, err := s.chat.EnsureUnitRoom(context.Background(), acl.Unit{ID: court, Kind: "court", Region: county, Name: "新城区人民法院"}, acl.ConsoleSubject()); err != nil {
		t.Fatal(err)
	}
	var me bots.MeView
	if st, _, _ := s.call(t, "GET", "/api/v1/bot/me", tok, nil, &me); st != 200 || me.Bot != "digest-bot" || me.Unit != court || me.Token != tv.ID {
		t.Fatalf("me: %d %+v", st, me)
	}
	var posted chat.MessageView
	if st, code, _ := s.call(t, "POST", "/api/v1/bot/rooms/"+string(courtRoom)+"/messages", tok, map[string]any{"body": "今日期限摘要", "client_id": "d1"}, &posted); st != http.StatusCreated || posted.Sender != "digest-bot" {
		t.Fatalf("post in scope: %d %s %+v", st, code, posted)
	}
	if st, _, _ := s.call(t, "POST", "/api/v1/bot/rooms/"+string(courtRoom)+"/messages", tok, map[string]any{"body": "今日期限摘要", "client_id": "d1"}, nil); st != http.StatusOK {
		t.Errorf("repeated client id: %d, want 200 with the first entry", st)
	}
	s.clock.Advance(time.Minute) // refill the bucket

	before := s.snapshot(t, caseA, caseB, caseC, courtRoom)
	denials := func() []audit.Entry {
		es, err := s.acl.AuditEntries(context.Background(), audit.StreamDenials, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	nDenials := len(denials())
	for _, tc := range []struct {
		what, method, path string
		body               any
		status             int
		rule               string
	}{
		{"post in a room outside the scope (the bot is a member)", "POST", "/api/v1/bot/rooms/" + string(caseB) + "/messages", map[string]any{"body": "hi"}, 403, bots.RuleScopeRoom},
		{"post a kind outside the scope", "POST", "/api/v1/bot/rooms/" + string(caseA) + "/messages", map[string]any{"kind": "file", "payload": map[string]any{"sha256": strings.Repeat("a", 64), "name": "x", "size": 1, "type": "text/plain"}}, 403, bots.RuleScopeKind},
		{"post a deadline reminder", "POST", "/api/v1/bot/rooms/" + string(caseA) + "/messages", map[string]any{"kind": "case.reminder", "payload": map[string]any{}}, 403, bots.RuleScopeKind},
		{"read with a token that may not read", "GET", "/api/v1/bot/rooms/" + string(caseA) + "/messages", nil, 403, bots.RuleScopeRead},
		{"read a room outside the scope", "GET", "/api/v1/bot/rooms/" + string(caseB) + "/messages", nil, 403, bots.RuleScopeRoom},
		{"another unit's due list", "GET", "/api/v1/bot/due?unit=" + string(police), nil, 403, bots.RuleScopeDue},
	} {
		s.clock.Advance(2 * time.Second) // the bot's rate, 1 a second, counts refusals too
		st, code, rule := s.call(t, tc.method, tc.path, tok, tc.body, nil)
		if st != tc.status || rule != tc.rule || code != "forbidden" {
			t.Errorf("%s: %d %s %s; want %d forbidden %s", tc.what, st, code, rule, tc.status, tc.rule)
		}
	}
	es := denials()
	if len(es) != nDenials+6 {
		t.Errorf("%d denials audited, want 6", len(es)-nDenials)
	}
	for _, e := range es[nDenials:] {
		if e.Actor != "digest-bot" || !strings.Contains(e.Detail, `"rule":"bot-scope-`) || !strings.Contains(e.Detail, tv.ID) {
			t.Errorf("denial record %+v", e.Record)
		}
	}
	// In scope, but the bot is no member of C: chat says not found (invariant 6).
	s.clock.Advance(2 * time.Second)
	if st, code, _ := s.call(t, "POST", "/api/v1/bot/rooms/"+string(caseC)+"/messages", tok, map[string]any{"body": "hi"}, nil); st != 404 || code != "not_found" {
		t.Errorf("post in a scoped room the bot is not in: %d %s, want 404", st, code)
	}
	if after := s.snapshot(t, caseA, caseB, caseC, courtRoom); after != before {
		t.Errorf("refused requests changed the rooms:\n%s\nwas\n%s", after, before)
	}

	// Rate: a burst of 3, then one a second.
	s.clock.Advance(time.Minute)
	var codes []int
	for i := range 4 {
		st, _, _ := s.call(t, "POST", "/api/v1/bot/rooms/"+string(caseA)+"/messages", tok, map[string]any{"body": "burst", "client_id": "b" + string(rune('0'+i))}, nil)
		codes = append(codes, st)
	}
	if codes[0] != 201 || codes[2] != 201 || codes[3] != http.StatusTooManyRequests {
		t.Errorf("burst statuses %v, want three 201s then 429", codes)
	}
	s.clock.Advance(time.Second)
	if st, _, _ := s.call(t, "POST", "/api/v1/bot/rooms/"+string(caseA)+"/messages", tok, map[string]any{"body": "later"}, nil); st != 201 {
		t.Errorf("after a second: %d", st)
	}

	// Forged, revoked, and a disabled bot's tokens.
	s.clock.Advance(time.Minute)
	for _, bad := range []string{"crb_" + tv.ID + ".wrongsecret", "crb_nope.x", "garbage", tok + "x"} {
		if st, code, _ := s.call(t, "GET", "/api/v1/bot/me", bad, nil, nil); st != 401 || code != "token_invalid" {
			t.Errorf("token %q: %d %s, want 401 token_invalid", bad, st, code)
		}
	}
	admin := s.login(t, "sys.admin")
	tok2, tv2 := func() (string, bots.TokenView) {
		var v bots.TokenView
		s.call(t, "POST", "/api/v1/bots/digest-bot/tokens", admin, map[string]any{"name": "second", "scope": bots.Scope{Rooms: []chat.RoomID{caseA}, Read: true}}, &v)
		return v.Token, v
	}()
	if st, _, _ := s.call(t, "GET", "/api/v1/bot/rooms/"+string(caseA)+"/messages", tok2, nil, nil); st != 200 {
		t.Errorf("second token reads: %d", st)
	}
	if st, _, _ := s.call(t, "DELETE", "/api/v1/bots/digest-bot/tokens/"+tv2.ID, admin, nil, nil); st != 204 {
		t.Errorf("revoke: %d", st)
	}
	if st, _, _ := s.call(t, "GET", "/api/v1/bot/rooms/"+string(caseA)+"/messages", tok2, nil, nil); st != 401 {
		t.Errorf("revoked token: %d, want 401", st)
	}
	if st, _, _ := s.call(t, "GET", "/api/v1/bot/me", tok, nil, nil); st != 200 {
		t.Errorf("the first token after revoking the second: %d", st)
	}
	console := acl.WithSubject(context.Background(), acl.ConsoleSubject())
	if err := s.dir.DisableUser(console, "digest-bot", true); err != nil {
		t.Fatal(err)
	}
	s.auth.ForgetUser("digest-bot")
	if st, _, _ := s.call(t, "GET", "/api/v1/bot/me", tok, nil, nil); st != 401 {
		t.Errorf("a disabled bot's token: %d, want 401", st)
	}
	// An access token is not a bot token, and a bot token is not an access token.
	if st, _, _ := s.call(t, "GET", "/api/v1/bot/me", admin, nil, nil); st != 401 {
		t.Errorf("an access token at the gateway: %d", st)
	}
	if st, _, _ := s.call(t, "GET", "/api/v1/due", tok, nil, nil); st != 401 {
		t.Errorf("a bot token at the users' API: %d", st)
	}
}

// Only a system administrator manages bots; tokens and webhooks are checked
// against the bot's unit and scope.
func TestBotAdministration(t *testing.T) {
	s := newServer(t, bj(2026, time.March, 2, 9, 0), bots.PlatformOptions{})
	room := s.openCase("admin")
	officer := s.login(t, "police.officer1")
	if st, _, rule := s.call(t, "POST", "/api/v1/bots", officer, map[string]any{"username": "rogue-bot", "name": "x", "unit": police}, nil); st != 403 || rule != "sysadmin-directory" {
		t.Errorf("an officer creating a bot: %d %s", st, rule)
	}
	admin := s.login(t, "sys.admin")
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"username": "x", "name": "x", "unit": police}, "username"},
		{map[string]any{"username": "console", "name": "x", "unit": police}, "username"},
		{map[string]any{"username": "ok-bot", "name": "", "unit": police}, "name"},
		{map[string]any{"username": "ok-bot", "name": "x", "unit": "nowhere"}, "unit"},
	} {
		if st, code, _ := s.call(t, "POST", "/api/v1/bots", admin, tc.body, nil); st != 400 || code != "invalid" {
			t.Errorf("create bot %v: %d %s, want 400 invalid", tc.body, st, code)
		}
	}
	tok, tv := s.botWithToken(t, "hook-bot", police, []chat.RoomID{room}, bots.Scope{Rooms: []chat.RoomID{room}, Read: true})
	_ = tok
	if st, _, _ := s.call(t, "POST", "/api/v1/bots", admin, map[string]any{"username": "hook-bot", "name": "x", "unit": police}, nil); st != 409 {
		t.Errorf("a taken username: %d, want 409", st)
	}
	for _, tc := range []struct {
		what string
		body map[string]any
	}{
		{"a scope of another unit's due list", map[string]any{"name": "t", "scope": map[string]any{"due": []string{string(court)}}}},
		{"a kind members do not post", map[string]any{"name": "t", "scope": map[string]any{"rooms": []string{string(room)}, "post": []string{"case.overdue"}}}},
		{"an expiry in the past", map[string]any{"name": "t", "scope": map[string]any{}, "expires_at": bj(2026, time.March, 1, 0, 0)}},
	} {
		if st, code, _ := s.call(t, "POST", "/api/v1/bots/hook-bot/tokens", admin, tc.body, nil); st != 400 || code != "invalid" {
			t.Errorf("%s: %d %s, want 400 invalid", tc.what, st, code)
		}
	}
	for _, tc := range []struct {
		what string
		body map[string]any
	}{
		{"a room outside the token's scope", map[string]any{"token": tv.ID, "url": "http://127.0.0.1:9/h", "kinds": []string{"text"}, "rooms": []string{"elsewhere"}}},
		{"an unknown kind", map[string]any{"token": tv.ID, "url": "http://127.0.0.1:9/h", "kinds": []string{"nope"}}},
		{"no kinds", map[string]any{"token": tv.ID, "url": "http://127.0.0.1:9/h"}},
		{"a URL with credentials", map[string]any{"token": tv.ID, "url": "http://u:p@127.0.0.1:9/h", "kinds": []string{"text"}}},
		{"a URL that is not http", map[string]any{"token": tv.ID, "url": "file:///etc/passwd", "kinds": []string{"text"}}},
		{"another bot's token", map[string]any{"token": "tnope", "url": "http://127.0.0.1:9/h", "kinds": []string{"text"}}},
	} {
		if st, code, _ := s.call(t, "POST", "/api/v1/bots/hook-bot/webhooks", admin, tc.body, nil); st != 400 || code != "invalid" {
			t.Errorf("webhook with %s: %d %s, want 400 invalid", tc.what, st, code)
		}
	}
	var list struct{ Tokens []bots.TokenView }
	if st, _, _ := s.call(t, "GET", "/api/v1/bots/hook-bot/tokens", admin, nil, &list); st != 200 || len(list.Tokens) != 1 || list.Tokens[0].Token != "" {
		t.Errorf("tokens: %d %+v", st, list)
	}
	if st, _, _ := s.call(t, "GET", "/api/v1/bots/police.officer1/tokens", admin, nil, nil); st != 404 {
		t.Errorf("tokens of a user who is not a bot: %d, want 404", st)
	}
}

// receiver is a loopback webhook receiver that checks each request's
// signature and fails the first failures requests.
type receiver struct {
	mu       sync.Mutex
	secret   string
	failures int
	got      []received
}

type received struct {
	status   int
	sigOK    bool
	delivery string
	event    bots.Event
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var ev bots.Event
	json.Unmarshal(b, &ev)
	rec := received{sigOK: bots.VerifySignature(rc.secret, b, r.Header.Get(bots.SignatureHeader)), delivery: r.Header.Get(bots.DeliveryHeader), event: ev, status: http.StatusNoContent}
	if len(rc.got) < rc.failures {
		rec.status = http.StatusInternalServerError
	}
	rc.got = append(rc.got, rec)
	w.WriteHeader(rec.status)
}

func (rc *receiver) calls() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// Webhooks send the chosen kinds of the scoped rooms, signed with
// HMAC-SHA256, and retry failures with exponential backoff on the test's
// clock: 30 s, then 60 s; a delivery that keeps failing is given up after the
// last attempt.
func TestWebhookSignatureAndRetries(t *testing.T) {
	start := bj(2026, time.March, 2, 9, 0)
	s := newServer(t, start, bots.PlatformOptions{})
	room := s.openCase("hooks")
	s.src.add(t, clockDef{Room: room, Clock: "CR-DET-01.family", Suspect: "p1", Start: start, Detained: true, Holder: police})
	_, tv := s.botWithToken(t, "hook-bot", police, []chat.RoomID{room}, bots.Scope{Rooms: []chat.RoomID{room}, Read: true})
	rc := &receiver{failures: 2}
	hooks := httptest.NewServer(rc)
	defer hooks.Close()
	admin := s.login(t, "sys.admin")
	var wv bots.WebhookView
	if st, code, _ := s.call(t, "POST", "/api/v1/bots/hook-bot/webhooks", admin, map[string]any{"token": tv.ID, "url": hooks.URL + "/caseroom",
		"kinds": []string{"text", "case.reminder", "case.overdue"}}, &wv); st != 201 || !strings.HasPrefix(wv.Secret, "whsec_") {
		t.Fatalf("add webhook: %d %s %+v", st, code, wv)
	}
	rc.secret = wv.Secret
	// Entries from before the webhook are not sent.
	if n, err := s.disp.Poll(context.Background()); err != nil || n != 0 {
		t.Fatalf("first poll: %d, %v", n, err)
	}
	officer := acl.WithSubject(context.Background(), acl.Subject{User: "police.officer1", Unit: police, UnitKind: "police", Region: county, Roles: []acl.Role{acl.Officer}})
	if _, _, err := s.chat.Post(officer, room, chat.Post{Body: "嫌疑人已送看守所"}); err != nil {
		t.Fatal(err)
	}
	// The deadline bot's reminder, due at 23:00, is a kind the webhook chose.
	s.clock.Set(bj(2026, time.March, 2, 23, 0))
	mustTick(t, s.scheduler(s.src, bots.SchedulerOptions{}))
	if n, err := s.disp.Poll(context.Background()); err != nil || n != 2 {
		t.Fatalf("poll: %d, %v; want the text and the reminder", n, err)
	}
	deliver := func() int {
		t.Helper()
		n, err := s.disp.Deliver(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	t0 := s.clock.Now()
	if n := deliver(); n != 0 { // both answered 500
		t.Errorf("first round delivered %d", n)
	}
	s.clock.Set(t0.Add(29 * time.Second))
	if n := deliver(); n != 0 || len(rc.calls()) != 2 {
		t.Errorf("before the backoff ran out: %d delivered, %d calls", n, len(rc.calls()))
	}
	s.clock.Set(t0.Add(30 * time.Second))
	if n := deliver(); n != 2 || len(rc.calls()) != 4 {
		t.Errorf("after 30 s: %d delivered, %d calls; want both", n, len(rc.calls()))
	}
	calls := rc.calls()
	for i, c := range calls {
		if !c.sigOK {
			t.Errorf("call %d: signature does not verify", i)
		}
	}
	if calls[0].delivery != calls[2].delivery && calls[0].delivery != calls[3].delivery {
		t.Errorf("a retry changed the delivery id: %q, %q, %q", calls[0].delivery, calls[2].delivery, calls[3].delivery)
	}
	kinds := map[chat.Kind]bool{}
	for _, c := range calls[2:] {
		kinds[c.event.Kind] = true
		if c.event.Attempt != 2 || c.event.Room != room || c.event.Bot != "hook-bot" || c.event.Message.Seq != c.event.Seq {
			t.Errorf("event %+v", c.event)
		}
	}
	if !kinds[chat.Text] || !kinds[bots.KindReminder] {
		t.Errorf("delivered kinds %v", kinds)
	}
	// A body changed on the way fails the check.
	b, _ := json.Marshal(calls[2].event)
	if bots.VerifySignature(wv.Secret, append(b, ' '), bots.Sign(wv.Secret, b)) {
		t.Error("a changed body verified")
	}

	// A receiver that keeps failing: retried after 30 s, 60 s, 120 s, then given up.
	rc.mu.Lock()
	rc.failures = 1 << 30
	rc.mu.Unlock()
	if _, _, err := s.chat.Post(officer, room, chat.Post{Body: "第二条"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.disp.Poll(context.Background()); n != 1 {
		t.Fatalf("poll: %d", n)
	}
	at := s.clock.Now()
	var waits []time.Duration
	for _, wait := range []time.Duration{0, 30 * time.Second, 60 * time.Second, 120 * time.Second, 240 * time.Second} {
		at = at.Add(wait)
		s.clock.Set(at)
		before := len(rc.calls())
		deliver()
		if len(rc.calls()) > before {
			waits = append(waits, wait)
		}
	}
	if len(waits) != 4 {
		t.Errorf("attempts after waits %v; want 4 attempts (0, 30 s, 60 s, 120 s) and then none", waits)
	}
	admin = s.login(t, "sys.admin") // access tokens live 10 minutes; the test's clock has moved on
	var dl struct{ Deliveries []bots.DeliveryView }
	s.call(t, "GET", "/api/v1/bots/hook-bot/webhooks/"+wv.ID+"/deliveries", admin, nil, &dl)
	if len(dl.Deliveries) != 3 || dl.Deliveries[2].State != bots.DeliveryFailed || dl.Deliveries[2].Attempts != 4 ||
		dl.Deliveries[0].State != bots.DeliveryDelivered || dl.Deliveries[0].Attempts != 2 || dl.Deliveries[2].LastError != "HTTP 500" {
		t.Errorf("deliveries %+v", dl.Deliveries)
	}

	// Deleting the webhook stops it.
	if st, _, _ := s.call(t, "DELETE", "/api/v1/bots/hook-bot/webhooks/"+wv.ID, admin, nil, nil); st != 204 {
		t.Errorf("delete webhook: %d", st)
	}
	s.chat.Post(officer, room, chat.Post{Body: "第三条"})
	if n, _ := s.disp.Poll(context.Background()); n != 0 {
		t.Errorf("a deleted webhook queued %d", n)
	}
}

// Two dispatchers polling the same webhook at once queue each entry once.
func TestWebhookFeedsQueueOnce(t *testing.T) {
	s := newServer(t, bj(2026, time.March, 2, 9, 0), bots.PlatformOptions{})
	room := s.openCase("feeds")
	_, tv := s.botWithToken(t, "hook-bot", police, []chat.RoomID{room}, bots.Scope{Rooms: []chat.RoomID{room}, Read: true})
	admin := s.login(t, "sys.admin")
	var wv bots.WebhookView
	s.call(t, "POST", "/api/v1/bots/hook-bot/webhooks", admin, map[string]any{"token": tv.ID, "url": "http://127.0.0.1:9/h", "kinds": []string{"text"}}, &wv)
	officer := acl.WithSubject(context.Background(), acl.Subject{User: "police.officer1", Unit: police, UnitKind: "police", Region: county, Roles: []acl.Role{acl.Officer}})
	for range 30 {
		s.chat.Post(officer, room, chat.Post{Body: "x"})
	}
	other := bots.NewDispatcher(s.plat, s.clock.Now, nil, bots.DispatcherOptions{Batch: 7})
	var wg sync.WaitGroup
	for _, d := range []*bots.Dispatcher{s.disp, other, s.disp} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := d.Poll(context.Background()); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	ds, _ := s.store.Deliveries(context.Background(), wv.ID)
	seqs := map[chat.Seq]bool{}
	for _, d := range ds {
		if seqs[d.Seq] {
			t.Errorf("seq %d queued twice", d.Seq)
		}
		seqs[d.Seq] = true
	}
	if len(ds) != 30 {
		t.Errorf("%d deliveries queued, want 30", len(ds))
	}
}
