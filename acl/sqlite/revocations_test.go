package sqlite_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/acl/sqlite"
)

// feed records what PollRevocations tells it, in order.
type feed struct{ events chan string }

func (f *feed) ForgetSession(s string)  { f.events <- "s:" + s }
func (f *feed) ForgetUser(u acl.UserID) { f.events <- "u:" + string(u) }

// next returns the next thing told, failing after 10 s.
func (f *feed) next(t *testing.T) string {
	t.Helper()
	select {
	case ev := <-f.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("the revocation poller told nothing within 10 s")
		return ""
	}
}

// Revocations written after the poller starts — by this store or by another
// process on the same file, which is the same to it — are told in the order
// made; those made before it started are not.
func TestRevocationsArePolled(t *testing.T) {
	s := mustOpen(t)
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Microsecond)
	rec := func(stream, action string) audit.Record {
		return audit.Record{Stream: stream, At: at, Actor: "u-admin", Action: action, Outcome: audit.OK, Detail: "{}"}
	}
	mustOK := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	mustOK("PutRegions", s.PutRegions(ctx, []acl.Region{{Code: "150000", Name: "内蒙古自治区", Pinyin: "Nei Mongol", Level: acl.LevelProvince, Kind: "自治区"}}, rec(audit.StreamDirectory, "region.import")))
	mustOK("CreateUnit", s.CreateUnit(ctx, acl.Unit{ID: "u1", Kind: "court", Region: "150000", Name: "法院", CreatedAt: at}, rec(audit.StreamDirectory, "unit.create")))
	for _, u := range []acl.UserID{"u-a", "u-b"} {
		mustOK("CreateUser", s.CreateUser(ctx, acl.User{ID: u, Username: string(u), Name: "张三", Unit: "u1", Roles: []acl.Role{acl.Officer}, CreatedAt: at}, "x", rec(audit.StreamDirectory, "user.create")))
	}
	newSession := func(sid string, user acl.UserID) {
		mustOK("LoginSucceeded", s.LoginSucceeded(ctx, acl.RefreshToken{Hash: []byte("h-" + sid), Session: sid, User: user, IssuedAt: at, ExpiresAt: at.Add(time.Hour)}, rec(audit.StreamAuth, "auth.login")))
	}
	newSession("s-old", "u-a")
	newSession("s-1", "u-a")
	newSession("s-2", "u-b")
	mustOK("RevokeSession", s.RevokeSession(ctx, "s-old", at, rec(audit.StreamAuth, "auth.logout"))) // before the poller

	f := &feed{events: make(chan string, 16)}
	started := make(chan struct{})
	defer sqlite.SetPollStarted(func() { close(started) })()
	go s.PollRevocations(ctx, f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	<-started
	mustOK("RevokeSession", s.RevokeSession(ctx, "s-1", at, rec(audit.StreamAuth, "auth.logout")))
	mustOK("RevokeSession again", s.RevokeSession(ctx, "s-1", at.Add(time.Second), rec(audit.StreamAuth, "auth.logout")))
	mustOK("SetUserDisabled", s.SetUserDisabled(ctx, "u-b", true, at, rec(audit.StreamDirectory, "user.disable")))
	mustOK("SetUserDisabled again", s.SetUserDisabled(ctx, "u-b", true, at, rec(audit.StreamDirectory, "user.disable")))

	var got []string
	for range 3 {
		got = append(got, f.next(t))
	}
	// Disabling u-b revokes its session too; the order of that pair is the store's.
	if got[0] != "s:s-1" || !(got[1] == "u:u-b" && got[2] == "s:s-2" || got[1] == "s:s-2" && got[2] == "u:u-b") {
		t.Fatalf("told %v, want s:s-1 then u:u-b and s:s-2", got)
	}
	select {
	case ev := <-f.events:
		t.Fatalf("told %q more: a repeated revocation or one from before the poller", ev)
	case <-time.After(2500 * time.Millisecond):
	}
}
