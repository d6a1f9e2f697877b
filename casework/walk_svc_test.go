package casework_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/casework"
	"caseroom/chat"
)

const (
	police    = "150102-police.officer1"
	policeL   = "150102-police.leader1"
	prosec    = "150102-procuratorate.officer1"
	prosecL   = "150102-procuratorate.leader1"
	judge     = "150102-court.officer1"
	judgeL    = "150102-court.leader1"
	corr      = "150102-justice.officer1"
	sup       = "150102-committee.supervisor1"
	auditor   = "150102-committee.auditor1"
	outsider  = "150203-police.officer1"
	leagueSup = "150100-committee.supervisor1"
)

// approved gets every approval t needs for in (asked by asker, given by
// approver) and then performs the act.
func (e *env) approved(asker, approver string, id casework.CaseID, in casework.ActInput) casework.Case {
	e.t.Helper()
	t, ok := e.cw.Procedure("criminal").Transition(in.Transition)
	if !ok {
		t, _ = e.cw.Procedure("civil").Transition(in.Transition)
	}
	for i := range t.Approvals {
		m, _, err := e.cw.RequestApproval(e.as(asker), id, casework.ApprovalInput{Transition: in.Transition, Suspect: in.Suspect, Index: i})
		if err != nil {
			e.t.Fatalf("RequestApproval(%s #%d) by %s = %v", in.Transition, i, asker, err)
		}
		if _, _, err := e.cw.Decide(e.as(approver), id, m.Seq, true, "同意"); err != nil {
			e.t.Fatalf("Decide(%s #%d) by %s = %v", in.Transition, i, approver, err)
		}
	}
	return e.mustAct(asker, id, in)
}

func (e *env) mustAct(user string, id casework.CaseID, in casework.ActInput) casework.Case {
	e.t.Helper()
	if c, err := e.cw.Case(e.as(user), id); err == nil {
		in = e.withDocs(e.cw.Procedure(c.Procedure), in)
	}
	_, c, err := e.cw.Act(e.as(user), id, in)
	if err != nil {
		e.t.Fatalf("Act(%s) by %s = %v", in.Transition, user, err)
	}
	return c
}

// withDocs gives in the documents its transition requires, if it names none.
func (e *env) withDocs(p *casework.Procedure, in casework.ActInput) casework.ActInput {
	if len(in.Documents) > 0 || p == nil {
		return in
	}
	if t, ok := p.Transition(in.Transition); ok {
		for _, d := range t.Documents {
			if d.Required {
				in.Documents = append(in.Documents, casework.DocumentRef{Name: d.NameZH})
			}
		}
	}
	return in
}

func docs(names ...string) []casework.DocumentRef {
	var out []casework.DocumentRef
	for _, n := range names {
		out = append(out, casework.DocumentRef{Name: n})
	}
	return out
}

func wantStage(t *testing.T, c casework.Case, stage string, holder acl.UnitID) {
	t.Helper()
	if c.Stage != stage || c.Holder != holder {
		t.Fatalf("case at %s held by %s, want %s held by %s", c.Stage, c.Holder, stage, holder)
	}
}

// openTheft opens the criminal case the walks use: a theft with one suspect.
func (e *env) openTheft() casework.Case {
	e.t.Helper()
	c, err := e.cw.OpenCase(e.as(police), casework.OpenInput{
		Procedure: "criminal", Title: "张三盗窃案", Cause: "盗窃", Checklist: "theft",
		Parties: []casework.Party{
			{ID: "s1", Role: "suspect", Name: "张三", IDNumber: "150102199001011234"},
			{ID: "v1", Role: "victim", Name: "李四", IDNumber: "150102198502023456"},
		},
		Evidence: []string{"case-source"},
		Handlers: []acl.UserID{e.who(police).User, e.who("150102-police.officer2").User},
	})
	if err != nil {
		e.t.Fatalf("OpenCase = %v", err)
	}
	return c
}

func TestCriminalWalkOnTheService(t *testing.T) {
	e := newEnv(t)
	c := e.openTheft()
	id := c.ID
	wantStage(t, c, "filing_review", "150102-police")
	if c.Committee != "150102-committee" || c.Region != "150102" {
		t.Errorf("committee %s region %s, want 150102-committee 150102", c.Committee, c.Region)
	}

	// Filing needs the police leader's sign-off; the officer cannot give it.
	m, _, err := e.cw.RequestApproval(e.as(police), id, casework.ApprovalInput{Transition: "file"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.cw.Decide(e.as(police), id, m.Seq, true, ""); ruleOf(err) != "no-self-approval" {
		t.Errorf("Decide(own filing request) = %v, want no-self-approval", err)
	}
	if _, _, err := e.cw.Decide(e.as("150102-police.officer2"), id, m.Seq, true, ""); ruleOf(err) != "approver-must-be-leader" {
		t.Errorf("Decide(filing) by another officer = %v, want approver-must-be-leader", err)
	}
	if _, _, err := e.cw.Act(e.as(police), id, casework.ActInput{Transition: "file", Documents: docs("立案决定书")}); ruleOf(err) != "approval-required" {
		t.Errorf("Act(file) without the approval = %v, want approval-required", err)
	}
	if _, _, err := e.cw.Decide(e.as(policeL), id, m.Seq, true, "同意立案"); err != nil {
		t.Fatal(err)
	}
	c = e.mustAct(police, id, casework.ActInput{Transition: "file", Documents: docs("立案决定书")})
	wantStage(t, c, "investigation", "150102-police")
	if len(c.Numbers) != 1 || !strings.HasPrefix(c.Numbers[0].Number, "新城公（刑）立字〔") {
		t.Errorf("police case number = %+v, want 新城公（刑）立字〔year〕1号", c.Numbers)
	}

	c = e.approved(police, policeL, id, casework.ActInput{Transition: "detain", Suspect: "s1"})
	c = e.approved(police, policeL, id, casework.ActInput{Transition: "request_arrest_detained", Suspect: "s1", Target: "150102-procuratorate"})
	if !c.IsParticipant("150102-procuratorate") {
		t.Errorf("the procuratorate addressed by the arrest request is not a participant: %v", c.Participants)
	}
	// RULE invariant 2: the police cannot approve their own arrest request.
	before := len(e.denials())
	if _, _, err := e.cw.Act(e.as(police), id, casework.ActInput{Transition: "approve_arrest", Suspect: "s1"}); ruleOf(err) != "no-own-request" {
		t.Errorf("Act(approve_arrest) by the police = %v, want no-own-request", err)
	}
	if got := len(e.denials()); got != before+1 {
		t.Errorf("denials audited: %d, want %d", got, before+1)
	}
	c = e.approved(prosec, prosecL, id, casework.ActInput{Transition: "approve_arrest", Suspect: "s1"})
	c = e.mustAct(police, id, casework.ActInput{Transition: "execute_arrest", Suspect: "s1"})
	if s := c.Suspects[0]; s.State != "arrested" || !s.Custody {
		t.Errorf("suspect after execute_arrest: %+v", s)
	}

	transfer := casework.ActInput{Transition: "transfer_for_prosecution", Target: "150102-procuratorate",
		Documents: docs("起诉意见书", "诉讼卷", "证据卷", "随案移送物品、涉案财物清单"), Evidence: []string{"victim-statement", "scene-inspection"}}
	c = e.approved(police, policeL, id, transfer)
	wantStage(t, c, "prosecution_intake", "150102-police")
	if c.Pending == nil || c.Pending.To != "150102-procuratorate" {
		t.Fatalf("pending transfer = %+v", c.Pending)
	}
	// The sender can no longer change the case.
	if _, _, err := e.cw.RequestApproval(e.as(police), id, casework.ApprovalInput{Transition: "bail", Suspect: "s1"}); ruleOf(err) != "transfer-pending" {
		t.Errorf("police act after sending = %v, want transfer-pending", err)
	}
	// RULE invariant 4: the committee never accepts a transfer on an agency's behalf.
	if _, _, err := e.cw.Accept(e.as(sup), id, c.Pending.Seq, casework.ActInput{}); ruleOf(err) != "committee-no-judicial" {
		t.Errorf("Accept by the committee = %v, want committee-no-judicial", err)
	}
	// An outsider does not even learn the case exists.
	if _, _, err := e.cw.Accept(e.as(outsider), id, c.Pending.Seq, casework.ActInput{}); !errors.Is(err, casework.ErrCaseNotFound) {
		t.Errorf("Accept by a police officer of another district = %v, want ErrCaseNotFound", err)
	}
	seq := c.Pending.Seq
	_, c, err = e.cw.Accept(e.as(prosec), id, seq, casework.ActInput{})
	if err != nil {
		t.Fatal(err)
	}
	wantStage(t, c, "prosecution_review", "150102-procuratorate")

	for i, ret := range []string{"return_supplementary", "return_supplementary_again"} {
		c = e.approved(prosec, prosecL, id, casework.ActInput{Transition: ret, Reason: "证据不足", Missing: []string{"price-determination"},
			Documents: docs("补充侦查决定书", "补充侦查提纲")})
		wantStage(t, c, []string{"supp_investigation_1", "supp_investigation_2"}[i], "150102-police")
		if c.ReturnedTo != "150102-police" {
			t.Errorf("returned to %q, want the police", c.ReturnedTo)
		}
		c = e.approved(police, policeL, id, casework.ActInput{Transition: "retransfer", Target: "150102-procuratorate",
			Documents: docs("补充侦查报告书"), Evidence: []string{"price-determination"}})
		wantStage(t, c, "retransfer_intake", "150102-police")
		_, c, err = e.cw.Accept(e.as(prosec), id, c.Pending.Seq, casework.ActInput{})
		if err != nil {
			t.Fatal(err)
		}
		wantStage(t, c, "prosecution_review", "150102-procuratorate")
	}
	// RULE CPL Art. 175 ¶3: a third return is refused.
	for _, ret := range []string{"return_supplementary", "return_supplementary_again"} {
		if _, _, err := e.cw.RequestApproval(e.as(prosec), id, casework.ApprovalInput{Transition: ret}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.cw.Act(e.as(prosec), id, casework.ActInput{Transition: ret, Reason: "仍需补充", Missing: []string{"x"},
			Documents: docs("补充侦查决定书", "补充侦查提纲")}); ruleOf(err) != "max-count" {
			t.Errorf("a third return (%s) = %v, want max-count", ret, err)
		}
	}
	if c.Returns != 2 {
		t.Errorf("returns = %d, want 2", c.Returns)
	}

	c = e.approved(prosec, prosecL, id, casework.ActInput{Transition: "indict", Target: "150102-court", Documents: docs("起诉书", "案卷材料", "证据")})
	wantStage(t, c, "court_acceptance", "150102-procuratorate")
	_, c, err = e.cw.Accept(e.as(judge), id, c.Pending.Seq, casework.ActInput{Transition: "accept_ordinary"})
	if err != nil {
		t.Fatal(err)
	}
	wantStage(t, c, "trial_ordinary", "150102-court")
	var courtNo string
	for _, n := range c.Numbers {
		if n.Agency == "court" {
			courtNo = n.Number
		}
	}
	if want := "(" + time.Now().In(casework.Shanghai).Format("2006") + ")内0102刑初1号"; courtNo != want {
		t.Errorf("court number %q, want %q", courtNo, want)
	}
	c = e.mustAct(judge, id, casework.ActInput{Transition: "judge_first_instance", Documents: docs("判决书")})
	c = e.mustAct(judge, id, casework.ActInput{Transition: "becomes_effective"})
	c = e.mustAct(judge, id, casework.ActInput{Transition: "send_to_correction", Target: "150102-justice", Documents: docs("判决书、裁定书或决定书", "执行通知书")})
	_, c, err = e.cw.Accept(e.as(corr), id, c.Pending.Seq, casework.ActInput{})
	if err != nil {
		t.Fatal(err)
	}
	wantStage(t, c, "community_correction", "150102-justice")
	c = e.mustAct(corr, id, casework.ActInput{Transition: "end_correction", Documents: docs("解除社区矫正证明书")})
	if !c.Closed {
		t.Errorf("case not closed at %s", c.Stage)
	}
	room, err := e.rooms.Room(t.Context(), chat.RoomID(id))
	if err != nil || !room.Archived {
		t.Errorf("room after closing: archived %v, %v; want archived", room.Archived, err)
	}
	if _, _, err := e.chat.Post(e.as(corr), chat.RoomID(id), chat.Post{Body: "还能说话吗"}); !errors.Is(err, chat.ErrArchived) {
		t.Errorf("posting in a closed case's room = %v, want ErrArchived", err)
	}

	// The projection equals a rebuild from the log.
	assertRebuilds(t, e, id)
	// Every case number is searchable.
	for _, n := range c.Numbers {
		got, err := e.cw.Search(e.as(police), n.Number)
		if err != nil || len(got) != 1 || got[0].ID != id {
			t.Errorf("Search(%s) by the police = %v, %v", n.Number, got, err)
		}
		if got, _ := e.cw.Search(e.as(outsider), n.Number); len(got) != 0 {
			t.Errorf("Search(%s) by an outsider found %d cases, want none", n.Number, len(got))
		}
	}
	if len(c.Numbers) != 3 {
		t.Errorf("numbers = %+v, want police, procuratorate and court", c.Numbers)
	}
}

// assertRebuilds checks that the stored projection of id is what a replay of
// its log gives.
func assertRebuilds(t *testing.T, e *env, id casework.CaseID) {
	t.Helper()
	stored, err := e.store.Case(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := e.cw.Rebuild(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt.Scanned = stored.Scanned
	if !reflect.DeepEqual(stored, rebuilt) {
		t.Errorf("stored projection of %s differs from its rebuild:\nstored  %+v\nrebuilt %+v", id, stored, rebuilt)
	}
}

func TestInterventionRegister(t *testing.T) {
	e := newEnv(t)
	c := e.openTheft()
	id := c.ID
	ctx := e.as(sup)
	if _, _, err := e.chat.Post(ctx, chat.RoomID(id), chat.Post{Body: "这个案子要从快处理"}); err != nil {
		t.Fatal(err)
	}
	// A supervision notice is the committee's instrument, not an intervention.
	if _, _, err := e.cw.Supervise(e.as(sup), id, casework.SuperviseInput{Notice: "请依法及时办理并报告进展"}); err != nil {
		t.Fatalf("Supervise = %v", err)
	}
	// The police's own talk is not an intervention.
	if _, _, err := e.chat.Post(e.as(police), chat.RoomID(id), chat.Post{Body: "收到"}); err != nil {
		t.Fatal(err)
	}
	rs, err := e.cw.Interventions(e.as(policeL), id)
	if err != nil {
		t.Fatalf("Interventions by the handling unit's leader = %v", err)
	}
	if len(rs) != 1 || rs[0].IntervenorUser != e.who(sup).User || !rs[0].Auto || rs[0].Regulation != casework.RegLeader {
		t.Fatalf("register seen by the police leader = %+v, want the supervisor's message", rs)
	}
	// Never the intervenor: the Guard refuses supervisors the register at all.
	if _, err := e.cw.Interventions(e.as(sup), id); ruleOf(err) == "" {
		t.Errorf("Interventions by the intervenor = %v, want refused", err)
	}
	// An officer of the handling unit is not a leader.
	if _, err := e.cw.Interventions(e.as(police), id); ruleOf(err) == "" {
		t.Errorf("Interventions by an officer = %v, want refused", err)
	}
	// An auditor of the jurisdiction sees it, without being a member.
	if rs, err := e.cw.Interventions(e.as(auditor), id); err != nil || len(rs) != 1 {
		t.Errorf("Interventions by the auditor = %d entries, %v; want 1", len(rs), err)
	}
	// A handler records one that came by phone.
	r, err := e.cw.RecordIntervention(e.as(police), id, casework.InterventionInput{Regulation: casework.RegOther,
		IntervenorName: "王五", Relationship: "嫌疑人同学", Channel: "phone", OccurredAt: time.Now().Add(-time.Hour),
		Summary: "打听案件进展，希望从轻", Response: "refused"})
	if err != nil {
		t.Fatalf("RecordIntervention = %v", err)
	}
	if rs, _ := e.cw.Interventions(e.as(policeL), id); len(rs) != 2 || rs[1].Seq != r.Seq {
		t.Errorf("register after recording: %+v", rs)
	}
	if err := casework.VerifyInterventions(t.Context(), e.store); err != nil {
		t.Errorf("VerifyInterventions = %v", err)
	}
	// Reads are audited.
	reads, _ := e.acl.AuditEntries(t.Context(), casework.StreamInterventions, 0, 100)
	if !slices.ContainsFunc(reads, func(a audit.Entry) bool {
		return a.Action == "intervention.read" && a.Actor == string(e.who(auditor).User)
	}) {
		t.Errorf("the auditor's read of the register is not in the audit stream")
	}
}
