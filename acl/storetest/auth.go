package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
)

func credentialsIgnoreUsernameCase(t *testing.T, s acl.Store) {
	seedDirectory(t, s)
	for _, name := range []string{"alice", "ALICE", "Alice"} {
		c, err := s.Credentials(t.Context(), name)
		if err != nil || c.User.ID != alice || c.PasswordHash != phc(string(alice)) ||
			c.FailedLogins != 0 || !c.LockedUntil.IsZero() || !sameUser(c.User, seedUsers[0]) {
			t.Errorf("Credentials(%q) = %+v, %v; want user %+v, hash %q, no failures, no lock", name, c, err, seedUsers[0], phc(string(alice)))
		}
	}
	_, err := s.Credentials(t.Context(), "carol")
	wantErr(t, `Credentials("carol")`, err, acl.ErrNotFound)
}

// failure is the audit record of a failed login.
func failure(user acl.UserID) audit.Record {
	r := rec(audit.StreamAuth, "auth.login", string(user))
	r.Actor, r.Outcome = "", audit.Failed
	return r
}

func lockoutAfterMaxFailures(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	const max = 3
	until := t0.Add(15 * time.Minute)
	for i := 1; i <= max; i++ {
		locked, err := s.LoginFailed(ctx, alice, max, until, failure(alice))
		if want := i == max; err != nil || locked != want {
			t.Fatalf("LoginFailed #%d (max %d) = %v, %v; want %v, nil", i, max, locked, err, want)
		}
		wantCount, wantUntil := i, time.Time{}
		if i == max {
			wantCount, wantUntil = 0, until
		}
		if c := mustCredentials(t, s, "alice"); c.FailedLogins != wantCount || !c.LockedUntil.Equal(wantUntil) {
			t.Errorf("after failure #%d: FailedLogins, LockedUntil = %d, %v; want %d, %v", i, c.FailedLogins, c.LockedUntil, wantCount, wantUntil)
		}
	}
	es := mustEntries(t, s, audit.StreamAuth)
	var detail map[string]any
	last := es[len(es)-1]
	if err := json.Unmarshal([]byte(last.Detail), &detail); err != nil || detail["locked_until"] == nil || detail["by"] != "storetest" {
		t.Errorf("audit record of the lockout has Detail %q, want the caller's fields and locked_until", last.Detail)
	}

	// Counting starts again, and does not lift the lock.
	locked, err := s.LoginFailed(ctx, alice, max, until, failure(alice))
	if err != nil || locked {
		t.Errorf("LoginFailed after the lock = %v, %v; want false, nil", locked, err)
	}
	if c := mustCredentials(t, s, "alice"); c.FailedLogins != 1 || !c.LockedUntil.Equal(until) {
		t.Errorf("after the lock and one more failure: FailedLogins, LockedUntil = %d, %v; want 1, %v", c.FailedLogins, c.LockedUntil, until)
	}
	if c := mustCredentials(t, s, "bob"); c.FailedLogins != 0 || !c.LockedUntil.IsZero() {
		t.Errorf("bob's FailedLogins, LockedUntil = %d, %v after alice's failures; want 0, zero", c.FailedLogins, c.LockedUntil)
	}

	_, err = s.LoginFailed(ctx, alice, 0, until, failure(alice))
	wantErr(t, "LoginFailed(max 0)", err, acl.ErrInvalid)
	_, err = s.LoginFailed(ctx, alice, max, time.Time{}, failure(alice))
	wantErr(t, "LoginFailed(zero lockUntil)", err, acl.ErrInvalid)
}

func loginSucceededResets(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	for range 2 {
		if _, err := s.LoginFailed(ctx, alice, 5, t0.Add(time.Hour), failure(alice)); err != nil {
			t.Fatalf("LoginFailed = %v, want nil", err)
		}
	}
	mustLogin(t, s, alice, "s-alice", "tok-alice", t0)
	if c := mustCredentials(t, s, "alice"); c.FailedLogins != 0 {
		t.Errorf("FailedLogins after LoginSucceeded = %d, want 0", c.FailedLogins)
	}
	wantActive(t, s, "s-alice", true)

	// A lock that has run out by the login is cleared…
	if locked, err := s.LoginFailed(ctx, bob, 1, t0.Add(time.Minute), failure(bob)); !locked || err != nil {
		t.Fatalf("LoginFailed(max 1) = %v, %v; want true, nil", locked, err)
	}
	mustLogin(t, s, bob, "s-bob-1", "tok-bob-1", t0.Add(2*time.Minute))
	if c := mustCredentials(t, s, "bob"); !c.LockedUntil.IsZero() {
		t.Errorf("LockedUntil after a login past the lock = %v, want the zero time", c.LockedUntil)
	}
	// …one still running is kept: the store records, the service decides.
	lock := t0.Add(time.Hour)
	if locked, err := s.LoginFailed(ctx, bob, 1, lock, failure(bob)); !locked || err != nil {
		t.Fatalf("LoginFailed(max 1) = %v, %v; want true, nil", locked, err)
	}
	mustLogin(t, s, bob, "s-bob-2", "tok-bob-2", t0.Add(3*time.Minute))
	if c := mustCredentials(t, s, "bob"); !c.LockedUntil.Equal(lock) || c.FailedLogins != 0 {
		t.Errorf("LockedUntil, FailedLogins after a login within the lock = %v, %d; want %v, 0", c.LockedUntil, c.FailedLogins, lock)
	}
}

func sessionIDIsUnique(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	first := mustLogin(t, s, alice, "s-1", "tok-1", t0)

	again := token("tok-2", t0)
	again.Session, again.User = "s-1", bob
	wantErr(t, "LoginSucceeded(existing session)", s.LoginSucceeded(ctx, again, rec(audit.StreamAuth, "auth.login", string(bob))), acl.ErrExists)

	sameHash := first
	sameHash.Session = "s-2"
	wantErr(t, "LoginSucceeded(existing token hash)", s.LoginSucceeded(ctx, sameHash, rec(audit.StreamAuth, "auth.login", string(alice))), acl.ErrExists)
	wantActive(t, s, "s-2", false) // the session of the refused login was rolled back

	next := token("tok-3", t0.Add(time.Minute))
	mustOK(t, "Rotate(first token)", s.Rotate(ctx, first.Hash, &next, t0.Add(time.Minute), rec(audit.StreamAuth, "auth.refresh", string(alice))))
	if next.User != alice {
		t.Errorf("Rotate set next.User = %q, want %q (the refused login must not have changed the session)", next.User, alice)
	}
}

func unlockClearsLockout(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	if locked, err := s.LoginFailed(ctx, alice, 1, t0.Add(time.Hour), failure(alice)); !locked || err != nil {
		t.Fatalf("LoginFailed(max 1) = %v, %v; want true, nil", locked, err)
	}
	if _, err := s.LoginFailed(ctx, alice, 5, t0.Add(time.Hour), failure(alice)); err != nil {
		t.Fatalf("LoginFailed = %v, want nil", err)
	}
	mustOK(t, "Unlock", s.Unlock(ctx, alice, rec(audit.StreamAuth, "auth.unlock", string(alice))))
	if c := mustCredentials(t, s, "alice"); c.FailedLogins != 0 || !c.LockedUntil.IsZero() {
		t.Errorf("after Unlock: FailedLogins, LockedUntil = %d, %v; want 0, zero", c.FailedLogins, c.LockedUntil)
	}
}

func disableRevokesSessions(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	a1 := mustLogin(t, s, alice, "s-alice-1", "tok-alice-1", t0)
	mustLogin(t, s, alice, "s-alice-2", "tok-alice-2", t0)
	mustLogin(t, s, bob, "s-bob", "tok-bob", t0)

	at := t0.Add(time.Minute)
	mustOK(t, "SetUserDisabled(alice, true)", s.SetUserDisabled(ctx, alice, true, at, rec(audit.StreamDirectory, "user.disable", string(alice))))
	if u := mustUser(t, s, alice); !u.Disabled {
		t.Errorf("User(alice).Disabled = false after SetUserDisabled(true), want true")
	}
	if c := mustCredentials(t, s, "alice"); !c.User.Disabled {
		t.Errorf("Credentials(alice).User.Disabled = false after SetUserDisabled(true), want true")
	}
	wantActive(t, s, "s-alice-1", false)
	wantActive(t, s, "s-alice-2", false)
	wantActive(t, s, "s-bob", true)
	next := token("tok-next", at.Add(time.Minute))
	wantErr(t, "Rotate(token of a disabled user)", s.Rotate(ctx, a1.Hash, &next, at.Add(time.Minute), rec(audit.StreamAuth, "auth.refresh", string(alice))), acl.ErrTokenInvalid)

	mustOK(t, "SetUserDisabled(alice, false)", s.SetUserDisabled(ctx, alice, false, at.Add(2*time.Minute), rec(audit.StreamDirectory, "user.enable", string(alice))))
	if u := mustUser(t, s, alice); u.Disabled {
		t.Errorf("User(alice).Disabled = true after SetUserDisabled(false), want false")
	}
	wantActive(t, s, "s-alice-1", false) // re-enabling does not bring sessions back
}

func setPasswordRevokes(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	mustLogin(t, s, alice, "s-alice", "tok-alice", t0)
	mustLogin(t, s, bob, "s-bob", "tok-bob", t0)
	if locked, err := s.LoginFailed(ctx, alice, 1, t0.Add(time.Hour), failure(alice)); !locked || err != nil {
		t.Fatalf("LoginFailed(max 1) = %v, %v; want true, nil", locked, err)
	}
	if _, err := s.LoginFailed(ctx, alice, 5, t0.Add(time.Hour), failure(alice)); err != nil {
		t.Fatalf("LoginFailed = %v, want nil", err)
	}

	mustOK(t, "SetPassword", s.SetPassword(ctx, alice, "new-hash", t0.Add(time.Minute), rec(audit.StreamDirectory, "user.password", string(alice))))
	c := mustCredentials(t, s, "alice")
	if c.PasswordHash != "new-hash" || c.FailedLogins != 0 || !c.LockedUntil.IsZero() {
		t.Errorf("after SetPassword: hash, FailedLogins, LockedUntil = %q, %d, %v; want %q, 0, zero", c.PasswordHash, c.FailedLogins, c.LockedUntil, "new-hash")
	}
	wantActive(t, s, "s-alice", false)
	wantActive(t, s, "s-bob", true)
	if c := mustCredentials(t, s, "bob"); c.PasswordHash != phc(string(bob)) {
		t.Errorf("bob's hash = %q after alice's SetPassword, want %q", c.PasswordHash, phc(string(bob)))
	}
}

// revocationNeedsATime: the stores mark a session revoked by its time, so a
// revocation at the zero time would revoke nothing; it is refused instead.
func revocationNeedsATime(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	first := mustLogin(t, s, alice, "s-alice", "tok-alice", t0)
	d := rec(audit.StreamDirectory, "probe", string(alice))
	next := token("tok-next", t0.Add(time.Minute))

	wantErr(t, "SetUserDisabled(true, zero time)", s.SetUserDisabled(ctx, alice, true, time.Time{}, d), acl.ErrInvalid)
	wantErr(t, "SetPassword(zero time)", s.SetPassword(ctx, alice, "new-hash", time.Time{}, d), acl.ErrInvalid)
	wantErr(t, "RevokeSession(zero time)", s.RevokeSession(ctx, "s-alice", time.Time{}, d), acl.ErrInvalid)
	wantErr(t, "Rotate(zero now)", s.Rotate(ctx, first.Hash, &next, time.Time{}, d), acl.ErrInvalid)

	wantActive(t, s, "s-alice", true)
	if c := mustCredentials(t, s, "alice"); c.User.Disabled || c.PasswordHash != phc(string(alice)) {
		t.Errorf("after refused calls: Disabled, hash = %v, %q; want false, %q", c.User.Disabled, c.PasswordHash, phc(string(alice)))
	}
	mustOK(t, "SetUserDisabled(false, zero time)", s.SetUserDisabled(ctx, alice, false, time.Time{}, d))
	mustOK(t, "Rotate after refused calls", s.Rotate(ctx, first.Hash, &next, t0.Add(time.Minute), d))
}

func rotateSpendsToken(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	first := mustLogin(t, s, alice, "s-alice", "tok-1", t0)
	mustLogin(t, s, bob, "s-bob", "tok-bob", t0)

	prev := first
	for i := 2; i <= 4; i++ {
		now := t0.Add(time.Duration(i) * time.Minute)
		next := token(fmt.Sprintf("tok-%d", i), now)
		want := next
		mustOK(t, fmt.Sprintf("Rotate(tok-%d → tok-%d)", i-1, i), s.Rotate(ctx, prev.Hash, &next, now, rec(audit.StreamAuth, "auth.refresh", string(alice))))
		want.Session, want.User = "s-alice", alice
		if next.Session != want.Session || next.User != want.User || !bytes.Equal(next.Hash, want.Hash) ||
			!next.IssuedAt.Equal(want.IssuedAt) || !next.ExpiresAt.Equal(want.ExpiresAt) {
			t.Errorf("Rotate set next = %+v, want %+v", next, want)
		}
		prev = next // the token just stored must itself rotate
	}
	wantActive(t, s, "s-alice", true)
	wantActive(t, s, "s-bob", true)
}

func reusedTokenRevokesFamily(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	first := mustLogin(t, s, alice, "s-alice", "tok-1", t0)
	mustLogin(t, s, alice, "s-alice-other", "tok-other", t0)
	second := token("tok-2", t0.Add(time.Minute))
	mustOK(t, "Rotate(tok-1)", s.Rotate(ctx, first.Hash, &second, t0.Add(time.Minute), rec(audit.StreamAuth, "auth.refresh", string(alice))))
	before := len(mustEntries(t, s, audit.StreamAuth))

	stolen := token("tok-thief", t0.Add(2*time.Minute))
	r := rec(audit.StreamAuth, "auth.refresh", string(alice))
	wantErr(t, "Rotate(tok-1 again)", s.Rotate(ctx, first.Hash, &stolen, t0.Add(2*time.Minute), r), acl.ErrTokenReused)

	wantActive(t, s, "s-alice", false)
	wantActive(t, s, "s-alice-other", true)
	third := token("tok-3", t0.Add(3*time.Minute))
	wantErr(t, "Rotate(tok-2) after its family was revoked", s.Rotate(ctx, second.Hash, &third, t0.Add(3*time.Minute), r), acl.ErrTokenInvalid)
	wantErr(t, "Rotate(the token offered with the reuse)", s.Rotate(ctx, stolen.Hash, &third, t0.Add(3*time.Minute), r), acl.ErrNotFound)

	// The revocation committed with its record, which says what happened.
	es := mustEntries(t, s, audit.StreamAuth)
	if len(es) != before+1 {
		t.Fatalf("auth stream has %d entries after the reuse, want %d", len(es), before+1)
	}
	got := es[before]
	var detail map[string]any
	err := json.Unmarshal([]byte(got.Detail), &detail)
	if got.Action != r.Action || got.Target != r.Target || got.Actor != r.Actor || got.Outcome != audit.Failed ||
		err != nil || detail["token_reused"] != true || detail["session"] != "s-alice" || detail["by"] != "storetest" {
		t.Errorf("audit record of the reuse = %+v; want %+v with Outcome %q and Detail adding token_reused and session", got.Record, r, audit.Failed)
	}
}

// concurrentRotateOnlyOneWins races racers goroutines to rotate one token.
// Rotations of one token are serialized, so exactly one wins, the first loser
// finds the token spent (ErrTokenReused, revoking the family) and the rest find
// the family revoked (ErrTokenInvalid).
func concurrentRotateOnlyOneWins(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	const rounds, racers = 5, 8
	for round := range rounds {
		session := fmt.Sprintf("s-%d", round)
		first := mustLogin(t, s, alice, session, "tok-"+session, t0)
		now := t0.Add(time.Minute)
		nexts := make([]acl.RefreshToken, racers)
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			nexts[i] = token(fmt.Sprintf("%s-next-%d", session, i), now)
			wg.Go(func() {
				<-start
				errs[i] = s.Rotate(ctx, first.Hash, &nexts[i], now, rec(audit.StreamAuth, "auth.refresh", string(alice)))
			})
		}
		close(start)
		wg.Wait()
		wins, reused, invalid := 0, 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, acl.ErrTokenReused):
				reused++
			case errors.Is(err, acl.ErrTokenInvalid):
				invalid++
			default:
				t.Errorf("round %d: Rotate #%d = %v, want nil, %v or %v", round, i, err, acl.ErrTokenReused, acl.ErrTokenInvalid)
			}
		}
		if wins != 1 || reused != 1 || invalid != racers-2 {
			t.Errorf("round %d: %d racers rotating one token: %d won, %d reused, %d invalid; want 1, 1, %d",
				round, racers, wins, reused, invalid, racers-2)
		}
		wantActive(t, s, session, false) // the reuse revoked the family
	}
	if es := mustEntries(t, s, audit.StreamAuth); len(es) != rounds*3 {
		t.Errorf("auth stream has %d entries, want %d (a login, a rotation and a reuse per round)", len(es), rounds*3)
	}
}

func expiredTokenRefused(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	first := mustLogin(t, s, alice, "s-alice", "tok-1", t0)
	next := token("tok-2", first.ExpiresAt)
	r := rec(audit.StreamAuth, "auth.refresh", string(alice))
	before := len(mustEntries(t, s, audit.StreamAuth))
	for _, now := range []time.Time{first.ExpiresAt, first.ExpiresAt.Add(time.Second)} {
		wantErr(t, fmt.Sprintf("Rotate(at %v, token expiring %v)", now, first.ExpiresAt), s.Rotate(ctx, first.Hash, &next, now, r), acl.ErrTokenInvalid)
	}
	if got := len(mustEntries(t, s, audit.StreamAuth)); got != before {
		t.Errorf("auth stream has %d entries after refused rotations, want %d (the caller audits refusals)", got, before)
	}
	wantActive(t, s, "s-alice", true)
	just := first.ExpiresAt.Add(-time.Microsecond)
	mustOK(t, "Rotate(a microsecond before expiry)", s.Rotate(ctx, first.Hash, &next, just, r))
}

func revokedSessionRefusesRotation(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	first := mustLogin(t, s, alice, "s-alice", "tok-1", t0)
	other := mustLogin(t, s, alice, "s-alice-other", "tok-other", t0)
	r := rec(audit.StreamAuth, "auth.logout", string(alice))
	mustOK(t, "RevokeSession", s.RevokeSession(ctx, "s-alice", t0.Add(time.Minute), r))
	wantActive(t, s, "s-alice", false)
	wantActive(t, s, "s-alice-other", true)
	next := token("tok-2", t0.Add(2*time.Minute))
	wantErr(t, "Rotate(token of a revoked session)", s.Rotate(ctx, first.Hash, &next, t0.Add(2*time.Minute), r), acl.ErrTokenInvalid)
	mustOK(t, "RevokeSession(again)", s.RevokeSession(ctx, "s-alice", t0.Add(3*time.Minute), r))
	mustOK(t, "Rotate(token of the other session)", s.Rotate(ctx, other.Hash, &next, t0.Add(2*time.Minute), r))
}

func signingKeyIsStoredOnce(t *testing.T, s acl.Store) {
	ctx := t.Context()
	k1 := []byte("key-one-0123456789abcdef01234567")
	calls := 0
	got, err := s.SigningKey(ctx, "access", func() ([]byte, error) { calls++; return k1, nil })
	if err != nil || !bytes.Equal(got, k1) || calls != 1 {
		t.Fatalf("SigningKey(access) first = %q, %v after %d generate calls; want %q, nil after 1", got, err, calls, k1)
	}
	got, err = s.SigningKey(ctx, "access", func() ([]byte, error) {
		t.Error("SigningKey(access) called generate although a key is stored")
		return []byte("another key"), nil
	})
	if err != nil || !bytes.Equal(got, k1) {
		t.Errorf("SigningKey(access) second = %q, %v; want %q, nil", got, err, k1)
	}

	boom := errors.New("no entropy")
	_, err = s.SigningKey(ctx, "refresh", func() ([]byte, error) { return nil, boom })
	wantErr(t, "SigningKey(refresh, failing generate)", err, boom)
	k2 := []byte("key-two")
	if got, err := s.SigningKey(ctx, "refresh", func() ([]byte, error) { return k2, nil }); err != nil || !bytes.Equal(got, k2) {
		t.Errorf("SigningKey(refresh) after a failed generate = %q, %v; want %q, nil", got, err, k2)
	}

	// Nodes racing at first start all end up with the one key stored.
	const racers = 16
	keys := make([][]byte, racers)
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			keys[i], errs[i] = s.SigningKey(ctx, "race", func() ([]byte, error) { return fmt.Appendf(nil, "key-of-racer-%02d", i), nil })
		})
	}
	close(start)
	wg.Wait()
	stored, err := s.SigningKey(ctx, "race", func() ([]byte, error) { return nil, errors.New("generate called for a stored key") })
	mustOK(t, "SigningKey(race) after the race", err)
	for i := range racers {
		if errs[i] != nil || !bytes.Equal(keys[i], stored) {
			t.Errorf("racer %d: SigningKey(race) = %q, %v; want the stored %q, nil", i, keys[i], errs[i], stored)
		}
	}
}
