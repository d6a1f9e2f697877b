package casework_test

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/casework"
	"caseroom/chat"
)

// A fakeNow is a now the test sets; every service of the env reads it.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeNow) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = t
}

// bj is an instant in Beijing time.
func bj(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, casework.Shanghai)
}

// head returns the seq of the last entry of case id's room.
func (e *env) head(id casework.CaseID) chat.Seq {
	e.t.Helper()
	r, err := e.rooms.Room(e.t.Context(), chat.RoomID(id))
	if err != nil {
		e.t.Fatal(err)
	}
	return r.Head
}

// roomLog returns every entry of case id's room.
func (e *env) roomLog(id casework.CaseID) []chat.Message {
	e.t.Helper()
	var out []chat.Message
	q := chat.HistoryQuery{Limit: chat.MaxPage}
	for {
		ms, err := e.rooms.History(e.t.Context(), chat.RoomID(id), q)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ms...)
		if len(ms) < chat.MaxPage {
			return out
		}
		q.After = ms[len(ms)-1].Seq
	}
}

// replayedClock replays case id from its log, as the deadline bot does, and
// returns its clock key with the clock errors of that clock.
func (e *env) replayedClock(id casework.CaseID, key string) (*casework.Clock, casework.Case, []error) {
	e.t.Helper()
	c, err := casework.Replay(e.domain.Procedures["criminal"], e.roomLog(id))
	if err != nil {
		e.t.Fatalf("Replay: %v", err)
	}
	clocks, skipped := c.Clocks(e.domain.Clocks, e.domain.Calendar)
	var errs []error
	for _, err := range skipped {
		if ce, ok := errors.AsType[*casework.ClockEventError](err); ok && ce.Clock+"/s1" == key {
			errs = append(errs, err)
		}
	}
	return clocks[key], c, errs
}

func clockOf(cs []casework.CaseClock, key string) (casework.CaseClock, bool) {
	i := slices.IndexFunc(cs, func(c casework.CaseClock) bool { return c.Key == key })
	if i < 0 {
		return casework.CaseClock{}, false
	}
	return cs[i], true
}

func extensionOf(c casework.CaseClock, id string) (casework.ClockExtension, bool) {
	i := slices.IndexFunc(c.Extensions, func(x casework.ClockExtension) bool { return x.Spec.ID == id })
	if i < 0 {
		return casework.ClockExtension{}, false
	}
	return c.Extensions[i], true
}

// refusedAndNothingStored checks that err is a refusal by rule and that the
// room's log did not move.
func (e *env) refusedAndNothingStored(what string, err error, rule string, id casework.CaseID, head chat.Seq) {
	e.t.Helper()
	if got := ruleOf(err); got != rule {
		e.t.Errorf("%s = %v (rule %q), want rule %q", what, err, got, rule)
	}
	if h := e.head(id); h != head {
		e.t.Errorf("%s stored entries: head %d, was %d", what, h, head)
	}
}

// The extension of custody after arrest (CPL Art. 156): the police ask the
// higher-level procuratorate, whose leader grants it, and the replayed case's
// clock runs a month longer. Extensions that the police's own leader
// decides (CPL Art. 91, the detention period) work the same way inside one
// unit. Wrong askers, wrong approvers, late and impossible requests are
// refused by named rules and store nothing.
func TestCustodyExtensionApprovedByTheHigherProcuratorate(t *testing.T) {
	clk := &fakeNow{t: bj(2026, time.March, 2, 9, 0)}
	e := newEnvAt(t, clk.Now)
	c := e.openTheft()
	id := c.ID
	e.approved(police, policeL, id, casework.ActInput{Transition: "file", Documents: docs("立案决定书")})
	e.approved(police, policeL, id, casework.ActInput{Transition: "detain", Suspect: "s1"})

	// CR-DET-02 (3 d, CPL Art. 91): +1–4 d on the police leader's approval.
	// The detention on 2 March ends at 24:00 on 5 March.
	clk.Set(bj(2026, time.March, 3, 9, 0))
	cv, _ := e.cw.Case(e.as(police), id)
	det, ok := clockOf(e.cw.ClocksOf(&cv.Case), "CR-DET-02/s1")
	if !ok || !det.Due.Equal(bj(2026, time.March, 6, 0, 0)) || !det.Strict || det.Unit != "150102-police" {
		t.Fatalf("CR-DET-02 after detention: %+v", det)
	}
	ask := casework.ExtensionInput{Clock: "CR-DET-02", Suspect: "s1", Extension: "special", By: casework.Period{Days: 5}}
	head := e.head(id)
	_, _, err := e.cw.RequestExtension(e.as(police), id, ask)
	e.refusedAndNothingStored("RequestExtension(special, 5d)", err, "extension-not-allowed", id, head)
	ask.By = casework.Period{Days: 2}
	m, c, err := e.cw.RequestExtension(e.as(police), id, ask)
	if err != nil {
		t.Fatalf("RequestExtension(special, 2d) = %v", err)
	}
	ap := c.Approvals[len(c.Approvals)-1]
	if ap.Seq != m.Seq || !ap.Internal || ap.Target != "150102-police" || ap.Clock != "CR-DET-02" || ap.Extension != "special" {
		t.Errorf("approval state of the internal extension request: %+v", ap)
	}
	// RULE invariant 2: the police leader signs, never another officer, never the asker.
	if _, _, err := e.cw.Decide(e.as("150102-police.officer2"), id, m.Seq, true, ""); ruleOf(err) != "approver-must-be-leader" {
		t.Errorf("Decide(special) by an officer = %v, want approver-must-be-leader", err)
	}
	if _, _, err := e.cw.Decide(e.as(policeL), id, m.Seq, true, "同意延长2日"); err != nil {
		t.Fatalf("Decide(special) by the police leader = %v", err)
	}
	ck, _, errs := e.replayedClock(id, "CR-DET-02/s1")
	if due, _ := ck.Due(); !due.Equal(bj(2026, time.March, 8, 0, 0)) || len(errs) > 0 {
		t.Errorf("replayed CR-DET-02 due %v (%v), want 2026-03-07 24:00", due, errs)
	}
	// roving excludes special: refused now.
	head = e.head(id)
	_, _, err = e.cw.RequestExtension(e.as(police), id, casework.ExtensionInput{Clock: "CR-DET-02", Suspect: "s1", Extension: "roving"})
	e.refusedAndNothingStored("RequestExtension(roving) after special", err, "extension-not-allowed", id, head)

	clk.Set(bj(2026, time.March, 4, 9, 0))
	e.approved(police, policeL, id, casework.ActInput{Transition: "request_arrest_detained", Suspect: "s1", Target: "150102-procuratorate"})
	clk.Set(bj(2026, time.March, 5, 9, 0))
	e.approved(prosec, prosecL, id, casework.ActInput{Transition: "approve_arrest", Suspect: "s1"})
	clk.Set(bj(2026, time.March, 5, 10, 0))
	c = e.mustAct(police, id, casework.ActInput{Transition: "execute_arrest", Suspect: "s1"})

	// CR-CUS-01: 2 months from the arrest on 5 March, to 24:00 on 5 May
	// (custody: no roll-over); the complex-case extension is asked 7 d
	// before expiry at the latest (MPS-R Art. 148), i.e. by 24:00 on 28 April.
	cus, ok := clockOf(e.cw.ClocksOf(&c), "CR-CUS-01/s1")
	if !ok || cus.State != casework.ClockRunning || !cus.Due.Equal(bj(2026, time.May, 6, 0, 0)) || !cus.Strict {
		t.Fatalf("CR-CUS-01 after the arrest: %+v", cus)
	}
	complexExt, ok := extensionOf(cus, "complex")
	if !ok || !complexExt.RequestBy.Equal(bj(2026, time.April, 29, 0, 0)) || !complexExt.Askable ||
		complexExt.Approver != (casework.Approval{Agency: "procuratorate", Role: "leader", Level: "higher"}) {
		t.Errorf("complex extension: %+v", complexExt)
	}
	if _, ok := extensionOf(cus, "art158"); ok {
		t.Errorf("art158 listed as open before complex was granted: %+v", cus.Extensions)
	}
	// CR-CUS-02, the extension request's own clock, counts back from it.
	if lead, ok := clockOf(e.cw.ClocksOf(&c), "CR-CUS-02/s1"); !ok || lead.State != casework.ClockRunning ||
		!lead.Due.Equal(bj(2026, time.April, 29, 0, 0)) || lead.Overdue {
		t.Errorf("CR-CUS-02 after the arrest: %+v", lead)
	}

	clk.Set(bj(2026, time.April, 20, 10, 0))
	ask = casework.ExtensionInput{Clock: "CR-CUS-01", Suspect: "s1", Extension: "complex", Summary: "案情复杂，期限届满不能终结"}
	head = e.head(id)
	before := len(e.denials())
	// The wrong unit: the county procuratorate is in the room but does not
	// hold the custody clock.
	_, _, err = e.cw.RequestExtension(e.as(prosec), id, ask)
	e.refusedAndNothingStored("RequestExtension by the procuratorate", err, "case-own-unit", id, head)
	// A clerk of the police, named a handler (so a member of the room), is not
	// an officer or leader.
	if _, _, err := e.cw.AssignHandlers(e.as(policeL), id, "150102-police", []acl.UserID{e.who(police).User, e.who("150102-police.clerk1").User}); err != nil {
		t.Fatal(err)
	}
	head = e.head(id)
	_, _, err = e.cw.RequestExtension(e.as("150102-police.clerk1"), id, ask)
	e.refusedAndNothingStored("RequestExtension by a police clerk", err, "extension-asker", id, head)
	// RULE invariant 4: the committee asks for nothing judicial.
	_, _, err = e.cw.RequestExtension(e.as(sup), id, ask)
	e.refusedAndNothingStored("RequestExtension by the committee", err, "committee-no-judicial", id, head)
	if got := len(e.denials()); got != before+3 {
		t.Errorf("denials audited: %d, want %d", got, before+3)
	}
	if _, _, err := e.cw.RequestExtension(e.as(outsider), id, ask); !errors.Is(err, casework.ErrCaseNotFound) {
		t.Errorf("RequestExtension by an outsider = %v, want ErrCaseNotFound", err)
	}
	// art158 requires complex first.
	_, _, err = e.cw.RequestExtension(e.as(police), id, casework.ExtensionInput{Clock: "CR-CUS-01", Suspect: "s1", Extension: "art158"})
	e.refusedAndNothingStored("RequestExtension(art158) before complex", err, "extension-not-allowed", id, head)
	// A clock that is not running (the detention's, stopped by the arrest request).
	_, _, err = e.cw.RequestExtension(e.as(police), id, casework.ExtensionInput{Clock: "CR-DET-02", Suspect: "s1", Extension: "roving"})
	e.refusedAndNothingStored("RequestExtension(CR-DET-02) after it stopped", err, "clock-not-running", id, head)
	if _, _, err := e.cw.RequestExtension(e.as(police), id, casework.ExtensionInput{Clock: "CR-CUS-01", Suspect: "s1", Extension: "nope"}); !errors.Is(err, casework.ErrInvalid) {
		t.Errorf("RequestExtension(unknown extension) = %v, want invalid", err)
	}

	m, c, err = e.cw.RequestExtension(e.as(police), id, ask)
	if err != nil {
		t.Fatalf("RequestExtension(complex) = %v", err)
	}
	var r casework.ApprovalRequest
	if err := json.Unmarshal(m.Payload, &r); err != nil || m.Kind != casework.KindApprovalReq || r.Extension == nil ||
		r.Extension.Clock != "CR-CUS-01" || r.Target != "150100-procuratorate" || r.Internal {
		t.Errorf("extension request entry: %s %+v (%v)", m.Kind, r, err)
	}
	if lead, _ := clockOf(e.cw.ClocksOf(&c), "CR-CUS-02/s1"); lead.State != casework.ClockStopped || lead.Overdue {
		t.Errorf("CR-CUS-02 once the extension is asked: %s, overdue %v; want stopped in time", lead.State, lead.Overdue)
	}
	// RULE DESIGN.md "Act": the higher procuratorate addressed becomes a participant.
	if !c.IsParticipant("150100-procuratorate") {
		t.Errorf("the league's procuratorate is not a participant: %v", c.Participants)
	}
	head = e.head(id)
	_, _, err = e.cw.RequestExtension(e.as(police), id, ask)
	e.refusedAndNothingStored("a second RequestExtension(complex)", err, "extension-pending", id, head)

	// Only the approving unit decides, and only its leader.
	_, _, err = e.cw.Decide(e.as(prosecL), id, m.Seq, true, "")
	e.refusedAndNothingStored("Decide by the county procuratorate's leader", err, "case-own-unit", id, head)
	_, _, err = e.cw.Decide(e.as("150100-procuratorate.officer1"), id, m.Seq, true, "")
	e.refusedAndNothingStored("Decide by the league procuratorate's officer", err, "approver-role", id, head)
	_, _, err = e.cw.Decide(e.as(policeL), id, m.Seq, true, "")
	e.refusedAndNothingStored("Decide by the asking unit's leader", err, "no-own-request", id, head)
	clk.Set(bj(2026, time.April, 24, 15, 0))
	dm, c, err := e.cw.Decide(e.as("150100-procuratorate.leader1"), id, m.Seq, true, "同意延长一个月")
	if err != nil {
		t.Fatalf("Decide by the league procuratorate's leader = %v", err)
	}

	// The replayed case: the extension is an event of the decision's entry,
	// and the clock runs to 24:00 on 5 June.
	ck, rc, errs := e.replayedClock(id, "CR-CUS-01/s1")
	if due, _ := ck.Due(); !due.Equal(bj(2026, time.June, 6, 0, 0)) || len(errs) > 0 {
		t.Errorf("replayed CR-CUS-01 due %v (%v), want 2026-06-05 24:00", due, errs)
	}
	if !slices.ContainsFunc(rc.ClockEvents, func(ev casework.ClockEventRecord) bool {
		return ev.Seq == dm.Seq && ev.Kind == casework.EventExtend && ev.Clock == "CR-CUS-01" && ev.Ref == "complex" &&
			ev.At.Equal(bj(2026, time.April, 24, 15, 0))
	}) {
		t.Errorf("no extend event at the decision (seq %d): %+v", dm.Seq, rc.ClockEvents)
	}
	cus, _ = clockOf(e.cw.ClocksOf(&c), "CR-CUS-01/s1")
	if !slices.Equal(cus.Granted, []string{"complex"}) || !cus.Due.Equal(bj(2026, time.June, 6, 0, 0)) {
		t.Errorf("CR-CUS-01 after the grant: due %v granted %v", cus.Due, cus.Granted)
	}
	if x, ok := extensionOf(cus, "art158"); !ok || !x.RequestBy.Equal(bj(2026, time.May, 30, 0, 0)) ||
		x.Approver.Level != "provincial" {
		t.Errorf("art158 after complex: %+v (%v)", x, ok)
	}
	assertRebuilds(t, e, id)
	head = e.head(id)
	_, _, err = e.cw.Decide(e.as("150100-procuratorate.leader1"), id, m.Seq, true, "")
	e.refusedAndNothingStored("deciding the extension twice", err, "approval-decided", id, head)
	_, _, err = e.cw.RequestExtension(e.as(police), id, ask)
	e.refusedAndNothingStored("RequestExtension(complex) once granted", err, "extension-not-allowed", id, head)

	// Too late: art158 had to be asked by 24:00 on 29 May.
	clk.Set(bj(2026, time.May, 30, 8, 0))
	before = len(e.denials())
	_, _, err = e.cw.RequestExtension(e.as(police), id, casework.ExtensionInput{Clock: "CR-CUS-01", Suspect: "s1", Extension: "art158"})
	e.refusedAndNothingStored("RequestExtension(art158) after its lead time", err, "extension-lead-time", id, head)
	if got := len(e.denials()); got != before+1 {
		t.Errorf("the late request was not audited: %d denials, want %d", got, before+1)
	}
	// Expired: nothing can be extended.
	clk.Set(bj(2026, time.June, 6, 0, 30))
	_, _, err = e.cw.RequestExtension(e.as(police), id, casework.ExtensionInput{Clock: "CR-CUS-01", Suspect: "s1", Extension: "art158"})
	e.refusedAndNothingStored("RequestExtension(art158) after expiry", err, "extension-expired", id, head)
}

// An extension asked in time but decided after the period ran out is
// refused (CPL Art. 98) and stores nothing; a denial stores the decision and
// extends nothing.
func TestExtensionDecidedTooLate(t *testing.T) {
	clk := &fakeNow{t: bj(2026, time.March, 2, 9, 0)}
	e := newEnvAt(t, clk.Now)
	id := e.openTheft().ID
	e.approved(police, policeL, id, casework.ActInput{Transition: "file", Documents: docs("立案决定书")})
	e.approved(police, policeL, id, casework.ActInput{Transition: "detain", Suspect: "s1"})
	clk.Set(bj(2026, time.March, 4, 9, 0))
	ask := casework.ExtensionInput{Clock: "CR-DET-02", Suspect: "s1", Extension: "roving"}
	m, _, err := e.cw.RequestExtension(e.as(police), id, ask)
	if err != nil {
		t.Fatalf("RequestExtension(roving) = %v", err)
	}
	clk.Set(bj(2026, time.March, 6, 0, 0)) // CR-DET-02 expired at 24:00 on 5 March
	head := e.head(id)
	_, _, err = e.cw.Decide(e.as(policeL), id, m.Seq, true, "")
	e.refusedAndNothingStored("Decide(roving) after expiry", err, "extension-expired", id, head)
	if _, _, err := e.cw.Decide(e.as(policeL), id, m.Seq, false, "已超期"); err != nil {
		t.Fatalf("denying it = %v", err)
	}
	ck, rc, errs := e.replayedClock(id, "CR-DET-02/s1")
	if due, _ := ck.Due(); !due.Equal(bj(2026, time.March, 6, 0, 0)) || len(errs) > 0 {
		t.Errorf("CR-DET-02 after a denial: due %v (%v)", due, errs)
	}
	if slices.ContainsFunc(rc.ClockEvents, func(ev casework.ClockEventRecord) bool { return ev.Kind == casework.EventExtend }) {
		t.Errorf("a denial extended a clock: %+v", rc.ClockEvents)
	}
}
