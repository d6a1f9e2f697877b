package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/acl/token"
	"caseroom/casework"
	"caseroom/casework/bots"
	botssqlite "caseroom/casework/bots/sqlite"
	cwsqlite "caseroom/casework/sqlite"
	"caseroom/chat"
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

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// world is a caseroom server's bot gateway on real SQLite: the directory, chat,
// the case service with two civil cases its court opened, and the bot platform
// with a digest bot of that court, whose token may post text in the court's
// unit room and read the court's due list.
type world struct {
	clock *testClock
	rooms chat.Store
	room  chat.RoomID // the court's unit room
	token string
	srv   *httptest.Server
}

func mustWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{clock: &testClock{t: time.Date(2026, time.March, 2, 9, 0, 0, 0, beijing)}}
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "caseroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	as, cs, cw, bs := sqlite.New(db), chatsqlite.New(db), cwsqlite.New(db), botssqlite.New(db)
	for _, m := range []func(context.Context) error{as.Migrate, cs.Migrate, cw.Migrate, bs.Migrate} {
		if err := m(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w.rooms = cs
	kinds, _ := acl.LoadUnitKinds(configs.FS, "unit-kinds.json")
	policy, err := acl.LoadPolicy(configs.FS, "policy.json", acl.KindIDs(kinds))
	if err != nil {
		t.Fatal(err)
	}
	regions, _ := acl.LoadRegions(configs.FS, "regions.csv")
	d, err := casework.Load(configs.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	guard := acl.NewGuard(policy, acl.NewRegions(regions), as, w.clock.Now)
	iss, _ := token.LoadIssuer(ctx, as, token.IssuerConfig{})
	auth := token.NewAuth(as, iss, token.AuthConfig{PasswordParams: token.PasswordParams{Memory: 64, Time: 1, Threads: 1}}, w.clock.Now)
	dir := acl.NewDirectory(as, guard, auth, kinds, w.clock.Now, nil)
	reg := chat.NewRegistry()
	casework.RegisterKinds(reg)
	bots.RegisterKinds(reg)
	log := slog.New(slog.DiscardHandler)
	svc := chat.NewService(cs, membroker.New(0), guard, as, reg, w.clock.Now, log, chat.Options{})
	cases := casework.NewService(svc, cs, cw, guard, as, d.Procedures, regions, w.clock.Now, log,
		casework.Options{Clocks: d.Clocks, Calendar: d.Calendar, Checklists: d.Checklists, Audit: as})

	console := acl.WithSubject(ctx, acl.ConsoleSubject())
	if err := dir.ImportRegions(console, regions); err != nil {
		t.Fatal(err)
	}
	for _, u := range []acl.Unit{{Kind: "committee", Region: "150102", Name: "新城区委政法委"}, {Kind: "court", Region: "150102", Name: "新城区人民法院"}} {
		if _, err := dir.CreateUnit(console, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, nu := range []acl.NewUser{
		{Username: "judge1", Name: "法官1", Unit: "150102-court", Roles: []acl.Role{acl.Officer}},
		{Username: "sys.admin", Name: "系统管理员", Unit: "150102-committee", Roles: []acl.Role{acl.SysAdmin}},
	} {
		if _, _, err := dir.CreateUser(console, nu); err != nil {
			t.Fatal(err)
		}
	}
	judge := acl.WithSubject(ctx, acl.Subject{User: "judge1", Unit: "150102-court", UnitKind: "court", Region: "150102", Roles: []acl.Role{acl.Officer}})
	for i, title := range []string{"王五诉赵六民间借贷纠纷", "钱七诉孙八买卖合同纠纷"} {
		w.clock.Set(time.Date(2026, time.March, 2+i, 10, 0, 0, 0, beijing))
		if _, err := cases.OpenCase(judge, casework.OpenInput{Procedure: "civil", Title: title, Cause: "民间借贷纠纷",
			Parties: []casework.Party{{ID: "p1", Role: "plaintiff", Name: "原告"}, {ID: "d1", Role: "defendant", Name: "被告"}}}); err != nil {
			t.Fatalf("OpenCase: %v", err)
		}
	}

	src := bots.NewCaseClocks(cw, cs, d, regions, log)
	due := bots.NewDue(src, guard, regions, w.clock.Now)
	plat := bots.NewPlatform(bs, as, guard, svc, reg, due, w.clock.Now, log, bots.PlatformOptions{CheckBot: auth.CheckSession})
	admin := acl.WithSubject(ctx, acl.Subject{User: "sys.admin", Unit: "150102-committee", UnitKind: "committee", Region: "150102", Roles: []acl.Role{acl.SysAdmin}})
	if _, err := plat.CreateBot(admin, bots.NewBot{Username: "court-digest", Name: "每日期限摘要", Unit: "150102-court"}); err != nil {
		t.Fatal(err)
	}
	court, _ := as.Unit(ctx, "150102-court")
	r, err := svc.EnsureUnitRoom(ctx, court, acl.ConsoleSubject()) // the bot joins its unit's room
	if err != nil {
		t.Fatal(err)
	}
	w.room = r.ID
	_, secret, err := plat.IssueToken(admin, "court-digest", bots.NewToken{Name: "digest",
		Scope: bots.Scope{Rooms: []chat.RoomID{r.ID}, Post: []chat.Kind{chat.Text}, Due: []acl.UnitID{"150102-court"}}})
	if err != nil {
		t.Fatal(err)
	}
	w.token = secret
	mux := http.NewServeMux()
	mux.Handle("/api/v1/bot/", bots.NewBotHandler(plat, w.clock.Now, log))
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	return w
}

func (w *world) getenv(name string) string {
	return map[string]string{"CASEROOM_URL": w.srv.URL, "CASEROOM_BOT_TOKEN": w.token}[name]
}

func (w *world) digests(t *testing.T) []chat.Message {
	t.Helper()
	ms, err := w.rooms.History(context.Background(), w.room, chat.HistoryQuery{Limit: chat.MaxPage})
	if err != nil {
		t.Fatal(err)
	}
	var out []chat.Message
	for _, m := range ms {
		if m.Sender == "court-digest" {
			out = append(out, m)
		}
	}
	return out
}

// The digest bot, with nothing but its token, reads its court's due list and
// posts one digest a day in the court's room: the clocks by time left, each
// with its row and basis; running it again the same day posts nothing more.
func TestDigestPostsOncePerDay(t *testing.T) {
	w := mustWorld(t)
	w.clock.Set(time.Date(2026, time.March, 9, 8, 30, 0, 0, beijing))
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-once"}, w.getenv, w.clock.Now, &out, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	ds := w.digests(t)
	if len(ds) != 1 {
		t.Fatalf("%d digests, want 1\n%s", len(ds), out.String())
	}
	body := ds[0].Body
	t.Logf("court room, seq %d, %s:\n%s", ds[0].Seq, ds[0].Kind, body)
	// CV-FIL-01 (7 d to file, CivPL Art. 126): the first case's last day is
	// 9 March (today), the second's 10 March.
	for _, want := range []string{"【每日期限摘要】2026-03-09 150102-court", "24小时内届满 1 件", "7日内届满 1 件", "共 2 件",
		"1. 【今日】", "CV-FIL-01", "CivPL Art. 126", "届满 2026-03-09 24:00", "2. 【待办】", "届满 2026-03-10 24:00"} {
		if !strings.Contains(body, want) {
			t.Errorf("digest lacks %q:\n%s", want, body)
		}
	}
	if ds[0].ClientID != "digest:150102-court:2026-03-09" {
		t.Errorf("client id %q", ds[0].ClientID)
	}
	out.Reset()
	w.clock.Set(time.Date(2026, time.March, 9, 17, 0, 0, 0, beijing))
	if err := run(context.Background(), []string{"-once"}, w.getenv, w.clock.Now, &out, &out); err != nil {
		t.Fatal(err)
	}
	if len(w.digests(t)) != 1 || !strings.Contains(out.String(), "already posted") {
		t.Errorf("a second run the same day: %d digests\n%s", len(w.digests(t)), out.String())
	}
	w.clock.Set(time.Date(2026, time.March, 11, 8, 30, 0, 0, beijing))
	if err := run(context.Background(), []string{"-once"}, w.getenv, w.clock.Now, &out, &out); err != nil {
		t.Fatal(err)
	}
	ds = w.digests(t)
	if len(ds) != 2 || !strings.Contains(ds[1].Body, "已超期 2 件") {
		t.Errorf("the next digest: %d, %q", len(ds), ds[len(ds)-1].Body)
	}
}

func TestBadSettings(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{}, nil, "CASEROOM_BOT_TOKEN"},
		{map[string]string{"CASEROOM_BOT_TOKEN": "x", "CASEROOM_URL": "ftp://x"}, nil, "CASEROOM_URL"},
		{map[string]string{"CASEROOM_BOT_TOKEN": "x", "CASEROOM_DIGEST_AT": "25:00"}, nil, "CASEROOM_DIGEST_AT"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, time.Now, &out, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("env %v: %v, want an error naming %s", tc.env, err, tc.want)
		}
	}
	// A wrong token is refused by the server, and said so.
	w := mustWorld(t)
	var out bytes.Buffer
	err := run(context.Background(), []string{"-once"}, func(k string) string {
		if k == "CASEROOM_BOT_TOKEN" {
			return "crb_nope.nope"
		}
		return w.getenv(k)
	}, w.clock.Now, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "401 token_invalid") {
		t.Errorf("wrong token: %v", err)
	}
}

func TestNextRun(t *testing.T) {
	at := 8*time.Hour + 30*time.Minute
	for _, tc := range []struct{ now, want time.Time }{
		{time.Date(2026, 3, 9, 8, 0, 0, 0, beijing), time.Date(2026, 3, 9, 8, 30, 0, 0, beijing)},
		{time.Date(2026, 3, 9, 8, 30, 0, 0, beijing), time.Date(2026, 3, 10, 8, 30, 0, 0, beijing)},
		{time.Date(2026, 3, 31, 23, 0, 0, 0, beijing), time.Date(2026, 4, 1, 8, 30, 0, 0, beijing)},
		{time.Date(2026, 3, 9, 1, 0, 0, 0, time.UTC), time.Date(2026, 3, 10, 8, 30, 0, 0, beijing)}, // 09:00 in Beijing
	} {
		if got := nextRun(tc.now, at); !got.Equal(tc.want) {
			t.Errorf("nextRun(%s) = %s, want %s", tc.now, got, tc.want)
		}
	}
}
