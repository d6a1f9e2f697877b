package token

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
)

func TestAuthConfigDefaults(t *testing.T) {
	c := AuthConfig{}.withDefaults()
	want := AuthConfig{
		AccessTTL: 10 * time.Minute, RefreshTTL: 7 * 24 * time.Hour, MaxFailures: 5, LockFor: 15 * time.Minute,
		PasswordParams: PasswordParams{Memory: 19456, Time: 2, Threads: 1}, SessionCacheTTL: 2 * time.Second,
	}
	if c != want {
		t.Errorf("AuthConfig{}.withDefaults() = %+v, want %+v", c, want)
	}
	if got := (AuthConfig{SessionCacheTTL: time.Minute}).withDefaults().SessionCacheTTL; got != MaxSessionCacheTTL {
		t.Errorf("SessionCacheTTL 1m becomes %v, want the maximum %v", got, MaxSessionCacheTTL)
	}
	if got := (AuthConfig{SessionCacheTTL: -1}).withDefaults().SessionCacheTTL; got != 0 {
		t.Errorf("SessionCacheTTL -1 becomes %v, want 0 (no cache)", got)
	}
}

func TestLoginSucceeds(t *testing.T) {
	e := mustEnv(t)
	n := len(e.authEntries())
	tk := e.mustLogin(nil, "  ZhangSan ", zhangPassword) // usernames are case-insensitive
	s := tk.Subject
	if s.User != zhangID || s.Name != "张三" || s.Unit != unitID || s.UnitKind != "procuratorate" ||
		s.Region != "150102" || !slices.Equal(s.Roles, []acl.Role{acl.Officer, acl.Leader}) || s.Bot || s.Session == "" {
		t.Errorf("Login subject = %+v", s)
	}
	if !tk.AccessExpires.Equal(t0.Add(10*time.Minute)) || !tk.RefreshExpires.Equal(t0.Add(7*24*time.Hour)) {
		t.Errorf("Login expiries = %v, %v; want now+10m, now+7d", tk.AccessExpires, tk.RefreshExpires)
	}
	if len(tk.Refresh) != 43 {
		t.Errorf("refresh token %d characters, want 43 (32 bytes base64url)", len(tk.Refresh))
	}
	got, err := e.request(nil, tk.Access)
	if err != nil || got.User != zhangID || got.Session != s.Session || got.UnitKind != "procuratorate" {
		t.Errorf("middleware with the new access token: %+v, %v", got, err)
	}
	es := e.entriesSince(n)
	if len(es) != 1 {
		t.Fatalf("login left %d audit entries, want 1: %+v", len(es), es)
	}
	wantEntry(t, es[0], ActionLogin, audit.OK, zhangID, `"username":"zhangsan"`, `"session":"`+s.Session+`"`, `"ip":"10.0.0.7"`)
	if es[0].Actor != string(zhangID) {
		t.Errorf("successful login entry actor %q, want %q", es[0].Actor, zhangID)
	}
}

// A wrong password and an unknown username answer the same error, and both
// leave a failed login entry naming the username as typed.
func TestLoginWrongPasswordAndUnknownUserAlike(t *testing.T) {
	e := mustEnv(t)
	n := len(e.authEntries())
	_, errWrong := e.login("zhangsan", "wrong password guess")
	_, errUnknown := e.login("nobody", "wrong password guess")
	if !errors.Is(errWrong, acl.ErrBadCredentials) || !errors.Is(errUnknown, acl.ErrBadCredentials) {
		t.Fatalf("wrong password: %v; unknown user: %v; want both acl.ErrBadCredentials", errWrong, errUnknown)
	}
	if errWrong.Error() != errUnknown.Error() {
		t.Errorf("errors differ: %q vs %q", errWrong, errUnknown)
	}
	if e.auth.dummy == "" {
		t.Errorf("an unknown username did not spend an argon2id verification on the dummy hash")
	}
	es := e.entriesSince(n)
	if len(es) != 2 {
		t.Fatalf("two failed logins left %d entries, want 2", len(es))
	}
	wantEntry(t, es[0], ActionLogin, audit.Failed, zhangID, `"username":"zhangsan"`, `"reason":"wrong password"`)
	wantEntry(t, es[1], ActionLogin, audit.Failed, "", `"username":"nobody"`, `"reason":"unknown username"`)
	for _, en := range es {
		if en.Actor != "" {
			t.Errorf("failed login entry %d has actor %q, want anonymous", en.Seq, en.Actor)
		}
	}
	for _, tc := range []struct{ user, pw string }{{"", "x"}, {strings.Repeat("a", 200), "x"}, {"zhangsan", strings.Repeat("p", 5000)}} {
		if _, err := e.login(tc.user, tc.pw); !errors.Is(err, acl.ErrBadCredentials) {
			t.Errorf("Login(%.20q…, %.20q…) = %v, want acl.ErrBadCredentials", tc.user, tc.pw, err)
		}
	}
	if c, _ := e.store.Credentials(e.ctx, "zhangsan"); c.FailedLogins != 1 {
		t.Errorf("malformed attempts counted: %d failures, want 1", c.FailedLogins)
	}
}

func TestLoginLocksAfterFiveFailures(t *testing.T) {
	e := mustEnv(t)
	n := len(e.authEntries())
	for i := 1; i <= 4; i++ {
		e.clock.Advance(time.Second)
		if _, err := e.login("zhangsan", "wrong password guess"); !errors.Is(err, acl.ErrBadCredentials) {
			t.Fatalf("failure %d: %v, want acl.ErrBadCredentials", i, err)
		}
	}
	e.clock.Advance(time.Second)
	lockedAt := e.clock.Now()
	_, err := e.login("zhangsan", "wrong password guess")
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, acl.ErrLocked) {
		t.Fatalf("fifth failure: %v, want *LockedError wrapping acl.ErrLocked", err)
	}
	if want := lockedAt.Add(15 * time.Minute); !le.Until.Equal(want) {
		t.Errorf("locked until %v, want %v", le.Until, want)
	}
	if le.LockedUntil() != le.Until.UTC().Format(time.RFC3339) {
		t.Errorf("LockedUntil() = %q", le.LockedUntil())
	}
	es := e.entriesSince(n)
	if len(es) != 6 {
		t.Fatalf("five failures left %d entries, want 5 failed logins and a lockout", len(es))
	}
	wantEntry(t, es[3], ActionLogin, audit.Failed, zhangID, `"failures":4`)
	wantEntry(t, es[4], ActionLogin, audit.Failed, zhangID, `"failures":5`, `"locked_until"`)
	wantEntry(t, es[5], ActionLockout, audit.OK, zhangID, `"locked_until":"`+le.LockedUntil()+`"`)

	// While locked, even the right password is refused, and attempts neither
	// check the password nor count.
	n = len(e.authEntries())
	for _, pw := range []string{zhangPassword, "wrong password guess"} {
		e.clock.Advance(time.Minute)
		_, err := e.login("zhangsan", pw)
		var le2 *LockedError
		if !errors.As(err, &le2) || !le2.Until.Equal(le.Until) {
			t.Errorf("Login while locked with %q: %v, want *LockedError until %v", pw, err, le.Until)
		}
	}
	c, _ := e.store.Credentials(e.ctx, "zhangsan")
	if c.FailedLogins != 0 || !c.LockedUntil.Equal(le.Until) {
		t.Errorf("attempts while locked changed the account: %d failures, locked until %v", c.FailedLogins, c.LockedUntil)
	}
	for _, en := range e.entriesSince(n) {
		wantEntry(t, en, ActionLogin, audit.Failed, zhangID, `"reason":"locked"`)
	}
	// Other accounts are unaffected.
	e.mustLogin(nil, "lisi", liPassword)

	// Once the lock has run out, the right password works again.
	e.clock.Advance(le.Until.Sub(e.clock.Now()) - time.Second)
	if _, err := e.login("zhangsan", zhangPassword); !errors.Is(err, acl.ErrLocked) {
		t.Errorf("a second before the unlock: %v, want acl.ErrLocked", err)
	}
	e.clock.Advance(time.Second)
	tk := e.mustLogin(nil, "zhangsan", zhangPassword)
	if _, err := e.request(nil, tk.Access); err != nil {
		t.Errorf("access token after the lock ran out: %v", err)
	}
	if c, _ := e.store.Credentials(e.ctx, "zhangsan"); c.FailedLogins != 0 || !c.LockedUntil.IsZero() {
		t.Errorf("after a good login: %d failures, locked until %v; want 0, zero", c.FailedLogins, c.LockedUntil)
	}
}

// A successful login resets the failure count, so failures must be in a row.
func TestLoginFailuresMustBeConsecutive(t *testing.T) {
	e := mustEnv(t)
	for range 4 {
		e.login("zhangsan", "wrong password guess")
	}
	e.mustLogin(nil, "zhangsan", zhangPassword)
	for i := range 4 {
		if _, err := e.login("zhangsan", "wrong password guess"); !errors.Is(err, acl.ErrBadCredentials) || errors.Is(err, acl.ErrLocked) {
			t.Fatalf("failure %d after a good login: %v, want acl.ErrBadCredentials", i+1, err)
		}
	}
}

func TestLoginDisabledUser(t *testing.T) {
	e := mustEnv(t)
	if err := e.store.SetUserDisabled(e.ctx, zhangID, true, t0, audit.Record{Stream: audit.StreamDirectory, At: t0, Action: "user.disable", Outcome: audit.OK}); err != nil {
		t.Fatal(err)
	}
	n := len(e.authEntries())
	if _, err := e.login("zhangsan", zhangPassword); !errors.Is(err, acl.ErrDisabled) {
		t.Errorf("disabled user, right password: %v, want acl.ErrDisabled", err)
	}
	// Without the password, a disabled account looks like any wrong password,
	// and the attempt does not count towards a lockout.
	if _, err := e.login("zhangsan", "wrong password guess"); !errors.Is(err, acl.ErrBadCredentials) {
		t.Errorf("disabled user, wrong password: %v, want acl.ErrBadCredentials", err)
	}
	if c, _ := e.store.Credentials(e.ctx, "zhangsan"); c.FailedLogins != 0 {
		t.Errorf("wrong password on a disabled account counted: %d", c.FailedLogins)
	}
	es := e.entriesSince(n)
	if len(es) != 2 {
		t.Fatalf("%d entries, want 2", len(es))
	}
	wantEntry(t, es[0], ActionLogin, audit.Failed, zhangID, `"reason":"account disabled"`)
	wantEntry(t, es[1], ActionLogin, audit.Failed, zhangID, `"reason":"wrong password, account disabled"`)
}

func TestLoginDisabledUnit(t *testing.T) {
	e := mustEnv(t)
	tk := e.mustLogin(nil, "zhangsan", zhangPassword)
	if err := e.store.SetUnitDisabled(e.ctx, unitID, true, audit.Record{Stream: audit.StreamDirectory, At: t0, Action: "unit.disable", Outcome: audit.OK}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.login("zhangsan", zhangPassword); !errors.Is(err, acl.ErrDisabled) {
		t.Errorf("login in a disabled unit: %v, want acl.ErrDisabled", err)
	}
	// Refreshing a session of a disabled unit ends it.
	if _, err := e.refresh(nil, tk.Refresh); !errors.Is(err, acl.ErrDisabled) {
		t.Errorf("refresh in a disabled unit: %v, want acl.ErrDisabled", err)
	}
	if _, err := e.request(nil, tk.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("access token after the refresh ended the session: %v, want acl.ErrTokenInvalid", err)
	}
	es := e.authEntries()
	wantEntry(t, es[len(es)-1], ActionRevoke, audit.OK, zhangID, `"session":"`+tk.Subject.Session+`"`)
}

func TestBotCannotLogInWithPassword(t *testing.T) {
	e := mustEnv(t)
	if _, err := e.login("deadline-bot", ""); !errors.Is(err, acl.ErrBadCredentials) {
		t.Errorf("bot without password: %v, want acl.ErrBadCredentials", err)
	}
	// Even a bot that somehow has a hash is refused.
	bot := acl.User{ID: "bot-2", Username: "bot-two", Name: "bot", Unit: unitID, Bot: true}
	if err := e.store.CreateUser(e.ctx, bot, mustHash(t, "a bot password here"), audit.Record{Stream: audit.StreamDirectory, At: t0, Action: "user.create", Outcome: audit.OK}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.login("bot-two", "a bot password here"); !errors.Is(err, acl.ErrBadCredentials) {
		t.Errorf("bot with a password: %v, want acl.ErrBadCredentials", err)
	}
	es := e.authEntries()
	wantEntry(t, es[len(es)-1], ActionLogin, audit.Failed, "bot-2", `"reason":"no password login for this account"`)
}

// Rotation: each refresh token works once; presenting a spent one revokes the
// whole session — the newest token and the live access tokens included.
func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	e := mustEnv(t)
	first := e.mustLogin(nil, "zhangsan", zhangPassword)
	e.clock.Advance(5 * time.Minute)
	n := len(e.authEntries())
	second, err := e.refresh(nil, first.Refresh)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if second.Refresh == first.Refresh || second.Access == first.Access {
		t.Errorf("Refresh returned the same tokens")
	}
	if second.Subject.Session != first.Subject.Session || second.Subject.User != zhangID {
		t.Errorf("Refresh subject %+v, want the same session %s", second.Subject, first.Subject.Session)
	}
	if now := e.clock.Now(); !second.AccessExpires.Equal(now.Add(10*time.Minute)) || !second.RefreshExpires.Equal(now.Add(7*24*time.Hour)) {
		t.Errorf("Refresh expiries %v, %v", second.AccessExpires, second.RefreshExpires)
	}
	wantEntry(t, e.entriesSince(n)[0], ActionRefresh, audit.OK, "")
	// Both access tokens work now, and this node caches that.
	for _, tok := range []string{first.Access, second.Access} {
		if _, err := e.request(nil, tok); err != nil {
			t.Fatalf("access token before reuse: %v", err)
		}
	}

	n = len(e.authEntries())
	if _, err := e.refresh(nil, first.Refresh); !errors.Is(err, acl.ErrTokenReused) {
		t.Fatalf("spent refresh token again: %v, want acl.ErrTokenReused", err)
	}
	es := e.entriesSince(n)
	if len(es) != 1 {
		t.Fatalf("reuse left %d entries, want 1", len(es))
	}
	wantEntry(t, es[0], ActionRefresh, audit.Failed, "", `"token_reused":true`, `"session":"`+first.Subject.Session+`"`)
	if _, err := e.refresh(nil, second.Refresh); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("newest refresh token after reuse: %v, want acl.ErrTokenInvalid", err)
	}
	for _, tok := range []string{first.Access, second.Access} {
		if _, err := e.request(nil, tok); !errors.Is(err, acl.ErrTokenInvalid) {
			t.Errorf("access token of the revoked session at once: %v, want acl.ErrTokenInvalid", err)
		}
	}
	// Other sessions of the same user live on.
	other := e.mustLogin(nil, "zhangsan", zhangPassword)
	if _, err := e.request(nil, other.Access); err != nil {
		t.Errorf("a new session after reuse: %v", err)
	}
}

// TestRoleChangeEndsSessions: roles travel in access tokens, so changing them
// revokes the user's sessions; the next login carries the new roles.
func TestRoleChangeEndsSessions(t *testing.T) {
	e := mustEnv(t)
	tk := e.mustLogin(nil, "lisi", liPassword)
	if err := e.store.SetRoles(e.ctx, liID, []acl.Role{acl.Officer, acl.Auditor}, t0, audit.Record{Stream: audit.StreamDirectory, At: t0, Action: "user.roles", Outcome: audit.OK}); err != nil {
		t.Fatal(err)
	}
	e.auth.ForgetUser(liID) // what the Directory's OnSessionsRevoked hook does
	if _, err := e.refresh(nil, tk.Refresh); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("Refresh after a role change = %v, want acl.ErrTokenInvalid", err)
	}
	if _, err := e.auth.VerifyAccess(e.ctx, tk.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("VerifyAccess(old access token) after a role change = %v, want acl.ErrTokenInvalid", err)
	}
	next := e.mustLogin(nil, "lisi", liPassword)
	if !slices.Equal(next.Subject.Roles, []acl.Role{acl.Officer, acl.Auditor}) {
		t.Errorf("roles after a new login %v, want the new ones", next.Subject.Roles)
	}
	s, err := e.auth.VerifyAccess(e.ctx, next.Access)
	if err != nil || !s.Has(acl.Auditor) {
		t.Errorf("VerifyAccess(new access token) = %+v, %v", s, err)
	}
}

func TestRefreshRefusesBadTokens(t *testing.T) {
	e := mustEnv(t)
	tk := e.mustLogin(nil, "zhangsan", zhangPassword)
	unknown, _ := newRefreshToken()
	n := len(e.authEntries())
	for _, tok := range []string{"", "garbage", tk.Access, tk.Refresh + "A", tk.Refresh[:42] + "=", unknown} {
		if _, err := e.refresh(nil, tok); !errors.Is(err, acl.ErrTokenInvalid) {
			t.Errorf("Refresh(%.20q…) = %v, want acl.ErrTokenInvalid", tok, err)
		}
	}
	es := e.entriesSince(n)
	if len(es) != 6 {
		t.Fatalf("6 refused refreshes left %d entries", len(es))
	}
	for _, en := range es {
		wantEntry(t, en, ActionRefresh, audit.Failed, "")
	}
	// An expired refresh token is refused too.
	e.clock.Advance(7*24*time.Hour + time.Second)
	if _, err := e.refresh(nil, tk.Refresh); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("Refresh after 7 days: %v, want acl.ErrTokenInvalid", err)
	}
	es = e.authEntries()
	wantEntry(t, es[len(es)-1], ActionRefresh, audit.Failed, "", `"reason":"expired or revoked refresh token"`)
}

func TestLogoutBySession(t *testing.T) {
	e := mustEnv(t)
	tk := e.mustLogin(nil, "zhangsan", zhangPassword)
	other := e.mustLogin(nil, "lisi", liPassword)
	if _, err := e.request(nil, tk.Access); err != nil { // cached as active
		t.Fatal(err)
	}
	// Only the holder of a session may end it by id.
	if err := e.auth.Logout(e.ctx, tk.Subject.Session); !errors.Is(err, acl.ErrUnauthenticated) {
		t.Errorf("Logout(session) without a subject: %v, want acl.ErrUnauthenticated", err)
	}
	if err := e.auth.Logout(acl.WithSubject(e.ctx, other.Subject), tk.Subject.Session); !errors.Is(err, acl.ErrUnauthenticated) {
		t.Errorf("Logout(someone else's session): %v, want acl.ErrUnauthenticated", err)
	}
	n := len(e.authEntries())
	if err := e.auth.Logout(acl.WithSubject(e.ctx, tk.Subject), tk.Subject.Session); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	wantEntry(t, e.entriesSince(n)[0], ActionLogout, audit.OK, zhangID, `"session":"`+tk.Subject.Session+`"`)
	if _, err := e.request(nil, tk.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("access token after logout: %v, want acl.ErrTokenInvalid", err)
	}
	if _, err := e.refresh(nil, tk.Refresh); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("refresh token after logout: %v, want acl.ErrTokenInvalid", err)
	}
	if _, err := e.request(nil, other.Access); err != nil {
		t.Errorf("another user's session after logout: %v", err)
	}
}

func TestLogoutByRefreshToken(t *testing.T) {
	e := mustEnv(t)
	tk := e.mustLogin(nil, "zhangsan", zhangPassword)
	if _, err := e.request(nil, tk.Access); err != nil {
		t.Fatal(err)
	}
	if err := e.auth.Logout(e.ctx, tk.Refresh); err != nil {
		t.Fatalf("Logout(refresh token): %v", err)
	}
	if _, err := e.request(nil, tk.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("access token after logout: %v, want acl.ErrTokenInvalid", err)
	}
	if _, err := e.refresh(nil, tk.Refresh); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("refresh token after logout: %v, want acl.ErrTokenInvalid", err)
	}
	es := e.authEntries()
	wantEntry(t, es[len(es)-2], ActionLogout, audit.OK, zhangID, `"session":"`+tk.Subject.Session+`"`)
	// Logging out again, or with an unknown token, ends nothing and is no error.
	unknown, _ := newRefreshToken()
	for _, tok := range []string{tk.Refresh, unknown} {
		if err := e.auth.Logout(e.ctx, tok); err != nil {
			t.Errorf("Logout of a dead token: %v, want nil", err)
		}
	}
}

// A user's password change or disabling revokes their live access tokens at
// once on the node that announces it (ForgetUser), though they were cached.
func TestPasswordResetAndDisableRevokeLiveAccessTokens(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revoke func(e *env) error
	}{
		{"password reset", func(e *env) error {
			return e.store.SetPassword(e.ctx, zhangID, mustHash(e.t, "a brand new password"), e.clock.Now(),
				audit.Record{Stream: audit.StreamDirectory, At: e.clock.Now(), Action: "user.password", Outcome: audit.OK})
		}},
		{"disable", func(e *env) error {
			return e.store.SetUserDisabled(e.ctx, zhangID, true, e.clock.Now(),
				audit.Record{Stream: audit.StreamDirectory, At: e.clock.Now(), Action: "user.disable", Outcome: audit.OK})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEnv(t)
			a := e.mustLogin(nil, "zhangsan", zhangPassword)
			b := e.mustLogin(nil, "zhangsan", zhangPassword)
			li := e.mustLogin(nil, "lisi", liPassword)
			for _, tk := range []Tokens{a, b, li} {
				if _, err := e.request(nil, tk.Access); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.revoke(e); err != nil {
				t.Fatal(err)
			}
			e.auth.ForgetUser(zhangID)
			for _, tk := range []Tokens{a, b} {
				if _, err := e.request(nil, tk.Access); !errors.Is(err, acl.ErrTokenInvalid) {
					t.Errorf("access token after %s: %v, want acl.ErrTokenInvalid", tc.name, err)
				}
				if _, err := e.refresh(nil, tk.Refresh); !errors.Is(err, acl.ErrTokenInvalid) {
					t.Errorf("refresh token after %s: %v, want acl.ErrTokenInvalid", tc.name, err)
				}
			}
			if _, err := e.request(nil, li.Access); err != nil {
				t.Errorf("another user's token after %s: %v", tc.name, err)
			}
		})
	}
}

func TestChangePassword(t *testing.T) {
	e := mustEnv(t)
	tk := e.mustLogin(nil, "zhangsan", zhangPassword)
	ctx := acl.WithSubject(e.ctx, tk.Subject)
	meta := ClientMeta{IP: "10.0.0.8"}
	const next = "a completely new passphrase"
	e.secret(next, "short")

	if _, err := e.auth.ChangePassword(e.ctx, zhangPassword, next, meta); !errors.Is(err, acl.ErrUnauthenticated) {
		t.Errorf("ChangePassword without a subject: %v, want acl.ErrUnauthenticated", err)
	}
	if _, err := e.auth.ChangePassword(ctx, "wrong password guess", next, meta); !errors.Is(err, acl.ErrBadCredentials) {
		t.Errorf("ChangePassword with a wrong old password: %v, want acl.ErrBadCredentials", err)
	}
	if c, _ := e.store.Credentials(e.ctx, "zhangsan"); c.FailedLogins != 1 {
		t.Errorf("a wrong old password counted %d failures, want 1", c.FailedLogins)
	}
	var inv *acl.InvalidError
	if _, err := e.auth.ChangePassword(ctx, zhangPassword, "short", meta); !errors.As(err, &inv) || inv.Field != "password" {
		t.Errorf("ChangePassword to a short password: %v, want acl.Invalid(password)", err)
	}
	if _, err := e.auth.ChangePassword(ctx, zhangPassword, zhangPassword, meta); !errors.As(err, &inv) {
		t.Errorf("ChangePassword to the same password: %v, want acl.Invalid(password)", err)
	}
	if _, err := e.auth.ChangePassword(ctx, zhangPassword, "zhangsan and more", meta); !errors.As(err, &inv) {
		t.Errorf("ChangePassword to one containing the username: %v, want acl.Invalid(password)", err)
	}

	if _, err := e.request(nil, tk.Access); err != nil { // cached as active
		t.Fatal(err)
	}
	n := len(e.authEntries())
	fresh, err := e.auth.ChangePassword(ctx, zhangPassword, next, meta)
	if err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	e.secret(fresh.Access, fresh.Refresh)
	es := e.entriesSince(n)
	if len(es) != 2 {
		t.Fatalf("password change left %d entries, want the change and the new session", len(es))
	}
	wantEntry(t, es[0], ActionPassword, audit.OK, zhangID)
	wantEntry(t, es[1], ActionLogin, audit.OK, zhangID, `"session":"`+fresh.Subject.Session+`"`)
	if _, err := e.request(nil, tk.Access); !errors.Is(err, acl.ErrTokenInvalid) {
		t.Errorf("old access token after the change: %v, want acl.ErrTokenInvalid", err)
	}
	if _, err := e.request(nil, fresh.Access); err != nil {
		t.Errorf("new access token: %v", err)
	}
	if _, err := e.login("zhangsan", zhangPassword); !errors.Is(err, acl.ErrBadCredentials) {
		t.Errorf("old password after the change: %v", err)
	}
	e.mustLogin(nil, "zhangsan", next)
	h, _ := e.store.Credentials(e.ctx, "zhangsan")
	if NeedsRehash(h.PasswordHash, fastParams) {
		t.Errorf("new hash %q not made with the configured parameters", h.PasswordHash)
	}
}

func TestNewPasswordHash(t *testing.T) {
	e := mustEnv(t)
	h, err := e.auth.NewPasswordHash("a perfectly fine password", "wangwu", "王五")
	if err != nil {
		t.Fatalf("NewPasswordHash: %v", err)
	}
	if ok, _ := VerifyPassword(h, "a perfectly fine password"); !ok || NeedsRehash(h, fastParams) {
		t.Errorf("NewPasswordHash = %q: verifies %v, params %v", h, ok, !NeedsRehash(h, fastParams))
	}
	if _, err := e.auth.NewPasswordHash("too short", "wangwu"); !errors.Is(err, acl.ErrInvalid) {
		t.Errorf("NewPasswordHash(short) = %v, want acl.ErrInvalid", err)
	}
}

// A stored hash with other parameters than the configured ones still logs in:
// parameters are read from the hash.
func TestLoginWithOlderHashParameters(t *testing.T) {
	e := mustEnv(t)
	old, _ := HashPassword("an old style password", PasswordParams{Memory: 32, Time: 3, Threads: 2})
	u := acl.User{ID: "u-old", Username: "olduser", Name: "旧", Unit: unitID, Roles: []acl.Role{acl.Clerk}}
	if err := e.store.CreateUser(e.ctx, u, old, audit.Record{Stream: audit.StreamDirectory, At: t0, Action: "user.create", Outcome: audit.OK}); err != nil {
		t.Fatal(err)
	}
	e.mustLogin(nil, "olduser", "an old style password")
}
