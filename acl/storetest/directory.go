package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
)

func putRegionsInsertsAndUpdates(t *testing.T, s acl.Store) {
	ctx := t.Context()
	shuffled := []acl.Region{seedRegions[2], seedRegions[0], seedRegions[1]}
	mustOK(t, "PutRegions", s.PutRegions(ctx, shuffled, rec(audit.StreamDirectory, "region.import", "")))
	got, err := s.Regions(ctx)
	if err != nil || !slices.Equal(got, seedRegions) {
		t.Fatalf("Regions() = %+v, %v; want %+v (ordered by code), nil", got, err, seedRegions)
	}

	renamed := seedRegions[2]
	renamed.Name, renamed.Pinyin = "新城区（更名）", "Xincheng Qu 2"
	mustOK(t, "PutRegions (update)", s.PutRegions(ctx, []acl.Region{renamed}, rec(audit.StreamDirectory, "region.import", "")))
	want := []acl.Region{seedRegions[0], seedRegions[1], renamed}
	if got, err := s.Regions(ctx); err != nil || !slices.Equal(got, want) {
		t.Errorf("Regions() after update = %+v, %v; want %+v, nil", got, err, want)
	}
}

func createAndReadUnit(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	railway := acl.Unit{ID: "150102-railway-police", Kind: "police", Region: county, Name: "铁路公安处",
		NonTerritorial: true, Disabled: true, CreatedAt: t0.Add(time.Hour)}
	mustOK(t, "CreateUnit", s.CreateUnit(ctx, railway, rec(audit.StreamDirectory, "unit.create", string(railway.ID))))
	for _, want := range []acl.Unit{seedUnits[0], railway} {
		got, err := s.Unit(ctx, want.ID)
		if err != nil || !sameUnit(got, want) {
			t.Errorf("Unit(%q) = %+v, %v; want %+v, nil", want.ID, got, err, want)
		}
	}
}

func unitIDIsUnique(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	dup := seedUnits[0]
	dup.Name = "another court"
	wantErr(t, "CreateUnit(existing id)", s.CreateUnit(ctx, dup, rec(audit.StreamDirectory, "unit.create", string(dup.ID))), acl.ErrExists)
	if got, err := s.Unit(ctx, dup.ID); err != nil || got.Name != seedUnits[0].Name {
		t.Errorf("Unit(%q) after refused duplicate = %+v, %v; want name %q", dup.ID, got, err, seedUnits[0].Name)
	}
}

func unitAtUnknownRegionIsRefused(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	u := acl.Unit{ID: "999999-court", Kind: "court", Region: "999999", Name: "nowhere court", CreatedAt: t0}
	wantErr(t, "CreateUnit(unknown region)", s.CreateUnit(ctx, u, rec(audit.StreamDirectory, "unit.create", string(u.ID))), acl.ErrNotFound)
	_, err := s.Unit(ctx, u.ID)
	wantErr(t, "Unit(refused unit)", err, acl.ErrNotFound)
}

func unitsAreFilteredAndOrdered(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	extra := acl.Unit{ID: "150100-court", Kind: "court", Region: league, Name: "呼和浩特市中级人民法院", CreatedAt: t0}
	mustOK(t, "CreateUnit", s.CreateUnit(ctx, extra, rec(audit.StreamDirectory, "unit.create", string(extra.ID))))

	tests := []struct {
		filter acl.UnitFilter
		want   []acl.UnitID
	}{
		{acl.UnitFilter{}, []acl.UnitID{committee, "150100-court", court, procuratorate}},
		{acl.UnitFilter{Region: county}, []acl.UnitID{court, procuratorate}},
		{acl.UnitFilter{Kind: "court"}, []acl.UnitID{"150100-court", court}},
		{acl.UnitFilter{Region: league, Kind: "court"}, []acl.UnitID{"150100-court"}},
		{acl.UnitFilter{Region: root}, []acl.UnitID{}},
		{acl.UnitFilter{Kind: "prison"}, []acl.UnitID{}},
	}
	for _, tt := range tests {
		got, err := s.Units(ctx, tt.filter)
		if err != nil || !slices.Equal(unitIDs(got), tt.want) {
			t.Errorf("Units(%+v) = %v, %v; want %v, nil", tt.filter, unitIDs(got), err, tt.want)
		}
	}
	all, _ := s.Units(ctx, acl.UnitFilter{})
	for _, u := range all {
		if u.ID == court && !sameUnit(u, seedUnits[0]) {
			t.Errorf("Units({}) holds %+v, want %+v", u, seedUnits[0])
		}
	}
}

func setUnitDisabled(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	for _, disabled := range []bool{true, false} {
		mustOK(t, "SetUnitDisabled", s.SetUnitDisabled(ctx, court, disabled, rec(audit.StreamDirectory, "unit.disable", string(court))))
		if got, err := s.Unit(ctx, court); err != nil || got.Disabled != disabled {
			t.Errorf("Unit(%q) after SetUnitDisabled(%v) = %+v, %v; want Disabled %v", court, disabled, got, err, disabled)
		}
	}
	if got, _ := s.Unit(ctx, procuratorate); got.Disabled {
		t.Errorf("Unit(%q).Disabled = true after disabling another unit, want false", procuratorate)
	}
}

func createAndReadUser(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	tests := []struct {
		in   acl.User
		hash string
	}{
		{acl.User{ID: "u-wang", Username: "Wang.Wu", Name: "王五", Unit: committee,
			Roles: []acl.Role{acl.Supervisor, acl.Auditor}, CreatedAt: t0.Add(time.Minute)}, phc("u-wang")},
		{acl.User{ID: "bot-deadline", Username: "deadline-bot", Name: "期限提醒", Unit: committee,
			Bot: true, Disabled: true, CreatedAt: t0}, ""},
	}
	for _, tt := range tests {
		mustOK(t, "CreateUser "+string(tt.in.ID), s.CreateUser(ctx, tt.in, tt.hash, rec(audit.StreamDirectory, "user.create", string(tt.in.ID))))
		want := tt.in
		want.Username = strings.ToLower(tt.in.Username)
		got, err := s.User(ctx, tt.in.ID)
		if err != nil || !sameUser(got, want) {
			t.Errorf("User(%q) = %+v, %v; want %+v, nil", tt.in.ID, got, err, want)
		}
		c := mustCredentials(t, s, want.Username)
		if c.PasswordHash != tt.hash || !sameUser(c.User, want) {
			t.Errorf("Credentials(%q) = hash %q, user %+v; want %q, %+v", want.Username, c.PasswordHash, c.User, tt.hash, want)
		}
	}
}

func usernameIsUnique(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	sameName := acl.User{ID: "u-other", Username: "ALICE", Name: "another", Unit: court, CreatedAt: t0}
	wantErr(t, `CreateUser(username "ALICE" beside "alice")`, s.CreateUser(ctx, sameName, phc("x"), rec(audit.StreamDirectory, "user.create", "u-other")), acl.ErrExists)
	sameID := acl.User{ID: alice, Username: "alice2", Name: "another", Unit: court, CreatedAt: t0}
	wantErr(t, "CreateUser(existing id)", s.CreateUser(ctx, sameID, phc("x"), rec(audit.StreamDirectory, "user.create", string(alice))), acl.ErrExists)

	users, err := s.Users(ctx, acl.UserFilter{})
	if want := []acl.UserID{alice, bob}; err != nil || !slices.Equal(userIDs(users), want) {
		t.Errorf("Users({}) = %v, %v; want %v, nil", userIDs(users), err, want)
	}
	if c := mustCredentials(t, s, "alice"); c.User.ID != alice || c.User.Name != "张三" {
		t.Errorf(`Credentials("alice").User = %+v, want the first alice`, c.User)
	}
}

func userOfUnknownUnitIsRefused(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	u := acl.User{ID: "u-ghost", Username: "ghost", Name: "ghost", Unit: "no-such-unit", CreatedAt: t0}
	wantErr(t, "CreateUser(unknown unit)", s.CreateUser(ctx, u, phc("x"), rec(audit.StreamDirectory, "user.create", string(u.ID))), acl.ErrNotFound)
	_, err := s.User(ctx, u.ID)
	wantErr(t, "User(refused user)", err, acl.ErrNotFound)
}

func usersAreFilteredAndOrdered(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	extra := acl.User{ID: "u-aaron", Username: "aaron", Name: "赵六", Unit: court, Roles: []acl.Role{acl.Clerk}, CreatedAt: t0}
	mustOK(t, "CreateUser", s.CreateUser(ctx, extra, phc("u-aaron"), rec(audit.StreamDirectory, "user.create", string(extra.ID))))
	tests := []struct {
		filter acl.UserFilter
		want   []acl.UserID
	}{
		{acl.UserFilter{}, []acl.UserID{"u-aaron", alice, bob}},
		{acl.UserFilter{Unit: court}, []acl.UserID{"u-aaron", alice}},
		{acl.UserFilter{Unit: procuratorate}, []acl.UserID{bob}},
		{acl.UserFilter{Unit: committee}, []acl.UserID{}},
	}
	for _, tt := range tests {
		got, err := s.Users(ctx, tt.filter)
		if err != nil || !slices.Equal(userIDs(got), tt.want) {
			t.Errorf("Users(%+v) = %v, %v; want %v, nil", tt.filter, userIDs(got), err, tt.want)
		}
	}
	got, _ := s.Users(ctx, acl.UserFilter{Unit: procuratorate})
	if len(got) != 1 || !sameUser(got[0], seedUsers[1]) {
		t.Errorf("Users(procuratorate) = %+v, want [%+v]", got, seedUsers[1])
	}
}

func setRolesReplacesRoles(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	mustLogin(t, s, alice, "s-alice-roles", "tok-alice-roles", t0)
	mustLogin(t, s, bob, "s-bob-roles", "tok-bob-roles", t0)
	for _, roles := range [][]acl.Role{{acl.Auditor}, {acl.SecAdmin, acl.SysAdmin, acl.Leader}, nil} {
		mustOK(t, "SetRoles", s.SetRoles(ctx, alice, roles, t0, rec(audit.StreamDirectory, "user.roles", string(alice))))
		if got := mustUser(t, s, alice).Roles; !slices.Equal(got, roles) {
			t.Errorf("User(%q).Roles after SetRoles(%v) = %v, want %v", alice, roles, got, roles)
		}
	}
	if got := mustUser(t, s, bob).Roles; !slices.Equal(got, seedUsers[1].Roles) {
		t.Errorf("User(%q).Roles = %v after changing another user's, want %v", bob, got, seedUsers[1].Roles)
	}
	// Roles travel in access tokens: changing them ends the user's sessions, and
	// only theirs.
	if active, err := s.SessionActive(ctx, "s-alice-roles"); err != nil || active {
		t.Errorf("SessionActive(alice's session) after SetRoles = %v, %v; want false", active, err)
	}
	if active, err := s.SessionActive(ctx, "s-bob-roles"); err != nil || !active {
		t.Errorf("SessionActive(bob's session) after changing alice's roles = %v, %v; want true", active, err)
	}
}

func timesRoundTripToTheMicrosecond(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	beijing := time.FixedZone("CST", 8*3600)
	at := time.Date(2025, time.March, 3, 17, 30, 0, 987654321, beijing)
	want := at.Truncate(time.Microsecond)

	u := acl.Unit{ID: "150102-justice", Kind: "justice", Region: county, Name: "新城区司法局", CreatedAt: at}
	mustOK(t, "CreateUnit", s.CreateUnit(ctx, u, rec(audit.StreamDirectory, "unit.create", string(u.ID))))
	if got, err := s.Unit(ctx, u.ID); err != nil || !got.CreatedAt.Equal(want) {
		t.Errorf("Unit(%q).CreatedAt = %v, %v; want %v", u.ID, got.CreatedAt, err, want)
	}
	usr := acl.User{ID: "u-time", Username: "time", Name: "time", Unit: court, CreatedAt: at}
	mustOK(t, "CreateUser", s.CreateUser(ctx, usr, phc("u-time"), rec(audit.StreamDirectory, "user.create", string(usr.ID))))
	if got := mustUser(t, s, usr.ID).CreatedAt; !got.Equal(want) {
		t.Errorf("User(%q).CreatedAt = %v, want %v", usr.ID, got, want)
	}
	if _, err := s.LoginFailed(ctx, usr.ID, 1, at, rec(audit.StreamAuth, "auth.login", string(usr.ID))); err != nil {
		t.Fatalf("LoginFailed = %v, want nil", err)
	}
	if got := mustCredentials(t, s, "time").LockedUntil; !got.Equal(want) {
		t.Errorf("Credentials(%q).LockedUntil = %v, want %v", "time", got, want)
	}
}

func zeroTimeRoundTrips(t *testing.T, s acl.Store) {
	ctx := t.Context()
	mustOK(t, "PutRegions", s.PutRegions(ctx, seedRegions, rec(audit.StreamDirectory, "region.import", "")))
	u := acl.Unit{ID: "150102-court", Kind: "court", Region: county, Name: "court"}
	mustOK(t, "CreateUnit", s.CreateUnit(ctx, u, rec(audit.StreamDirectory, "unit.create", string(u.ID))))
	if got, err := s.Unit(ctx, u.ID); err != nil || !got.CreatedAt.IsZero() {
		t.Errorf("Unit(%q).CreatedAt = %v, %v; want the zero time", u.ID, got.CreatedAt, err)
	}
	usr := acl.User{ID: "u-zero", Username: "zero", Name: "zero", Unit: u.ID}
	mustOK(t, "CreateUser", s.CreateUser(ctx, usr, "", rec(audit.StreamDirectory, "user.create", string(usr.ID))))
	if got := mustUser(t, s, usr.ID).CreatedAt; !got.IsZero() {
		t.Errorf("User(%q).CreatedAt = %v, want the zero time", usr.ID, got)
	}
	if got := mustCredentials(t, s, "zero").LockedUntil; !got.IsZero() {
		t.Errorf("Credentials(%q).LockedUntil = %v for a user never locked, want the zero time", "zero", got)
	}

	r := rec("zero", "probe", "")
	r.At = time.Time{}
	mustOK(t, "Audit(zero At)", s.Audit(ctx, r))
	es := mustEntries(t, s, "zero")
	if len(es) != 1 || !es[0].At.IsZero() || !sameRecord(es[0].Record, r) {
		t.Errorf("AuditEntries(zero) = %+v, want one entry with the zero At, record %+v", es, r)
	}
}

// unknownIDsAnswerNotFound calls every method that names something on a name
// that is not stored; each must answer acl.ErrNotFound and audit nothing.
func unknownIDsAnswerNotFound(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	mustLogin(t, s, alice, "s-alice", "tok-alice", t0)
	dir, auth := len(mustEntries(t, s, audit.StreamDirectory)), len(mustEntries(t, s, audit.StreamAuth))
	d := rec(audit.StreamDirectory, "probe", "nobody")
	a := rec(audit.StreamAuth, "probe", "nobody")

	calls := []struct {
		name string
		err  func() error
	}{
		{"Unit", func() error { _, err := s.Unit(ctx, "no-unit"); return err }},
		{"SetUnitDisabled", func() error { return s.SetUnitDisabled(ctx, "no-unit", true, d) }},
		{"User", func() error { _, err := s.User(ctx, "no-user"); return err }},
		{"SetUserDisabled", func() error { return s.SetUserDisabled(ctx, "no-user", true, t0, d) }},
		{"SetPassword", func() error { return s.SetPassword(ctx, "no-user", phc("x"), t0, d) }},
		{"SetRoles", func() error { return s.SetRoles(ctx, "no-user", []acl.Role{acl.Officer}, t0, d) }},
		{"Credentials", func() error { _, err := s.Credentials(ctx, "no-user"); return err }},
		{"LoginFailed", func() error { _, err := s.LoginFailed(ctx, "no-user", 3, t0.Add(time.Hour), a); return err }},
		{"LoginSucceeded", func() error {
			first := token("tok-nobody", t0)
			first.Session, first.User = "s-nobody", "no-user"
			return s.LoginSucceeded(ctx, first, a)
		}},
		{"Unlock", func() error { return s.Unlock(ctx, "no-user", d) }},
		{"Rotate", func() error { n := token("tok-next", t0); return s.Rotate(ctx, hashOf("no-token"), &n, t0, a) }},
		{"RevokeSession", func() error { return s.RevokeSession(ctx, "no-session", t0, a) }},
	}
	for _, c := range calls {
		wantErr(t, c.name+"(unknown)", c.err(), acl.ErrNotFound)
	}
	if got, err := s.SessionActive(ctx, "no-session"); got || err != nil {
		t.Errorf(`SessionActive("no-session") = %v, %v; want false, nil`, got, err)
	}
	if got := len(mustEntries(t, s, audit.StreamDirectory)); got != dir {
		t.Errorf("directory stream has %d entries after refused calls, want %d", got, dir)
	}
	if got := len(mustEntries(t, s, audit.StreamAuth)); got != auth {
		t.Errorf("auth stream has %d entries after refused calls, want %d", got, auth)
	}
	wantActive(t, s, "s-alice", true)
}
