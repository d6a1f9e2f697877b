package acl_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/acl/sqlite"
	"caseroom/acl/sqlitedb"
	"caseroom/acl/token"
	"caseroom/configs"
)

// A testClock is a now that tests move by hand.
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

// fastArgon2 keeps password hashing cheap in tests; the format and checks are the real ones.
var fastArgon2 = token.PasswordParams{Memory: 64, Time: 1, Threads: 1}

// A dirEnv is a Directory on a real SQLite store, with the real Auth beside it
// and a small directory made by the console: units at a county and the region,
// a sysadmin, a secadmin, an auditor and two officers, all with known passwords.
type dirEnv struct {
	t       *testing.T
	store   *sqlite.Store
	guard   *acl.Guard
	dir     *acl.Directory
	auth    *token.Auth
	clock   *testClock
	console context.Context

	mu       sync.Mutex
	created  []acl.UnitID // guarded by mu: units OnUnitCreated saw
	revoked  []acl.UserID // guarded by mu: users OnSessionsRevoked saw
	password map[string]string
}

const (
	court     = acl.UnitID("150102-court")
	police    = acl.UnitID("150102-police")
	committee = acl.UnitID("150000-committee")
)

func mustDirEnv(t *testing.T) *dirEnv {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "acl.db"))
	if err != nil {
		t.Fatalf("sqlitedb.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	st := sqlite.New(db)
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
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
	auth := token.NewAuth(st, iss, token.AuthConfig{PasswordParams: fastArgon2}, clk.Now)
	guard := acl.NewGuard(policy, acl.NewRegions(nil), st, clk.Now)
	e := &dirEnv{t: t, store: st, guard: guard, auth: auth, clock: clk,
		console: acl.WithSubject(ctx, acl.ConsoleSubject()), password: map[string]string{}}
	e.dir = acl.NewDirectory(st, guard, auth, kinds, clk.Now, slog.New(slog.DiscardHandler))
	e.dir.GeneratePassword = func() (string, error) { return token.GeneratePassword(), nil }
	e.dir.OnUnitCreated = func(_ context.Context, u acl.Unit) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.created = append(e.created, u.ID)
		return nil
	}
	e.dir.OnSessionsRevoked = func(id acl.UserID) {
		auth.ForgetUser(id)
		e.mu.Lock()
		defer e.mu.Unlock()
		e.revoked = append(e.revoked, id)
	}

	rs, err := acl.LoadRegions(configs.FS, "regions.csv")
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, "ImportRegions", e.dir.ImportRegions(e.console, rs))
	for _, u := range []acl.Unit{
		{Kind: "court", Region: "150102", Name: "呼和浩特市新城区人民法院"},
		{Kind: "police", Region: "150102", Name: "呼和浩特市公安局新城区分局"},
		{Kind: acl.Committee, Region: "150000", Name: "中共内蒙古自治区委员会政法委员会"},
	} {
		if _, err := e.dir.CreateUnit(e.console, u); err != nil {
			t.Fatalf("CreateUnit(%s at %s) = %v", u.Kind, u.Region, err)
		}
	}
	for _, nu := range []acl.NewUser{
		{Username: "sys.admin", Name: "系统管理员", Unit: committee, Roles: []acl.Role{acl.SysAdmin}},
		{Username: "sec.admin", Name: "安全管理员", Unit: committee, Roles: []acl.Role{acl.SecAdmin}},
		{Username: "audit.one", Name: "审计员", Unit: committee, Roles: []acl.Role{acl.Auditor}},
		{Username: "court.officer1", Name: "新城区法院 法官1", Unit: court, Roles: []acl.Role{acl.Officer}},
		{Username: "police.officer1", Name: "新城区公安分局 民警1", Unit: police, Roles: []acl.Role{acl.Officer}},
	} {
		_, pw, err := e.dir.CreateUser(e.console, nu)
		if err != nil || pw == "" {
			t.Fatalf("CreateUser(%s) = %q, %v; want a generated password", nu.Username, pw, err)
		}
		e.password[nu.Username] = pw
	}
	return e
}

// as returns a context whose subject is username, signed in with its password.
func (e *dirEnv) as(username string) context.Context {
	e.t.Helper()
	tok, err := e.auth.Login(context.Background(), username, e.password[username], token.ClientMeta{IP: "127.0.0.1"})
	if err != nil {
		e.t.Fatalf("Login(%s) = %v", username, err)
	}
	return acl.WithSubject(context.Background(), tok.Subject)
}

// snapshot is the whole directory as JSON, credentials state included, for
// before/after comparisons.
func (e *dirEnv) snapshot() string {
	e.t.Helper()
	ctx := context.Background()
	rs, err := e.store.Regions(ctx)
	mustOK(e.t, "Regions", err)
	us, err := e.store.Units(ctx, acl.UnitFilter{})
	mustOK(e.t, "Units", err)
	users, err := e.store.Users(ctx, acl.UserFilter{})
	mustOK(e.t, "Users", err)
	var creds []acl.Credentials
	for _, u := range users {
		c, err := e.store.Credentials(ctx, u.Username)
		mustOK(e.t, "Credentials", err)
		creds = append(creds, c)
	}
	b, err := json.Marshal(map[string]any{"regions": rs, "units": us, "credentials": creds})
	mustOK(e.t, "marshal snapshot", err)
	return string(b)
}

// entries returns stream, checking that its chain verifies.
func (e *dirEnv) entries(stream string) []audit.Entry {
	e.t.Helper()
	es, err := e.store.AuditEntries(context.Background(), stream, 0, 1_000_000)
	mustOK(e.t, "AuditEntries "+stream, err)
	if err := audit.Verify(es); err != nil {
		e.t.Fatalf("audit.Verify(%s) = %v", stream, err)
	}
	return es
}

// unchanged runs f and checks that it changed neither the directory nor the
// directory audit stream, and that the denials stream grew by wantDenials.
func (e *dirEnv) unchanged(name string, wantDenials int, f func()) {
	e.t.Helper()
	before, dirBefore, denBefore := e.snapshot(), len(e.entries(audit.StreamDirectory)), len(e.entries(audit.StreamDenials))
	f()
	if after := e.snapshot(); after != before {
		e.t.Errorf("%s changed the directory:\nbefore %s\nafter  %s", name, before, after)
	}
	if n := len(e.entries(audit.StreamDirectory)); n != dirBefore {
		e.t.Errorf("%s: directory stream has %d entries, want %d", name, n, dirBefore)
	}
	if n := len(e.entries(audit.StreamDenials)) - denBefore; n != wantDenials {
		e.t.Errorf("%s: denials stream grew by %d, want %d", name, n, wantDenials)
	}
}

func mustOK(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = %v, want nil", call, err)
	}
}

// wantDenied checks that err is a *acl.DeniedError naming rule.
func wantDenied(t *testing.T, call string, err error, rule string) {
	t.Helper()
	de, ok := errors.AsType[*acl.DeniedError](err)
	if !ok || de.Rule != rule {
		t.Errorf("%s = %v, want denied by %s", call, err, rule)
	}
}

// wantInvalid checks that err is an *acl.InvalidError for field.
func wantInvalid(t *testing.T, call string, err error, field string) {
	t.Helper()
	ie, ok := errors.AsType[*acl.InvalidError](err)
	if !ok || ie.Field != field {
		t.Errorf("%s = %v, want invalid %s", call, err, field)
	}
}

func lastDenial(t *testing.T, e *dirEnv) audit.Entry {
	t.Helper()
	es := e.entries(audit.StreamDenials)
	if len(es) == 0 {
		t.Fatal("no denial recorded")
	}
	return es[len(es)-1]
}

func TestDirectoryNeedsASubject(t *testing.T) {
	e := mustDirEnv(t)
	ctx := context.Background()
	e.unchanged("anonymous calls", 0, func() {
		calls := map[string]error{}
		calls["ImportRegions"] = e.dir.ImportRegions(ctx, []acl.Region{{Code: "150000", Name: "x"}})
		_, calls["Regions"] = e.dir.Regions(ctx)
		_, calls["CreateUnit"] = e.dir.CreateUnit(ctx, acl.Unit{Kind: "court", Region: "150105", Name: "赛罕区人民法院"})
		calls["DisableUnit"] = e.dir.DisableUnit(ctx, court, true)
		_, calls["Units"] = e.dir.Units(ctx, acl.UnitFilter{})
		_, calls["Unit"] = e.dir.Unit(ctx, court)
		_, _, calls["CreateUser"] = e.dir.CreateUser(ctx, acl.NewUser{Username: "new.user", Name: "新用户", Unit: court})
		calls["DisableUser"] = e.dir.DisableUser(ctx, "court.officer1", true)
		_, calls["ResetPassword"] = e.dir.ResetPassword(ctx, "court.officer1", "")
		_, calls["SetRoles"] = e.dir.SetRoles(ctx, "court.officer1", []acl.Role{acl.Leader})
		calls["Unlock"] = e.dir.Unlock(ctx, "court.officer1")
		_, calls["Users"] = e.dir.Users(ctx, acl.UserFilter{})
		_, calls["User"] = e.dir.User(ctx, "court.officer1")
		_, calls["Audit"] = e.dir.Audit(ctx, audit.StreamDirectory, 0, 10)
		_, calls["SeedDemo"] = e.dir.SeedDemo(ctx, configs.FS, "demo.json", nil)
		for name, err := range calls {
			if !errors.Is(err, acl.ErrUnauthenticated) {
				t.Errorf("%s without a subject = %v, want ErrUnauthenticated", name, err)
			}
		}
	})
}

func TestSysadminCannotGrantRoles(t *testing.T) {
	e := mustDirEnv(t)
	sys := e.as("sys.admin")
	e.unchanged("sysadmin SetRoles", 1, func() {
		_, err := e.dir.SetRoles(sys, "court.officer1", []acl.Role{acl.Officer, acl.Leader})
		wantDenied(t, "SetRoles by sysadmin", err, "secadmin-security")
	})
	d := lastDenial(t, e)
	if d.Actor != "sys.admin" || d.Action != string(acl.GrantRoles) || d.Target != "user:court.officer1" || d.Outcome != audit.Denied {
		t.Errorf("denial recorded as %+v", d.Record)
	}
	// Creating a user with roles is a grant too: the account stays unopened.
	e.unchanged("sysadmin CreateUser with roles", 1, func() {
		_, _, err := e.dir.CreateUser(sys, acl.NewUser{Username: "court.leader1", Name: "法院 负责人1", Unit: court, Roles: []acl.Role{acl.Leader}})
		wantDenied(t, "CreateUser with roles by sysadmin", err, "secadmin-security")
	})
	// Without roles the sysadmin opens the account, and the secadmin grants.
	u, pw, err := e.dir.CreateUser(sys, acl.NewUser{Username: "court.leader1", Name: "法院 负责人1", Unit: court})
	if err != nil || pw == "" || len(u.Roles) != 0 {
		t.Fatalf("CreateUser without roles by sysadmin = %+v, %q, %v", u, pw, err)
	}
	u, err = e.dir.SetRoles(e.as("sec.admin"), u.ID, []acl.Role{acl.Leader, acl.Officer})
	if err != nil || !slices.Equal(u.Roles, []acl.Role{acl.Officer, acl.Leader}) {
		t.Fatalf("SetRoles by secadmin = %+v, %v; want officer, leader", u, err)
	}
	if got, _ := e.store.User(context.Background(), u.ID); !slices.Equal(got.Roles, u.Roles) {
		t.Errorf("stored roles = %v, want %v", got.Roles, u.Roles)
	}
	last := e.entries(audit.StreamDirectory)
	if r := last[len(last)-1]; r.Actor != "sec.admin" || r.Action != string(acl.GrantRoles) || !strings.Contains(r.Detail, `"leader"`) {
		t.Errorf("SetRoles recorded as %+v", r.Record)
	}
}

func TestSecadminCannotCreateUsersOrUnits(t *testing.T) {
	e := mustDirEnv(t)
	sec := e.as("sec.admin")
	e.unchanged("secadmin CreateUser", 1, func() {
		_, _, err := e.dir.CreateUser(sec, acl.NewUser{Username: "new.user", Name: "新用户", Unit: court, Roles: []acl.Role{acl.Officer}})
		wantDenied(t, "CreateUser by secadmin", err, "sysadmin-directory")
	})
	e.unchanged("secadmin CreateUnit", 1, func() {
		_, err := e.dir.CreateUnit(sec, acl.Unit{Kind: "court", Region: "150105", Name: "呼和浩特市赛罕区人民法院"})
		wantDenied(t, "CreateUnit by secadmin", err, "sysadmin-directory")
	})
	e.unchanged("secadmin DisableUser", 1, func() {
		wantDenied(t, "DisableUser by secadmin", e.dir.DisableUser(sec, "court.officer1", true), "sysadmin-directory")
	})
}

func TestOfficersOnlyReadTheDirectory(t *testing.T) {
	e := mustDirEnv(t)
	off := e.as("court.officer1")
	e.unchanged("officer administration", 6, func() {
		wantDenied(t, "ImportRegions by officer", e.dir.ImportRegions(off, []acl.Region{{Code: "150000", Name: "内蒙古自治区"}}), "sysadmin-directory")
		_, err := e.dir.CreateUnit(off, acl.Unit{Kind: "court", Region: "150105", Name: "赛罕区人民法院"})
		wantDenied(t, "CreateUnit by officer", err, "sysadmin-directory")
		wantDenied(t, "DisableUnit by officer", e.dir.DisableUnit(off, court, true), "sysadmin-directory")
		_, err = e.dir.ResetPassword(off, "police.officer1", "")
		wantDenied(t, "ResetPassword by officer", err, "secadmin-security")
		wantDenied(t, "Unlock by officer", e.dir.Unlock(off, "police.officer1"), "secadmin-security")
		_, err = e.dir.Audit(off, audit.StreamDirectory, 0, 10)
		wantDenied(t, "Audit by officer", err, "auditor-audit")
	})
	us, err := e.dir.Units(off, acl.UnitFilter{Region: "150102"})
	if err != nil || len(us) != 2 {
		t.Errorf("Units(150102) = %d units, %v; want 2", len(us), err)
	}
	if _, err := e.dir.User(off, "nobody"); !errors.Is(err, acl.ErrNotFound) {
		t.Errorf("User(nobody) = %v, want ErrNotFound", err)
	}
	if rs, err := e.dir.Regions(off); err != nil || len(rs) != 116 {
		t.Errorf("Regions = %d, %v; want 116", len(rs), err)
	}
}

func TestNoSelfGrant(t *testing.T) {
	e := mustDirEnv(t)
	sec := e.as("sec.admin")
	e.unchanged("self-grant", 1, func() {
		_, err := e.dir.SetRoles(sec, "sec.admin", []acl.Role{acl.SecAdmin, acl.Supervisor})
		wantDenied(t, "SetRoles on oneself", err, acl.RuleNoSelfGrant)
	})
	if d := lastDenial(t, e); d.Actor != "sec.admin" || d.Target != "user:sec.admin" || !strings.Contains(d.Detail, acl.RuleNoSelfGrant) {
		t.Errorf("denial recorded as %+v", d.Record)
	}
	// Dropping one's own roles is a change of one's own roles all the same.
	e.unchanged("self-revoke", 1, func() {
		_, err := e.dir.SetRoles(sec, "sec.admin", nil)
		wantDenied(t, "SetRoles(nil) on oneself", err, acl.RuleNoSelfGrant)
	})
	e.unchanged("self-disable", 1, func() {
		wantDenied(t, "DisableUser on oneself", e.dir.DisableUser(e.as("sys.admin"), "sys.admin", true), acl.RuleNoSelfDisable)
	})
}

func TestSeparateAdminRoles(t *testing.T) {
	e := mustDirEnv(t)
	sec := e.as("sec.admin")
	for _, roles := range [][]acl.Role{
		{acl.SysAdmin, acl.SecAdmin},
		{acl.SysAdmin, acl.Auditor},
		{acl.SecAdmin, acl.Auditor},
		{acl.Officer, acl.Auditor, acl.SysAdmin},
	} {
		e.unchanged("SetRoles", 1, func() {
			_, err := e.dir.SetRoles(sec, "court.officer1", roles)
			wantDenied(t, "SetRoles(court.officer1, "+strings.Join(roleNames(roles), ",")+")", err, acl.RuleSeparateAdminRoles)
		})
		e.unchanged("CreateUser", 1, func() {
			_, _, err := e.dir.CreateUser(e.console, acl.NewUser{Username: "two.hats", Name: "两顶帽子", Unit: committee, Roles: roles})
			wantDenied(t, "CreateUser(two.hats, "+strings.Join(roleNames(roles), ",")+")", err, acl.RuleSeparateAdminRoles)
		})
	}
	// One administrator role beside staff roles is allowed.
	if _, err := e.dir.SetRoles(sec, "court.officer1", []acl.Role{acl.Officer, acl.Auditor}); err != nil {
		t.Errorf("SetRoles(officer, auditor) = %v, want nil", err)
	}
}

func roleNames(rs []acl.Role) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, string(r))
	}
	return out
}

func TestCreateUserRefusesBadInput(t *testing.T) {
	e := mustDirEnv(t)
	sys := e.as("sys.admin")
	mustOK(t, "DisableUnit(police)", e.dir.DisableUnit(sys, police, true))
	ok := acl.NewUser{Username: "court.clerk1", Name: "新城区法院 书记员1", Unit: court, Password: "a perfectly fine passphrase"}
	for _, tt := range []struct {
		name  string
		edit  func(*acl.NewUser)
		field string
	}{
		{"username too short", func(u *acl.NewUser) { u.Username = "ab" }, "username"},
		{"username too long", func(u *acl.NewUser) { u.Username = strings.Repeat("a", 65) }, "username"},
		{"username with a space", func(u *acl.NewUser) { u.Username = "court clerk" }, "username"},
		{"username in Chinese", func(u *acl.NewUser) { u.Username = "书记员一号" }, "username"},
		{"username starting with a dot", func(u *acl.NewUser) { u.Username = ".clerk" }, "username"},
		{"username reserved", func(u *acl.NewUser) { u.Username = "console" }, "username"},
		{"name missing", func(u *acl.NewUser) { u.Name = "  " }, "name"},
		{"name too long", func(u *acl.NewUser) { u.Name = strings.Repeat("名", 65) }, "name"},
		{"name with a newline", func(u *acl.NewUser) { u.Name = "书记员\n1" }, "name"},
		{"unit unknown", func(u *acl.NewUser) { u.Unit = "150102-nothing" }, "unit"},
		{"unit disabled", func(u *acl.NewUser) { u.Unit = police }, "unit"},
		{"role unknown", func(u *acl.NewUser) { u.Roles = []acl.Role{"king"} }, "roles"},
		{"role twice", func(u *acl.NewUser) { u.Roles = []acl.Role{acl.Clerk, acl.Clerk} }, "roles"},
		{"password too short", func(u *acl.NewUser) { u.Password = "short" }, "password"},
		{"password common", func(u *acl.NewUser) { u.Password = "password1234" }, "password"},
		{"password holds the username", func(u *acl.NewUser) { u.Password = "my court.clerk1 password" }, "password"},
	} {
		nu := ok
		tt.edit(&nu)
		e.unchanged(tt.name, 0, func() {
			_, _, err := e.dir.CreateUser(e.console, nu)
			wantInvalid(t, "CreateUser("+tt.name+")", err, tt.field)
			if err != nil && strings.Contains(err.Error(), nu.Password) {
				t.Errorf("CreateUser(%s) error quotes the password: %v", tt.name, err)
			}
		})
	}
	e.unchanged("taken username", 0, func() {
		nu := ok
		nu.Username = "Court.Officer1" // usernames are compared lowercase
		if _, _, err := e.dir.CreateUser(e.console, nu); !errors.Is(err, acl.ErrExists) {
			t.Errorf("CreateUser(taken username) = %v, want ErrExists", err)
		}
	})
	// The good input works, and a given password is not echoed back.
	u, pw, err := e.dir.CreateUser(e.console, ok)
	if err != nil || pw != "" || u.ID != "court.clerk1" {
		t.Fatalf("CreateUser(ok) = %+v, %q, %v", u, pw, err)
	}
	es := e.entries(audit.StreamDirectory)
	if r := es[len(es)-1]; r.Action != string(acl.CreateUser) || strings.Contains(r.Detail, ok.Password) || !strings.Contains(r.Detail, `"password_generated":false`) {
		t.Errorf("CreateUser recorded as %+v", r.Record)
	}
	if _, err := e.auth.Login(context.Background(), "COURT.CLERK1", ok.Password, token.ClientMeta{}); err != nil {
		t.Errorf("Login with the given password = %v", err)
	}
}

func TestRefusedInputIsClippedInTheAuditRecord(t *testing.T) {
	e := mustDirEnv(t)
	long := strings.Repeat("x", 1<<20)
	_, _, err := e.dir.CreateUser(e.as("court.officer1"), acl.NewUser{Username: long, Name: "x", Unit: acl.UnitID(long)})
	wantDenied(t, "CreateUser(1 MiB username) by an officer", err, "sysadmin-directory")
	if d := lastDenial(t, e); len(d.Target)+len(d.Detail) > 512 {
		t.Errorf("the denial recorded %d bytes of target and %d of detail", len(d.Target), len(d.Detail))
	}
}

func TestCreateUnitRefusesBadInput(t *testing.T) {
	e := mustDirEnv(t)
	sys := e.as("sys.admin")
	ok := acl.Unit{Kind: "procuratorate", Region: "150105", Name: "呼和浩特市赛罕区人民检察院"}
	for _, tt := range []struct {
		name  string
		edit  func(*acl.Unit)
		field string
	}{
		{"kind unknown", func(u *acl.Unit) { u.Kind = "ministry" }, "kind"},
		{"region malformed", func(u *acl.Unit) { u.Region = "15x105" }, "region"},
		{"region unknown", func(u *acl.Unit) { u.Region = "159999" }, "region"},
		{"name missing", func(u *acl.Unit) { u.Name = "" }, "name"},
		{"name too long", func(u *acl.Unit) { u.Name = strings.Repeat("院", 101) }, "name"},
		{"id with capitals", func(u *acl.Unit) { u.ID = "150105-Procuratorate" }, "id"},
		{"id too short", func(u *acl.Unit) { u.ID = "ab" }, "id"},
		{"non-territorial without id", func(u *acl.Unit) { u.NonTerritorial = true }, "id"},
	} {
		u := ok
		tt.edit(&u)
		e.unchanged(tt.name, 0, func() {
			_, err := e.dir.CreateUnit(sys, u)
			wantInvalid(t, "CreateUnit("+tt.name+")", err, tt.field)
		})
	}
	e.unchanged("taken id", 0, func() {
		_, err := e.dir.CreateUnit(sys, acl.Unit{Kind: "court", Region: "150102", Name: "又一个法院"})
		if !errors.Is(err, acl.ErrExists) {
			t.Errorf("CreateUnit(taken id) = %v, want ErrExists", err)
		}
	})
	e.mu.Lock()
	before := len(e.created)
	e.mu.Unlock()
	u, err := e.dir.CreateUnit(sys, ok)
	if err != nil || u.ID != "150105-procuratorate" || u.CreatedAt.IsZero() {
		t.Fatalf("CreateUnit(ok) = %+v, %v; want id 150105-procuratorate", u, err)
	}
	rail, err := e.dir.CreateUnit(sys, acl.Unit{ID: "150100-railway-police", Kind: "police", Region: "150100", Name: "呼和浩特铁路公安处", NonTerritorial: true})
	if err != nil || !rail.NonTerritorial {
		t.Fatalf("CreateUnit(railway police) = %+v, %v", rail, err)
	}
	e.mu.Lock()
	if got := e.created[before:]; !slices.Equal(got, []acl.UnitID{u.ID, rail.ID}) {
		t.Errorf("OnUnitCreated saw %v, want %v", got, []acl.UnitID{u.ID, rail.ID})
	}
	e.mu.Unlock()
}

func TestCreateUnitReportsAFailedHook(t *testing.T) {
	e := mustDirEnv(t)
	boom := errors.New("room store down")
	e.dir.OnUnitCreated = func(context.Context, acl.Unit) error { return boom }
	u, err := e.dir.CreateUnit(e.console, acl.Unit{Kind: "court", Region: "150105", Name: "呼和浩特市赛罕区人民法院"})
	if !errors.Is(err, boom) || u.ID != "150105-court" {
		t.Errorf("CreateUnit with a failing hook = %+v, %v; want the unit and the hook's error", u, err)
	}
	if _, err := e.store.Unit(context.Background(), "150105-court"); err != nil {
		t.Errorf("unit not stored: %v", err)
	}
}

func TestImportRegionsRefusesBadInput(t *testing.T) {
	e := mustDirEnv(t)
	sys := e.as("sys.admin")
	for _, tt := range []struct {
		name  string
		rs    []acl.Region
		field string
	}{
		{"empty", nil, "regions"},
		{"code malformed", []acl.Region{{Code: "15010", Parent: "150000", Name: "x", Level: 1}}, "regions[0].code"},
		{"duplicate", []acl.Region{{Code: "150900", Parent: "150000", Name: "甲", Level: 1}, {Code: "150900", Parent: "150000", Name: "乙", Level: 1}}, "regions[1].code"},
		{"name missing", []acl.Region{{Code: "150900", Parent: "150000", Level: 1}}, "regions[0].name"},
		{"level out of range", []acl.Region{{Code: "150900", Parent: "150000", Name: "甲", Level: 3}}, "regions[0].level"},
		{"second root", []acl.Region{{Code: "160000", Name: "另一区", Level: 0}}, "regions[0].code"},
		{"league without parent", []acl.Region{{Code: "150901", Name: "乙", Level: 1}}, "regions[0].parent"},
		{"unknown parent", []acl.Region{{Code: "159901", Parent: "159900", Name: "甲", Level: 2}}, "regions[0].parent"},
		{"parent at the wrong level", []acl.Region{{Code: "150199", Parent: "150000", Name: "甲", Level: 2}}, "regions[0].parent"},
	} {
		e.unchanged(tt.name, 0, func() {
			wantInvalid(t, "ImportRegions("+tt.name+")", e.dir.ImportRegions(sys, tt.rs), tt.field)
		})
	}
	// A good import is stored and put in force in the guard.
	mustOK(t, "ImportRegions(new league)", e.dir.ImportRegions(sys, []acl.Region{
		{Code: "150900", Parent: "150000", Name: "测试盟", Level: 1, Kind: "盟"},
		{Code: "150901", Parent: "150900", Name: "测试旗", Level: 2, Kind: "旗"},
	}))
	if !e.guard.Regions().Covers("150900", "150901") {
		t.Error("the guard does not know the imported regions")
	}
}

func TestDisabledUsersTokenIsRefusedAtOnce(t *testing.T) {
	e := mustDirEnv(t)
	tok, err := e.auth.Login(context.Background(), "court.officer1", e.password["court.officer1"], token.ClientMeta{})
	mustOK(t, "Login", err)
	if _, err := e.auth.VerifyAccess(context.Background(), tok.Access); err != nil {
		t.Fatalf("VerifyAccess before = %v", err)
	}
	mustOK(t, "DisableUser", e.dir.DisableUser(e.as("sys.admin"), "court.officer1", true))
	// No clock movement: the refusal does not wait for the session cache.
	if _, err := e.auth.VerifyAccess(context.Background(), tok.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("VerifyAccess after DisableUser = %v, want ErrTokenInvalid", err)
	}
	if _, err := e.auth.Refresh(context.Background(), tok.Refresh); err == nil {
		t.Error("Refresh after DisableUser succeeded")
	}
	if _, err := e.auth.Login(context.Background(), "court.officer1", e.password["court.officer1"], token.ClientMeta{}); !errors.Is(err, acl.ErrDisabled) {
		t.Errorf("Login after DisableUser = %v, want ErrDisabled", err)
	}
	e.mu.Lock()
	if !slices.Contains(e.revoked, "court.officer1") {
		t.Errorf("OnSessionsRevoked saw %v, want court.officer1", e.revoked)
	}
	e.mu.Unlock()
	mustOK(t, "DisableUser(false)", e.dir.DisableUser(e.as("sys.admin"), "court.officer1", false))
	e.as("court.officer1") // can log in again
}

func TestResetPasswordGeneratesOneAndEndsSessions(t *testing.T) {
	e := mustDirEnv(t)
	old, err := e.auth.Login(context.Background(), "police.officer1", e.password["police.officer1"], token.ClientMeta{})
	mustOK(t, "Login", err)
	pw, err := e.dir.ResetPassword(e.as("sec.admin"), "police.officer1", "")
	if err != nil || len(pw) < 12 {
		t.Fatalf("ResetPassword(generate) = %q, %v", pw, err)
	}
	if _, err := e.auth.VerifyAccess(context.Background(), old.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("old token after reset = %v, want ErrTokenInvalid", err)
	}
	if _, err := e.auth.Login(context.Background(), "police.officer1", e.password["police.officer1"], token.ClientMeta{}); !errors.Is(err, acl.ErrBadCredentials) {
		t.Errorf("Login with the old password = %v, want ErrBadCredentials", err)
	}
	if _, err := e.auth.Login(context.Background(), "police.officer1", pw, token.ClientMeta{}); err != nil {
		t.Errorf("Login with the generated password = %v", err)
	}
	es := e.entries(audit.StreamDirectory)
	if r := es[len(es)-1]; r.Action != string(acl.ResetPassword) || strings.Contains(r.Detail, pw) {
		t.Errorf("reset recorded as %+v", r.Record)
	}
	// A chosen password must pass the policy; a refused one changes nothing.
	e.unchanged("weak reset", 0, func() {
		_, err := e.dir.ResetPassword(e.as("sec.admin"), "police.officer1", "short")
		wantInvalid(t, "ResetPassword(short)", err, "password")
	})
	e.unchanged("reset of nobody", 0, func() {
		if _, err := e.dir.ResetPassword(e.as("sec.admin"), "nobody", ""); !errors.Is(err, acl.ErrNotFound) {
			t.Errorf("ResetPassword(nobody) = %v, want ErrNotFound", err)
		}
	})
	got, err := e.dir.ResetPassword(e.as("sec.admin"), "police.officer1", "a chosen long passphrase")
	if err != nil || got != "" {
		t.Errorf("ResetPassword(chosen) = %q, %v; want \"\", nil", got, err)
	}
}

func TestUnlockAfterLockout(t *testing.T) {
	e := mustDirEnv(t)
	var err error
	for range 5 {
		_, err = e.auth.Login(context.Background(), "court.officer1", "not the password at all", token.ClientMeta{})
	}
	if !errors.Is(err, acl.ErrLocked) {
		t.Fatalf("5th wrong password = %v, want ErrLocked", err)
	}
	if _, err := e.auth.Login(context.Background(), "court.officer1", e.password["court.officer1"], token.ClientMeta{}); !errors.Is(err, acl.ErrLocked) {
		t.Fatalf("right password while locked = %v, want ErrLocked", err)
	}
	mustOK(t, "Unlock", e.dir.Unlock(e.as("sec.admin"), "court.officer1"))
	e.as("court.officer1")
	if err := e.dir.Unlock(e.as("sec.admin"), "nobody"); !errors.Is(err, acl.ErrNotFound) {
		t.Errorf("Unlock(nobody) = %v, want ErrNotFound", err)
	}
}

func TestAuditStreamsFollowSeparationOfDuties(t *testing.T) {
	e := mustDirEnv(t)
	e.as("court.officer1") // an auth entry
	aud, sec := e.as("audit.one"), e.as("sec.admin")
	for _, stream := range []string{audit.StreamDirectory, audit.StreamAuth, audit.StreamDenials} {
		if _, err := e.dir.Audit(aud, stream, 0, 100); err != nil {
			t.Errorf("auditor reading %s = %v", stream, err)
		}
	}
	for _, stream := range []string{audit.StreamAuth, audit.StreamDenials} {
		if _, err := e.dir.Audit(sec, stream, 0, 100); err != nil {
			t.Errorf("secadmin reading %s = %v", stream, err)
		}
	}
	_, err := e.dir.Audit(sec, audit.StreamDirectory, 0, 100)
	wantDenied(t, "secadmin reading directory", err, "auditor-audit")
	_, err = e.dir.Audit(e.as("sys.admin"), audit.StreamAuth, 0, 100)
	wantDenied(t, "sysadmin reading auth", err, "auditor-audit")
	if _, err := e.dir.Audit(aud, "room:1", 0, 100); !errors.Is(err, acl.ErrNotFound) {
		t.Errorf("Audit(unknown stream) = %v, want ErrNotFound", err)
	}
	_, err = e.dir.Audit(aud, audit.StreamDirectory, 0, 0)
	wantInvalid(t, "Audit(limit 0)", err, "limit")
	_, err = e.dir.Audit(aud, audit.StreamDirectory, -1, 10)
	wantInvalid(t, "Audit(after -1)", err, "after")
	// A league's auditor does not read the region-wide streams.
	leagueAudit, err := e.dir.CreateUnit(e.console, acl.Unit{Kind: acl.Committee, Region: "150100", Name: "中共呼和浩特市委政法委员会"})
	mustOK(t, "CreateUnit(league committee)", err)
	_, pw, err := e.dir.CreateUser(e.console, acl.NewUser{Username: "audit.league", Name: "市审计员", Unit: leagueAudit.ID, Roles: []acl.Role{acl.Auditor}})
	mustOK(t, "CreateUser(league auditor)", err)
	e.password["audit.league"] = pw
	league := e.as("audit.league")
	e.unchanged("league auditor", 1, func() {
		_, err := e.dir.Audit(league, audit.StreamDenials, 0, 10)
		wantDenied(t, "Audit by a league auditor", err, acl.RuleAuditWholeRegion)
	})
	es, err := e.dir.Audit(aud, audit.StreamDirectory, 2, 3)
	if err != nil || len(es) != 3 || es[0].Seq != 3 {
		t.Errorf("Audit(directory, after 2, limit 3) = %d entries from %v, %v", len(es), es, err)
	}
}

func TestSeedDemoIsIdempotent(t *testing.T) {
	e := mustDirEnv(t)
	first, err := e.dir.SeedDemo(e.console, configs.FS, "demo.json", nil)
	if err != nil {
		t.Fatalf("SeedDemo = %v", err)
	}
	if len(first) < 100 {
		t.Fatalf("SeedDemo created %d accounts, want the whole demo", len(first))
	}
	seen := map[string]bool{}
	for _, a := range first {
		if a.Password == "" || seen[a.Password] {
			t.Fatalf("account %s has an empty or repeated password", a.Username)
		}
		seen[a.Password] = true
	}
	// Every printed password logs in.
	for _, a := range first {
		if _, err := e.auth.Login(context.Background(), a.Username, a.Password, token.ClientMeta{}); err != nil {
			t.Fatalf("Login(%s) with its seeded password = %v", a.Username, err)
		}
	}
	e.mu.Lock()
	units := len(e.created)
	e.mu.Unlock()
	before := e.snapshot()
	again, err := e.dir.SeedDemo(e.console, configs.FS, "demo.json", func() (string, error) {
		t.Error("the second seed generated a password")
		return token.GeneratePassword(), nil
	})
	if err != nil || len(again) != 0 {
		t.Errorf("second SeedDemo = %d accounts, %v; want none", len(again), err)
	}
	if e.snapshot() != before {
		t.Error("the second SeedDemo changed the directory")
	}
	e.mu.Lock()
	if len(e.created) != units {
		t.Errorf("the second SeedDemo created %d units", len(e.created)-units)
	}
	e.mu.Unlock()
}

func TestShippedDemoFile(t *testing.T) {
	e := mustDirEnv(t)
	accounts, err := e.dir.SeedDemo(e.console, configs.FS, "demo.json", nil)
	if err != nil {
		t.Fatalf("SeedDemo(configs/demo.json) = %v", err)
	}
	byName := map[string]acl.DemoAccount{}
	for _, a := range accounts {
		byName[a.Username] = a
	}
	ctx := context.Background()
	for id, name := range map[acl.UnitID]string{
		"150102-police":         "呼和浩特市公安局新城区分局",
		"150102-procuratorate":  "呼和浩特市新城区人民检察院",
		"150105-court":          "呼和浩特市赛罕区人民法院",
		"150203-justice":        "包头市昆都仑区司法局",
		"150102-committee":      "中共新城区委政法委员会",
		"150100-committee":      "中共呼和浩特市委政法委员会",
		"150000-committee":      "中共内蒙古自治区委员会政法委员会",
		"150100-railway-police": "呼和浩特铁路公安处",
	} {
		u, err := e.store.Unit(ctx, id)
		if err != nil || u.Name != name {
			t.Errorf("unit %s = %q, %v; want %q", id, u.Name, err, name)
		}
	}
	if u, _ := e.store.Unit(ctx, "150100-railway-police"); !u.NonTerritorial {
		t.Error("the railway police is not flagged non-territorial")
	}
	// One unit of every kind at each county.
	kinds, _ := acl.LoadUnitKinds(configs.FS, "unit-kinds.json")
	for _, county := range []acl.RegionCode{"150102", "150105", "150203"} {
		us, _ := e.store.Units(ctx, acl.UnitFilter{Region: county})
		if len(us) != len(kinds) {
			t.Errorf("county %s has %d units, want %d", county, len(us), len(kinds))
		}
	}
	for username, want := range map[string]struct {
		name string
		role acl.Role
	}{
		"police.150102.officer1":         {"新城区公安分局 民警1", acl.Officer},
		"police.150102.officer2":         {"新城区公安分局 民警2", acl.Officer},
		"court.150105.leader1":           {"赛罕区法院 负责人1", acl.Leader},
		"procuratorate.150203.clerk1":    {"昆都仑区检察院 书记员1", acl.Clerk},
		"committee.150102.supervisor2":   {"新城区政法委 督查员2", acl.Supervisor},
		"committee.150000.sysadmin1":     {"自治区政法委 系统管理员1", acl.SysAdmin},
		"committee.150000.secadmin1":     {"自治区政法委 安全管理员1", acl.SecAdmin},
		"committee.150000.auditor1":      {"自治区政法委 审计员1", acl.Auditor},
		"railway-police.150100.officer1": {"呼铁公安处 民警1", acl.Officer},
	} {
		a, ok := byName[username]
		if !ok {
			t.Errorf("no demo account %s", username)
			continue
		}
		if a.Name != want.name || !slices.Equal(a.Roles, []acl.Role{want.role}) {
			t.Errorf("demo account %s = %q %v, want %q [%s]", username, a.Name, a.Roles, want.name, want.role)
		}
	}
	// Each administrator role is held by its own person.
	users, _ := e.store.Users(ctx, acl.UserFilter{})
	for _, u := range users {
		n := 0
		for _, r := range u.Roles {
			if r == acl.SysAdmin || r == acl.SecAdmin || r == acl.Auditor {
				n++
			}
		}
		if n > 1 {
			t.Errorf("user %s holds %v", u.ID, u.Roles)
		}
	}
}

func TestSeedDemoNamesTheBadField(t *testing.T) {
	e := mustDirEnv(t)
	for _, tt := range []struct{ name, file, want string }{
		{"unknown kind", `{"places":[{"region":"150102","kinds":["ministry"]}]}`, "places[0].kinds"},
		{"unknown role", `{"places":[{"region":"150102","kinds":["court"]}],"staff":{"default":{"king":1}}}`, "unknown role"},
		{"count too big", `{"places":[{"region":"150102","kinds":["court"]}],"staff":{"default":{"officer":1000}}}`, "staff.default.officer"},
		{"unknown field", `{"places":[],"colour":"red"}`, "unknown field"},
		{"unknown region", `{"places":[{"region":"159999","kinds":["court"]}]}`, "places[0].region"},
		{"nothing", `{"places":[]}`, "nothing to seed"},
	} {
		fsys := fstest.MapFS{"demo.json": {Data: []byte(tt.file)}}
		e.unchanged(tt.name, 0, func() {
			_, err := e.dir.SeedDemo(e.console, fsys, "demo.json", nil)
			if err == nil || !strings.Contains(err.Error(), "demo.json") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SeedDemo(%s) = %v, want an error naming demo.json and %q", tt.name, err, tt.want)
			}
		})
	}
}
