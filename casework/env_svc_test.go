package casework_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	aclsqlite "caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/acl/token"
	"caseroom/casework"
	cwsqlite "caseroom/casework/sqlite"
	"caseroom/chat"
	"caseroom/chat/membroker"
	chatsqlite "caseroom/chat/sqlite"
)

// An env is caseroom's services on one real SQLite database, built the way
// cmd/caseroomd builds them: the acl store and Guard on the shipped policy,
// chat on its store and an in-process broker, casework on its store.
type env struct {
	t       *testing.T
	db      *sqlitedb.DB
	acl     *aclsqlite.Store
	guard   *acl.Guard
	auth    *token.Auth
	dir     *acl.Directory
	broker  chat.Broker
	rooms   *chatsqlite.Store
	chat    *chat.Service
	hub     *chat.Hub
	store   *cwsqlite.Store
	cw      *casework.Service
	domain  *casework.Domain
	regions []acl.Region
	now     func() time.Time
	pw      map[string]string // username → password
	users   map[string]acl.User
}

// The units of the test directory. Region 150102 (新城区, Hohhot) is where the
// cases are; 150100 is Hohhot, its league; 150203 is a district of Baotou.
var testUnits = []acl.Unit{
	{Kind: "committee", Region: "150000", Name: "自治区党委政法委"},
	{Kind: "procuratorate", Region: "150000", Name: "自治区人民检察院"},
	{Kind: "court", Region: "150000", Name: "自治区高级人民法院"},
	{Kind: "justice", Region: "150000", Name: "自治区司法厅"},
	{Kind: "committee", Region: "150100", Name: "呼和浩特市委政法委"},
	{Kind: "procuratorate", Region: "150100", Name: "呼和浩特市人民检察院"},
	{Kind: "court", Region: "150100", Name: "呼和浩特市中级人民法院"},
	{Kind: "police", Region: "150100", Name: "呼和浩特市公安局"},
	{Kind: "committee", Region: "150102", Name: "新城区委政法委"},
	{Kind: "police", Region: "150102", Name: "新城区公安分局"},
	{Kind: "procuratorate", Region: "150102", Name: "新城区人民检察院"},
	{Kind: "court", Region: "150102", Name: "新城区人民法院"},
	{Kind: "justice", Region: "150102", Name: "新城区司法局"},
	{Kind: "legal_aid", Region: "150102", Name: "新城区法律援助中心"},
	{Kind: "detention", Region: "150102", Name: "新城区看守所"},
	{Kind: "police", Region: "150105", Name: "赛罕区公安分局"},
	{Kind: "court", Region: "150105", Name: "赛罕区人民法院"},
	{Kind: "committee", Region: "150203", Name: "昆都仑区委政法委"},
	{Kind: "police", Region: "150203", Name: "昆都仑区公安分局"},
}

// Users: <unit>.<role><n>, e.g. "150102-police.officer1".
var testStaff = map[acl.UnitKind][]acl.Role{
	"committee": {acl.Supervisor, acl.Supervisor, acl.Leader, acl.Clerk, acl.Auditor},
	"default":   {acl.Officer, acl.Officer, acl.Leader, acl.Clerk},
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvAt(t, time.Now)
}

// newEnvAt is newEnv with every service reading now (a test's clock).
func newEnvAt(t *testing.T, now func() time.Time) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "caseroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{t: t, db: db, acl: aclsqlite.New(db), rooms: chatsqlite.New(db), store: cwsqlite.New(db),
		now: now, pw: map[string]string{}, users: map[string]acl.User{}}
	for _, m := range []func(context.Context) error{e.acl.Migrate, e.rooms.Migrate, e.store.Migrate} {
		if err := m(ctx); err != nil {
			t.Fatal(err)
		}
	}
	root := os.DirFS("..")
	kinds, err := acl.LoadUnitKinds(root, "configs/unit-kinds.json")
	if err != nil {
		t.Fatal(err)
	}
	policy, err := acl.LoadPolicy(root, "configs/policy.json", acl.KindIDs(kinds))
	if err != nil {
		t.Fatal(err)
	}
	if e.regions, err = acl.LoadRegions(root, "configs/regions.csv"); err != nil {
		t.Fatal(err)
	}
	if e.domain, err = casework.Load(root, "configs"); err != nil {
		t.Fatal(err)
	}
	e.guard = acl.NewGuard(policy, acl.NewRegions(e.regions), e.acl, e.now)
	iss, err := token.LoadIssuer(ctx, e.acl, token.IssuerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e.auth = token.NewAuth(e.acl, iss, token.AuthConfig{PasswordParams: token.PasswordParams{Memory: 64, Time: 1, Threads: 1}}, e.now)
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() && os.Getenv("CASEWORK_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	e.dir = acl.NewDirectory(e.acl, e.guard, e.auth, kinds, e.now, log)
	e.dir.GeneratePassword = func() (string, error) { return token.GeneratePassword(), nil }
	e.broker = membroker.New(0)
	reg := chat.NewRegistry()
	casework.RegisterKinds(reg)
	e.chat = chat.NewService(e.rooms, e.broker, e.guard, e.acl, reg, e.now, log.With("pkg", "chat"), chat.Options{PostRate: 1000})
	e.hub = chat.NewHub(e.rooms, e.broker, log.With("pkg", "hub"), chat.HubOptions{})
	e.cw = casework.NewService(e.chat, e.rooms, e.store, e.guard, e.acl, e.domain.Procedures, e.regions, e.now,
		log.With("pkg", "casework"), casework.Options{Clocks: e.domain.Clocks, Calendar: e.domain.Calendar,
			Checklists: e.domain.Checklists, Audit: e.acl})

	console := acl.WithSubject(ctx, acl.ConsoleSubject())
	if err := e.dir.ImportRegions(console, e.regions); err != nil {
		t.Fatal(err)
	}
	for _, u := range testUnits {
		if _, err := e.dir.CreateUnit(console, u); err != nil {
			t.Fatal(err)
		}
		staff := testStaff[u.Kind]
		if staff == nil {
			staff = testStaff["default"]
		}
		n := map[acl.Role]int{}
		for _, r := range staff {
			n[r]++
			id := fmt.Sprintf("%s-%s.%s%d", u.Region, u.Kind, r, n[r])
			nu := acl.NewUser{Username: id, Name: fmt.Sprintf("%s %s%d", u.Name, r, n[r]), Unit: acl.UnitID(string(u.Region) + "-" + string(u.Kind)), Roles: []acl.Role{r}}
			usr, pw, err := e.dir.CreateUser(console, nu)
			if err != nil {
				t.Fatalf("create %s: %v", id, err)
			}
			e.pw[id], e.users[id] = pw, usr
		}
	}
	return e
}

// who returns the subject of user id, as acl/token makes it from a token.
func (e *env) who(id string) acl.Subject {
	e.t.Helper()
	u, ok := e.users[id]
	if !ok {
		e.t.Fatalf("no test user %q", id)
	}
	unit, err := e.acl.Unit(context.Background(), u.Unit)
	if err != nil {
		e.t.Fatal(err)
	}
	return acl.Subject{User: u.ID, Name: u.Name, Unit: unit.ID, UnitKind: unit.Kind, Region: unit.Region, Roles: u.Roles}
}

// as returns a context whose subject is user id.
func (e *env) as(id string) context.Context {
	return acl.WithSubject(e.t.Context(), e.who(id))
}

// denials returns the audited denials so far.
func (e *env) denials() []audit.Entry {
	e.t.Helper()
	es, err := e.acl.AuditEntries(context.Background(), audit.StreamDenials, 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

// ruleOf returns the rule of a refusal, "" for anything else.
func ruleOf(err error) string {
	if d, ok := errors.AsType[*acl.DeniedError](err); ok {
		return d.Rule
	}
	if r, ok := errors.AsType[*casework.RefusedError](err); ok {
		return r.Rule
	}
	return ""
}
