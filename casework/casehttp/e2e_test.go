package casehttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/aclhttp"
	"caseroom/acl/audit"
	"caseroom/acl/httpjson"
	"caseroom/acl/pgdb/pgdbtest"
	aclpostgres "caseroom/acl/postgres"
	aclsqlite "caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/acl/token"
	"caseroom/casework"
	"caseroom/casework/casehttp"
	cwpostgres "caseroom/casework/postgres"
	cwsqlite "caseroom/casework/sqlite"
	"caseroom/chat"
	"caseroom/chat/chatclient"
	"caseroom/chat/chathttp"
	"caseroom/chat/chatws"
	"caseroom/chat/membroker"
	chatpostgres "caseroom/chat/postgres"
	chatsqlite "caseroom/chat/sqlite"
	"caseroom/configs"
)

// server is caseroom as cmd/caseroomd wires it — auth, the rooms API, the
// socket and the cases API behind the token middleware — on real stores, the
// real auth, the shipped policy and procedures, and the demo directory.
type server struct {
	t     *testing.T
	url   string
	acl   acl.Store
	cases casework.Store
	svc   *casework.Service
	pass  map[string]string
}

type migrator interface{ Migrate(context.Context) error }

func mustServer(t *testing.T, backend string) *server {
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
		ws interface {
			casework.Store
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
		as, cs, ws = aclsqlite.New(db), chatsqlite.New(db), cwsqlite.New(db)
	case "postgres":
		pool := pgdbtest.MustFreshSchema(t)
		as, cs, ws = aclpostgres.New(pool), chatpostgres.New(pool), cwpostgres.New(pool)
	}
	for _, m := range []migrator{as, cs, ws} {
		if err := m.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	kinds, err := acl.LoadUnitKinds(configs.FS, "unit-kinds.json")
	if err != nil {
		t.Fatal(err)
	}
	policy, err := acl.LoadPolicy(configs.FS, "policy.json", acl.KindIDs(kinds))
	if err != nil {
		t.Fatal(err)
	}
	domain, err := casework.Load(configs.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := token.LoadIssuer(ctx, as, token.IssuerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	auth := token.NewAuth(as, issuer, token.AuthConfig{PasswordParams: token.PasswordParams{Memory: 64, Time: 1, Threads: 1}}, time.Now)
	guard := acl.NewGuard(policy, acl.NewRegions(nil), as, time.Now)
	log := slog.New(slog.DiscardHandler)
	dir := acl.NewDirectory(as, guard, auth, kinds, time.Now, log)
	accounts, err := dir.SeedDemo(acl.WithSubject(ctx, acl.ConsoleSubject()), configs.FS, "demo.json", func() (string, error) { return token.GeneratePassword(), nil })
	if err != nil {
		t.Fatal(err)
	}
	regions, _ := as.Regions(ctx)
	guard.SetRegions(acl.NewRegions(regions))
	br := membroker.New(0)
	reg := chat.NewRegistry()
	casework.RegisterKinds(reg)
	chatSvc := chat.NewService(cs, br, guard, as, reg, time.Now, log, chat.Options{PostRate: 1e6})
	hub := chat.NewHub(cs, br, log, chat.HubOptions{})
	svc := casework.NewService(chatSvc, cs, ws, guard, as, domain.Procedures, regions, time.Now, log,
		casework.Options{Clocks: domain.Clocks, Calendar: domain.Calendar, Checklists: domain.Checklists, Audit: as})
	hctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { hub.Run(hctx) })
	wg.Go(func() { svc.Run(hctx, br) })

	mux := http.NewServeMux()
	acls := aclhttp.NewHandler(dir, auth, log)
	for _, r := range aclhttp.PublicRoutes() {
		mux.Handle(r.Method+" "+r.Pattern, acls)
	}
	mux.Handle("GET /api/v1/ws", chatws.NewHandler(hub, chatSvc, auth.VerifyAccess, chatws.Options{FrameRate: 1000, FrameBurst: 1000}, log))
	private := http.NewServeMux()
	rooms := chathttp.NewHandler(chatSvc, log)
	private.Handle("/api/v1/rooms", rooms)
	private.Handle("/api/v1/rooms/", rooms)
	cases := casehttp.NewHandler(svc, log)
	for _, r := range casehttp.Routes() {
		private.Handle(r.Method+" "+r.Pattern, cases)
	}
	private.Handle("/api/v1/", acls)
	mux.Handle("/api/v1/", auth.Middleware(private, aclhttp.AuthError(log)))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); cancel(); wg.Wait() })
	s := &server{t: t, url: srv.URL, acl: as, cases: ws, svc: svc, pass: map[string]string{}}
	for _, a := range accounts {
		s.pass[a.Username] = a.Password
	}
	return s
}

// A user is a signed-in client.
type user struct {
	s    *server
	name string
	c    *chatclient.Client
}

func (s *server) login(name string) *user {
	s.t.Helper()
	pw, ok := s.pass[name]
	if !ok {
		s.t.Fatalf("no demo account %q", name)
	}
	c, err := chatclient.Login(s.t.Context(), s.url, name, pw)
	if err != nil {
		s.t.Fatalf("login %s: %v", name, err)
	}
	return &user{s: s, name: name, c: c}
}

func (u *user) id() acl.UserID { return acl.UserID(u.name) }

// A reply is an answer of the API.
type reply struct {
	status int
	body   []byte
}

func (r reply) err() httpjson.ErrorInfo {
	var e httpjson.ErrorBody
	json.Unmarshal(r.body, &e)
	return e.Error
}

func (r reply) into(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %d %s: %v", r.status, r.body, err)
	}
}

// call sends an authenticated request with in as JSON (nil for none).
func (u *user) call(method, path string, in any) reply {
	t := u.s.t
	t.Helper()
	tk, err := u.c.AccessToken(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, u.s.url+path, body)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+tk)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: b}
}

// must sends a request that must answer want.
func (u *user) must(want int, method, path string, in any) reply {
	u.s.t.Helper()
	r := u.call(method, path, in)
	if r.status != want {
		u.s.t.Fatalf("%s %s %s as %s = %d %s, want %d", method, path, trim(in), u.name, r.status, r.body, want)
	}
	return r
}

// refused sends a request that must be refused with status and rule.
func (u *user) refused(status int, rule, method, path string, in any) {
	u.s.t.Helper()
	r := u.call(method, path, in)
	if r.status != status || r.err().Rule != rule {
		u.s.t.Errorf("%s %s as %s = %d %s, want %d with rule %q", method, path, u.name, r.status, r.body, status, rule)
	}
}

func trim(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		b = append(b[:200], "…"...)
	}
	return string(b)
}

type caseView = casehttp.CaseView

func (u *user) get(id casework.CaseID) caseView {
	var v caseView
	u.must(200, "GET", "/api/v1/cases/"+string(id), nil).into(u.s.t, &v)
	return v
}

// act performs a transition after getting the approvals it needs (asked by u,
// given by approver), and returns the case.
func (u *user) act(approver *user, id casework.CaseID, in map[string]any) caseView {
	u.s.t.Helper()
	tr, _ := in["transition"].(string)
	p := u.s.svc.Procedure(u.get(id).Procedure)
	t, ok := p.Transition(tr)
	if !ok {
		u.s.t.Fatalf("no transition %q", tr)
	}
	for i := range t.Approvals {
		req := map[string]any{"transition": tr, "index": i}
		if s, ok := in["suspect"]; ok {
			req["suspect"] = s
		}
		var res casehttp.ActResult
		u.must(201, "POST", "/api/v1/cases/"+string(id)+"/approvals", req).into(u.s.t, &res)
		approver.must(201, "POST", fmt.Sprintf("/api/v1/cases/%s/approvals/%d/decision", id, res.Message.Seq), map[string]any{"granted": true, "note": "同意"})
	}
	if _, ok := in["documents"]; !ok {
		var ds []map[string]string
		for _, d := range t.Documents {
			if d.Required {
				ds = append(ds, map[string]string{"name": d.NameZH})
			}
		}
		in["documents"] = ds
	}
	var res casehttp.ActResult
	u.must(201, "POST", "/api/v1/cases/"+string(id)+"/acts", in).into(u.s.t, &res)
	return res.Case
}

func (u *user) answer(id casework.CaseID, what string, in map[string]any) caseView {
	u.s.t.Helper()
	c := u.get(id)
	if c.Pending == nil {
		u.s.t.Fatalf("%s: no pending transfer to %s", id, what)
	}
	var res casehttp.ActResult
	u.must(201, "POST", fmt.Sprintf("/api/v1/cases/%s/transfers/%d/%s", id, c.Pending.Seq, what), in).into(u.s.t, &res)
	return res.Case
}

func stageIs(t *testing.T, c caseView, stage string, holder acl.UnitID) {
	t.Helper()
	if c.Stage != stage || c.Holder != holder {
		t.Fatalf("case %s at %s held by %s, want %s held by %s", c.ID, c.Stage, c.Holder, stage, holder)
	}
}

// A socket collects the message frames a user's WebSocket receives.
type socket struct {
	mu     sync.Mutex
	frames []chatclient.Frame
	wake   chan struct{}
}

func (u *user) connect() *socket {
	t := u.s.t
	t.Helper()
	conn, err := u.c.Connect(t.Context(), nil)
	if err != nil {
		t.Fatalf("connect %s: %v", u.name, err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &socket{wake: make(chan struct{}, 1)}
	go func() {
		for {
			f, err := conn.Next(context.Background())
			if err != nil {
				return
			}
			s.mu.Lock()
			s.frames = append(s.frames, f)
			s.mu.Unlock()
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}()
	return s
}

// await waits for a message frame of room with kind; it returns its message.
func (s *socket) await(t *testing.T, room chat.RoomID, kind chat.Kind) chat.MessageView {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		for _, f := range s.frames {
			if f.Type == "message" && f.Room == room && f.Message != nil && f.Message.Kind == kind {
				s.mu.Unlock()
				return *f.Message
			}
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-deadline:
			t.Fatalf("no %s frame of room %s on the socket within 10s", kind, room)
		}
	}
}

// TestCriminalCaseEndToEnd walks one criminal case over HTTP and the
// WebSocket, from filing to the end of community correction, with users of
// the police, procuratorate, court and justice bureau of 新城区 and a
// supervisor of its political-legal committee.
func TestCriminalCaseEndToEnd(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "postgres" {
				pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
			}
			criminalWalk(t, mustServer(t, backend))
		})
	}
}

func criminalWalk(t *testing.T, s *server) {
	var (
		police   = s.login("police.150102.officer1")
		policeL  = s.login("police.150102.leader1")
		prosec   = s.login("procuratorate.150102.officer1")
		prosecL  = s.login("procuratorate.150102.leader1")
		judge    = s.login("court.150102.officer1")
		corr     = s.login("justice.150102.officer1")
		sup      = s.login("committee.150102.supervisor1")
		auditor  = s.login("committee.150100.auditor1")
		outsider = s.login("police.150203.officer1")
	)
	supSock, corrSock := sup.connect(), corr.connect()

	// Filing: the police open the case; the room belongs to 新城区委政法委.
	var c caseView
	police.must(201, "POST", "/api/v1/cases", map[string]any{
		"procedure": "criminal", "title": "张三盗窃案", "cause": "盗窃", "checklist": "theft",
		"parties": []map[string]string{
			{"id": "s1", "role": "suspect", "name": "张三", "id_number": "150102199001011234"},
			{"id": "v1", "role": "victim", "name": "李四"},
		},
		"evidence": []string{"case-source"},
	}).into(t, &c)
	id, room := c.ID, c.Room
	stageIs(t, c, "filing_review", "150102-police")
	if c.Committee != "150102-committee" {
		t.Errorf("room owned by %s, want 150102-committee", c.Committee)
	}
	supSock.await(t, room, casework.KindOpen)
	if outsider.call("GET", "/api/v1/cases/"+string(id), nil).status != 404 {
		t.Errorf("a police officer of another district sees the case")
	}
	// The auditor of the league reads it without being a member, and the look is recorded.
	a := auditor.get(id)
	if a.MyRole != "" || a.Parties[0].Name != "***" {
		t.Errorf("auditor's view: role %q, party %q; want a non-member with parties masked", a.MyRole, a.Parties[0].Name)
	}

	c = police.act(policeL, id, map[string]any{"transition": "file"})
	stageIs(t, c, "investigation", "150102-police")
	police.act(policeL, id, map[string]any{"transition": "detain", "suspect": "s1"})
	extendDetention(t, id, police, policeL, sup)
	police.act(policeL, id, map[string]any{"transition": "request_arrest_detained", "suspect": "s1", "target": "150102-procuratorate"})

	// RULE invariant 2: an arrest approval the police cannot give themselves.
	police.refused(403, "no-own-request", "POST", "/api/v1/cases/"+string(id)+"/acts", map[string]any{"transition": "approve_arrest", "suspect": "s1"})
	c = prosec.act(prosecL, id, map[string]any{"transition": "approve_arrest", "suspect": "s1"})
	c = police.act(policeL, id, map[string]any{"transition": "execute_arrest", "suspect": "s1"})
	if c.Suspects[0].State != "arrested" {
		t.Fatalf("suspect %+v, want arrested", c.Suspects[0])
	}

	// Transfer for prosecution: two-phase.
	c = police.act(policeL, id, map[string]any{"transition": "transfer_for_prosecution", "target": "150102-procuratorate",
		"evidence": []string{"victim-statement", "scene-inspection", "confession"}})
	stageIs(t, c, "prosecution_intake", "150102-police")
	// RULE invariant 4: a committee attempt at a judicial act is refused.
	sup.refused(403, "committee-no-judicial", "POST", fmt.Sprintf("/api/v1/cases/%s/transfers/%d/accept", id, c.Pending.Seq), map[string]any{})
	sup.refused(403, "committee-no-judicial", "POST", "/api/v1/cases/"+string(id)+"/acts", map[string]any{"transition": "indict", "target": "150102-court"})
	if got := prosec.get(id); got.Stage != "prosecution_intake" {
		t.Errorf("refused acts changed the case: stage %s", got.Stage)
	}
	c = prosec.answer(id, "accept", map[string]any{"transition": "accept_for_review"})
	stageIs(t, c, "prosecution_review", "150102-procuratorate")

	// Two returns for supplementary investigation, each answered by re-transfer.
	for i, ret := range []string{"return_supplementary", "return_supplementary_again"} {
		c = prosec.act(prosecL, id, map[string]any{"transition": ret, "reason": "价格认定缺失", "missing": []string{"price-determination"}})
		stageIs(t, c, fmt.Sprintf("supp_investigation_%d", i+1), "150102-police")
		var todo struct{ Todo []casehttp.TodoView }
		police.must(200, "GET", "/api/v1/todo", nil).into(t, &todo)
		if !slices.ContainsFunc(todo.Todo, func(v casehttp.TodoView) bool { return v.Case == id && v.Kind == "return" }) {
			t.Errorf("police to-do after return %d has no return to answer: %+v", i+1, todo.Todo)
		}
		police.act(policeL, id, map[string]any{"transition": "retransfer", "target": "150102-procuratorate", "evidence": []string{"price-determination"}})
		c = prosec.answer(id, "accept", map[string]any{})
		stageIs(t, c, "prosecution_review", "150102-procuratorate")
	}
	// RULE CPL Art. 175 ¶3: the third return is refused.
	var res casehttp.ActResult
	prosec.must(201, "POST", "/api/v1/cases/"+string(id)+"/approvals", map[string]any{"transition": "return_supplementary"}).into(t, &res)
	prosecL.must(201, "POST", fmt.Sprintf("/api/v1/cases/%s/approvals/%d/decision", id, res.Message.Seq), map[string]any{"granted": true})
	prosec.refused(409, "max-count", "POST", "/api/v1/cases/"+string(id)+"/acts", map[string]any{"transition": "return_supplementary",
		"reason": "仍需补充", "missing": []string{"x"}, "documents": []map[string]string{{"name": "补充侦查决定书"}, {"name": "补充侦查提纲"}}})

	// Indictment; the court accepts and judges.
	c = prosec.act(prosecL, id, map[string]any{"transition": "indict", "target": "150102-court"})
	stageIs(t, c, "court_acceptance", "150102-procuratorate")
	c = judge.answer(id, "accept", map[string]any{"transition": "accept_ordinary"})
	stageIs(t, c, "trial_ordinary", "150102-court")
	c = judge.act(nil, id, map[string]any{"transition": "judge_first_instance"})
	c = judge.act(nil, id, map[string]any{"transition": "becomes_effective"})

	// Supervision (督办) and a committee message that goes to the register.
	sup.must(201, "POST", "/api/v1/cases/"+string(id)+"/supervision", map[string]any{"notice": "请法院依法及时交付执行"})
	if _, _, err := sup.c.Post(t.Context(), room, chatclient.PostRequest{Body: "这个案子判缓刑合适，尽快交付"}); err != nil {
		t.Fatal(err)
	}

	// Hand-over to community correction: the justice bureau joins the room and
	// sees the transfer live on its socket.
	c = judge.act(nil, id, map[string]any{"transition": "send_to_correction", "target": "150102-justice"})
	stageIs(t, c, "correction_intake", "150102-court")
	corrSock.await(t, room, casework.KindAct)
	var rc casehttp.ReceiptView
	judge.must(200, "GET", fmt.Sprintf("/api/v1/cases/%s/acts/%d/receipt", id, c.Pending.Seq), nil).into(t, &rc)
	if rc.Unit != "150102-justice" || rc.Outcome != "" || len(rc.Read) == 0 {
		t.Errorf("receipt of the transfer before its answer = %+v", rc)
	}
	seq := c.Pending.Seq
	c = corr.answer(id, "accept", map[string]any{})
	stageIs(t, c, "community_correction", "150102-justice")
	judge.must(200, "GET", fmt.Sprintf("/api/v1/cases/%s/acts/%d/receipt", id, seq), nil).into(t, &rc)
	if rc.Outcome != "accepted" || rc.By != corr.id() {
		t.Errorf("receipt of the transfer after acceptance = %+v", rc)
	}
	supSock.await(t, room, casework.KindAccept)

	// The register: the police leader (a handling unit's leader) and the auditor
	// see the supervisor's message; the supervisor does not.
	var reg struct{ Interventions []casehttp.InterventionView }
	deadline := time.Now().Add(5 * time.Second)
	for {
		policeL.must(200, "GET", "/api/v1/cases/"+string(id)+"/interventions", nil).into(t, &reg)
		if len(reg.Interventions) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(reg.Interventions) != 1 || reg.Interventions[0].IntervenorUser != sup.id() {
		t.Errorf("register seen by the police leader = %+v, want the supervisor's message only", reg.Interventions)
	}
	auditor.must(200, "GET", "/api/v1/cases/"+string(id)+"/interventions", nil).into(t, &reg)
	if len(reg.Interventions) != 1 {
		t.Errorf("register seen by the auditor = %d entries, want 1", len(reg.Interventions))
	}
	if r := sup.call("GET", "/api/v1/cases/"+string(id)+"/interventions", nil); r.status != 403 {
		t.Errorf("the intervenor reading the register = %d %s, want 403", r.status, r.body)
	}

	// Lists: mine, my unit's, the jurisdiction's; search by every number.
	var list struct{ Cases []casehttp.SummaryView }
	corr.must(200, "GET", "/api/v1/cases?scope=mine", nil).into(t, &list)
	if len(list.Cases) != 1 || list.Cases[0].ID != id {
		t.Errorf("justice officer's cases = %+v", list.Cases)
	}
	sup.must(200, "GET", "/api/v1/cases?scope=jurisdiction&procedure=criminal&stage=community_correction", nil).into(t, &list)
	if len(list.Cases) != 1 {
		t.Errorf("supervisor's jurisdiction list = %d cases, want 1", len(list.Cases))
	}
	police.refused(403, "case-list-jurisdiction", "GET", "/api/v1/cases?scope=jurisdiction", nil)
	c = corr.get(id)
	if len(c.Numbers) != 3 {
		t.Errorf("case numbers = %+v, want the police's, procuratorate's and court's", c.Numbers)
	}
	for _, n := range c.Numbers {
		sup.must(200, "GET", "/api/v1/cases/search?number="+url.QueryEscape(n.Number), nil).into(t, &list)
		if len(list.Cases) != 1 || list.Cases[0].ID != id {
			t.Errorf("search %s = %+v", n.Number, list.Cases)
		}
	}

	// The end of correction closes the case and its room.
	c = corr.act(nil, id, map[string]any{"transition": "end_correction"})
	if !c.Closed || !c.Archived {
		t.Errorf("after end_correction: closed %v archived %v", c.Closed, c.Archived)
	}
	if _, _, err := corr.c.Post(t.Context(), room, chatclient.PostRequest{Body: "结束了"}); err == nil || !strings.Contains(err.Error(), "archived") {
		t.Errorf("posting in the closed case's room = %v, want room_archived", err)
	}

	// Every refusal is in the audit record with its rule.
	es, err := s.acl.AuditEntries(t.Context(), audit.StreamDenials, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range []string{"no-own-request", "committee-no-judicial", "max-count", "case-list-jurisdiction"} {
		if !slices.ContainsFunc(es, func(e audit.Entry) bool { return strings.Contains(e.Detail, `"rule":"`+rule+`"`) }) {
			t.Errorf("no audited denial with rule %s", rule)
		}
	}
	assertProjectionRebuilds(t, s, id)
}

// assertProjectionRebuilds checks that the stored projection of id is what a
// replay of its log gives.
func assertProjectionRebuilds(t *testing.T, s *server, id casework.CaseID) {
	t.Helper()
	stored, err := s.cases.Case(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := s.svc.Rebuild(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(stored)
	b, _ := json.Marshal(rebuilt)
	if !bytes.Equal(a, b) {
		t.Errorf("stored projection of %s differs from its rebuild:\nstored  %s\nrebuilt %s", id, a, b)
	}
}

// TestCivilCaseEndToEnd walks a civil loan dispute from filing to the end of
// enforcement, with the police's help in locating the debtor's assets.
func TestCivilCaseEndToEnd(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "postgres" {
				pgdbtest.NeedEnv(t, "CASEROOM_TEST_POSTGRES")
			}
			civilWalk(t, mustServer(t, backend))
		})
	}
}

func civilWalk(t *testing.T, s *server) {
	var (
		judge   = s.login("court.150102.officer1")
		clerk   = s.login("court.150102.clerk1")
		police  = s.login("police.150102.officer1")
		sup     = s.login("committee.150102.supervisor1")
		prosec  = s.login("procuratorate.150102.officer1")
		polSock = police.connect()
	)
	// Only a court files a civil case.
	prosec.refused(403, "procedure-actor", "POST", "/api/v1/cases", map[string]any{"procedure": "civil", "title": "x"})
	var c caseView
	judge.must(201, "POST", "/api/v1/cases", map[string]any{
		"procedure": "civil", "title": "王五诉赵六民间借贷纠纷", "cause": "民间借贷纠纷", "checklist": "private-loan",
		"parties": []map[string]string{
			{"id": "p1", "role": "plaintiff", "name": "王五"},
			{"id": "d1", "role": "defendant", "name": "赵六", "id_number": "150102198001011111"},
		},
		"evidence": []string{"identity", "loan-agreement"},
		"handlers": []acl.UserID{judge.id(), clerk.id()},
	}).into(t, &c)
	id, room := c.ID, c.Room
	stageIs(t, c, "filing_review", "150102-court")
	c = clerk.act(nil, id, map[string]any{"transition": "register_simple"})
	stageIs(t, c, "trial_simple", "150102-court")
	c = judge.act(nil, id, map[string]any{"transition": "judge_first_instance"})
	c = judge.act(nil, id, map[string]any{"transition": "becomes_effective"})
	c = judge.act(nil, id, map[string]any{"transition": "apply_enforcement"})
	stageIs(t, c, "enforcement", "150102-court")
	var codes []string
	for _, n := range c.Numbers {
		codes = append(codes, n.Code)
	}
	if !slices.Equal(codes, []string{"民初", "执"}) {
		t.Errorf("civil case numbers %+v, want 民初 then 执", c.Numbers)
	}
	sup.refused(403, "committee-no-judicial", "POST", "/api/v1/cases/"+string(id)+"/acts", map[string]any{"transition": "close_enforcement"})

	// Enforcement with police cooperation (查控): the police join and answer.
	c = judge.act(nil, id, map[string]any{"transition": "police_search_request", "target": "150102-police"})
	polSock.await(t, room, casework.KindAct)
	var todo struct{ Todo []casehttp.TodoView }
	police.must(200, "GET", "/api/v1/todo", nil).into(t, &todo)
	if !slices.ContainsFunc(todo.Todo, func(v casehttp.TodoView) bool { return v.Case == id && v.Kind == "request" }) {
		t.Errorf("police to-do has no search request: %+v", todo.Todo)
	}
	c = police.act(nil, id, map[string]any{"transition": "police_search_result", "note": "查询到被执行人名下车辆一辆，已查控"})
	if len(c.Requests) != 0 {
		t.Errorf("open requests after the police answered: %+v", c.Requests)
	}
	c = judge.act(nil, id, map[string]any{"transition": "close_enforcement"})
	if !c.Closed || !c.Archived || c.Stage != "closed" {
		t.Errorf("after close_enforcement: stage %s closed %v archived %v", c.Stage, c.Closed, c.Archived)
	}
	assertProjectionRebuilds(t, s, id)
}

// clockIn returns the clock with key of c.
func clockIn(t *testing.T, c caseView, key string) casehttp.ClockView {
	t.Helper()
	i := slices.IndexFunc(c.Clocks, func(k casehttp.ClockView) bool { return k.Key == key })
	if i < 0 {
		t.Fatalf("no clock %s in the case: %+v", key, c.Clocks)
	}
	return c.Clocks[i]
}

// extendDetention checks the detention's clocks in the case's view and extends
// CR-DET-02 (CPL Art. 91: +1–4 d) over HTTP: asked by the police officer,
// granted by the police leader.
func extendDetention(t *testing.T, id casework.CaseID, police, policeL, sup *user) {
	t.Helper()
	path := "/api/v1/cases/" + string(id)
	det := clockIn(t, police.get(id), "CR-DET-02/s1")
	if det.ID != "CR-DET-02" || det.Row != "CR-DET-02" || det.NameZH != "提请批准逮捕" || det.Basis == "" || det.Suspect != "s1" ||
		det.State != "running" || !det.Strict || det.Overdue || det.LeftSeconds <= 0 || det.Unit != "150102-police" || det.Hourly {
		t.Errorf("CR-DET-02 in the case view: %+v", det)
	}
	if len(det.Extensions) != 2 || det.Extensions[0].ID != "special" || det.Extensions[0].Min != "1d" || !det.Extensions[0].Askable ||
		det.Extensions[0].Approver.Agency != "police" || det.RequestBy == nil || !det.RequestBy.Equal(det.Due) {
		t.Errorf("CR-DET-02's extensions: request by %v, %+v", det.RequestBy, det.Extensions)
	}
	if fam := clockIn(t, police.get(id), "CR-DET-01.family/s1"); !fam.Hourly || fam.State != "running" {
		t.Errorf("CR-DET-01.family in the case view: %+v", fam)
	}
	ask := map[string]any{"clock": "CR-DET-02", "suspect": "s1", "extension": "special", "by": "2d", "summary": "案情特殊"}
	if r := police.call("POST", path+"/extensions", map[string]any{"clock": "CR-DET-02", "suspect": "s1", "extension": "special", "by": "two days"}); r.status != 400 || r.err().Field != "by" {
		t.Errorf("an extension with a bad length = %d %s, want 400 on by", r.status, r.body)
	}
	if r := police.call("POST", path+"/extensions", map[string]any{"clock": "CR-XXX-01", "extension": "special"}); r.status != 400 || r.err().Field != "clock" {
		t.Errorf("an extension of an unknown clock = %d %s, want 400 on clock", r.status, r.body)
	}
	police.refused(409, "extension-not-allowed", "POST", path+"/extensions", map[string]any{"clock": "CR-DET-02", "suspect": "s1", "extension": "special", "by": "5d"})
	sup.refused(403, "committee-no-judicial", "POST", path+"/extensions", ask)
	var res casehttp.ActResult
	police.must(201, "POST", path+"/extensions", ask).into(t, &res)
	if res.Message.Kind != casework.KindApprovalReq {
		t.Errorf("extension request posted as %s", res.Message.Kind)
	}
	i := slices.IndexFunc(res.Case.Approvals, func(a casehttp.ApprovalView) bool { return a.Seq == res.Message.Seq })
	if i < 0 || res.Case.Approvals[i].Clock != "CR-DET-02" || res.Case.Approvals[i].Extension != "special" || res.Case.Approvals[i].Length != "2d" ||
		!res.Case.Approvals[i].Internal || res.Case.Approvals[i].Transition != "" {
		t.Errorf("the extension's approval in the view: %+v", res.Case.Approvals)
	}
	if x := clockIn(t, res.Case, "CR-DET-02/s1").Extensions[0]; x.Pending != res.Message.Seq || x.Askable {
		t.Errorf("special while asked for: %+v", x)
	}
	var todo struct{ Todo []casehttp.TodoView }
	policeL.must(200, "GET", "/api/v1/todo", nil).into(t, &todo)
	if !slices.ContainsFunc(todo.Todo, func(v casehttp.TodoView) bool {
		return v.Case == id && v.Kind == "approval" && v.Seq == res.Message.Seq && v.Clock == "CR-DET-02" && v.Extension == "special"
	}) {
		t.Errorf("the police leader's to-do lacks the extension to decide: %+v", todo.Todo)
	}
	policeL.must(201, "POST", fmt.Sprintf("%s/approvals/%d/decision", path, res.Message.Seq), map[string]any{"granted": true, "note": "同意延长"}).into(t, &res)
	after := clockIn(t, res.Case, "CR-DET-02/s1")
	if !after.Due.Equal(det.Due.Add(48*time.Hour)) || !slices.Equal(after.Granted, []string{"special"}) || len(after.Extensions) != 0 {
		t.Errorf("CR-DET-02 after the grant: due %v (was %v), granted %v, open %+v", after.Due, det.Due, after.Granted, after.Extensions)
	}
}
