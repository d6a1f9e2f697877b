package casework_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/casework"
	"caseroom/chat"
)

func TestHandlersAndActingLeader(t *testing.T) {
	e := newEnv(t)
	id := e.openTheft().ID
	officer2 := e.who("150102-police.officer2").User
	// Officers do not reassign handlers; leaders do.
	if _, _, err := e.cw.AssignHandlers(e.as(police), id, "150102-police", []acl.UserID{officer2}); ruleOf(err) != "case-handlers-leader" {
		t.Errorf("AssignHandlers by an officer = %v, want case-handlers-leader", err)
	}
	// A leader of another unit does not name this unit's handlers.
	if _, _, err := e.cw.AssignHandlers(e.as(sup), id, "150102-police", []acl.UserID{officer2}); err == nil {
		t.Errorf("AssignHandlers of the police by the committee succeeded")
	}
	_, c, err := e.cw.AssignHandlers(e.as(policeL), id, "150102-police", []acl.UserID{officer2, e.who(police).User})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Handlers["150102-police"]; len(got) != 2 || got[0] != officer2 {
		t.Errorf("handlers = %v", got)
	}
	// The leader names officer2 acting leader for a day: they sign the filing.
	now := time.Now()
	if _, _, err := e.cw.Delegate(e.as(policeL), id, officer2, now.Add(-time.Minute), now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	m, _, err := e.cw.RequestApproval(e.as(police), id, casework.ApprovalInput{Transition: "file"})
	if err != nil {
		t.Fatal(err)
	}
	todo, err := e.cw.Todo(e.as("150102-police.officer2"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(todo, func(i casework.TodoItem) bool { return i.Item.Kind == "approval" && i.Item.Seq == m.Seq }) {
		t.Errorf("the acting leader's to-do lacks the approval: %+v", todo)
	}
	if todo, _ := e.cw.Todo(e.as(police)); slices.ContainsFunc(todo, func(i casework.TodoItem) bool { return i.Item.Kind == "approval" }) {
		t.Errorf("the asker has their own approval in their to-do")
	}
	if _, _, err := e.cw.Decide(e.as("150102-police.officer2"), id, m.Seq, true, "代签"); err != nil {
		t.Errorf("Decide by the acting leader = %v", err)
	}
	c = e.mustAct(police, id, casework.ActInput{Transition: "file"})
	if c.Stage != "investigation" {
		t.Errorf("stage %s", c.Stage)
	}
}

func TestChallengeAndHigherReview(t *testing.T) {
	e := newEnv(t)
	id := e.openTheft().ID
	e.approved(police, policeL, id, casework.ActInput{Transition: "file"})
	e.approved(police, policeL, id, casework.ActInput{Transition: "detain", Suspect: "s1"})
	e.approved(police, policeL, id, casework.ActInput{Transition: "request_arrest_detained", Suspect: "s1", Target: "150102-procuratorate"})
	c := e.approved(prosec, prosecL, id, casework.ActInput{Transition: "deny_arrest", Suspect: "s1", Reason: "证据不足"})
	deny := c.Acts[len(c.Acts)-1].Seq
	if c.Suspects[0].State != "free" {
		t.Fatalf("suspect %+v", c.Suspects[0])
	}
	// The procuratorate cannot ask itself to reconsider.
	if _, _, err := e.cw.Challenge(e.as(prosec), id, casework.ChallengeInput{Type: "reconsideration", Against: deny, Reason: "x"}); ruleOf(err) != "case-own-unit" {
		t.Errorf("reconsideration by the procuratorate = %v, want case-own-unit (the police's to send)", err)
	}
	// 复议: the police ask the procuratorate that decided.
	_, c, err := e.cw.Challenge(e.as(police), id, casework.ChallengeInput{Type: "reconsideration", Against: deny, Reason: "嫌疑人有串供可能"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Challenges) != 1 || c.Challenges[0].To != "150102-procuratorate" {
		t.Fatalf("challenges %+v", c.Challenges)
	}
	c = e.approved(prosec, prosecL, id, casework.ActInput{Transition: "arrest_reconsideration_decided.free", Suspect: "s1"})
	if c.Challenges[0].Answered == 0 {
		t.Errorf("the reconsideration is not answered by the decision")
	}
	// 复核: to the next-higher procuratorate, which joins the room.
	_, c, err = e.cw.Challenge(e.as(police), id, casework.ChallengeInput{Type: "review", Against: deny, Reason: "请求复核"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Challenges[1].To != "150100-procuratorate" || !c.IsParticipant("150100-procuratorate") {
		t.Fatalf("review addressed to %s; participants %v", c.Challenges[1].To, c.Participants)
	}
	// The county procuratorate cannot decide what was asked of the league's.
	c = e.approved("150100-procuratorate.officer1", "150100-procuratorate.leader1", id, casework.ActInput{Transition: "arrest_review_decided.free", Suspect: "s1"})
	if c.Challenges[1].Answered == 0 {
		t.Errorf("the review is not answered")
	}
	// A correction notice of the procuratorate against the police's act.
	if _, _, err := e.cw.Challenge(e.as(police), id, casework.ChallengeInput{Type: "correction_notice", Against: deny, Reason: "x"}); ruleOf(err) != "case-own-unit" {
		t.Errorf("correction notice by the police = %v", err)
	}
	file := c.Acts[1].Seq
	if _, _, err := e.cw.Challenge(e.as(prosec), id, casework.ChallengeInput{Type: "correction_notice", Against: file, Reason: "立案程序违法"}); err != nil {
		t.Errorf("correction notice = %v", err)
	}
	assertRebuilds(t, e, id)
}

func TestRetrialReopensAClosedCase(t *testing.T) {
	e := newEnv(t)
	c, err := e.cw.OpenCase(e.as(judge), casework.OpenInput{Procedure: "civil", Title: "甲诉乙合同纠纷",
		Parties: []casework.Party{{ID: "p1", Role: "plaintiff", Name: "甲"}, {ID: "d1", Role: "defendant", Name: "乙"}}})
	if err != nil {
		t.Fatal(err)
	}
	id := c.ID
	e.mustAct(judge, id, casework.ActInput{Transition: "register_simple"})
	c = e.mustAct(judge, id, casework.ActInput{Transition: "settle_or_withdraw", Note: "调解结案"})
	if !c.Closed {
		t.Fatalf("not closed at %s", c.Stage)
	}
	if _, _, err := e.cw.Act(e.as(judge), id, casework.ActInput{Transition: "register_simple"}); err == nil {
		t.Errorf("an act on a closed case succeeded")
	}
	// 再审: asked for (the room comes back), approved by the court's leader, done.
	m, _, err := e.cw.RequestApproval(e.as(judge), id, casework.ApprovalInput{Transition: "retrial"})
	if err != nil {
		t.Fatalf("RequestApproval(retrial) on a closed case = %v", err)
	}
	if _, _, err := e.cw.Decide(e.as(judgeL), id, m.Seq, true, "同意再审"); err != nil {
		t.Fatal(err)
	}
	c = e.mustAct(judge, id, casework.ActInput{Transition: "retrial", Reason: "发现新证据"})
	if c.Closed || c.Stage != "trial_ordinary" || c.Reopened != 1 {
		t.Errorf("after retrial: %s closed %v reopened %d", c.Stage, c.Closed, c.Reopened)
	}
	room, _ := e.rooms.Room(t.Context(), chat.RoomID(id))
	if room.Archived {
		t.Errorf("the room of a reopened case is still archived")
	}
	// The history is intact: every earlier act is still there.
	if len(c.Acts) != 4 {
		t.Errorf("acts after the retrial: %d, want 4", len(c.Acts))
	}
}

func TestListsSearchAndOverdue(t *testing.T) {
	e := newEnv(t)
	c1, err := e.cw.OpenCase(e.as(police), casework.OpenInput{Procedure: "criminal", Title: "甲盗窃案", OccurredAt: time.Now().Add(-40 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := e.cw.OpenCase(e.as(judge), casework.OpenInput{Procedure: "civil", Title: "乙诉丙借款纠纷"})
	if err != nil {
		t.Fatal(err)
	}
	c3, err := e.cw.OpenCase(e.as("150203-police.officer1"), casework.OpenInput{Procedure: "criminal", Title: "丁诈骗案"})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ss []casework.Summary) []casework.CaseID {
		var out []casework.CaseID
		for _, s := range ss {
			out = append(out, s.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(xs ...casework.CaseID) []casework.CaseID { slices.Sort(xs); return xs }
	for _, tt := range []struct {
		user string
		q    casework.ListQuery
		want []casework.CaseID
		rule string
	}{
		{police, casework.ListQuery{Scope: "mine"}, sorted(c1.ID), ""},
		{policeL, casework.ListQuery{Scope: "mine"}, nil, ""},
		{policeL, casework.ListQuery{Scope: "unit"}, sorted(c1.ID), ""},
		{sup, casework.ListQuery{Scope: "jurisdiction"}, sorted(c1.ID, c2.ID), ""},
		{leagueSup, casework.ListQuery{Scope: "jurisdiction"}, sorted(c1.ID, c2.ID), ""},
		{"150000-committee.supervisor1", casework.ListQuery{Scope: "jurisdiction"}, sorted(c1.ID, c2.ID, c3.ID), ""},
		{"150000-committee.supervisor1", casework.ListQuery{Scope: "jurisdiction", Region: "150203"}, sorted(c3.ID), ""},
		{"150000-committee.supervisor1", casework.ListQuery{Scope: "jurisdiction", Procedure: "civil"}, sorted(c2.ID), ""},
		{sup, casework.ListQuery{Scope: "jurisdiction", Overdue: true}, sorted(c1.ID), ""},
		{auditor, casework.ListQuery{Scope: "jurisdiction", Stage: "filing_review"}, sorted(c1.ID, c2.ID), ""},
		{police, casework.ListQuery{Scope: "jurisdiction"}, nil, "case-list-jurisdiction"},
	} {
		got, err := e.cw.List(e.as(tt.user), tt.q)
		if ruleOf(err) != tt.rule || (tt.rule == "" && err != nil) {
			t.Errorf("List(%+v) by %s = %v, want rule %q", tt.q, tt.user, err, tt.rule)
			continue
		}
		if g := ids(got); !slices.Equal(g, tt.want) {
			t.Errorf("List(%+v) by %s = %v, want %v", tt.q, tt.user, g, tt.want)
		}
		for _, s := range got {
			if len(s.Parties) != 0 {
				t.Errorf("a list shows parties")
			}
		}
	}
	if _, err := e.cw.List(e.as(sup), casework.ListQuery{Scope: "jurisdiction", Region: "150203"}); !errors.Is(err, casework.ErrInvalid) {
		t.Errorf("List(jurisdiction of another league) = %v, want invalid region", err)
	}
}

func TestConcurrentAcceptsOneWins(t *testing.T) {
	e := newEnv(t)
	id := e.openTheft().ID
	e.approved(police, policeL, id, casework.ActInput{Transition: "file"})
	c := e.approved(police, policeL, id, casework.ActInput{Transition: "transfer_for_prosecution", Target: "150102-procuratorate"})
	seq := c.Pending.Seq
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, u := range []string{prosec, "150102-procuratorate.officer2"} {
		wg.Go(func() { _, _, errs[i] = e.cw.Accept(e.as(u), id, seq, casework.ActInput{}) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if ruleOf(err) == "" && !errors.Is(err, chat.ErrConflict) {
			t.Errorf("the losing accept failed with %v, want a refusal", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d accepts succeeded (%v), want exactly 1", ok, errs)
	}
	got, _ := e.cw.Case(e.as(prosec), id)
	accepts := 0
	for _, a := range got.Acts {
		if a.Kind == casework.KindAccept {
			accepts++
		}
	}
	if accepts != 1 {
		t.Errorf("%d accepts in the log, want 1", accepts)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	c := e.openTheft()
	id, head := c.ID, c.Head
	for _, tt := range []struct {
		name string
		in   casework.ActInput
	}{
		{"unknown transition", casework.ActInput{Transition: "fly"}},
		{"in the future", casework.ActInput{Transition: "decline_filing", Reason: "x", OccurredAt: time.Now().Add(time.Hour)}},
		{"unknown evidence item", casework.ActInput{Transition: "decline_filing", Reason: "x", Evidence: []string{"gossip"}}},
		{"no reason", casework.ActInput{Transition: "decline_filing"}},
		{"missing document", casework.ActInput{Transition: "decline_filing", Reason: "x", Documents: []casework.DocumentRef{{Name: "别的"}}}},
	} {
		if _, _, err := e.cw.Act(e.as(police), id, tt.in); err == nil {
			t.Errorf("Act(%s) succeeded", tt.name)
		}
	}
	if _, err := e.cw.OpenCase(e.as(police), casework.OpenInput{Procedure: "criminal", Title: "x",
		Parties: []casework.Party{{ID: "a", Role: "nobody", Name: "x"}}}); !errors.Is(err, casework.ErrInvalid) {
		t.Errorf("OpenCase(party with an unknown role) = %v", err)
	}
	if _, err := e.cw.OpenCase(e.as(sup), casework.OpenInput{Procedure: "criminal", Title: "x"}); ruleOf(err) != "committee-no-judicial" {
		t.Errorf("OpenCase by the committee = %v", err)
	}
	if _, err := e.cw.OpenCase(e.as("150102-police.clerk1"), casework.OpenInput{Procedure: "civil", Title: "x"}); ruleOf(err) != "procedure-actor" {
		t.Errorf("OpenCase(civil) by the police = %v", err)
	}
	room, _ := e.rooms.Room(t.Context(), chat.RoomID(id))
	if room.Head != head {
		t.Errorf("refused acts wrote to the room: head %d, was %d", room.Head, head)
	}
	// A hidden case is not found, whatever is tried.
	o := e.as(outsider)
	for name, err := range map[string]error{
		"Case":      func() error { _, err := e.cw.Case(o, id); return err }(),
		"Act":       func() error { _, _, err := e.cw.Act(o, id, casework.ActInput{Transition: "file"}); return err }(),
		"Supervise": func() error { _, _, err := e.cw.Supervise(o, id, casework.SuperviseInput{Notice: "x"}); return err }(),
		"Interventions": func() error {
			_, err := e.cw.Interventions(o, id)
			return err
		}(),
		"RecordIntervention": func() error {
			_, err := e.cw.RecordIntervention(o, id, casework.InterventionInput{})
			return err
		}(),
	} {
		if !errors.Is(err, casework.ErrCaseNotFound) {
			t.Errorf("%s by an outsider = %v, want ErrCaseNotFound", name, err)
		}
	}
}

// TestEveryCaseRebuildsFromItsLog walks cases through many acts and then
// rebuilds every stored projection from its room's log.
func TestEveryCaseRebuildsFromItsLog(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		id := e.openTheft().ID
		e.approved(police, policeL, id, casework.ActInput{Transition: "file"})
		e.approved(police, policeL, id, casework.ActInput{Transition: "detain", Suspect: "s1"})
		if _, _, err := e.chat.Post(e.as(sup), chat.RoomID(id), chat.Post{Body: "关注"}); err != nil {
			t.Fatal(err)
		}
		e.approved(police, policeL, id, casework.ActInput{Transition: "transfer_for_prosecution", Target: "150102-procuratorate"})
	}
	all, err := e.store.Cases(t.Context(), casework.Filter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("%d cases stored, want 3", len(all))
	}
	for _, p := range all {
		assertRebuilds(t, e, p.ID)
	}
}

func TestClockedCases(t *testing.T) {
	e := newEnv(t)
	id := e.openTheft().ID
	e.approved(police, policeL, id, casework.ActInput{Transition: "file"})
	e.approved(police, policeL, id, casework.ActInput{Transition: "detain", Suspect: "s1"})
	cs, err := e.cw.ClockedCases(t.Context(), casework.Filter{Unit: "150102-police"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Case.ID != id {
		t.Fatalf("ClockedCases = %d cases", len(cs))
	}
	running := 0
	for key, ck := range cs[0].Clocks {
		if ck.State() == casework.ClockRunning {
			running++
			if due, _ := ck.Due(); due.IsZero() {
				t.Errorf("clock %s runs without a due time", key)
			}
		}
	}
	var suspectClock bool
	for key := range cs[0].Clocks {
		suspectClock = suspectClock || len(key) > 3 && key[len(key)-3:] == "/s1"
	}
	if running == 0 || !suspectClock {
		t.Errorf("after filing and detention: %d running clocks, a suspect's clock: %v; keys %v", running, suspectClock, keys(cs[0].Clocks))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestCloseAndReopenCheckTheirTransition(t *testing.T) {
	e := newEnv(t)
	c, err := e.cw.OpenCase(e.as(judge), casework.OpenInput{Procedure: "civil", Title: "甲诉乙"})
	if err != nil {
		t.Fatal(err)
	}
	e.mustAct(judge, c.ID, casework.ActInput{Transition: "register_simple"})
	if _, _, err := e.cw.Close(e.as(judge), c.ID, casework.ActInput{Transition: "judge_first_instance"}); !errors.Is(err, casework.ErrInvalid) {
		t.Errorf("Close(judge_first_instance) = %v, want invalid", err)
	}
	if _, _, err := e.cw.Close(e.as(outsider), c.ID, casework.ActInput{Transition: "judge_first_instance"}); !errors.Is(err, casework.ErrCaseNotFound) {
		t.Errorf("Close by an outsider = %v, want not found", err)
	}
	if _, c, err = e.cw.Close(e.as(judge), c.ID, casework.ActInput{Transition: "settle_or_withdraw"}); err != nil || !c.Closed {
		t.Fatalf("Close(settle_or_withdraw) = %v, closed %v", err, c.Closed)
	}
	if _, _, err := e.cw.Reopen(e.as(judge), c.ID, casework.ActInput{Transition: "register_simple"}); !errors.Is(err, casework.ErrInvalid) {
		t.Errorf("Reopen(register_simple) = %v, want invalid", err)
	}
}
