package casework

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// A logBuilder writes a case room's log by hand, as the Service would.
type logBuilder struct {
	t  *testing.T
	ms []chat.Message
	at time.Time
}

func newLog(t *testing.T) *logBuilder {
	b := &logBuilder{t: t, at: time.Date(2026, time.March, 2, 9, 0, 0, 0, time.UTC)}
	created, _ := json.Marshal(chat.RoomCreated{Kind: chat.CaseRoom, Name: "x", OwnerUnit: "150102-committee", Region: "150102"})
	b.add(chat.RoomCreate, "p1", "150102-police", json.RawMessage(created))
	units, _ := json.Marshal(chat.UnitsChanged{Units: []acl.UnitID{"150102-police"}})
	b.add(chat.UnitAdd, "p1", "150102-police", json.RawMessage(units))
	return b
}

// add appends an entry by user of unit, a day after the previous one.
func (b *logBuilder) add(kind chat.Kind, user acl.UserID, unit acl.UnitID, payload any) chat.Seq {
	b.t.Helper()
	raw, ok := payload.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(payload); err != nil {
			b.t.Fatal(err)
		}
	}
	b.at = b.at.Add(24 * time.Hour)
	m := chat.Message{Room: "case_x", Seq: chat.Seq(len(b.ms) + 1), Kind: kind, Sender: user, SenderUnit: unit,
		Payload: raw, OccurredAt: b.at, CreatedAt: b.at}
	b.ms = append(b.ms, m)
	return m.Seq
}

func (b *logBuilder) open() {
	b.add(KindOpen, "p1", "150102-police", Opened{Procedure: "criminal", Transition: "receive", Title: "张三盗窃案",
		Parties: []Party{{ID: "s1", Role: "suspect", Name: "张三"}}, Unit: "150102-police", UnitKind: "police",
		Committee: "150102-committee", Region: "150102", Handlers: []acl.UserID{"p1"}})
}

// approved adds a granted internal approval of unit for t and returns its seq.
func (b *logBuilder) approved(t, suspect string, index int, asker, leader acl.UserID, unit acl.UnitID, kind acl.UnitKind) chat.Seq {
	seq := b.add(KindApprovalReq, asker, unit, ApprovalRequest{Transition: t, Suspect: suspect, Index: index, UnitKind: kind,
		Target: unit, TargetKind: kind, Internal: true})
	b.add(KindApprovalDec, leader, unit, ApprovalDecision{Request: seq, Granted: true})
	return seq
}

func (b *logBuilder) act(kind chat.Kind, user acl.UserID, unit acl.UnitID, a Act) chat.Seq {
	return b.add(kind, user, unit, a)
}

var docsOf = map[string][]DocumentRef{}

func mustCriminal(t *testing.T) *Procedure {
	t.Helper()
	d, err := Load(os.DirFS(".."), "configs")
	if err != nil {
		t.Fatal(err)
	}
	p := d.Procedures["criminal"]
	for _, tr := range append(append([]Transition{}, p.Machine.Transitions...), p.Suspect.Transitions...) {
		var ds []DocumentRef
		for _, doc := range tr.Documents {
			if doc.Required {
				ds = append(ds, DocumentRef{Name: doc.NameZH})
			}
		}
		docsOf[tr.ID] = ds
	}
	return p
}

// investigation writes a log up to a filed case under investigation.
func investigation(t *testing.T) *logBuilder {
	b := newLog(t)
	b.open()
	ap := b.approved("file", "", 0, "p1", "pl", "150102-police", "police")
	b.act(KindAct, "p1", "150102-police", Act{Transition: "file", UnitKind: "police", Approvals: []chat.Seq{ap}, Documents: docsOf["file"]})
	return b
}

func replayOK(t *testing.T, p *Procedure, b *logBuilder) Case {
	t.Helper()
	c, err := Replay(p, b.ms)
	if err != nil {
		t.Fatalf("Replay = %v", err)
	}
	return c
}

func TestReplayTransferIsTwoPhase(t *testing.T) {
	p := mustCriminal(t)
	b := investigation(t)
	ap := b.approved("transfer_for_prosecution", "", 0, "p1", "pl", "150102-police", "police")
	tr := b.act(KindAct, "p1", "150102-police", Act{Transition: "transfer_for_prosecution", UnitKind: "police", Target: "150102-procuratorate",
		TargetKind: "procuratorate", Approvals: []chat.Seq{ap}, Documents: docsOf["transfer_for_prosecution"], Evidence: []string{"cctv", "confession"}})
	c := replayOK(t, p, b)
	if c.Stage != "prosecution_intake" || c.Holder != "150102-police" || c.Pending == nil || c.Pending.Seq != tr {
		t.Fatalf("after the transfer: stage %s holder %s pending %+v; want prosecution_intake, the police, pending", c.Stage, c.Holder, c.Pending)
	}
	if !c.IsParticipant("150102-procuratorate") {
		t.Errorf("the receiver is not a participant")
	}
	if want := []string{"cctv", "confession"}; !reflect.DeepEqual(c.Evidence, want) {
		t.Errorf("evidence %v, want %v", c.Evidence, want)
	}

	// RULE invariant 3: only the receiver accepts; a third unit's accept breaks the log.
	bad := *b
	bad.ms = append([]chat.Message(nil), b.ms...)
	bad.act(KindAccept, "c1", "150102-court", Act{Transition: "accept_for_review", UnitKind: "court", Answers: tr})
	if _, err := Replay(p, bad.ms); !isRefused(err, "not-receiver") {
		t.Errorf("Replay(accept by the court) = %v, want not-receiver", err)
	}
	// An accept posted as a plain act is refused: it answers the transfer.
	bad.ms = append([]chat.Message(nil), b.ms...)
	bad.act(KindAct, "q1", "150102-procuratorate", Act{Transition: "accept_for_review", UnitKind: "procuratorate"})
	if _, err := Replay(p, bad.ms); !errors.Is(err, ErrInvalid) {
		t.Errorf("Replay(accept as case.act) = %v, want invalid kind", err)
	}

	// A return of the transfer: the holder does not change; the sender has it to answer.
	ret := *b
	ret.ms = append([]chat.Message(nil), b.ms...)
	ret.act(KindReturn, "q1", "150102-procuratorate", Act{Transition: "return_intake", UnitKind: "procuratorate", Answers: tr, Reason: "材料不全", Missing: []string{"seizure-list"}})
	c = replayOK(t, p, &ret)
	if c.Stage != "investigation" || c.Holder != "150102-police" || c.Pending != nil || c.ReturnedTo != "150102-police" || c.Returns != 1 {
		t.Errorf("after a return of the transfer: %s %s pending %v returned to %s returns %d", c.Stage, c.Holder, c.Pending, c.ReturnedTo, c.Returns)
	}
	if !reflect.DeepEqual(c.Missing, []string{"seizure-list"}) {
		t.Errorf("missing %v", c.Missing)
	}
	// A return without a reason breaks the log (invariant 3).
	noReason := *b
	noReason.ms = append([]chat.Message(nil), b.ms...)
	noReason.act(KindReturn, "q1", "150102-procuratorate", Act{Transition: "return_intake", UnitKind: "procuratorate", Answers: tr, Missing: []string{"x"}})
	if _, err := Replay(p, noReason.ms); !errors.Is(err, ErrInvalid) {
		t.Errorf("Replay(return without a reason) = %v, want invalid", err)
	}

	// The accept: now the procuratorate holds the case.
	b.act(KindAccept, "q1", "150102-procuratorate", Act{Transition: "accept_for_review", UnitKind: "procuratorate", Answers: tr})
	c = replayOK(t, p, b)
	if c.Stage != "prosecution_review" || c.Holder != "150102-procuratorate" || c.Pending != nil {
		t.Errorf("after the accept: %s %s pending %v", c.Stage, c.Holder, c.Pending)
	}
	if hs := c.Handlers["150102-procuratorate"]; !reflect.DeepEqual(hs, []acl.UserID{"q1"}) {
		t.Errorf("the accepting officer is not the procuratorate's handler: %v", hs)
	}
	// A return for supplementary investigation sends it back to the police.
	ap = b.approved("return_supplementary", "", 0, "q1", "ql", "150102-procuratorate", "procuratorate")
	b.act(KindAct, "q1", "150102-procuratorate", Act{Transition: "return_supplementary", UnitKind: "procuratorate", Approvals: []chat.Seq{ap},
		Reason: "证据不足", Missing: []string{"price-determination"}, Documents: docsOf["return_supplementary"]})
	c = replayOK(t, p, b)
	if c.Stage != "supp_investigation_1" || c.Holder != "150102-police" || c.ReturnedTo != "150102-police" {
		t.Errorf("after return_supplementary: %s %s returned to %s", c.Stage, c.Holder, c.ReturnedTo)
	}
	if again, _ := Replay(p, b.ms); !reflect.DeepEqual(again, c) {
		t.Errorf("Replay is not deterministic")
	}
}

func isRefused(err error, rule string) bool {
	var r *RefusedError
	return errors.As(err, &r) && r.Rule == rule
}

func TestReplayRefusesWhatTheProcedureForbids(t *testing.T) {
	p := mustCriminal(t)
	for _, tt := range []struct {
		name string
		log  func(b *logBuilder)
		rule string
	}{
		{"an act from another stage", func(b *logBuilder) {
			b.act(KindAct, "p1", "150102-police", Act{Transition: "withdraw_case", UnitKind: "police", Reason: "x", Documents: docsOf["withdraw_case"]})
		}, "stage"},
		{"filing without the leader's approval", func(b *logBuilder) {
			b.act(KindAct, "p1", "150102-police", Act{Transition: "file", UnitKind: "police", Documents: docsOf["file"]})
		}, "approval-required"},
		{"an approval used twice", func(b *logBuilder) {
			ap := b.approved("file", "", 0, "p1", "pl", "150102-police", "police")
			b.act(KindAct, "p1", "150102-police", Act{Transition: "file", UnitKind: "police", Approvals: []chat.Seq{ap}, Documents: docsOf["file"]})
			b.act(KindAct, "p1", "150102-police", Act{Transition: "withdraw_case", UnitKind: "police", Approvals: []chat.Seq{ap}, Reason: "x", Documents: docsOf["withdraw_case"]})
		}, "approval-required"},
		{"an approval another unit was given", func(b *logBuilder) {
			ap := b.approved("file", "", 0, "q1", "ql", "150102-procuratorate", "procuratorate")
			b.act(KindAct, "p1", "150102-police", Act{Transition: "file", UnitKind: "police", Approvals: []chat.Seq{ap}, Documents: docsOf["file"]})
		}, "approval-required"},
		{"one's own approval", func(b *logBuilder) {
			seq := b.add(KindApprovalReq, "p1", "150102-police", ApprovalRequest{Transition: "file", UnitKind: "police", Target: "150102-police", TargetKind: "police", Internal: true})
			b.add(KindApprovalDec, "p1", "150102-police", ApprovalDecision{Request: seq, Granted: true})
		}, "no-self-approval"},
		{"another unit's decision of an approval", func(b *logBuilder) {
			seq := b.add(KindApprovalReq, "p1", "150102-police", ApprovalRequest{Transition: "file", UnitKind: "police", Target: "150102-police", TargetKind: "police", Internal: true})
			b.add(KindApprovalDec, "ql", "150102-procuratorate", ApprovalDecision{Request: seq, Granted: true})
		}, "not-approver"},
		{"accepting nothing", func(b *logBuilder) {
			b.act(KindAccept, "q1", "150102-procuratorate", Act{Transition: "accept_for_review", UnitKind: "procuratorate"})
		}, "no-pending-transfer"},
	} {
		b := newLog(t)
		b.open()
		tt.log(b)
		if _, err := Replay(p, b.ms); !isRefused(err, tt.rule) {
			t.Errorf("Replay(%s) = %v, want refused by %s", tt.name, err, tt.rule)
		}
	}
}

func TestReplaySuspectsAndCorrections(t *testing.T) {
	p := mustCriminal(t)
	b := investigation(t)
	ap := b.approved("detain", "s1", 0, "p1", "pl", "150102-police", "police")
	det := b.act(KindAct, "p1", "150102-police", Act{Transition: "detain", UnitKind: "police", Suspect: "s1", Approvals: []chat.Seq{ap}, Documents: docsOf["detain"]})
	ap = b.approved("request_arrest_detained", "s1", 0, "p1", "pl", "150102-police", "police")
	b.act(KindAct, "p1", "150102-police", Act{Transition: "request_arrest_detained", UnitKind: "police", Suspect: "s1",
		Target: "150102-procuratorate", TargetKind: "procuratorate", Approvals: []chat.Seq{ap}, Documents: docsOf["request_arrest_detained"]})
	c := replayOK(t, p, b)
	s := c.Suspects[0]
	if s.State != "arrest_review" || !s.Custody || s.Request == nil || s.Request.To != "150102-procuratorate" || s.Request.From != "150102-police" {
		t.Fatalf("suspect after the arrest request: %+v", s)
	}
	if c.Stage != "investigation" {
		t.Errorf("a suspect's act moved the case to %s", c.Stage)
	}
	detained := 0
	for _, e := range c.ClockEvents {
		if e.Seq == det && e.Suspect == "s1" {
			detained++
		}
	}
	if detained == 0 {
		t.Errorf("detention started no clock of the suspect: %+v", c.ClockEvents)
	}
	// A correction of when the detention happened moves its clocks; the act stays.
	at := time.Date(2026, time.March, 1, 22, 30, 0, 0, time.UTC)
	b.add(KindCorrection, "p1", "150102-police", Correction{Target: det, Reason: "时间登记错误", OccurredAt: &at})
	// …and one adds a second suspect.
	b.add(KindCorrection, "p1", "150102-police", Correction{Target: 3, Reason: "补充嫌疑人", Party: &Party{ID: "s2", Role: "suspect", Name: "王五"}})
	c = replayOK(t, p, b)
	for _, a := range c.Acts {
		if a.Seq == det && !a.OccurredAt.Equal(at) {
			t.Errorf("corrected act still at %s", a.OccurredAt)
		}
	}
	for _, e := range c.ClockEvents {
		if e.Seq == det && !e.At.Equal(at) {
			t.Errorf("clock event of the corrected act still at %s", e.At)
		}
	}
	if len(c.Suspects) != 2 || c.Suspects[1].State != "free" || len(c.Corrections) != 2 {
		t.Errorf("after the corrections: suspects %+v, corrections %+v", c.Suspects, c.Corrections)
	}
	if raw := b.ms[det-1].Payload; !json.Valid(raw) || b.ms[det-1].OccurredAt.Equal(at) {
		t.Errorf("the corrected entry itself changed")
	}
	// The suspect machine's "during": bail in a stage it lists.
	b.act(KindAct, "p1", "150102-police", Act{Transition: "summon", UnitKind: "police", Suspect: "s2", Documents: docsOf["summon"]})
	if _, err := Replay(p, b.ms); !isRefused(err, "approval-required") {
		t.Errorf("Replay(summon without approval) = %v", err)
	}
}

func TestReplayClosedCaseReopensOnlyByReopening(t *testing.T) {
	p := mustCriminal(t)
	b := investigation(t)
	ap := b.approved("withdraw_case", "", 0, "p1", "pl", "150102-police", "police")
	b.act(KindAct, "p1", "150102-police", Act{Transition: "withdraw_case", UnitKind: "police", Approvals: []chat.Seq{ap}, Reason: "不构成犯罪", Documents: docsOf["withdraw_case"]})
	c := replayOK(t, p, b)
	if !c.Closed || c.Stage != "case_withdrawn" {
		t.Fatalf("after withdraw_case: %s closed %v", c.Stage, c.Closed)
	}
	b.act(KindAct, "p1", "150102-police", Act{Transition: "file", UnitKind: "police", Documents: docsOf["file"]})
	if _, err := Replay(p, b.ms); !isRefused(err, "case-closed") {
		t.Errorf("Replay(an act after closing) = %v, want case-closed", err)
	}
}
