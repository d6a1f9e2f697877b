package casework_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/casework"
	"caseroom/chat"
)

// deadlineBot is the deadline bot as cmd/caseroomd makes it: a bot user of the
// autonomous region's committee.
func (e *env) deadlineBot() acl.Subject {
	e.t.Helper()
	s := acl.Subject{User: "deadline-bot", Name: "期限提醒", Unit: "150000-committee", UnitKind: acl.Committee, Region: "150000", Bot: true}
	if _, err := e.acl.User(e.t.Context(), s.User); err == nil {
		return s
	}
	u := acl.User{ID: s.User, Username: string(s.User), Name: s.Name, Unit: s.Unit, Bot: true, CreatedAt: e.now()}
	rec := audit.Record{Stream: audit.StreamDirectory, At: e.now(), Actor: "console", Action: "user.create", Target: "user:deadline-bot", Outcome: audit.OK}
	if err := e.acl.CreateUser(e.t.Context(), u, "", rec); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// toJudgment takes a new theft case through filing, prosecution and trial
// to the first-instance judgment, at day 2 March 2026 of clk, and returns it.
func (e *env) toJudgment(clk *fakeNow) casework.Case {
	e.t.Helper()
	clk.Set(bj(2026, time.February, 2, 9, 0))
	c := e.openTheft()
	id := c.ID
	e.approved(police, policeL, id, casework.ActInput{Transition: "file", Documents: docs("立案决定书")})
	clk.Set(bj(2026, time.February, 10, 9, 0))
	c = e.approved(police, policeL, id, casework.ActInput{Transition: "transfer_for_prosecution", Target: "150102-procuratorate",
		Documents: docs("起诉意见书", "诉讼卷", "证据卷", "随案移送物品、涉案财物清单"), Evidence: []string{"victim-statement"}})
	if _, _, err := e.cw.Accept(e.as(prosec), id, c.Pending.Seq, casework.ActInput{}); err != nil {
		e.t.Fatal(err)
	}
	clk.Set(bj(2026, time.February, 20, 9, 0))
	c = e.approved(prosec, prosecL, id, casework.ActInput{Transition: "indict", Target: "150102-court", Documents: docs("起诉书", "案卷材料", "证据")})
	if _, _, err := e.cw.Accept(e.as(judge), id, c.Pending.Seq, casework.ActInput{Transition: "accept_ordinary"}); err != nil {
		e.t.Fatal(err)
	}
	clk.Set(bj(2026, time.March, 2, 10, 0))
	c = e.mustAct(judge, id, casework.ActInput{Transition: "judge_first_instance", Documents: docs("判决书")})
	wantStage(e.t, c, "judgment_1st", "150102-court")
	return c
}

// A judgment becomes effective when the appeal period passes unused (CPL
// Art. 259): the deadline bot posts it once the clock has expired, as a
// system act recorded for the court; nobody else may, not before, not after
// an appeal stopped the clock, and a second post is the first.
func TestTimedActJudgmentBecomesEffective(t *testing.T) {
	clk := &fakeNow{}
	e := newEnvAt(t, clk.Now)
	bot := e.deadlineBot()
	c := e.toJudgment(clk)
	id := c.ID
	// CR-APP-01.judgment: 10 days from 2 March, to 24:00 on Thursday 12 March.
	appeal, ok := clockOf(e.cw.ClocksOf(&c), "CR-APP-01.judgment")
	if !ok || appeal.State != casework.ClockRunning || !appeal.Due.Equal(bj(2026, time.March, 13, 0, 0)) {
		t.Fatalf("CR-APP-01.judgment after the judgment: %+v", appeal)
	}
	in := casework.TimedInput{Transition: "becomes_effective", Clock: "CR-APP-01.judgment", ClientID: "timed:CR-APP-01.judgment@20260313T0000"}
	asBot := acl.WithSubject(t.Context(), bot)

	clk.Set(bj(2026, time.March, 12, 23, 0))
	head := e.head(id)
	_, _, err := e.cw.TimedAct(asBot, id, in)
	e.refusedAndNothingStored("TimedAct before expiry", err, "clock-not-expired", id, head)

	clk.Set(bj(2026, time.March, 13, 0, 1))
	before := len(e.denials())
	_, _, err = e.cw.TimedAct(e.as(judge), id, in)
	e.refusedAndNothingStored("TimedAct by the judge", err, "timed-act-bot", id, head)
	_, _, err = e.cw.TimedAct(e.as(sup), id, in)
	e.refusedAndNothingStored("TimedAct by a committee supervisor", err, "timed-act-bot", id, head)
	// A bot of a committee whose jurisdiction does not cover the case.
	other := acl.Subject{User: "other-bot", Unit: "150203-committee", UnitKind: acl.Committee, Region: "150203", Bot: true}
	_, _, err = e.cw.TimedAct(acl.WithSubject(t.Context(), other), id, in)
	e.refusedAndNothingStored("TimedAct by another league's bot", err, "case-timed-bot", id, head)
	// A police bot is no committee's.
	pb := acl.Subject{User: "police-bot", Unit: "150102-police", UnitKind: "police", Region: "150102", Bot: true}
	_, _, err = e.cw.TimedAct(acl.WithSubject(t.Context(), pb), id, in)
	e.refusedAndNothingStored("TimedAct by a police bot", err, "case-timed-bot", id, head)
	if got := len(e.denials()); got != before+4 {
		t.Errorf("denials audited: %d, want %d", got, before+4)
	}
	// Only what the data marks as time-driven, for its clock.
	_, _, err = e.cw.TimedAct(asBot, id, casework.TimedInput{Transition: "becomes_effective", Clock: "CR-CRT-08", ClientID: "timed:x"})
	e.refusedAndNothingStored("TimedAct for a clock that does not drive it", err, "not-timed", id, head)
	_, _, err = e.cw.TimedAct(asBot, id, casework.TimedInput{Transition: "judgment_served", Clock: "CR-APP-01.judgment", ClientID: "timed:y"})
	e.refusedAndNothingStored("TimedAct of a transition that is not time-driven", err, "not-timed", id, head)

	m, c, err := e.cw.TimedAct(asBot, id, in)
	if err != nil {
		t.Fatalf("TimedAct after expiry = %v", err)
	}
	wantStage(t, c, "effective", "150102-court")
	var sa casework.SystemAct
	if err := json.Unmarshal(m.Payload, &sa); err != nil || m.Kind != casework.KindSystem || m.Sender != bot.User ||
		!m.OccurredAt.Equal(bj(2026, time.March, 13, 0, 0)) || sa.Unit != "150102-court" || sa.Clock != "CR-APP-01.judgment" {
		t.Errorf("system act: %s by %s at %v, %+v (%v)", m.Kind, m.Sender, m.OccurredAt, sa, err)
	}
	t.Logf("case room, seq %d, %s: %s", m.Seq, m.Kind, m.Body)
	last := c.Acts[len(c.Acts)-1]
	if last.Kind != casework.KindSystem || last.Transition != "becomes_effective" || last.Unit != "150102-court" || last.By != bot.User {
		t.Errorf("the act as replayed: %+v", last)
	}
	cs := e.cw.ClocksOf(&c)
	if ck, _ := clockOf(cs, "CR-APP-01.judgment"); ck.State != casework.ClockStopped || ck.Left != 0 {
		t.Errorf("CR-APP-01.judgment after the timed act: %+v", ck)
	}
	if ck, ok := clockOf(cs, "CR-EXE-01"); !ok || ck.State != casework.ClockRunning {
		t.Errorf("CR-EXE-01 (execution documents) not started by the effective judgment: %+v", ck)
	}
	// Idempotent: the same client id answers the same entry.
	head = e.head(id)
	m2, _, err := e.cw.TimedAct(asBot, id, in)
	if err != nil || m2.Seq != m.Seq || e.head(id) != head {
		t.Errorf("second TimedAct = seq %d, %v; head %d (was %d); want seq %d, nothing stored", m2.Seq, err, e.head(id), head, m.Seq)
	}
	assertRebuilds(t, e, id)

	// An appeal within the period stops the clock: nothing becomes effective.
	c = e.toJudgment(clk)
	clk.Set(bj(2026, time.March, 10, 10, 0))
	e.mustAct(judge, c.ID, casework.ActInput{Transition: "appeal", Documents: docs("上诉状")})
	clk.Set(bj(2026, time.March, 13, 8, 0))
	head = e.head(c.ID)
	_, _, err = e.cw.TimedAct(asBot, c.ID, in)
	e.refusedAndNothingStored("TimedAct after an appeal", err, "clock-not-running", c.ID, head)
}

// Nodes racing: concurrent timed acts with one client id store one entry, and
// every caller gets it.
func TestTimedActConcurrentCallsPostOnce(t *testing.T) {
	clk := &fakeNow{}
	e := newEnvAt(t, clk.Now)
	bot := e.deadlineBot()
	c := e.toJudgment(clk)
	clk.Set(bj(2026, time.March, 14, 8, 0))
	in := casework.TimedInput{Transition: "becomes_effective", Clock: "CR-APP-01.judgment", ClientID: "timed:CR-APP-01.judgment@20260313T0000"}
	const n = 6
	seqs := make([]chat.Seq, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, _, err := e.cw.TimedAct(acl.WithSubject(t.Context(), bot), c.ID, in)
			seqs[i], errs[i] = m.Seq, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || seqs[i] != seqs[0] {
			t.Errorf("call %d: seq %d, %v; want seq %d", i, seqs[i], errs[i], seqs[0])
		}
	}
	count := 0
	for _, m := range e.roomLog(c.ID) {
		if m.Kind == casework.KindSystem {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d system acts in the room, want 1", count)
	}
}
