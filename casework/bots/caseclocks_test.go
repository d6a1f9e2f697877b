package bots_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/casework"
	"caseroom/casework/bots"
	cwpg "caseroom/casework/postgres"
	cwsqlite "caseroom/casework/sqlite"
	"caseroom/configs"
)

// cases is the case service on a node's database, built as cmd builds it.
type cases struct {
	n     *node
	store casework.Store
	svc   *casework.Service
	src   *bots.CaseClocks
}

func withCases(t *testing.T, n *node) *cases {
	t.Helper()
	d, _ := mustDomain(t)
	var st interface {
		casework.Store
		Migrate(context.Context) error
	}
	if n.db != nil {
		st = cwsqlite.New(n.db)
	} else {
		st = cwpg.New(n.pool)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	regions, err := acl.LoadRegions(configs.FS, "regions.csv")
	if err != nil {
		t.Fatal(err)
	}
	svc := casework.NewService(n.chat, n.chats, st, n.guard, n.acl, d.Procedures, regions, n.clock.Now, slog.New(slog.DiscardHandler),
		casework.Options{Clocks: d.Clocks, Calendar: d.Calendar, Checklists: d.Checklists, Audit: n.acl})
	return &cases{n: n, store: st, svc: svc, src: bots.NewCaseClocks(st, n.chats, d, regions, nil)}
}

// as returns a context acting as user, who must exist.
func (c *cases) as(t *testing.T, user acl.UserID) context.Context {
	t.Helper()
	u, err := c.n.acl.User(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	unit, err := c.n.acl.Unit(context.Background(), u.Unit)
	if err != nil {
		t.Fatal(err)
	}
	return acl.WithSubject(context.Background(), acl.Subject{User: u.ID, Name: u.Name, Unit: unit.ID, UnitKind: unit.Kind, Region: unit.Region, Roles: u.Roles})
}

// approvedAct asks the police leader for the approvals in's transition needs,
// gets them, and performs it as the police officer.
func (c *cases) approvedAct(t *testing.T, id casework.CaseID, in casework.ActInput) casework.Case {
	t.Helper()
	tr, _ := c.svc.Procedure("criminal").Transition(in.Transition)
	for i := range tr.Approvals {
		m, _, err := c.svc.RequestApproval(c.as(t, "police.officer1"), id, casework.ApprovalInput{Transition: in.Transition, Suspect: in.Suspect, Index: i})
		if err != nil {
			t.Fatalf("RequestApproval(%s): %v", in.Transition, err)
		}
		if _, _, err := c.svc.Decide(c.as(t, "police.leader1"), id, m.Seq, true, "同意"); err != nil {
			t.Fatalf("Decide(%s): %v", in.Transition, err)
		}
	}
	for _, d := range tr.Documents {
		if d.Required {
			in.Documents = append(in.Documents, casework.DocumentRef{Name: d.NameZH})
		}
	}
	_, cs, err := c.svc.Act(c.as(t, "police.officer1"), id, in)
	if err != nil {
		t.Fatalf("Act(%s): %v", in.Transition, err)
	}
	return cs
}

// The deadline bot on the real case service: a theft case is opened, filed
// and its suspect detained through casework.Service; the clocks the detention
// starts (derived from the case room's log by casework's own replay) get their
// reminders and escalations in that room, and a clock the next act stops gets
// no more.
func TestRemindersFromTheCaseService(t *testing.T) {
	start := bj(2026, time.March, 2, 9, 0)
	clock := &testClock{t: start}
	n := openNode(t, sqliteBackend(t), clock)
	n.seed()
	cs := withCases(t, n)
	c, err := cs.svc.OpenCase(cs.as(t, "police.officer1"), casework.OpenInput{
		Procedure: "criminal", Title: "张三盗窃案", Cause: "盗窃", Checklist: "theft",
		Parties:  []casework.Party{{ID: "s1", Role: "suspect", Name: "张三", IDNumber: "150102199001011234"}},
		Evidence: []string{"case-source"},
		Handlers: []acl.UserID{"police.officer1", "police.officer2"},
	})
	if err != nil {
		t.Fatalf("OpenCase: %v", err)
	}
	clock.Set(bj(2026, time.March, 2, 10, 0))
	cs.approvedAct(t, c.ID, casework.ActInput{Transition: "file"})
	clock.Set(bj(2026, time.March, 2, 10, 30))
	cs.approvedAct(t, c.ID, casework.ActInput{Transition: "detain", Suspect: "s1", OccurredAt: bj(2026, time.March, 2, 10, 20)})

	open, err := cs.src.OpenClocks(context.Background(), bots.ClockFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, oc := range open {
		ids = append(ids, oc.Instance())
		if oc.Room != c.Room || oc.Holder != police || oc.Committee != committee || oc.SuspectName != "张三" ||
			len(oc.Officers) != 2 || oc.CaseNumber == "" {
			t.Errorf("%s: %+v", oc.Instance(), oc)
		}
	}
	if want := []string{"CR-DET-01.custody/s1", "CR-DET-01.family/s1", "CR-DET-01.interrogate/s1", "CR-DET-02/s1"}; !eq(ids, want) {
		t.Fatalf("open clocks %q, want %q", ids, want)
	}

	s := n.scheduler(cs.src, bots.SchedulerOptions{})
	for ; !clock.Now().After(bj(2026, time.March, 3, 12, 0)); clock.Advance(10 * time.Minute) {
		mustTick(t, s)
	}
	ms, ns := n.botEntries(c.Room)
	count := map[string]int{}
	for i, no := range ns {
		count[no.Clock+" "+no.Point]++
		if no.Clock == "CR-DET-01.family" {
			t.Logf("case room, seq %d, %s: %s", ms[i].Seq, ms[i].Kind, ms[i].Body)
		}
	}
	for _, id := range []string{"CR-DET-01.custody", "CR-DET-01.family", "CR-DET-01.interrogate"} {
		for _, p := range []string{"T-12h", "T-4h", "T-1h", "overdue"} {
			if count[id+" "+p] != 1 {
				t.Errorf("%s %s: %d entries, want 1", id, p, count[id+" "+p])
			}
		}
	}
	if len(ns) != 12 {
		t.Errorf("%d bot entries, want 12", len(ns))
	}
	if !strings.Contains(ms[0].Body, "张三") || !strings.Contains(ms[0].Body, "2026-03-03 11:00") {
		t.Errorf("first reminder: %s", ms[0].Body)
	}
	if um, _ := n.botEntries(n.unitRoom(committee)); len(um) != 3 {
		t.Errorf("committee unit room: %d escalations, want 3", len(um))
	}

	// The arrest request stops CR-DET-02 on 3 March: its T-1d (4 March 08:00)
	// never comes, while the arrest review it starts is the procuratorate's.
	clock.Set(bj(2026, time.March, 3, 15, 0))
	cs.approvedAct(t, c.ID, casework.ActInput{Transition: "request_arrest_detained", Suspect: "s1", Target: procuratorate})
	for ; !clock.Now().After(bj(2026, time.March, 6, 12, 0)); clock.Advance(time.Hour) {
		mustTick(t, s)
	}
	_, ns = n.botEntries(c.Room)
	for _, no := range ns {
		if no.Clock == "CR-DET-02" {
			t.Errorf("a stopped clock was reminded of: %+v", no)
		}
	}
	open, _ = cs.src.OpenClocks(context.Background(), bots.ClockFilter{})
	var arr *bots.OpenClock
	for i := range open {
		if open[i].Spec.ID == "CR-ARR-01" {
			arr = &open[i]
		}
	}
	if arr == nil || arr.Holder != procuratorate || arr.LastDay().String() != "2026-03-10" {
		t.Fatalf("CR-ARR-01: %+v", arr)
	}
}
