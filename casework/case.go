package casework

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// CaseID names a case. It is the id of the case's room.
type CaseID string

// Errors of casework. Transports map each to a stable code.
var (
	// ErrCaseNotFound: the case does not exist, or the caller may not see it
	// (DESIGN.md invariant 6: its existence does not leak).
	ErrCaseNotFound = errors.New("casework: case not found")
	ErrInvalid      = errors.New("casework: invalid input")
)

// An InvalidError says which input field is wrong and why; it wraps ErrInvalid.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return "casework: invalid " + e.Field + ": " + e.Reason }
func (e *InvalidError) Unwrap() error { return ErrInvalid }

func invalid(field, reason string) error { return &InvalidError{Field: field, Reason: reason} }

// A RefusedError is an act the caller may do in general but that the procedure
// does not allow now: not from this stage, a third return for supplementary
// investigation, a missing approval, a case handed over and not yet accepted.
// Rule is a stable id; Reason is written for the person refused. The service
// audits every refusal like a denial.
type RefusedError struct {
	Rule   string
	Reason string
}

func (e *RefusedError) Error() string { return "casework: refused by " + e.Rule + ": " + e.Reason }

func refused(rule, format string, args ...any) error {
	return &RefusedError{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// A Case is the state of one case as its room's log makes it: Replay derives
// it, and nothing else changes it. Maps and slices are never nil after Replay.
type Case struct {
	ID        CaseID
	Room      chat.RoomID
	Procedure string
	Title     string
	Cause     string
	Checklist string
	Opener    acl.UnitID
	Committee acl.UnitID     // owns the room
	Region    acl.RegionCode // the case's jurisdiction
	Stage     string
	Holder    acl.UnitID // the unit that has the case; changes only when a transfer is accepted
	Closed    bool       // in a terminal stage
	Reopened  int
	// Pending is the transfer sent and not yet accepted or returned: the sender
	// can no longer change the case, and Holder is still the sender.
	Pending *Transfer
	// Requests are the open requests and notices addressed to a unit (arrest
	// approval is a suspect's request; these are the case's), oldest first.
	Requests []Request
	// ReturnedTo is the unit that has a return to answer, "" if none.
	ReturnedTo   acl.UnitID
	ReturnSeq    chat.Seq                    // the latest return
	Returns      int                         // returns of any kind
	Units        map[acl.UnitID]acl.UnitKind // kind of every unit the log names
	Participants []acl.UnitID                // units in the room, in the order they joined
	Handling     []acl.UnitID                // units that held the case or performed an act in it
	Chain        []acl.UnitID                // holders: each accept pushes, a return pops; Holder is the last
	Numbers      []CaseNumber
	Handlers     map[acl.UnitID][]acl.UserID
	Acting       []Delegation
	Parties      []Party
	Suspects     []Suspect
	Counts       map[string]int // times each case-machine transition happened
	Approvals    []ApprovalState
	Evidence     []string // checklist items marked present by some act, sorted
	Missing      []string // what the latest return named missing
	Challenges   []ChallengeState
	Supervisions []SupervisionState
	Corrections  []CorrectionState
	Acts         []ActLog
	ClockEvents  []ClockEventRecord
	Head         chat.Seq // the last entry replayed
	OpenedAt     time.Time
	UpdatedAt    time.Time // CreatedAt of the last act
}

// A Transfer is a hand-over sent and awaiting the receiver's answer.
type Transfer struct {
	Seq        chat.Seq
	Transition string
	From       acl.UnitID
	To         acl.UnitID
	By         acl.UserID
	At         time.Time // occurred_at
}

// A Request is something addressed to a unit that it has to answer: a request
// for a decision, a notice, a challenge.
type Request struct {
	Seq        chat.Seq
	Kind       string // "request", "notice" or "challenge"
	Transition string
	Suspect    string
	From       acl.UnitID
	To         acl.UnitID
	By         acl.UserID
	At         time.Time
}

// A Suspect is a suspect's (defendant's, offender's) place in the procedure's
// suspect machine: custody and coercive measures, per person.
type Suspect struct {
	Party   string
	State   string
	Request *Request // an open request about them (arrest approval)
	Counts  map[string]int
	Custody bool // detained or arrested
}

// An ApprovalState is an approval request and, once given, its decision.
type ApprovalState struct {
	Seq        chat.Seq
	Transition string
	Suspect    string
	Index      int
	Unit       acl.UnitID // the asking unit
	By         acl.UserID // who asked
	Target     acl.UnitID // the approving unit
	Internal   bool
	At         time.Time
	Decided    chat.Seq // 0 while pending
	DecidedBy  acl.UserID
	Granted    bool
	Used       chat.Seq // the act that relied on it
	// Clock, Extension and ExtendBy are set, and Transition empty, for the
	// extension of a statutory clock (of Suspect): the clock is extended by
	// the decision that grants it.
	Clock     string
	Extension string
	ExtendBy  Period // zero: the extension's full length
}

// A ChallengeState is a challenge of procedure.md §4.4 sent in the case.
type ChallengeState struct {
	Seq      chat.Seq
	Type     string
	Against  chat.Seq
	From     acl.UnitID
	To       acl.UnitID
	By       acl.UserID
	Answered chat.Seq // the target's next act, 0 while unanswered
}

// A SupervisionState is a supervision notice and which addressed units have
// acted since.
type SupervisionState struct {
	Seq      chat.Seq
	By       acl.UserID
	Unit     acl.UnitID
	Notice   string
	Units    []acl.UnitID
	DueBy    time.Time
	At       time.Time
	Answered map[acl.UnitID]chat.Seq
}

// A CorrectionState is a correction and the act it corrects.
type CorrectionState struct {
	Seq    chat.Seq
	Target chat.Seq
	By     acl.UserID
	Reason string
}

// An ActLog is one act of the case as replayed.
type ActLog struct {
	Seq        chat.Seq
	Kind       chat.Kind
	Transition string
	Suspect    string
	From       string // stage (or suspect state) before
	To         string
	Unit       acl.UnitID
	By         acl.UserID
	Target     acl.UnitID
	OccurredAt time.Time // as corrected
	PostedAt   time.Time
}

// A ClockEventRecord is what an act did to a statutory clock (ClockSpec ID), for
// the case or for one suspect. At is the act's occurred_at, as corrected. An
// extension (EventExtend) comes from the decision granting it: Ref is the
// ExtensionSpec ID and By the length granted (zero: the full length).
type ClockEventRecord struct {
	Seq      chat.Seq
	Clock    string
	Suspect  string
	Kind     EventKind
	At       time.Time
	Detained bool
	Ref      string
	By       Period
}

// kindOf returns the kind of unit u as the log named it.
func (c *Case) kindOf(u acl.UnitID) acl.UnitKind { return c.Units[u] }

// suspect returns the suspect with party id, or nil.
func (c *Case) suspect(id string) *Suspect {
	for i := range c.Suspects {
		if c.Suspects[i].Party == id {
			return &c.Suspects[i]
		}
	}
	return nil
}

// IsParticipant reports whether u takes part in the case (is in its room).
func (c *Case) IsParticipant(u acl.UnitID) bool { return slices.Contains(c.Participants, u) }

// IsHandling reports whether u is a handling unit: it holds or held the case,
// has a transfer of it pending, or performed an act in it.
func (c *Case) IsHandling(u acl.UnitID) bool {
	return u != "" && (u == c.Holder || slices.Contains(c.Handling, u) || (c.Pending != nil && c.Pending.To == u))
}

// HandlingUnits returns the handling units, the holder first.
func (c *Case) HandlingUnits() []acl.UnitID {
	out := []acl.UnitID{c.Holder}
	if c.Pending != nil && !slices.Contains(out, c.Pending.To) {
		out = append(out, c.Pending.To)
	}
	for _, u := range c.Handling {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// unitOfKind returns the unit of one of kinds that is engaged in the case: the
// receiver of a pending transfer, the holder, the latest earlier holder, the
// first unit that acted, the first participant — in that order. "" if none.
func (c *Case) unitOfKind(kinds []acl.UnitKind) acl.UnitID {
	is := func(u acl.UnitID) bool { return u != "" && slices.Contains(kinds, c.kindOf(u)) }
	if c.Pending != nil && is(c.Pending.To) {
		return c.Pending.To
	}
	if is(c.Holder) {
		return c.Holder
	}
	for i := len(c.Chain) - 1; i >= 0; i-- {
		if is(c.Chain[i]) {
			return c.Chain[i]
		}
	}
	// Among the units that acted, the first of the kind: a higher unit asked
	// once for a review does not become the case's unit of its kind.
	for _, u := range c.Handling {
		if is(u) {
			return u
		}
	}
	for _, u := range c.Participants {
		if is(u) {
			return u
		}
	}
	return ""
}

// byKinds returns the agency kinds that may perform t.
func byKinds(t Transition) []acl.UnitKind {
	var out []acl.UnitKind
	for _, a := range t.By {
		if k := acl.UnitKind(a.Agency); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// answers reports whether an act of kind act answers a request addressed to
// the actor (a decision on it, or the notice it asked for).
func answers(act string) bool {
	switch act {
	case "approve", "deny", "decide", "notify", "record", "execute":
		return true
	}
	return false
}

// entitled returns the unit that may perform t (on suspect, for a suspect
// transition) for a subject of kind whoKind, and, when the act answers a
// request or a transfer, the unit that asked. For the subject's own kind, if it
// is one that performs t, the answer is the unit of that kind engaged in the
// case; otherwise the unit of a kind that does. The policy then requires the
// subject to be of that unit (relation own-unit), and the Guard that the
// subject's unit is not the asker (invariant 2).
func (c *Case) entitled(p *Procedure, t Transition, suspect string, whoKind acl.UnitKind) (unit, requestUnit acl.UnitID) {
	kinds := byKinds(t)
	if slices.Contains(kinds, whoKind) {
		kinds = []acl.UnitKind{whoKind}
	}
	isSuspect := p.isSuspectTransition(t.ID)
	if c.Pending != nil && !isSuspect && slices.Contains(t.From, c.Stage) && (t.Act == "accept" || t.Act == "return") {
		return c.Pending.To, c.Pending.From
	}
	if answers(t.Act) {
		// The suspect's own request first (an arrest approval), then what is
		// addressed to a unit in the case (a review of a decision about them).
		var reqs []Request
		if isSuspect {
			if s := c.suspect(suspect); s != nil && s.Request != nil {
				reqs = append(reqs, *s.Request)
			}
		}
		reqs = append(reqs, c.Requests...)
		for _, r := range reqs {
			if slices.Contains(kinds, c.kindOf(r.To)) {
				return r.To, r.From
			}
		}
	}
	return c.unitOfKind(kinds), ""
}

// isSuspectTransition reports whether id is a transition of the suspect machine.
func (p *Procedure) isSuspectTransition(id string) bool {
	if p.Suspect == nil {
		return false
	}
	for _, t := range p.Suspect.Transitions {
		if t.ID == id {
			return true
		}
	}
	return false
}

// resource is the case as the Guard sees it for who, whose role in the room is
// role ("" when not a member).
func (c *Case) resource(role chat.RoomRole) acl.Resource {
	return acl.Resource{Kind: "case", ID: string(c.ID), Unit: c.Holder, Region: c.Region,
		RoomKind: string(chat.CaseRoom), RoomRole: string(role), Stage: c.Stage, Holder: c.Holder}
}

// roomResource is the case's room as chat's Guard questions see it.
func (c *Case) roomResource(role chat.RoomRole) acl.Resource {
	return acl.Resource{Kind: "room", ID: string(c.Room), Unit: c.Committee, Region: c.Region,
		RoomKind: string(chat.CaseRoom), RoomRole: string(role)}
}

// A decider is the Guard's question: the Service passes Guard.Check, which
// audits a denial; the ACL tests pass Guard.Decide, so that both ask exactly
// the questions the checks below ask.
type decider func(who acl.Subject, a acl.Action, res acl.Resource) error

// checkVisible answers ErrCaseNotFound when who may not read the case's room:
// members read it, and supervisors and auditors whose jurisdiction covers it.
func checkVisible(decide decider, who acl.Subject, role chat.RoomRole, c *Case) error {
	if err := decide(who, acl.ReadRoom, c.roomResource(role)); err != nil {
		if _, ok := errors.AsType[*acl.DeniedError](err); ok {
			return ErrCaseNotFound
		}
		return err
	}
	return nil
}

// checkPerform checks that who, whose role in the room is role, may perform t
// on suspect now, as far as who they are goes: the Guard on the act's action
// and the entitled unit, then the procedure's actors (Transition.By) and the
// hand-over lock. What the procedure says about the moment (stage, counts,
// approvals) is the replay's part (see Service.simulate). action overrides
// the act's own action (RequestApproval asks as the performer would).
func checkPerform(decide decider, p *Procedure, c *Case, who acl.Subject, role chat.RoomRole, t Transition, suspect string, action acl.Action) (acl.Resource, error) {
	res := c.resource(role)
	unit, requestUnit := c.entitled(p, t, suspect, who.UnitKind)
	res.Unit, res.RequestUnit = unit, requestUnit
	if action == "" {
		action = ActAction(t.Act)
	}
	if err := decide(who, action, res); err != nil {
		return res, err
	}
	if !mayPerform(t, who) {
		return res, &acl.DeniedError{Rule: "procedure-actor",
			Reason: fmt.Sprintf("「%s」(%s) is performed by %s.", t.NameZH, t.ID, byText(t))}
	}
	// RULE DESIGN.md invariant 3: once a transfer is sent, the sender can no
	// longer change the case (the holder changes only when the receiver
	// accepts); it may still add notices that leave the stage as it is.
	if c.Pending != nil && unit == c.Pending.From && unit != c.Pending.To {
		notice := !p.isSuspectTransition(t.ID) && t.To == c.Stage && (t.Act == "notify" || t.Act == "record")
		if !notice {
			return res, &RefusedError{Rule: "transfer-pending",
				Reason: "The case has been handed over and awaits the receiving unit's answer; the sender can no longer change it."}
		}
	}
	return res, nil
}

// mayPerform reports whether who's agency kind and one of their roles are among
// t's actors.
func mayPerform(t Transition, who acl.Subject) bool {
	for _, r := range who.Roles {
		if t.MayPerform(string(who.UnitKind), string(r)) {
			return true
		}
	}
	return false
}

func byText(t Transition) string {
	var parts []string
	for _, a := range t.By {
		parts = append(parts, a.Agency+" ("+strings.Join(a.Roles, ", ")+")")
	}
	return strings.Join(parts, " or ")
}

// ChallengeRule says who may send a challenge of procedure.md §4.4, against
// acts of which agencies, and whether it goes to the next-higher unit of the
// agency that decided (复核) rather than that unit itself.
type ChallengeRule struct {
	NameZH  string
	By      []acl.UnitKind
	Against []acl.UnitKind
	Higher  bool
	Basis   string
}

// ChallengeRules are the challenge messages of procedure.md §4.4, by type.
//
// RULE CPL Art. 7 (division of labour, mutual restraint): each challenge is the
// checking agency's, against the checked agency's acts.
var ChallengeRules = map[string]ChallengeRule{
	"reconsideration":   {"复议", []acl.UnitKind{"police"}, []acl.UnitKind{"procuratorate"}, false, "CPL Art. 92, 179; MPS-R Art. 141, 294"},
	"review":            {"复核", []acl.UnitKind{"police"}, []acl.UnitKind{"procuratorate"}, true, "CPL Art. 92, 179; SPP-R Art. 290–291, 379–380"},
	"explain_reasons":   {"要求说明不立案理由", []acl.UnitKind{"procuratorate"}, []acl.UnitKind{"police"}, false, "CPL Art. 113; SPP-R Art. 559–561"},
	"correction_notice": {"纠正违法通知书", []acl.UnitKind{"procuratorate"}, []acl.UnitKind{"police", "court", "detention", "prison", "justice"}, false, "SPP-R Art. 287 (investigation supervision)"},
	"protest":           {"抗诉书", []acl.UnitKind{"procuratorate"}, []acl.UnitKind{"court"}, true, "CPL Art. 228, 230, 232"},
	"custody_review":    {"羁押必要性审查建议", []acl.UnitKind{"procuratorate"}, []acl.UnitKind{"police", "court", "detention"}, false, "CPL Art. 95"},
	"execution_opinion": {"纠正意见（执行监督）", []acl.UnitKind{"procuratorate"}, []acl.UnitKind{"court", "prison", "detention", "justice", "police"}, false, "CPL Art. 267, 274"},
	"supplement_notice": {"补充材料通知", []acl.UnitKind{"court"}, []acl.UnitKind{"procuratorate"}, false, "SPC-CI Art. 219"},
}

// withDelegation returns who as the Guard should see them on c at now: a user
// named acting leader (代理负责人) of their unit for a period holds the leader
// role for that period.
func (c *Case) withDelegation(who acl.Subject, now time.Time) acl.Subject {
	if who.Has(acl.Leader) {
		return who
	}
	for _, d := range c.Acting {
		if d.User == who.User && d.Unit == who.Unit && !now.Before(d.From) && now.Before(d.Until) {
			who.Roles = append(slices.Clone(who.Roles), acl.Leader)
			return who
		}
	}
	return who
}
