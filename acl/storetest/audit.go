package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
)

// everyChangeIsAudited calls each method that changes something and checks
// that its record, exactly as given, is the next entry of its stream.
func everyChangeIsAudited(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	first := mustLogin(t, s, alice, "s-alice", "tok-alice", t0)
	mustLogin(t, s, bob, "s-bob", "tok-bob", t0)
	carol := acl.User{ID: "u-carol", Username: "carol", Name: "王五", Unit: court, CreatedAt: t0}
	unit := acl.Unit{ID: "150102-police", Kind: "police", Region: county, Name: "新城区公安分局", CreatedAt: t0}
	next := token("tok-alice-2", t0.Add(time.Minute))
	login := token("tok-carol", t0)
	login.Session, login.User = "s-carol", carol.ID

	steps := []struct {
		stream, call string
		do           func(r audit.Record) error
	}{
		{audit.StreamDirectory, "PutRegions", func(r audit.Record) error { return s.PutRegions(ctx, seedRegions[:1], r) }},
		{audit.StreamDirectory, "CreateUnit", func(r audit.Record) error { return s.CreateUnit(ctx, unit, r) }},
		{audit.StreamDirectory, "SetUnitDisabled", func(r audit.Record) error { return s.SetUnitDisabled(ctx, unit.ID, true, r) }},
		{audit.StreamDirectory, "CreateUser", func(r audit.Record) error { return s.CreateUser(ctx, carol, phc("u-carol"), r) }},
		{audit.StreamDirectory, "SetRoles", func(r audit.Record) error { return s.SetRoles(ctx, carol.ID, []acl.Role{acl.Clerk}, t0, r) }},
		{audit.StreamDirectory, "SetPassword", func(r audit.Record) error { return s.SetPassword(ctx, carol.ID, "h2", r.At, r) }},
		{audit.StreamAuth, "LoginFailed", func(r audit.Record) error {
			_, err := s.LoginFailed(ctx, carol.ID, 5, t0.Add(time.Hour), r)
			return err
		}},
		{audit.StreamAuth, "Unlock", func(r audit.Record) error { return s.Unlock(ctx, carol.ID, r) }},
		{audit.StreamAuth, "LoginSucceeded", func(r audit.Record) error { return s.LoginSucceeded(ctx, login, r) }},
		{audit.StreamAuth, "Rotate", func(r audit.Record) error { return s.Rotate(ctx, first.Hash, &next, r.At, r) }},
		{audit.StreamAuth, "RevokeSession", func(r audit.Record) error { return s.RevokeSession(ctx, "s-bob", r.At, r) }},
		{audit.StreamDirectory, "SetUserDisabled", func(r audit.Record) error { return s.SetUserDisabled(ctx, carol.ID, true, r.At, r) }},
		{audit.StreamDenials, "Audit", func(r audit.Record) error { return s.Audit(ctx, r) }},
	}
	for i, st := range steps {
		r := audit.Record{
			Stream:  st.stream,
			At:      t0.Add(time.Duration(i+1) * time.Second),
			Actor:   "u-admin",
			Action:  "step." + st.call,
			Target:  fmt.Sprintf("target-%d", i),
			Outcome: audit.OK,
			Detail:  fmt.Sprintf(`{"step":%d}`, i),
		}
		before := len(mustEntries(t, s, st.stream))
		mustOK(t, st.call, st.do(r))
		es := mustEntries(t, s, st.stream)
		if len(es) != before+1 {
			t.Errorf("%s: stream %q has %d entries, want %d", st.call, st.stream, len(es), before+1)
			continue
		}
		if got := es[before]; got.Seq != int64(before+1) || !sameRecord(got.Record, r) {
			t.Errorf("%s: entry %d = %+v, want seq %d with %+v", st.call, before, got, before+1, r)
		}
	}
	wantActive(t, s, "s-carol", false) // SetUserDisabled ran after carol's login
}

// failedChangeLeavesNoAuditEntry: a change refused by the store leaves neither
// its effect nor its record, and a record the store cannot append (no stream)
// undoes its change.
func failedChangeLeavesNoAuditEntry(t *testing.T, s acl.Store) {
	ctx := t.Context()
	seedDirectory(t, s)
	first := mustLogin(t, s, alice, "s-alice", "tok-alice", t0)
	for range 2 {
		if _, err := s.LoginFailed(ctx, alice, 5, t0.Add(time.Hour), failure(alice)); err != nil {
			t.Fatalf("LoginFailed = %v, want nil", err)
		}
	}
	dir, auth := len(mustEntries(t, s, audit.StreamDirectory)), len(mustEntries(t, s, audit.StreamAuth))
	d, a := rec(audit.StreamDirectory, "probe", ""), rec(audit.StreamAuth, "probe", "")

	wantErr(t, "CreateUnit(existing)", s.CreateUnit(ctx, seedUnits[0], d), acl.ErrExists)
	wantErr(t, "CreateUser(existing)", s.CreateUser(ctx, seedUsers[0], "", d), acl.ErrExists)
	again := token("tok-again", t0.Add(time.Minute))
	again.Session, again.User = "s-alice", alice
	wantErr(t, "LoginSucceeded(existing session)", s.LoginSucceeded(ctx, again, a), acl.ErrExists)
	if c := mustCredentials(t, s, "alice"); c.FailedLogins != 2 {
		t.Errorf("FailedLogins after a refused LoginSucceeded = %d, want 2 (the reset must roll back)", c.FailedLogins)
	}

	noStream := d
	noStream.Stream = ""
	unit := acl.Unit{ID: "150102-police", Kind: "police", Region: county, Name: "police", CreatedAt: t0}
	wantErr(t, "CreateUnit(record without stream)", s.CreateUnit(ctx, unit, noStream), acl.ErrInvalid)
	if _, err := s.Unit(ctx, unit.ID); err == nil {
		t.Errorf("Unit(%q) = nil error after CreateUnit failed to audit, want %v", unit.ID, acl.ErrNotFound)
	}
	next := token("tok-next", t0.Add(time.Minute))
	wantErr(t, "Rotate(record without stream)", s.Rotate(ctx, first.Hash, &next, t0.Add(time.Minute), noStream), acl.ErrInvalid)
	wantErr(t, "Audit(record without stream)", s.Audit(ctx, noStream), acl.ErrInvalid)

	if got := len(mustEntries(t, s, audit.StreamDirectory)); got != dir {
		t.Errorf("directory stream has %d entries after refused changes, want %d", got, dir)
	}
	if got := len(mustEntries(t, s, audit.StreamAuth)); got != auth {
		t.Errorf("auth stream has %d entries after refused changes, want %d", got, auth)
	}
	// The token was not spent by the rotation that failed to audit.
	mustOK(t, "Rotate after a rolled-back rotation", s.Rotate(ctx, first.Hash, &next, t0.Add(time.Minute), a))
}

func auditEntriesPageInOrder(t *testing.T, s acl.Store) {
	ctx := t.Context()
	var recs []audit.Record
	for i := range 5 {
		r := rec("page", fmt.Sprintf("act.%d", i+1), fmt.Sprintf("t%d", i+1))
		r.At = t0.Add(time.Duration(i) * time.Second)
		recs = append(recs, r)
		mustOK(t, "Audit", s.Audit(ctx, r))
	}
	all := mustEntries(t, s, "page")
	if len(all) != len(recs) {
		t.Fatalf("AuditEntries(page, 0) returned %d entries, want %d", len(all), len(recs))
	}
	for i, e := range all {
		var prev []byte
		if i > 0 {
			prev = all[i-1].Hash
		}
		if e.Seq != int64(i+1) || !sameRecord(e.Record, recs[i]) || !bytes.Equal(e.Prev, prev) || len(e.Hash) == 0 {
			t.Errorf("entry %d = %+v; want seq %d, record %+v, prev %x", i, e, i+1, recs[i], prev)
		}
	}

	page, err := s.AuditEntries(ctx, "page", 2, 2)
	if err != nil || len(page) != 2 || page[0].Seq != 3 || page[1].Seq != 4 {
		t.Fatalf("AuditEntries(page, after 2, limit 2) = %+v, %v; want seqs 3 and 4", page, err)
	}
	links := make([]audit.Link, len(page))
	for i, e := range page {
		links[i] = audit.Link{Seq: e.Seq, Prev: e.Prev, Hash: e.Hash, Canonical: e.Canonical(e.Seq)}
	}
	if err := audit.VerifyLinks(3, all[1].Hash, links); err != nil {
		t.Errorf("VerifyLinks(3, hash of 2, page) = %v, want nil", err)
	}
	for _, c := range []struct {
		stream string
		after  int64
	}{{"page", 5}, {"page", 99}, {"never-written", 0}} {
		if got, err := s.AuditEntries(ctx, c.stream, c.after, 10); err != nil || len(got) != 0 {
			t.Errorf("AuditEntries(%s, after %d) = %+v, %v; want none, nil", c.stream, c.after, got, err)
		}
	}
	_, err = s.AuditEntries(ctx, "page", 0, 0)
	wantErr(t, "AuditEntries(limit 0)", err, acl.ErrInvalid)
}

func streamsAreSeparateChains(t *testing.T, s acl.Store) {
	ctx := t.Context()
	for i, stream := range []string{"room-a", "room-b", "room-a", "room-b", "room-b"} {
		mustOK(t, "Audit "+stream, s.Audit(ctx, rec(stream, "post", fmt.Sprint(i))))
	}
	for stream, want := range map[string][]string{"room-a": {"0", "2"}, "room-b": {"1", "3", "4"}} {
		es := mustEntries(t, s, stream)
		var got []string
		for _, e := range es {
			got = append(got, e.Target)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || len(es[0].Prev) != 0 {
			t.Errorf("stream %s holds targets %v (first prev %x), want %v from seq 1 with no predecessor", stream, got, es[0].Prev, want)
		}
	}
}

func auditTimeIsStoredInMicroseconds(t *testing.T, s acl.Store) {
	ctx := t.Context()
	r := rec("micro", "probe", "")
	r.At = time.Date(2025, time.March, 3, 17, 30, 0, 123456789, time.FixedZone("CST", 8*3600))
	mustOK(t, "Audit", s.Audit(ctx, r))
	es := mustEntries(t, s, "micro") // verifies: the hash covers what was stored
	want := r.At.Truncate(time.Microsecond)
	if len(es) != 1 || !es[0].At.Equal(want) {
		t.Fatalf("AuditEntries(micro) = %+v, want one entry at %v", es, want)
	}
	stored := r
	stored.At = want
	if h := audit.Next(nil, stored.Canonical(1)); !bytes.Equal(es[0].Hash, h) {
		t.Errorf("entry hash = %x, want %x (SHA-256 of the canonical stored record)", es[0].Hash, h)
	}
}

// auditChainVerifiesUnderConcurrency appends from many goroutines to one
// stream, half through Audit and half with a change, and checks the chain.
func auditChainVerifiesUnderConcurrency(t *testing.T, s acl.Store) {
	ctx := t.Context()
	mustOK(t, "PutRegions", s.PutRegions(ctx, seedRegions, rec("other", "region.import", "")))
	const workers, each = 20, 10
	errs := make([]error, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for i := range each {
				target := fmt.Sprintf("w%02d-%02d", w, i)
				r := rec("load", "load", target)
				r.At = time.Now()
				var err error
				if w%2 == 0 {
					err = s.Audit(ctx, r)
				} else {
					err = s.CreateUnit(ctx, acl.Unit{ID: acl.UnitID(target), Kind: "court", Region: county, Name: target}, r)
				}
				if err != nil {
					errs[w] = fmt.Errorf("append %s: %w", target, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	es := mustEntries(t, s, "load") // no shared seq, no broken link
	if len(es) != workers*each {
		t.Fatalf("stream load has %d entries, want %d", len(es), workers*each)
	}
	seen := map[string]bool{}
	for _, e := range es {
		seen[e.Target] = true
	}
	if len(seen) != workers*each {
		t.Errorf("stream load holds %d distinct targets, want %d", len(seen), workers*each)
	}
	units, err := s.Units(ctx, acl.UnitFilter{Region: county})
	if err != nil || len(units) != workers/2*each {
		t.Errorf("Units(county) = %d units, %v; want %d", len(units), err, workers/2*each)
	}
}
