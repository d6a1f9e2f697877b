// Package storetest checks an acl.Store against the contract written on the
// interface, so that the SQLite and PostgreSQL stores behave alike. New store
// behaviour gets its subtest here, not in one backend.
package storetest

import (
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
)

// Run runs the conformance suite. newStore must return a fresh, migrated, empty
// store; it is called once for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) acl.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s acl.Store)
	}{
		// Directory.
		{"PutRegionsInsertsAndUpdates", putRegionsInsertsAndUpdates},
		{"CreateAndReadUnit", createAndReadUnit},
		{"UnitIDIsUnique", unitIDIsUnique},
		{"UnitAtUnknownRegionIsRefused", unitAtUnknownRegionIsRefused},
		{"UnitsAreFilteredAndOrderedByID", unitsAreFilteredAndOrdered},
		{"SetUnitDisabled", setUnitDisabled},
		{"CreateAndReadUser", createAndReadUser},
		{"UsernameIsUnique", usernameIsUnique},
		{"UserOfUnknownUnitIsRefused", userOfUnknownUnitIsRefused},
		{"UsersAreFilteredAndOrderedByID", usersAreFilteredAndOrdered},
		{"SetRolesReplacesRoles", setRolesReplacesRoles},
		{"TimesRoundTripToTheMicrosecond", timesRoundTripToTheMicrosecond},
		{"ZeroTimeRoundTrips", zeroTimeRoundTrips},
		{"UnknownIDsAnswerNotFound", unknownIDsAnswerNotFound},

		// Credentials and sessions.
		{"CredentialsIgnoreUsernameCase", credentialsIgnoreUsernameCase},
		{"LockoutAfterMaxFailures", lockoutAfterMaxFailures},
		{"LoginSucceededResetsFailuresAndExpiredLock", loginSucceededResets},
		{"SessionIDIsUnique", sessionIDIsUnique},
		{"UnlockClearsLockout", unlockClearsLockout},
		{"DisableRevokesSessions", disableRevokesSessions},
		{"SetPasswordRevokesSessionsAndClearsLockout", setPasswordRevokes},
		{"RevocationNeedsATime", revocationNeedsATime},
		{"RotateSpendsToken", rotateSpendsToken},
		{"ReusedTokenRevokesFamily", reusedTokenRevokesFamily},
		{"ConcurrentRotateOnlyOneWins", concurrentRotateOnlyOneWins},
		{"ExpiredTokenRefused", expiredTokenRefused},
		{"RevokedSessionRefusesRotation", revokedSessionRefusesRotation},
		{"SigningKeyIsStoredOnce", signingKeyIsStoredOnce},

		// Audit.
		{"EveryChangeIsAudited", everyChangeIsAudited},
		{"FailedChangeLeavesNoAuditEntry", failedChangeLeavesNoAuditEntry},
		{"AuditEntriesPageInOrder", auditEntriesPageInOrder},
		{"StreamsAreSeparateChains", streamsAreSeparateChains},
		{"AuditTimeIsStoredInMicroseconds", auditTimeIsStoredInMicroseconds},
		{"AuditChainVerifiesUnderConcurrency", auditChainVerifiesUnderConcurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore(t)) })
	}
}

// t0 is the suite's clock: a real date, with microsecond precision as stored.
var t0 = time.Date(2025, time.March, 3, 9, 30, 0, 123456000, time.UTC)

// The seeded directory: a region tree, three units and two users.
const (
	root   acl.RegionCode = "150000"
	league acl.RegionCode = "150100"
	county acl.RegionCode = "150102"

	court         acl.UnitID = "150102-court"
	procuratorate acl.UnitID = "150102-procuratorate"
	committee     acl.UnitID = "150100-committee"

	alice acl.UserID = "u-alice" // officer at the court
	bob   acl.UserID = "u-bob"   // leader at the procuratorate
)

var seedRegions = []acl.Region{ // ordered by code
	{Code: root, Name: "内蒙古自治区", Pinyin: "Nei Mongol Zizhiqu", Level: acl.LevelProvince, Kind: "自治区"},
	{Code: league, Parent: root, Name: "呼和浩特市", Pinyin: "Hohhot Shi", Level: acl.LevelLeague, Kind: "市"},
	{Code: county, Parent: league, Name: "新城区", Pinyin: "Xincheng Qu", Level: acl.LevelCounty, Kind: "区"},
}

var seedUnits = []acl.Unit{
	{ID: court, Kind: "court", Region: county, Name: "新城区人民法院", CreatedAt: t0},
	{ID: procuratorate, Kind: "procuratorate", Region: county, Name: "新城区人民检察院", CreatedAt: t0},
	{ID: committee, Kind: acl.Committee, Region: league, Name: "呼和浩特市委政法委", CreatedAt: t0},
}

var seedUsers = []acl.User{
	{ID: alice, Username: "alice", Name: "张三", Unit: court, Roles: []acl.Role{acl.Officer}, CreatedAt: t0},
	{ID: bob, Username: "bob", Name: "李四", Unit: procuratorate, Roles: []acl.Role{acl.Officer, acl.Leader}, CreatedAt: t0},
}

// seedDirectory stores the seeded regions, units and users.
func seedDirectory(t *testing.T, s acl.Store) {
	t.Helper()
	mustOK(t, "PutRegions", s.PutRegions(t.Context(), seedRegions, rec(audit.StreamDirectory, "region.import", "")))
	for _, u := range seedUnits {
		mustOK(t, "CreateUnit "+string(u.ID), s.CreateUnit(t.Context(), u, rec(audit.StreamDirectory, "unit.create", string(u.ID))))
	}
	for _, u := range seedUsers {
		mustOK(t, "CreateUser "+string(u.ID), s.CreateUser(t.Context(), u, phc(string(u.ID)), rec(audit.StreamDirectory, "user.create", string(u.ID))))
	}
}

// phc is a stand-in password hash for user.
func phc(user string) string { return "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$" + user }

// rec is an audit record of an action by the suite's administrator.
func rec(stream, action, target string) audit.Record {
	return audit.Record{
		Stream:  stream,
		At:      t0,
		Actor:   "u-admin",
		Action:  action,
		Target:  target,
		Outcome: audit.OK,
		Detail:  `{"by":"storetest"}`,
	}
}

// hashOf is what a store keeps of the opaque refresh token the client holds.
func hashOf(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// token returns a refresh token issued at issued that lives an hour.
func token(name string, issued time.Time) acl.RefreshToken {
	return acl.RefreshToken{Hash: hashOf(name), IssuedAt: issued, ExpiresAt: issued.Add(time.Hour)}
}

// mustLogin starts session for user with first token name, issued at issued.
func mustLogin(t *testing.T, s acl.Store, user acl.UserID, session, name string, issued time.Time) acl.RefreshToken {
	t.Helper()
	first := token(name, issued)
	first.Session, first.User = session, user
	mustOK(t, "LoginSucceeded "+session, s.LoginSucceeded(t.Context(), first, rec(audit.StreamAuth, "auth.login", string(user))))
	return first
}

func mustOK(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = %v, want nil", call, err)
	}
}

func wantErr(t *testing.T, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", call, err, want)
	}
}

func mustUser(t *testing.T, s acl.Store, id acl.UserID) acl.User {
	t.Helper()
	u, err := s.User(t.Context(), id)
	mustOK(t, "User "+string(id), err)
	return u
}

func mustCredentials(t *testing.T, s acl.Store, username string) acl.Credentials {
	t.Helper()
	c, err := s.Credentials(t.Context(), username)
	mustOK(t, "Credentials "+username, err)
	return c
}

func wantActive(t *testing.T, s acl.Store, session string, want bool) {
	t.Helper()
	got, err := s.SessionActive(t.Context(), session)
	if err != nil || got != want {
		t.Errorf("SessionActive(%q) = %v, %v; want %v, nil", session, got, err, want)
	}
}

// mustEntries returns the whole of stream and checks that it verifies.
func mustEntries(t *testing.T, s acl.Store, stream string) []audit.Entry {
	t.Helper()
	es, err := s.AuditEntries(t.Context(), stream, 0, 1_000_000)
	mustOK(t, "AuditEntries "+stream, err)
	if err := audit.Verify(es); err != nil {
		t.Fatalf("audit.Verify(stream %q, %d entries) = %v, want nil", stream, len(es), err)
	}
	return es
}

// sameUnit and its kin compare times by instant, not by location.
func sameUnit(a, b acl.Unit) bool {
	ta, tb := a.CreatedAt, b.CreatedAt
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return a == b && ta.Equal(tb)
}

func sameUser(a, b acl.User) bool {
	return a.ID == b.ID && a.Username == b.Username && a.Name == b.Name && a.Unit == b.Unit &&
		slices.Equal(a.Roles, b.Roles) && a.Bot == b.Bot && a.Disabled == b.Disabled &&
		a.CreatedAt.Equal(b.CreatedAt)
}

func sameRecord(a, b audit.Record) bool {
	ta, tb := a.At, b.At
	a.At, b.At = time.Time{}, time.Time{}
	return a == b && ta.Equal(tb)
}

func unitIDs(us []acl.Unit) []acl.UnitID {
	ids := []acl.UnitID{}
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	return ids
}

func userIDs(us []acl.User) []acl.UserID {
	ids := []acl.UserID{}
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	return ids
}
