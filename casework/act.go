package casework

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"caseroom/acl"
	"caseroom/chat"
)

// The structured kinds casework posts in case rooms. They are registered with
// chat (RegisterKinds) as not Direct: members cannot post them with chat's Post,
// only the Service can, after its checks. Every one of them is an act in the
// sense of DESIGN.md: a log entry that changes the case, never edited or
// retracted (chat refuses to edit anything but text), corrected only by a
// KindCorrection that references it.
const (
	KindOpen        chat.Kind = "case.open"             // payload Opened; seq 2 of every case room
	KindAct         chat.Kind = "case.act"              // payload Act: one transition of the procedure
	KindAccept      chat.Kind = "case.accept"           // payload Act: the receiver takes a pending transfer over
	KindReturn      chat.Kind = "case.return"           // payload Act: the receiver sends a pending transfer back
	KindApprovalReq chat.Kind = "case.approval.request" // payload ApprovalRequest
	KindApprovalDec chat.Kind = "case.approval.decision"
	KindChallenge   chat.Kind = "case.challenge"  // payload ChallengeAct (§4.4)
	KindSupervise   chat.Kind = "case.supervise"  // payload Supervision (督办)
	KindHandlers    chat.Kind = "case.handlers"   // payload Handlers
	KindCorrection  chat.Kind = "case.correction" // payload Correction
	KindSystem      chat.Kind = "case.system"     // payload SystemAct: what the passing of time did, posted by the deadline bot
	maxPayloadText            = 4000              // characters of a reason, note or summary
	maxListLen                = 200               // documents, evidence items, parties…
)

// Kinds lists casework's kinds.
var Kinds = []chat.Kind{KindOpen, KindAct, KindAccept, KindReturn, KindApprovalReq, KindApprovalDec,
	KindChallenge, KindSupervise, KindHandlers, KindCorrection, KindSystem}

// RegisterKinds registers casework's kinds with r, which the chat.Service that
// casework posts through must use. Call it once, before the service serves.
//
// The intervention register is deliberately not a kind: its entries are never
// posted in the room, where the person who intervened may be a member
// (DESIGN.md invariant 5); they live in casework's store.
func RegisterKinds(r *chat.Registry) {
	r.Register(KindOpen, chat.KindSpec{Validate: validator[Opened](), Countable: true})
	r.Register(KindAct, chat.KindSpec{Validate: validator[Act](), Countable: true})
	r.Register(KindAccept, chat.KindSpec{Validate: validator[Act](), Countable: true})
	r.Register(KindReturn, chat.KindSpec{Validate: validator[Act](), Countable: true})
	r.Register(KindApprovalReq, chat.KindSpec{Validate: validator[ApprovalRequest](), Countable: true})
	r.Register(KindApprovalDec, chat.KindSpec{Validate: validator[ApprovalDecision](), Countable: true})
	r.Register(KindChallenge, chat.KindSpec{Validate: validator[ChallengeAct](), Countable: true})
	r.Register(KindSupervise, chat.KindSpec{Validate: validator[Supervision](), Countable: true})
	r.Register(KindHandlers, chat.KindSpec{Validate: validator[Handlers](), Countable: true})
	r.Register(KindCorrection, chat.KindSpec{Validate: validator[Correction](), Countable: true})
	r.Register(KindSystem, chat.KindSpec{Validate: validator[SystemAct](), Countable: true})
}

// A payload checks its own shape; what it means for the case is Replay's part.
type payload interface{ check() error }

func validator[T any, P interface {
	*T
	payload
}]() func(json.RawMessage) error {
	return func(raw json.RawMessage) error {
		var v T
		if err := decodePayload(raw, &v); err != nil {
			return err
		}
		return P(&v).check()
	}
}

// decodePayload decodes raw strictly: unknown fields and trailing data are errors.
func decodePayload(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return invalid("payload", "is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("payload", err.Error())
	}
	if dec.More() {
		return invalid("payload", "trailing data")
	}
	return nil
}

// A Party is a person or organisation in a case: a suspect, victim, plaintiff…
// Names and ID numbers are personal data: views show them to the room's members
// only.
type Party struct {
	ID       string `json:"id"`   // unique in the case, e.g. "s1"; suspects are referred to by it
	Role     string `json:"role"` // one of PartyRoles
	Name     string `json:"name"`
	IDNumber string `json:"id_number,omitempty"` // 身份证号, or a unified social credit code
	Kind     string `json:"kind,omitempty"`      // "person" (default) or "organisation"
}

// PartyRoles are the roles a party may have.
var PartyRoles = []string{"suspect", "defendant", "victim", "complainant", "plaintiff", "respondent",
	"applicant", "third_party", "witness", "agent", "creditor", "debtor", "offender", "agency"}

// suspectRoles are the party roles that go through a procedure's suspect machine.
var suspectRoles = []string{"suspect", "defendant", "offender"}

func (p Party) check(field string) error {
	if !validID(p.ID) {
		return invalid(field+".id", "must be 1 to 64 letters, digits, '-', '_' or '.'")
	}
	if !contains(PartyRoles, p.Role) {
		return invalid(field+".role", fmt.Sprintf("unknown role %q (want one of %s)", p.Role, strings.Join(PartyRoles, ", ")))
	}
	if err := checkText(field+".name", p.Name, 1, 100); err != nil {
		return err
	}
	if err := checkText(field+".id_number", p.IDNumber, 0, 32); err != nil {
		return err
	}
	if p.Kind != "" && p.Kind != "person" && p.Kind != "organisation" {
		return invalid(field+".kind", `must be "person" or "organisation"`)
	}
	return nil
}

// A CaseNumber is one handling agency's number for the case (案号), given by the
// procedure's CaseNumberRule when the agency takes the case at the rule's stage.
// Serials are allocated by the service, atomically per unit, year and code.
type CaseNumber struct {
	Number string       `json:"number"` // e.g. "(2026)内0102刑初1号"
	Unit   acl.UnitID   `json:"unit"`
	Agency acl.UnitKind `json:"agency"`
	Stage  string       `json:"stage"`
	Code   string       `json:"code"` // 类型代字, e.g. 刑初
	Year   int          `json:"year"`
	Serial int          `json:"serial"`
}

func (n *CaseNumber) check(field string) error {
	if n == nil {
		return nil
	}
	if err := checkText(field+".number", n.Number, 1, 64); err != nil {
		return err
	}
	if n.Unit == "" || n.Agency == "" || n.Code == "" || n.Year < 1949 || n.Serial < 1 {
		return invalid(field, "needs unit, agency, code, year and a serial from 1")
	}
	return nil
}

// A DocumentRef is a paper an act carries: by name (a Transition's Documents
// name them), optionally with the file uploaded to the room.
type DocumentRef struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256,omitempty"` // an attachment of the room
	Note   string `json:"note,omitempty"`
}

// Opened is the payload of KindOpen, the entry that makes a room a case. It
// carries the first act of the procedure (Transition, from the initial stage).
type Opened struct {
	Procedure  string         `json:"procedure"`
	Transition string         `json:"transition"`
	Title      string         `json:"title"`
	Cause      string         `json:"cause,omitempty"`     // charge or cause of action
	Checklist  string         `json:"checklist,omitempty"` // evidence checklist (configs/evidence) of the cause
	Parties    []Party        `json:"parties"`
	Unit       acl.UnitID     `json:"unit"` // the opening unit, the first holder
	UnitKind   acl.UnitKind   `json:"unit_kind"`
	Committee  acl.UnitID     `json:"committee"` // owner of the room
	Region     acl.RegionCode `json:"region"`    // the case's jurisdiction: the opening unit's region
	Handlers   []acl.UserID   `json:"handlers"`
	Target     acl.UnitID     `json:"target,omitempty"` // when the first act is a transfer or request
	TargetKind acl.UnitKind   `json:"target_kind,omitempty"`
	Evidence   []string       `json:"evidence,omitempty"`
	Documents  []DocumentRef  `json:"documents,omitempty"`
	Number     *CaseNumber    `json:"number,omitempty"`
	Note       string         `json:"note,omitempty"`
}

func (o *Opened) check() error {
	if !validID(o.Procedure) {
		return invalid("procedure", "is required")
	}
	if !validID(o.Transition) {
		return invalid("transition", "is required")
	}
	if err := checkText("title", o.Title, 1, 200); err != nil {
		return err
	}
	if err := checkText("cause", o.Cause, 0, 100); err != nil {
		return err
	}
	if o.Unit == "" || o.UnitKind == "" || o.Committee == "" || o.Region == "" {
		return invalid("unit", "unit, unit_kind, committee and region are required")
	}
	if len(o.Parties) > maxListLen {
		return invalid("parties", fmt.Sprintf("at most %d", maxListLen))
	}
	seen := map[string]bool{}
	for i, p := range o.Parties {
		if err := p.check(fmt.Sprintf("parties[%d]", i)); err != nil {
			return err
		}
		if seen[p.ID] {
			return invalid(fmt.Sprintf("parties[%d].id", i), fmt.Sprintf("duplicate party %q", p.ID))
		}
		seen[p.ID] = true
	}
	if err := checkDocs(o.Documents, o.Evidence); err != nil {
		return err
	}
	if err := checkText("note", o.Note, 0, maxPayloadText); err != nil {
		return err
	}
	return o.Number.check("number")
}

// Act is the payload of KindAct, KindAccept and KindReturn: one transition of
// the procedure (of the case machine, or of the suspect machine with Suspect
// set). The entry's OccurredAt is when the act legally happened.
type Act struct {
	Transition string       `json:"transition"`
	UnitKind   acl.UnitKind `json:"unit_kind"`         // the acting unit's kind (the entry names the unit)
	Suspect    string       `json:"suspect,omitempty"` // party id, for suspect-machine transitions
	// Target is the unit a transfer goes to, or the unit a request or notice is
	// addressed to; it becomes a participant of the case.
	Target     acl.UnitID    `json:"target,omitempty"`
	TargetKind acl.UnitKind  `json:"target_kind,omitempty"`
	Answers    chat.Seq      `json:"answers,omitempty"` // the transfer an accept or return answers
	Documents  []DocumentRef `json:"documents,omitempty"`
	Evidence   []string      `json:"evidence,omitempty"` // checklist items present
	Missing    []string      `json:"missing,omitempty"`  // a return: the items missing
	Reason     string        `json:"reason,omitempty"`
	Approvals  []chat.Seq    `json:"approvals,omitempty"` // approval requests, granted, that the act relies on
	Number     *CaseNumber   `json:"number,omitempty"`    // the acting agency's case number, when the act gives one
	Note       string        `json:"note,omitempty"`
}

func (a *Act) check() error {
	if !validID(a.Transition) {
		return invalid("transition", "is required")
	}
	if a.UnitKind == "" {
		return invalid("unit_kind", "is required")
	}
	if a.Suspect != "" && !validID(a.Suspect) {
		return invalid("suspect", "is not a party id")
	}
	if (a.Target == "") != (a.TargetKind == "") {
		return invalid("target", "target and target_kind go together")
	}
	if err := checkText("reason", a.Reason, 0, maxPayloadText); err != nil {
		return err
	}
	if err := checkText("note", a.Note, 0, maxPayloadText); err != nil {
		return err
	}
	if err := checkDocs(a.Documents, a.Evidence); err != nil {
		return err
	}
	if len(a.Missing) > maxListLen || len(a.Approvals) > 16 {
		return invalid("missing", "too many items")
	}
	for i, m := range a.Missing {
		if err := checkText(fmt.Sprintf("missing[%d]", i), m, 1, 200); err != nil {
			return err
		}
	}
	return a.Number.check("number")
}

// ApprovalRequest asks for the Index-th approval that Transition needs (for
// Suspect, if a suspect transition), or, with Extension set and no
// Transition, for the extension of a statutory clock (of Suspect, for a
// suspect's clock). Target is the approving unit: the asker's own unit for an
// internal sign-off, another organ otherwise.
type ApprovalRequest struct {
	Transition string        `json:"transition"`
	Suspect    string        `json:"suspect,omitempty"`
	Index      int           `json:"index"`
	Extension  *ExtensionAsk `json:"extension,omitempty"`
	UnitKind   acl.UnitKind  `json:"unit_kind"` // the asking unit's kind
	Target     acl.UnitID    `json:"target"`
	TargetKind acl.UnitKind  `json:"target_kind"`
	Internal   bool          `json:"internal"` // a sign-off by a leader of the asking unit
	Summary    string        `json:"summary,omitempty"`
}

// ExtensionAsk names the extension an approval request asks for: an
// ExtensionSpec of a clock of configs/clocks.json, and the length asked where
// the law gives a range (zero: the spec's full length).
type ExtensionAsk struct {
	Clock     string `json:"clock"`
	Extension string `json:"extension"`
	By        Period `json:"by,omitzero"`
}

func (r *ApprovalRequest) check() error {
	if x := r.Extension; x != nil {
		if r.Transition != "" || r.Index != 0 {
			return invalid("extension", "an extension request names no transition")
		}
		if !validID(x.Clock) || !validID(x.Extension) {
			return invalid("extension", "a clock and one of its extensions are required")
		}
		if r.Suspect != "" && !validID(r.Suspect) {
			return invalid("suspect", "is not a party id")
		}
	} else if !validID(r.Transition) || r.Index < 0 || r.Index > 16 {
		return invalid("transition", "a transition and the index of its approval are required")
	}
	if r.UnitKind == "" || r.Target == "" || r.TargetKind == "" {
		return invalid("target", "unit_kind, target and target_kind are required")
	}
	return checkText("summary", r.Summary, 0, maxPayloadText)
}

// ApprovalDecision answers an ApprovalRequest (by its seq).
type ApprovalDecision struct {
	Request chat.Seq `json:"request"`
	Granted bool     `json:"granted"`
	Note    string   `json:"note,omitempty"`
}

func (d *ApprovalDecision) check() error {
	if d.Request <= 0 {
		return invalid("request", "is required")
	}
	return checkText("note", d.Note, 0, maxPayloadText)
}

// ChallengeAct is a check message of procedure.md §4.4: a request for
// reconsideration (复议) or review (复核), a protest (抗诉), a correction notice
// (纠正违法通知书)… against an earlier act (Against), addressed to Target. When the
// procedure models the challenge as a transition, Transition names it and it
// moves the case like any act; otherwise Target has it to answer.
type ChallengeAct struct {
	Type       string        `json:"type"` // a key of ChallengeRules
	Against    chat.Seq      `json:"against"`
	Transition string        `json:"transition,omitempty"`
	Suspect    string        `json:"suspect,omitempty"`
	UnitKind   acl.UnitKind  `json:"unit_kind"`
	Target     acl.UnitID    `json:"target"`
	TargetKind acl.UnitKind  `json:"target_kind"`
	Reason     string        `json:"reason"`
	Documents  []DocumentRef `json:"documents,omitempty"`
	Approvals  []chat.Seq    `json:"approvals,omitempty"`
}

func (c *ChallengeAct) check() error {
	if _, ok := ChallengeRules[c.Type]; !ok {
		return invalid("type", fmt.Sprintf("unknown challenge %q", c.Type))
	}
	if c.Against <= 0 {
		return invalid("against", "name the act challenged")
	}
	if c.Transition != "" && !validID(c.Transition) {
		return invalid("transition", "is not a transition id")
	}
	if c.UnitKind == "" || c.Target == "" || c.TargetKind == "" {
		return invalid("target", "unit_kind, target and target_kind are required")
	}
	if err := checkDocs(c.Documents, nil); err != nil {
		return err
	}
	return checkText("reason", c.Reason, 1, maxPayloadText)
}

// act is the challenge as the act it performs, when it names a transition.
func (c *ChallengeAct) act() Act {
	return Act{Transition: c.Transition, UnitKind: c.UnitKind, Suspect: c.Suspect, Target: c.Target,
		TargetKind: c.TargetKind, Documents: c.Documents, Reason: c.Reason, Approvals: c.Approvals}
}

// SystemAct is the payload of KindSystem: a transition that the passing of
// time performs — a judgment becomes effective when the appeal period passes
// unused (CPL Art. 259) — posted by the deadline bot once Clock (of Suspect)
// has expired at Due, unstopped. Transition must name Clock among its Timed
// clocks. Unit is the unit the act is recorded for (the participant of the
// transition's acting kind, e.g. the court holding the case); the entry's
// sender is the bot. Its occurred_at is Due.
type SystemAct struct {
	Transition string       `json:"transition"`
	Clock      string       `json:"clock"`
	Suspect    string       `json:"suspect,omitempty"`
	Due        time.Time    `json:"due"`
	Unit       acl.UnitID   `json:"unit"`
	UnitKind   acl.UnitKind `json:"unit_kind"`
}

func (a *SystemAct) check() error {
	if !validID(a.Transition) || !validID(a.Clock) {
		return invalid("transition", "a transition and the clock that drives it are required")
	}
	if a.Suspect != "" && !validID(a.Suspect) {
		return invalid("suspect", "is not a party id")
	}
	if a.Due.IsZero() {
		return invalid("due", "is required")
	}
	if a.Unit == "" || a.UnitKind == "" {
		return invalid("unit", "unit and unit_kind are required")
	}
	return nil
}

// Supervision is a supervision notice (督办) of the committee: what it asks of
// which units, and by when.
type Supervision struct {
	Notice string       `json:"notice"`
	Units  []acl.UnitID `json:"units"`
	DueBy  *time.Time   `json:"due_by,omitempty"`
}

func (s *Supervision) check() error {
	if err := checkText("notice", s.Notice, 1, maxPayloadText); err != nil {
		return err
	}
	if len(s.Units) == 0 || len(s.Units) > 20 {
		return invalid("units", "name 1 to 20 units")
	}
	return nil
}

// Handlers names a unit's handling officers (承办人) on the case, replacing the
// earlier list, and optionally an acting leader of the unit for a period.
type Handlers struct {
	Unit     acl.UnitID   `json:"unit"`
	Handlers []acl.UserID `json:"handlers,omitempty"`
	Acting   *Delegation  `json:"acting,omitempty"`
}

// A Delegation makes User the acting leader (代理负责人) of a unit on the case
// from From until Until: they may give the unit's internal approvals.
type Delegation struct {
	Unit  acl.UnitID `json:"unit"`
	User  acl.UserID `json:"user"`
	By    acl.UserID `json:"by"`
	From  time.Time  `json:"from"`
	Until time.Time  `json:"until"`
}

func (h *Handlers) check() error {
	if h.Unit == "" {
		return invalid("unit", "is required")
	}
	if len(h.Handlers) > 20 {
		return invalid("handlers", "at most 20")
	}
	if h.Acting == nil && len(h.Handlers) == 0 {
		return invalid("handlers", "name handlers or an acting leader")
	}
	if a := h.Acting; a != nil && (a.User == "" || a.From.IsZero() || !a.Until.After(a.From)) {
		return invalid("acting", "needs a user and a period whose end is after its start")
	}
	return nil
}

// Correction corrects an earlier act (Target). Acts are never edited: the
// correction says what was wrong and what holds instead — the time the act
// happened, or a party's particulars (a new party is added the same way).
type Correction struct {
	Target     chat.Seq   `json:"target"`
	Reason     string     `json:"reason"`
	OccurredAt *time.Time `json:"occurred_at,omitempty"`
	Party      *Party     `json:"party,omitempty"`
}

func (c *Correction) check() error {
	if c.Target <= 0 {
		return invalid("target", "name the act corrected")
	}
	if err := checkText("reason", c.Reason, 1, maxPayloadText); err != nil {
		return err
	}
	if c.Party != nil {
		if err := c.Party.check("party"); err != nil {
			return err
		}
	}
	if c.OccurredAt == nil && c.Party == nil {
		return invalid("correction", "say what is corrected: occurred_at or a party")
	}
	return nil
}

func checkDocs(docs []DocumentRef, evidence []string) error {
	if len(docs) > maxListLen || len(evidence) > maxListLen {
		return invalid("documents", fmt.Sprintf("at most %d documents and %d evidence items", maxListLen, maxListLen))
	}
	for i, d := range docs {
		if err := checkText(fmt.Sprintf("documents[%d].name", i), d.Name, 1, 200); err != nil {
			return err
		}
		if d.SHA256 != "" && len(d.SHA256) != 64 {
			return invalid(fmt.Sprintf("documents[%d].sha256", i), "must be 64 hex digits")
		}
		if err := checkText(fmt.Sprintf("documents[%d].note", i), d.Note, 0, 1000); err != nil {
			return err
		}
	}
	for i, e := range evidence {
		if !validID(e) {
			return invalid(fmt.Sprintf("evidence[%d]", i), "is not an evidence item id")
		}
	}
	return nil
}

// checkText checks that s is UTF-8 without NUL and has min to max characters.
func checkText(field, s string, min, max int) error {
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return invalid(field, "must be valid UTF-8 text")
	}
	n := utf8.RuneCountInString(strings.TrimSpace(s))
	if n < min || utf8.RuneCountInString(s) > max {
		if min > 0 {
			return invalid(field, fmt.Sprintf("must be %d to %d characters", min, max))
		}
		return invalid(field, fmt.Sprintf("must be at most %d characters", max))
	}
	return nil
}

// validID reports whether s is an identifier of the data files: 1 to 64
// letters, digits, '-', '_' or '.'.
func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
