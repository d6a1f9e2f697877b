package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/acl/pgdb/pgdbtest"
	"caseroom/acl/postgres"
)

// feed records what ListenRevocations tells it.
type feed struct{ events chan string }

func (f *feed) ForgetSession(s string)  { f.events <- "s:" + s }
func (f *feed) ForgetUser(u acl.UserID) { f.events <- "u:" + string(u) }
func (f *feed) FeedLive(live bool)      { f.events <- fmt.Sprint("live:", live) }

// waitFor waits until every one of want has been told, in any order,
// skipping what is about other tests' ids (the channel is the database's,
// shared by every schema).
func (f *feed) waitFor(t *testing.T, want ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, w := range want {
		left[w] = true
	}
	deadline := time.After(20 * time.Second)
	for len(left) > 0 {
		select {
		case ev := <-f.events:
			delete(left, ev)
		case <-deadline:
			t.Fatalf("the revocation feed did not tell %v", left)
		}
	}
}

// Every revocation in the store — a session revoked, a user disabled — is
// announced to a listener at once, also after its connection was cut.
func TestRevocationsAreAnnounced(t *testing.T) {
	defer postgres.SetListenCheck(200 * time.Millisecond)() // restored after the listener has ended (below)
	pool := pgdbtest.MustFreshSchema(t)
	s := postgres.New(pool)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	rec := func(stream, action string) audit.Record {
		return audit.Record{Stream: stream, At: at, Actor: "u-admin", Action: action, Outcome: audit.OK, Detail: "{}"}
	}
	id := rand.Text()[:10]
	user, session := acl.UserID("u-"+id), "s-"+id
	mustOK := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	mustOK("PutRegions", s.PutRegions(ctx, []acl.Region{{Code: "150000", Name: "内蒙古自治区", Pinyin: "Nei Mongol", Level: acl.LevelProvince, Kind: "自治区"}}, rec(audit.StreamDirectory, "region.import")))
	mustOK("CreateUnit", s.CreateUnit(ctx, acl.Unit{ID: "u1", Kind: "court", Region: "150000", Name: "法院", CreatedAt: at}, rec(audit.StreamDirectory, "unit.create")))
	mustOK("CreateUser", s.CreateUser(ctx, acl.User{ID: user, Username: id, Name: "张三", Unit: "u1", Roles: []acl.Role{acl.Officer}, CreatedAt: at}, "x", rec(audit.StreamDirectory, "user.create")))
	newSession := func(sid string) {
		mustOK("LoginSucceeded", s.LoginSucceeded(ctx, acl.RefreshToken{Hash: []byte(rand.Text()), Session: sid, User: user, IssuedAt: at, ExpiresAt: at.Add(time.Hour)}, rec(audit.StreamAuth, "auth.login")))
	}
	newSession(session)

	f := &feed{events: make(chan string, 1024)}
	done := make(chan struct{})
	go func() {
		postgres.ListenRevocations(ctx, pool, f, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	defer func() { cancel(); <-done }()
	f.waitFor(t, "live:true")
	mustOK("RevokeSession", s.RevokeSession(ctx, session, at, rec(audit.StreamAuth, "auth.logout")))
	f.waitFor(t, "s:"+session)

	// Cut the listener's connection: it says so, comes back, and goes on.
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1`, postgres.ListenerName); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "live:false")
	f.waitFor(t, "live:true")
	newSession("s2-" + id)
	time.Sleep(time.Second) // idle past the listener's connection checks
	mustOK("SetUserDisabled", s.SetUserDisabled(ctx, user, true, at, rec(audit.StreamDirectory, "user.disable")))
	f.waitFor(t, "u:"+string(user), "s:s2-"+id) // disabling revoked the user's session too
	select {
	case <-done:
		t.Fatal("the listener ended before its context")
	default:
	}
}
