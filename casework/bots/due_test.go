package bots_test

import (
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/casework"
	"caseroom/casework/bots"
)

// "What is due": mine (the cases I handle), my unit's (what it must act on)
// and my jurisdiction's (supervisors), sorted by time left — the overdue
// first — each clock with its row and legal basis; a paused clock's time left
// is frozen; a bot reads its unit's list through the gateway.
func TestDueLists(t *testing.T) {
	start := bj(2026, time.March, 2, 10, 0)
	s := newServer(t, start, bots.PlatformOptions{})
	x, y, z, w, v, p := s.openCase("due-x"), s.openCase("due-y"), s.openCase("due-z"), s.openCase("due-w"), s.openCase("due-v"), s.openCase("due-p")
	s.src.add(t, clockDef{Room: x, Clock: "CR-DET-02", Suspect: "s1", Start: start, Detained: true, Holder: police, Officers: []acl.UserID{"police.officer1"}})
	s.src.add(t, clockDef{Room: y, Clock: "CR-CUS-01", Suspect: "s1", Start: start, Detained: true, Holder: police, Officers: []acl.UserID{"police.officer2"}})
	s.src.add(t, clockDef{Room: z, Clock: "CR-CRT-04", Suspect: "s1", Start: start, Detained: true, Holder: court, Officers: []acl.UserID{"court.officer1"}})
	s.src.add(t, clockDef{Room: w, Clock: "CR-DET-01.family", Suspect: "s2", Start: start, Detained: true, Holder: police, Officers: []acl.UserID{"police.officer1"}})
	s.src.add(t, clockDef{Room: v, Clock: "CR-DET-02", Suspect: "s1", Start: start.Add(time.Hour), Detained: true, Holder: "150105-police", Region: "150105"})
	paused := s.src.add(t, clockDef{Room: p, Clock: "CR-CUS-01", Suspect: "s3", Start: start, Detained: true, Holder: police, Officers: []acl.UserID{"police.officer1"}})
	s.src.apply(t, paused, casework.ClockEvent{Kind: casework.EventPause, At: bj(2026, time.March, 3, 12, 0), Ref: "psychiatric"})
	s.clock.Set(bj(2026, time.March, 4, 12, 0))

	list := func(user, scope string) (int, string, bots.DueListView) {
		t.Helper()
		var out bots.DueListView
		st, _, rule := s.call(t, "GET", "/api/v1/due?scope="+scope, s.login(t, user), nil, &out)
		return st, rule, out
	}
	rooms := func(l bots.DueListView) []string {
		var out []string
		for _, it := range l.Items {
			out = append(out, string(it.Room))
		}
		return out
	}
	sorted := func(l bots.DueListView) bool {
		for i := 1; i < len(l.Items); i++ {
			if l.Items[i].LeftSeconds < l.Items[i-1].LeftSeconds {
				return false
			}
		}
		return true
	}

	st, _, mine := list("police.officer1", "mine")
	if st != 200 || !eq(rooms(mine), []string{string(w), string(x), string(p)}) || !sorted(mine) {
		t.Fatalf("mine: %d %q", st, rooms(mine))
	}
	it := mine.Items[0]
	if !it.Overdue || it.LeftSeconds >= 0 || it.Clock != "CR-DET-01.family" || it.Row != "CR-DET-01" || it.Basis != "CPL Art. 85 ¶2" ||
		it.NameZH != "通知家属" || it.Holder != police || it.State != "running" || !it.Strict {
		t.Errorf("overdue item %+v", it)
	}
	it = mine.Items[1]
	if it.Overdue || it.LeftSeconds != int64(36*time.Hour/time.Second) || it.LastDay != "2026-03-05" || it.Basis != "CPL Art. 91 ¶1" {
		t.Errorf("CR-DET-02 item %+v", it)
	}
	// Paused on 3 March at noon with 60 days to go (last day 2 May): frozen.
	it = mine.Items[2]
	if it.State != "paused" || it.LeftSeconds != int64(bj(2026, time.May, 3, 0, 0).Sub(bj(2026, time.March, 3, 12, 0))/time.Second) {
		t.Errorf("paused item %+v", it)
	}
	if _, _, o2 := list("police.officer2", "unit"); !eq(rooms(o2), []string{string(w), string(x), string(y), string(p)}) {
		t.Errorf("police unit: %q", rooms(o2))
	}
	if _, _, c := list("court.clerk1", "unit"); !eq(rooms(c), []string{string(z)}) || c.Items[0].Basis != "CPL Art. 220" {
		t.Errorf("court unit: %+v", c)
	}
	if _, _, sup := list("committee.sup1", "jurisdiction"); !eq(rooms(sup), []string{string(w), string(x), string(z), string(y), string(p)}) {
		t.Errorf("county jurisdiction: %q", rooms(sup))
	}
	if _, _, lg := list("league.sup1", "jurisdiction"); !eq(rooms(lg), []string{string(w), string(v), string(x), string(z), string(y), string(p)}) {
		t.Errorf("league jurisdiction: %q", rooms(lg))
	}
	if st, rule, _ := list("police.officer1", "jurisdiction"); st != 403 || rule != "case-list-jurisdiction" {
		t.Errorf("an officer's jurisdiction list: %d %s", st, rule)
	}
	if st, _, _ := list("police.officer1", "everything"); st != 400 {
		t.Errorf("unknown scope: %d", st)
	}
	if st, _, _ := s.call(t, "GET", "/api/v1/due", "", nil, nil); st != 401 {
		t.Errorf("anonymous: %d", st)
	}

	tok, _ := s.botWithToken(t, "court-digest", court, nil, bots.Scope{Due: []acl.UnitID{court}})
	var bl bots.DueListView
	if st, _, _ := s.call(t, "GET", "/api/v1/bot/due", tok, nil, &bl); st != 200 || !eq(rooms(bl), []string{string(z)}) || bl.Unit != court {
		t.Errorf("bot due list: %d %+v", st, bl)
	}
	if st, _, rule := s.call(t, "GET", "/api/v1/bot/due?unit="+string(police), tok, nil, nil); st != 403 || rule != bots.RuleScopeDue {
		t.Errorf("bot reading another unit's list: %d %s", st, rule)
	}
}
