package bots_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/acl/pgdb"
	aclpg "caseroom/acl/postgres"
	aclsqlite "caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/acl/token"
	"caseroom/casework"
	"caseroom/casework/bots"
	botspg "caseroom/casework/bots/postgres"
	botssqlite "caseroom/casework/bots/sqlite"
	"caseroom/chat"
	"caseroom/chat/membroker"
	chatpg "caseroom/chat/postgres"
	chatsqlite "caseroom/chat/sqlite"
	"caseroom/configs"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A testClock is a now that tests set by hand; every service of a test reads it.
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

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// bj returns a Beijing-time instant.
func bj(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, casework.Shanghai)
}

// The directory every test uses: a county's agencies, its league's and the
// region's committees, and the deadline bot at the region's committee.
const (
	committee     = acl.UnitID("150102-committee")
	procuratorate = acl.UnitID("150102-procuratorate")
	police        = acl.UnitID("150102-police")
	court         = acl.UnitID("150102-court")
	leagueCommit  = acl.UnitID("150100-committee")
	rootCommittee = acl.UnitID("150000-committee")
	deadlineBot   = acl.UserID("deadline-bot")
	county        = acl.RegionCode("150102")
)

var (
	domainOnce sync.Once
	domain     *casework.Domain
	reminders  *bots.Reminders
	domainErr  error
)

// mustDomain loads the shipped configs once: clocks, calendar, procedures and
// reminders.json.
func mustDomain(t testing.TB) (*casework.Domain, *bots.Reminders) {
	t.Helper()
	domainOnce.Do(func() {
		domain, domainErr = casework.Load(configs.FS, ".")
		if domainErr == nil {
			reminders, domainErr = bots.LoadReminders(configs.FS, "reminders.json", domain)
		}
	})
	if domainErr != nil {
		t.Fatalf("load configs: %v", domainErr)
	}
	return domain, reminders
}

// A backend names one database: a SQLite file or a PostgreSQL URL (with its
// test schema in search_path).
type backend struct {
	kind string // "sqlite" or "postgres"
	dsn  string
}

func sqliteBackend(t testing.TB) backend {
	return backend{kind: "sqlite", dsn: filepath.Join(t.TempDir(), "caseroom.db")}
}

// A node is one server's view of the database: its stores and services.
type node struct {
	t     testing.TB
	ctx   context.Context
	clock *testClock
	acl   acl.Store
	chats chat.Store
	store bots.Store
	chat  *chat.Service
	guard *acl.Guard
	reg   *chat.Registry
	close func()
	db    *sqlitedb.DB  // the SQLite database, nil on PostgreSQL
	pool  *pgxpool.Pool // the PostgreSQL pool, nil on SQLite
	auth  *token.Auth   // set by seed
	dir   *acl.Directory
	pw    map[string]string // username → password, set by seed
}

// openNode opens the stores of be, migrates them, and builds the services on
// clock.
func openNode(t testing.TB, be backend, clock *testClock) *node {
	t.Helper()
	n, err := buildNode(be, clock)
	if err != nil {
		t.Fatal(err)
	}
	n.t = t
	t.Cleanup(n.close)
	return n
}

// buildNode is openNode for a process without a testing.TB (the crash test's
// child); the caller closes the node.
func buildNode(be backend, clock *testClock) (*node, error) {
	ctx := context.Background()
	n := &node{ctx: ctx, clock: clock}
	switch be.kind {
	case "sqlite":
		db, err := sqlitedb.Open(be.dsn)
		if err != nil {
			return nil, err
		}
		as, cs, bs := aclsqlite.New(db), chatsqlite.New(db), botssqlite.New(db)
		n.acl, n.chats, n.store, n.close, n.db = as, cs, bs, func() { db.Close() }, db
		for _, m := range []func(context.Context) error{as.Migrate, cs.Migrate, bs.Migrate} {
			if err := m(ctx); err != nil {
				n.close()
				return nil, err
			}
		}
	case "postgres":
		pool, err := pgdb.Open(ctx, be.dsn)
		if err != nil {
			return nil, err
		}
		as, cs, bs := aclpg.New(pool), chatpg.New(pool), botspg.New(pool)
		n.acl, n.chats, n.store, n.close, n.pool = as, cs, bs, pool.Close, pool
		for _, m := range []func(context.Context) error{as.Migrate, cs.Migrate, bs.Migrate} {
			if err := m(ctx); err != nil {
				n.close()
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("unknown backend %q", be.kind)
	}
	kinds, err := acl.LoadUnitKinds(configs.FS, "unit-kinds.json")
	if err != nil {
		return nil, err
	}
	policy, err := acl.LoadPolicy(configs.FS, "policy.json", acl.KindIDs(kinds))
	if err != nil {
		return nil, err
	}
	regions, err := acl.LoadRegions(configs.FS, "regions.csv")
	if err != nil {
		return nil, err
	}
	n.guard = acl.NewGuard(policy, acl.NewRegions(regions), n.acl, clock.Now)
	n.reg = chat.NewRegistry()
	bots.RegisterKinds(n.reg)
	casework.RegisterKinds(n.reg)
	n.chat = chat.NewService(n.chats, membroker.New(0), n.guard, n.acl, n.reg, clock.Now, slog.New(slog.DiscardHandler), chat.Options{PostRate: 1000})
	return n, nil
}

var fastArgon2 = token.PasswordParams{Memory: 64, Time: 1, Threads: 1}

// seed makes the directory, the unit rooms and the deadline bot.
func (n *node) seed() {
	t := n.t
	t.Helper()
	kinds, _ := acl.LoadUnitKinds(configs.FS, "unit-kinds.json")
	regions, _ := acl.LoadRegions(configs.FS, "regions.csv")
	iss, err := token.LoadIssuer(n.ctx, n.acl, token.IssuerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	auth := token.NewAuth(n.acl, iss, token.AuthConfig{PasswordParams: fastArgon2}, n.clock.Now)
	dir := acl.NewDirectory(n.acl, n.guard, auth, kinds, n.clock.Now, nil)
	n.auth, n.dir, n.pw = auth, dir, map[string]string{}
	console := acl.WithSubject(n.ctx, acl.ConsoleSubject())
	if err := dir.ImportRegions(console, regions); err != nil {
		t.Fatal(err)
	}
	for _, u := range []acl.Unit{
		{Kind: "committee", Region: "150102", Name: "新城区委政法委"},
		{Kind: "procuratorate", Region: "150102", Name: "新城区人民检察院"},
		{Kind: "police", Region: "150102", Name: "新城区公安分局"},
		{Kind: "court", Region: "150102", Name: "新城区人民法院"},
		{Kind: "committee", Region: "150100", Name: "呼和浩特市委政法委"},
		{Kind: "committee", Region: "150000", Name: "自治区党委政法委"},
	} {
		unit, err := dir.CreateUnit(console, u)
		if err != nil {
			t.Fatalf("CreateUnit %v: %v", u, err)
		}
		if _, err := n.chat.EnsureUnitRoom(n.ctx, unit, acl.ConsoleSubject()); err != nil {
			t.Fatal(err)
		}
	}
	for _, nu := range []acl.NewUser{
		{Username: "sys.admin", Name: "系统管理员", Unit: rootCommittee, Roles: []acl.Role{acl.SysAdmin}},
		{Username: "police.officer1", Name: "民警1", Unit: police, Roles: []acl.Role{acl.Officer}},
		{Username: "police.officer2", Name: "民警2", Unit: police, Roles: []acl.Role{acl.Officer}},
		{Username: "police.leader1", Name: "分局领导", Unit: police, Roles: []acl.Role{acl.Leader}},
		{Username: "court.officer1", Name: "法官1", Unit: court, Roles: []acl.Role{acl.Officer}},
		{Username: "proc.officer1", Name: "检察官1", Unit: procuratorate, Roles: []acl.Role{acl.Officer}},
		{Username: "committee.sup1", Name: "督办员1", Unit: committee, Roles: []acl.Role{acl.Supervisor}},
		{Username: "league.sup1", Name: "市督办员", Unit: leagueCommit, Roles: []acl.Role{acl.Supervisor}},
		{Username: "court.clerk1", Name: "书记员1", Unit: court, Roles: []acl.Role{acl.Clerk}},
	} {
		_, pw, err := dir.CreateUser(console, nu)
		if err != nil {
			t.Fatalf("CreateUser %s: %v", nu.Username, err)
		}
		n.pw[nu.Username] = pw
	}
	bot := acl.User{ID: deadlineBot, Username: string(deadlineBot), Name: "期限提醒", Unit: rootCommittee, Bot: true, CreatedAt: n.clock.Now()}
	rec := audit.Record{Stream: audit.StreamDirectory, At: n.clock.Now(), Actor: "console", Action: "user.create", Target: "user:deadline-bot", Outcome: audit.OK}
	if err := n.acl.CreateUser(n.ctx, bot, "", rec); err != nil {
		t.Fatal(err)
	}
}

// botSubject is the deadline bot as the Scheduler acts.
func botSubject() acl.Subject {
	return acl.Subject{User: deadlineBot, Name: "期限提醒", Unit: rootCommittee, UnitKind: acl.Committee, Region: "150000", Bot: true}
}

// openCase opens a case room owned by the county committee with the police
// and court officers in it, as the case service does.
func (n *node) openCase(name string) chat.RoomID {
	n.t.Helper()
	r := chat.Room{ID: chat.RoomID("case-" + name), Kind: chat.CaseRoom, Name: name, OwnerUnit: committee, Region: county}
	members := []chat.MemberRef{
		{User: "committee.sup1", Unit: committee, Role: chat.Owner},
		{User: "police.officer1", Unit: police, Role: chat.Member},
		{User: "court.officer1", Unit: court, Role: chat.Member},
	}
	if err := n.chat.Open(n.ctx, &r, members, acl.Subject{User: "police.officer1", Unit: police}); err != nil {
		n.t.Fatalf("open case room %s: %v", name, err)
	}
	return r.ID
}

// unitRoom returns unit's unit room.
func (n *node) unitRoom(u acl.UnitID) chat.RoomID {
	n.t.Helper()
	r, err := n.chats.UnitRoom(n.ctx, u)
	if err != nil {
		n.t.Fatalf("unit room of %s: %v", u, err)
	}
	return r.ID
}

// log returns every entry of room.
func (n *node) log(room chat.RoomID) []chat.Message {
	n.t.Helper()
	var out []chat.Message
	q := chat.HistoryQuery{Limit: chat.MaxPage}
	for {
		ms, err := n.chats.History(n.ctx, room, q)
		if err != nil {
			n.t.Fatalf("history of %s: %v", room, err)
		}
		out = append(out, ms...)
		if len(ms) < chat.MaxPage {
			return out
		}
		q.After = ms[len(ms)-1].Seq
	}
}

// botEntries returns the deadline bot's entries in room with their notices.
func (n *node) botEntries(room chat.RoomID) ([]chat.Message, []bots.Notice) {
	n.t.Helper()
	var ms []chat.Message
	var ns []bots.Notice
	for _, m := range n.log(room) {
		if m.Sender != deadlineBot {
			continue
		}
		var no bots.Notice
		if err := json.Unmarshal(m.Payload, &no); err != nil {
			n.t.Fatalf("entry %s/%d: payload: %v", room, m.Seq, err)
		}
		ms = append(ms, m)
		ns = append(ns, no)
	}
	return ms, ns
}

// points returns the offset of each of the bot's entries in room.
func (n *node) points(room chat.RoomID) []string {
	_, ns := n.botEntries(room)
	out := make([]string, len(ns))
	for i, no := range ns {
		out[i] = no.Point
	}
	return out
}

// A clockDef is one clock of the test source, as JSON so that a child process
// can rebuild the same source (the crash test).
type clockDef struct {
	Room        chat.RoomID    `json:"room"`
	Clock       string         `json:"clock"`
	Suspect     string         `json:"suspect,omitempty"`
	SuspectName string         `json:"suspect_name,omitempty"`
	Start       time.Time      `json:"start"`
	Detained    bool           `json:"detained"`
	Holder      acl.UnitID     `json:"holder"`
	Known       time.Time      `json:"known,omitzero"` // when the act became known (Before clocks)
	Officers    []acl.UserID   `json:"officers,omitempty"`
	Region      acl.RegionCode `json:"region,omitempty"` // default the county
}

// memSource is the test's ClockSource: real casework clocks on the shipped
// clock table and calendar, each started by the act the test names, standing in
// for the case service, which derives the same clocks from the case room.
type memSource struct {
	d *casework.Domain

	mu     sync.Mutex
	clocks []*memClock // guarded by mu
	timed  []string    // guarded by mu: timed acts asked for, "key transition"
}

type memClock struct {
	def clockDef
	ck  *casework.Clock
}

func newSource(d *casework.Domain) *memSource { return &memSource{d: d} }

// add starts a clock as def says and returns it.
func (s *memSource) add(t testing.TB, def clockDef) *memClock {
	t.Helper()
	mc, err := s.addDef(def)
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

func (s *memSource) addDef(def clockDef) (*memClock, error) {
	spec, ok := s.d.Clocks.Spec(def.Clock)
	if !ok {
		return nil, fmt.Errorf("unknown clock %s", def.Clock)
	}
	ck := casework.NewClock(s.d.Calendar, spec)
	if err := ck.Start(def.Start, def.Detained); err != nil {
		return nil, fmt.Errorf("start %s: %w", def.Clock, err)
	}
	mc := &memClock{def: def, ck: ck}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clocks = append(s.clocks, mc)
	return mc, nil
}

// apply applies a clock event under the source's lock.
func (s *memSource) apply(t testing.TB, mc *memClock, ev casework.ClockEvent) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := mc.ck.Apply(ev); err != nil {
		t.Fatalf("%s: %v", ev.Kind, err)
	}
}

func (s *memSource) open(mc *memClock) bots.OpenClock {
	region := mc.def.Region
	if region == "" {
		region = county
	}
	oc := bots.OpenClock{Case: string(mc.def.Room), CaseNumber: "(2026)新公刑字" + strings.TrimPrefix(string(mc.def.Room), "case-") + "号",
		Room: mc.def.Room, Region: region, Suspect: mc.def.Suspect, SuspectName: mc.def.SuspectName, Holder: mc.def.Holder, Committee: committee, Officers: mc.def.Officers}
	oc.SetTimes(mc.ck)
	if !mc.def.Known.IsZero() {
		oc.Since = mc.def.Known
	}
	return oc
}

func (s *memSource) OpenClocks(_ context.Context, f bots.ClockFilter) ([]bots.OpenClock, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []bots.OpenClock
	for _, mc := range s.clocks {
		oc := s.open(mc)
		if f.Match(&oc) {
			out = append(out, oc)
		}
	}
	return out, nil
}

// TimedAct records the act asked for; the case service will post it.
func (s *memSource) TimedAct(_ context.Context, bot acl.Subject, c bots.OpenClock, transition string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timed = append(s.timed, c.Key()+" "+transition)
	return nil
}

func (s *memSource) defs() []clockDef {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []clockDef
	for _, mc := range s.clocks {
		out = append(out, mc.def)
	}
	return out
}

// scheduler returns a scheduler on n reading src.
func (n *node) scheduler(src bots.ClockSource, opts bots.SchedulerOptions) *bots.Scheduler {
	d, rem := mustDomain(n.t)
	return bots.NewScheduler(src, n.chat, n.acl, n.store, rem, d.Clocks, botSubject(), n.clock.Now, slog.New(slog.DiscardHandler), opts)
}

// mustTick ticks s at the node's now and fails on an error.
func mustTick(t testing.TB, s *bots.Scheduler) bots.TickReport {
	t.Helper()
	rep, err := s.Tick(context.Background())
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	return rep
}

// writeJSON writes v to a file in dir and returns its path.
func writeJSON(t testing.TB, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// planIDs returns the IDs of a plan.
func planIDs(ps []bots.Point) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func eq(a, b []string) bool { return slices.Equal(a, b) }

var _ = fmt.Sprint

// mapFS is a file system of one file.
func mapFS(name, content string) fstest.MapFS {
	return fstest.MapFS{name: &fstest.MapFile{Data: []byte(content)}}
}
