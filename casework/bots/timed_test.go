package bots_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/pgdb/pgdbtest"
	"caseroom/casework"
	"caseroom/casework/bots"
	"caseroom/chat"
	"caseroom/configs"
)

// actBy performs in as user, after asker got every approval it needs from
// approver; the transition's required documents are carried.
func (c *cases) actBy(t *testing.T, user, asker, approver acl.UserID, id casework.CaseID, in casework.ActInput, answers chat.Seq) casework.Case {
	t.Helper()
	tr, _ := c.svc.Procedure("criminal").Transition(in.Transition)
	for i := range tr.Approvals {
		m, _, err := c.svc.RequestApproval(c.as(t, asker), id, casework.ApprovalInput{Transition: in.Transition, Suspect: in.Suspect, Index: i})
		if err != nil {
			t.Fatalf("RequestApproval(%s): %v", in.Transition, err)
		}
		if _, _, err := c.svc.Decide(c.as(t, approver), id, m.Seq, true, "同意"); err != nil {
			t.Fatalf("Decide(%s): %v", in.Transition, err)
		}
	}
	for _, d := range tr.Documents {
		if d.Required {
			in.Documents = append(in.Documents, casework.DocumentRef{Name: d.NameZH})
		}
	}
	var cs casework.Case
	var err error
	if answers != 0 {
		_, cs, err = c.svc.Accept(c.as(t, user), id, answers, in)
	} else {
		_, cs, err = c.svc.Act(c.as(t, user), id, in)
	}
	if err != nil {
		t.Fatalf("%s by %s: %v", in.Transition, user, err)
	}
	return cs
}

// throughJudgment takes a theft case from the police's report to the court's
// first-instance judgment at 10:00 on 2 March 2026.
func (c *cases) throughJudgment(t *testing.T, clock *testClock) casework.Case {
	t.Helper()
	console := acl.WithSubject(context.Background(), acl.ConsoleSubject())
	if _, err := c.n.acl.User(context.Background(), "proc.leader1"); err != nil {
		if _, _, err := c.n.dir.CreateUser(console, acl.NewUser{Username: "proc.leader1", Name: "检察长", Unit: procuratorate, Roles: []acl.Role{acl.Leader}}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Set(bj(2026, time.February, 2, 9, 0))
	k, err := c.svc.OpenCase(c.as(t, "police.officer1"), casework.OpenInput{Procedure: "criminal", Title: "张三盗窃案", Cause: "盗窃",
		Checklist: "theft", Parties: []casework.Party{{ID: "s1", Role: "suspect", Name: "张三"}}, Evidence: []string{"case-source"}})
	if err != nil {
		t.Fatal(err)
	}
	id := k.ID
	c.actBy(t, "police.officer1", "police.officer1", "police.leader1", id, casework.ActInput{Transition: "file"}, 0)
	clock.Set(bj(2026, time.February, 10, 9, 0))
	k = c.actBy(t, "police.officer1", "police.officer1", "police.leader1", id, casework.ActInput{Transition: "transfer_for_prosecution",
		Target: procuratorate, Evidence: []string{"victim-statement"}}, 0)
	c.actBy(t, "proc.officer1", "", "", id, casework.ActInput{Transition: "accept_for_review"}, k.Pending.Seq)
	clock.Set(bj(2026, time.February, 20, 9, 0))
	k = c.actBy(t, "proc.officer1", "proc.officer1", "proc.leader1", id, casework.ActInput{Transition: "indict", Target: court}, 0)
	c.actBy(t, "court.officer1", "", "", id, casework.ActInput{Transition: "accept_ordinary"}, k.Pending.Seq)
	clock.Set(bj(2026, time.March, 2, 10, 0))
	k = c.actBy(t, "court.officer1", "", "", id, casework.ActInput{Transition: "judge_first_instance"}, 0)
	if k.Stage != "judgment_1st" || k.Holder != court {
		t.Fatalf("after the judgment: %s held by %s", k.Stage, k.Holder)
	}
	return k
}

// systemActs returns the case.system entries of room.
func (n *node) systemActs(room chat.RoomID) []chat.Message {
	var out []chat.Message
	for _, m := range n.log(room) {
		if m.Kind == casework.KindSystem {
			out = append(out, m)
		}
	}
	return out
}

// The deadline bot makes a judgment effective (CPL Art. 259): a criminal
// case is taken through judgment on the case service; the appeal period
// (CR-APP-01.judgment, 10 d, to 24:00 on 12 March) passes on the test's
// clock; the scheduler's tick at expiry posts the notice that the period
// passed and, through the case service, the system act that makes the
// judgment effective — once, however often it ticks, with two schedulers
// racing, and when the act is asked for again.
func TestTimedActMakesTheJudgmentEffective(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { timedActTest(t, sqliteBackend(t)) })
	t.Run("postgres", func(t *testing.T) {
		timedActTest(t, backend{kind: "postgres", dsn: pgdbtest.URLWithSchema(t)})
	})
}

func timedActTest(t *testing.T, be backend) {
	clock := &testClock{t: bj(2026, time.February, 2, 9, 0)}
	n := openNode(t, be, clock)
	n.seed()
	cs := withCases(t, n)
	k := cs.throughJudgment(t, clock)
	src := bots.NewTimedClocks(cs.src, cs.svc)
	a := n.scheduler(src, bots.SchedulerOptions{Node: "a", Lease: -1})
	b := n.scheduler(src, bots.SchedulerOptions{Node: "b", Lease: -1})

	// Reminders before expiry: no act.
	for _, at := range []time.Time{bj(2026, time.March, 9, 8, 0), bj(2026, time.March, 11, 8, 0), bj(2026, time.March, 12, 8, 0)} {
		clock.Set(at)
		if rep := mustTick(t, a); rep.TimedActs != 0 {
			t.Errorf("tick at %v asked for %d timed acts before expiry", at, rep.TimedActs)
		}
	}
	if acts := n.systemActs(k.Room); len(acts) != 0 {
		t.Fatalf("system acts before expiry: %d", len(acts))
	}
	open, err := src.OpenClocks(context.Background(), bots.ClockFilter{Rooms: []chat.RoomID{k.Room}})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(open, func(c bots.OpenClock) bool { return c.Spec.ID == "CR-APP-01.judgment" })
	if i < 0 {
		t.Fatalf("CR-APP-01.judgment is not open: %+v", open)
	}
	appeal := open[i]
	if !appeal.Due.Equal(bj(2026, time.March, 13, 0, 0)) {
		t.Fatalf("CR-APP-01.judgment due %v, want 2026-03-12 24:00", appeal.Due)
	}

	// Expiry: both schedulers tick at once.
	clock.Set(bj(2026, time.March, 13, 0, 0))
	var wg sync.WaitGroup
	reps := make([]bots.TickReport, 2)
	errs := make([]error, 2)
	for j, s := range []*bots.Scheduler{a, b} {
		wg.Go(func() { reps[j], errs[j] = s.Tick(context.Background()) })
	}
	wg.Wait()
	for j := range 2 {
		if errs[j] != nil {
			t.Fatalf("scheduler %d: %v", j, errs[j])
		}
	}
	if reps[0].TimedActs+reps[1].TimedActs == 0 {
		t.Errorf("no scheduler asked for the timed act: %+v", reps)
	}
	for _, at := range []time.Time{bj(2026, time.March, 13, 0, 1), bj(2026, time.March, 14, 8, 0)} {
		clock.Set(at)
		mustTick(t, a)
		mustTick(t, b)
	}
	// Asked again (a restarted node with the clock it read before the act).
	if err := src.TimedAct(context.Background(), botSubject(), appeal, "becomes_effective"); err != nil {
		t.Errorf("TimedAct again: %v", err)
	}

	acts := n.systemActs(k.Room)
	if len(acts) != 1 {
		t.Fatalf("%d system acts in the case room, want 1", len(acts))
	}
	m := acts[0]
	var sa casework.SystemAct
	if err := json.Unmarshal(m.Payload, &sa); err != nil || sa.Transition != "becomes_effective" || m.Sender != deadlineBot ||
		m.ClientID != bots.TimedClientID(appeal.Key()) || !m.OccurredAt.Equal(appeal.Due) || sa.Unit != court {
		t.Errorf("system act: %+v by %s, client id %q, occurred %v (%v)", sa, m.Sender, m.ClientID, m.OccurredAt, err)
	}
	t.Logf("case room, seq %d, %s: %s", m.Seq, m.Kind, m.Body)
	// The period's passing was noticed once, before the act.
	var expired []chat.Message
	for _, e := range n.log(k.Room) {
		if e.Sender == deadlineBot && e.ClientID == bots.ReminderClientID(appeal.Key(), "expired") {
			expired = append(expired, e)
		}
	}
	if len(expired) != 1 || expired[0].Seq > m.Seq {
		t.Errorf("expiry notices %d (seq %v), want 1 before the act at %d", len(expired), expired, m.Seq)
	}

	// The case has moved: effective, the execution documents' clock running.
	cv, err := cs.svc.Case(cs.as(t, "court.officer1"), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cv.Stage != "effective" || cv.Holder != court {
		t.Errorf("case at %s held by %s, want effective held by the court", cv.Stage, cv.Holder)
	}
	open, _ = src.OpenClocks(context.Background(), bots.ClockFilter{Rooms: []chat.RoomID{k.Room}})
	var ids []string
	for _, c := range open {
		ids = append(ids, c.Instance())
	}
	if !slices.Contains(ids, "CR-EXE-01") || slices.Contains(ids, "CR-APP-01.judgment") {
		t.Errorf("open clocks after the act: %q", ids)
	}
}

// reminders.json's timed acts must be what the procedures mark as time-driven.
func TestTimedActsMatchTheProcedures(t *testing.T) {
	d, _ := mustDomain(t)
	b, err := configs.FS.ReadFile("reminders.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TimedActs []bots.TimedAct `json:"timed_acts"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, p := range d.Procedures {
		for _, tr := range append(append([]casework.Transition{}, p.Machine.Transitions...), suspectTransitions(p)...) {
			for _, clock := range tr.Timed {
				marked++
				if !slices.ContainsFunc(doc.TimedActs, func(ta bots.TimedAct) bool {
					return ta.Procedure == p.ID && ta.Transition == tr.ID && ta.Clock == clock
				}) {
					t.Errorf("%s %s is timed by %s, but reminders.json's timed_acts do not say so: the bot would never post it", p.ID, tr.ID, clock)
				}
			}
		}
	}
	if marked != len(doc.TimedActs) {
		t.Errorf("%d timed transitions in the procedures, %d timed acts in reminders.json", marked, len(doc.TimedActs))
	}
	// A timed act the procedure does not mark is refused at load.
	bad := `{"time_of_day": "08:00", "classes": [{"id": "a", "match": "any", "offsets": ["1d"]}], "timed_acts": [{"clock": "CR-APP-02.request", "procedure": "criminal", "transition": "becomes_effective"}]}`
	if _, err := bots.LoadReminders(mapFS("r.json", bad), "r.json", d); err == nil {
		t.Error("LoadReminders accepted a timed act the procedure does not mark as timed")
	}
}

func suspectTransitions(p *casework.Procedure) []casework.Transition {
	if p.Suspect == nil {
		return nil
	}
	return p.Suspect.Transitions
}
