package casework

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// Replay derives a case from its room's log: entries in seq order from the
// first (room.create), as chat's History returns them. It is pure — the log
// and the procedure are all it reads — and it is the only definition of what
// an act does: the Service decides whether an act may be posted by replaying
// it on the current state first (see Service.simulate), so a log the Service
// wrote always replays. Entries that are not case kinds (text, membership…)
// only move Head, except unit.add, which makes a unit a participant.
//
// Replay checks what the procedure says about each act at its moment (the
// stage it leaves, how often it may happen, the approvals and documents it
// needs, that only the receiver of a transfer accepts it) and returns a
// *RefusedError or *InvalidError naming the entry for an act that breaks it;
// who may act is the Guard's and the Service's part.
func Replay(proc *Procedure, entries []chat.Message) (Case, error) {
	c := newCase()
	if len(entries) == 0 {
		return c, fmt.Errorf("casework: replay: empty log")
	}
	c.ID, c.Room = CaseID(entries[0].Room), entries[0].Room
	for i := range entries {
		if err := c.apply(proc, &entries[i]); err != nil {
			return c, fmt.Errorf("casework: replay %s seq %d (%s): %w", c.Room, entries[i].Seq, entries[i].Kind, err)
		}
	}
	if c.Procedure == "" {
		return c, fmt.Errorf("casework: replay %s: the room is not a case (no %s entry)", c.Room, KindOpen)
	}
	return c, nil
}

func newCase() Case {
	return Case{Units: map[acl.UnitID]acl.UnitKind{}, Handlers: map[acl.UnitID][]acl.UserID{},
		Counts: map[string]int{}, Requests: []Request{}, Participants: []acl.UnitID{}, Handling: []acl.UnitID{},
		Chain: []acl.UnitID{}, Numbers: []CaseNumber{}, Acting: []Delegation{}, Parties: []Party{},
		Suspects: []Suspect{}, Approvals: []ApprovalState{}, Evidence: []string{}, Missing: []string{},
		Challenges: []ChallengeState{}, Supervisions: []SupervisionState{}, Corrections: []CorrectionState{},
		Acts: []ActLog{}, ClockEvents: []ClockEventRecord{}}
}

// clone returns a deep enough copy of c for apply to change without touching c.
func (c *Case) clone() Case {
	d := *c
	d.Units = maps(c.Units)
	d.Handlers = map[acl.UnitID][]acl.UserID{}
	for k, v := range c.Handlers {
		d.Handlers[k] = slices.Clone(v)
	}
	d.Counts = maps(c.Counts)
	if c.Pending != nil {
		p := *c.Pending
		d.Pending = &p
	}
	d.Requests = slices.Clone(c.Requests)
	d.Participants = slices.Clone(c.Participants)
	d.Handling = slices.Clone(c.Handling)
	d.Chain = slices.Clone(c.Chain)
	d.Numbers = slices.Clone(c.Numbers)
	d.Acting = slices.Clone(c.Acting)
	d.Parties = slices.Clone(c.Parties)
	d.Suspects = make([]Suspect, len(c.Suspects))
	for i, s := range c.Suspects {
		s.Counts = maps(s.Counts)
		if s.Request != nil {
			r := *s.Request
			s.Request = &r
		}
		d.Suspects[i] = s
	}
	d.Approvals = slices.Clone(c.Approvals)
	d.Evidence = slices.Clone(c.Evidence)
	d.Missing = slices.Clone(c.Missing)
	d.Challenges = slices.Clone(c.Challenges)
	d.Supervisions = make([]SupervisionState, len(c.Supervisions))
	for i, s := range c.Supervisions {
		s.Answered = maps(s.Answered)
		d.Supervisions[i] = s
	}
	d.Corrections = slices.Clone(c.Corrections)
	d.Acts = slices.Clone(c.Acts)
	d.ClockEvents = slices.Clone(c.ClockEvents)
	return d
}

func maps[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// apply applies one entry of the room's log.
func (c *Case) apply(p *Procedure, m *chat.Message) error {
	if m.Seq != 0 && m.Seq <= c.Head {
		return fmt.Errorf("entries out of order")
	}
	if m.Seq != 0 {
		c.Head = m.Seq
	}
	switch m.Kind {
	case chat.UnitAdd:
		var u chat.UnitsChanged
		if err := json.Unmarshal(m.Payload, &u); err != nil {
			return invalid("payload", err.Error())
		}
		for _, id := range u.Units {
			c.join(id, "")
		}
		return nil
	case KindOpen:
		var o Opened
		if err := decodePayload(m.Payload, &o); err != nil {
			return err
		}
		return c.applyOpen(p, m, &o)
	}
	if !slices.Contains(Kinds, m.Kind) {
		return nil // chat's own kinds: text, files, membership, looks…
	}
	if c.Procedure == "" {
		return invalid("kind", "a case entry before the case was opened")
	}
	switch m.Kind {
	case KindAct, KindAccept, KindReturn:
		var a Act
		if err := decodePayload(m.Payload, &a); err != nil {
			return err
		}
		return c.applyAct(p, m, m.Kind, &a)
	case KindApprovalReq:
		var r ApprovalRequest
		if err := decodePayload(m.Payload, &r); err != nil {
			return err
		}
		return c.applyApprovalRequest(p, m, &r)
	case KindApprovalDec:
		var d ApprovalDecision
		if err := decodePayload(m.Payload, &d); err != nil {
			return err
		}
		return c.applyApprovalDecision(m, &d)
	case KindChallenge:
		var ch ChallengeAct
		if err := decodePayload(m.Payload, &ch); err != nil {
			return err
		}
		return c.applyChallenge(p, m, &ch)
	case KindSupervise:
		var s Supervision
		if err := decodePayload(m.Payload, &s); err != nil {
			return err
		}
		st := SupervisionState{Seq: m.Seq, By: m.Sender, Unit: m.SenderUnit, Notice: s.Notice,
			Units: slices.Clone(s.Units), At: m.CreatedAt, Answered: map[acl.UnitID]chat.Seq{}}
		if s.DueBy != nil {
			st.DueBy = *s.DueBy
		}
		c.Supervisions = append(c.Supervisions, st)
		return nil
	case KindHandlers:
		var h Handlers
		if err := decodePayload(m.Payload, &h); err != nil {
			return err
		}
		if len(h.Handlers) > 0 {
			c.Handlers[h.Unit] = slices.Clone(h.Handlers)
		}
		if h.Acting != nil {
			d := *h.Acting
			d.Unit, d.By = h.Unit, m.Sender
			c.Acting = append(c.Acting, d)
		}
		return nil
	case KindCorrection:
		var cr Correction
		if err := decodePayload(m.Payload, &cr); err != nil {
			return err
		}
		return c.applyCorrection(p, m, &cr)
	case KindSystem:
		var sa SystemAct
		if err := decodePayload(m.Payload, &sa); err != nil {
			return err
		}
		return c.applySystem(p, m, &sa)
	}
	return nil
}

// join makes unit a participant (idempotent) and records its kind if known.
func (c *Case) join(unit acl.UnitID, kind acl.UnitKind) {
	if unit == "" {
		return
	}
	if kind != "" {
		c.Units[unit] = kind
	}
	if !slices.Contains(c.Participants, unit) {
		c.Participants = append(c.Participants, unit)
	}
}

func (c *Case) handled(unit acl.UnitID) {
	if unit != "" && !slices.Contains(c.Handling, unit) {
		c.Handling = append(c.Handling, unit)
	}
}

func (c *Case) applyOpen(p *Procedure, m *chat.Message, o *Opened) error {
	if c.Procedure != "" {
		return invalid("kind", "the case is already open")
	}
	if o.Procedure != p.ID {
		return invalid("procedure", fmt.Sprintf("the log is of procedure %q, replayed with %q", o.Procedure, p.ID))
	}
	c.Procedure, c.Title, c.Cause, c.Checklist = o.Procedure, o.Title, o.Cause, o.Checklist
	c.Opener, c.Committee, c.Region = o.Unit, o.Committee, o.Region
	c.Stage, c.Holder, c.Chain = p.Initial, o.Unit, []acl.UnitID{o.Unit}
	c.OpenedAt = m.OccurredAt
	c.Units[o.Committee] = acl.Committee
	c.join(o.Unit, o.UnitKind)
	for _, party := range o.Parties {
		c.addParty(p, party)
	}
	hs := slices.Clone(o.Handlers)
	if len(hs) == 0 {
		hs = []acl.UserID{m.Sender}
	}
	c.Handlers[o.Unit] = hs
	first := Act{Transition: o.Transition, UnitKind: o.UnitKind, Target: o.Target, TargetKind: o.TargetKind,
		Evidence: o.Evidence, Documents: o.Documents, Number: o.Number, Note: o.Note}
	t, ok := p.Transition(o.Transition)
	if !ok || !slices.Contains(t.From, p.Initial) || p.isSuspectTransition(t.ID) {
		return invalid("transition", fmt.Sprintf("%q is not a transition from the initial stage %q", o.Transition, p.Initial))
	}
	return c.applyAct(p, m, KindAct, &first)
}

func (c *Case) addParty(p *Procedure, party Party) {
	for i := range c.Parties {
		if c.Parties[i].ID == party.ID {
			c.Parties[i] = party
			return
		}
	}
	c.Parties = append(c.Parties, party)
	if p.Suspect != nil && slices.Contains(suspectRoles, party.Role) && c.suspect(party.ID) == nil {
		c.Suspects = append(c.Suspects, Suspect{Party: party.ID, State: p.Suspect.Initial, Counts: map[string]int{}})
	}
}

// applyAct applies one transition. kind is KindAct, or KindAccept/KindReturn
// for the receiver's answer to a pending transfer.
func (c *Case) applyAct(p *Procedure, m *chat.Message, kind chat.Kind, a *Act) error {
	t, ok := p.Transition(a.Transition)
	if !ok {
		return invalid("transition", fmt.Sprintf("procedure %s has no transition %q", p.ID, a.Transition))
	}
	unit := m.SenderUnit
	isSuspect := p.isSuspectTransition(t.ID)
	answering := !isSuspect && c.Pending != nil && slices.Contains(t.From, c.Stage) && (t.Act == "accept" || t.Act == "return")
	switch {
	case kind == KindAccept && !(answering && t.Act == "accept"), kind == KindReturn && !(answering && t.Act == "return"):
		return refused("no-pending-transfer", "There is no transfer awaiting an answer that %q could answer.", t.ID)
	case kind == KindAct && answering:
		return invalid("kind", fmt.Sprintf("%q answers the pending transfer: post it as %s or %s", t.ID, KindAccept, KindReturn))
	case kind == KindAct && t.Act == "accept":
		return refused("no-pending-transfer", "There is no transfer to accept.")
	}
	// RULE DESIGN.md invariant 3: only the unit a transfer was sent to answers it.
	if answering && (unit != c.Pending.To || (a.Answers != 0 && a.Answers != c.Pending.Seq)) {
		return refused("not-receiver", "Only the unit the case was sent to can accept or return it.")
	}
	if c.Closed && t.Act != "reopen" {
		return refused("case-closed", "The case is closed; only an act that reopens it (retrial, revocation) may follow.")
	}

	// Where the act happens: the case machine's stage, or the suspect's state.
	var sus *Suspect
	from := c.Stage
	if isSuspect {
		if sus = c.suspect(a.Suspect); sus == nil {
			return invalid("suspect", fmt.Sprintf("no suspect %q in the case", a.Suspect))
		}
		from = sus.State
		if len(t.During) > 0 && !slices.Contains(t.During, c.Stage) {
			return refused("stage", "「%s」 is not possible while the case is at stage %q.", t.NameZH, c.Stage)
		}
	} else if a.Suspect != "" {
		return invalid("suspect", fmt.Sprintf("%q is not a suspect transition", t.ID))
	}
	if !slices.Contains(t.From, from) {
		what := "the case is at stage"
		if isSuspect {
			what = "the suspect's state is"
		}
		return refused("stage", "「%s」 is not possible: %s %q.", t.NameZH, what, from)
	}
	counts := c.Counts
	if isSuspect {
		counts = sus.Counts
	}
	// RULE the procedure's max_count, e.g. CPL Art. 175 ¶3: at most two returns
	// for supplementary investigation.
	if t.MaxCount > 0 && counts[t.ID] >= t.MaxCount {
		return refused("max-count", "「%s」 may happen at most %d time(s) (%s).", t.NameZH, t.MaxCount, t.Basis)
	}

	// What the act must carry: RULE invariant 3, a return gives a reason (and
	// the missing items); the documents the procedure names.
	if t.ReasonRequired && len([]rune(a.Reason)) == 0 {
		return invalid("reason", fmt.Sprintf("「%s」 must give a reason", t.NameZH))
	}
	if kind == KindReturn && len(a.Missing) == 0 {
		return invalid("missing", "a return names what is missing")
	}
	for _, d := range t.Documents {
		if d.Required && !slices.ContainsFunc(a.Documents, func(r DocumentRef) bool { return r.Name == d.NameZH }) {
			return invalid("documents", fmt.Sprintf("「%s」 must carry 「%s」", t.NameZH, d.NameZH))
		}
	}

	// Transfers and requests address a unit.
	switch {
	case t.Act == "transfer":
		if a.Target == "" {
			return invalid("target", "a transfer names the unit it goes to")
		}
		if string(a.TargetKind) != t.Receiver {
			return invalid("target", fmt.Sprintf("「%s」 goes to a unit of kind %s, not %s", t.NameZH, t.Receiver, a.TargetKind))
		}
		if a.Target == unit {
			return invalid("target", "a unit cannot transfer a case to itself")
		}
		if c.Pending != nil {
			return refused("transfer-pending", "A transfer of the case is already awaiting an answer.")
		}
	case a.Target != "" && a.Target == unit:
		return invalid("target", "an act is not addressed to the unit that performs it")
	}

	// RULE the approvals the procedure requires (internal sign-off or another
	// organ's decision), each granted, for this act, and not used before.
	var used []int
	for i, need := range t.Approvals {
		j := slices.IndexFunc(c.Approvals, func(s ApprovalState) bool {
			return slices.Contains(a.Approvals, s.Seq) && s.Transition == t.ID && s.Suspect == a.Suspect &&
				s.Index == i && s.Granted && s.Decided != 0 && s.Used == 0 && s.Unit == unit
		})
		if j < 0 {
			return refused("approval-required", "「%s」 needs the approval of %s (%s level, %s) first.", t.NameZH, approverText(need), need.Level, need.Role)
		}
		used = append(used, j)
	}

	// The act happens.
	c.Units[unit] = a.UnitKind
	c.handled(unit)
	if a.Target != "" {
		c.join(a.Target, a.TargetKind)
	}
	for _, j := range used {
		c.Approvals[j].Used = m.Seq
	}
	counts[t.ID]++
	n := counts[t.ID]
	to := t.To
	rec := ActLog{Seq: m.Seq, Kind: kind, Transition: t.ID, Suspect: a.Suspect, From: from, To: to, Unit: unit,
		By: m.Sender, Target: a.Target, OccurredAt: m.OccurredAt, PostedAt: m.CreatedAt}
	c.Acts = append(c.Acts, rec)
	c.UpdatedAt = m.CreatedAt
	c.Evidence = union(c.Evidence, a.Evidence)
	if a.Number != nil && !slices.ContainsFunc(c.Numbers, func(x CaseNumber) bool { return x.Number == a.Number.Number }) {
		c.Numbers = append(c.Numbers, *a.Number)
	}
	// An act by a unit answers what was addressed to it.
	if t.Act != "request" && t.Act != "transfer" {
		c.Requests = slices.DeleteFunc(c.Requests, func(r Request) bool { return r.To == unit })
		for i := range c.Challenges {
			if c.Challenges[i].To == unit && c.Challenges[i].Answered == 0 {
				c.Challenges[i].Answered = m.Seq
			}
		}
	}
	for i := range c.Supervisions {
		if slices.Contains(c.Supervisions[i].Units, unit) && c.Supervisions[i].Answered[unit] == 0 {
			c.Supervisions[i].Answered[unit] = m.Seq
		}
	}
	if c.ReturnedTo == unit && (to != from || t.Act == "transfer") {
		c.ReturnedTo = ""
	}

	if isSuspect {
		sus.State = to
		if to != from {
			sus.Request = nil
		}
		switch to {
		case "detained", "arrested":
			sus.Custody = true
		case "free", "bail", "rsl", "summoned":
			sus.Custody = false
		}
		if a.Target != "" || t.Act == "request" {
			if a.Target == "" {
				return invalid("target", fmt.Sprintf("「%s」 is addressed to a unit: name it", t.NameZH))
			}
			sus.Request = &Request{Seq: m.Seq, Kind: "request", Transition: t.ID, Suspect: sus.Party, From: unit, To: a.Target, By: m.Sender, At: m.OccurredAt}
		}
		c.clockEvents(t, n, m, sus.Party, sus.Custody)
		return nil
	}

	c.Stage = to
	switch {
	case t.Act == "transfer":
		c.Pending = &Transfer{Seq: m.Seq, Transition: t.ID, From: unit, To: a.Target, By: m.Sender, At: m.OccurredAt}
	case answering && t.Act == "accept":
		// RULE DESIGN.md invariant 3: the holder changes only here, when the
		// receiving unit accepts.
		c.Holder = c.Pending.To
		c.Chain = append(c.Chain, c.Holder)
		if len(c.Handlers[c.Holder]) == 0 {
			c.Handlers[c.Holder] = []acl.UserID{m.Sender}
		}
		c.Pending = nil
	case answering && t.Act == "return":
		c.ReturnedTo, c.ReturnSeq = c.Pending.From, m.Seq
		c.Returns++
		c.Missing = slices.Clone(a.Missing)
		c.Pending = nil
	case t.Act == "return":
		// A return of a case held (for supplementary investigation, a remand)
		// sends it back to the unit it came from.
		if len(c.Chain) > 1 {
			c.Chain = c.Chain[:len(c.Chain)-1]
			c.Holder = c.Chain[len(c.Chain)-1]
		}
		c.ReturnedTo, c.ReturnSeq = c.Holder, m.Seq
		c.Returns++
		c.Missing = slices.Clone(a.Missing)
	case t.Act == "reopen":
		c.Reopened++
		if unit != c.Holder {
			c.Holder = unit
			c.Chain = append(c.Chain, unit)
		}
	}
	if a.Target != "" && t.Act != "transfer" {
		k := "notice"
		if t.Act == "request" {
			k = "request"
		}
		c.Requests = append(c.Requests, Request{Seq: m.Seq, Kind: k, Transition: t.ID, From: unit, To: a.Target, By: m.Sender, At: m.OccurredAt})
	}
	st, _ := p.Stage(to)
	c.Closed = st.Terminal
	c.clockEvents(t, n, m, "", c.inCustody())
	return nil
}

// inCustody reports whether any suspect is in custody (for clocks that are
// strict only while someone is detained).
func (c *Case) inCustody() bool {
	return slices.ContainsFunc(c.Suspects, func(s Suspect) bool { return s.Custody })
}

// clockEvents records what the n-th occurrence of t does to clocks.
func (c *Case) clockEvents(t Transition, n int, m *chat.Message, suspect string, detained bool) {
	ca := t.ClocksFor(n)
	for _, l := range []struct {
		kind EventKind
		ids  []string
	}{{EventStop, ca.Stop}, {EventPause, ca.Pause}, {EventResume, ca.Resume}, {EventRestart, ca.Restart}, {EventStart, ca.Start}} {
		for _, id := range l.ids {
			c.ClockEvents = append(c.ClockEvents, ClockEventRecord{Seq: m.Seq, Clock: id, Suspect: suspect, Kind: l.kind, At: m.OccurredAt, Detained: detained})
		}
	}
}

func (c *Case) applyApprovalRequest(p *Procedure, m *chat.Message, r *ApprovalRequest) error {
	if r.Extension != nil {
		return c.applyExtensionRequest(m, r)
	}
	t, ok := p.Transition(r.Transition)
	if !ok {
		return invalid("transition", fmt.Sprintf("procedure %s has no transition %q", p.ID, r.Transition))
	}
	if r.Index >= len(t.Approvals) {
		return invalid("index", fmt.Sprintf("「%s」 needs %d approval(s)", t.NameZH, len(t.Approvals)))
	}
	if p.isSuspectTransition(t.ID) {
		if c.suspect(r.Suspect) == nil {
			return invalid("suspect", fmt.Sprintf("no suspect %q in the case", r.Suspect))
		}
	} else if r.Suspect != "" {
		return invalid("suspect", fmt.Sprintf("%q is not a suspect transition", t.ID))
	}
	if c.Closed && t.Act != "reopen" {
		return refused("case-closed", "The case is closed.")
	}
	c.Units[m.SenderUnit] = r.UnitKind
	c.join(r.Target, r.TargetKind)
	c.Approvals = append(c.Approvals, ApprovalState{Seq: m.Seq, Transition: t.ID, Suspect: r.Suspect, Index: r.Index,
		Unit: m.SenderUnit, By: m.Sender, Target: r.Target, Internal: r.Internal, At: m.CreatedAt})
	return nil
}

func (c *Case) applyApprovalDecision(m *chat.Message, d *ApprovalDecision) error {
	i := slices.IndexFunc(c.Approvals, func(s ApprovalState) bool { return s.Seq == d.Request })
	if i < 0 {
		return invalid("request", fmt.Sprintf("no approval request at seq %d", d.Request))
	}
	s := &c.Approvals[i]
	if s.Decided != 0 {
		return refused("approval-decided", "That approval request was decided already (seq %d).", s.Decided)
	}
	// RULE DESIGN.md invariant 2, restated over the log: the approving unit
	// decides, and an internal approval is never the asker's own.
	if m.SenderUnit != s.Target {
		return refused("not-approver", "Only the unit the approval was asked of can decide it.")
	}
	if m.Sender == s.By {
		return refused("no-self-approval", "You cannot approve your own request.")
	}
	if s.Extension != "" && d.Granted {
		// The extension takes effect with the decision that grants it, at its
		// occurred_at; the clock itself (Case.Clocks) checks that it may.
		if !c.clockOpen(s.Clock, s.Suspect) {
			return refused("clock-not-running", "Clock %s is no longer running: there is nothing to extend.", s.Clock)
		}
		c.ClockEvents = append(c.ClockEvents, ClockEventRecord{Seq: m.Seq, Clock: s.Clock, Suspect: s.Suspect, Kind: EventExtend,
			At: m.OccurredAt, Ref: s.Extension, By: s.ExtendBy})
	}
	s.Decided, s.DecidedBy, s.Granted = m.Seq, m.Sender, d.Granted
	return nil
}

func (c *Case) applyChallenge(p *Procedure, m *chat.Message, ch *ChallengeAct) error {
	i := slices.IndexFunc(c.Acts, func(r ActLog) bool { return r.Seq == ch.Against })
	if i < 0 {
		return invalid("against", fmt.Sprintf("no act at seq %d", ch.Against))
	}
	rule := ChallengeRules[ch.Type]
	if !slices.Contains(rule.Against, c.kindOf(c.Acts[i].Unit)) {
		return refused("challenge-against", "A %s challenges acts of %v, not of %s.", rule.NameZH, rule.Against, c.kindOf(c.Acts[i].Unit))
	}
	c.Units[m.SenderUnit] = ch.UnitKind
	c.join(ch.Target, ch.TargetKind)
	c.Challenges = append(c.Challenges, ChallengeState{Seq: m.Seq, Type: ch.Type, Against: ch.Against, From: m.SenderUnit, To: ch.Target, By: m.Sender})
	if ch.Transition != "" {
		a := ch.act()
		a.Target = "" // the challenge addresses Target itself, below
		a.TargetKind = ""
		if err := c.applyAct(p, m, KindAct, &a); err != nil {
			return err
		}
	} else {
		c.handled(m.SenderUnit)
	}
	c.Requests = append(c.Requests, Request{Seq: m.Seq, Kind: "challenge", Transition: ch.Transition, From: m.SenderUnit, To: ch.Target, By: m.Sender, At: m.OccurredAt})
	return nil
}

func (c *Case) applyCorrection(p *Procedure, m *chat.Message, cr *Correction) error {
	i := slices.IndexFunc(c.Acts, func(r ActLog) bool { return r.Seq == cr.Target })
	isOpen := len(c.Acts) > 0 && c.Acts[0].Seq == cr.Target
	if i < 0 && !slices.ContainsFunc(c.Approvals, func(s ApprovalState) bool { return s.Seq == cr.Target || s.Decided == cr.Target }) {
		return invalid("target", fmt.Sprintf("no act at seq %d", cr.Target))
	}
	if cr.OccurredAt != nil {
		if i < 0 {
			return invalid("occurred_at", "only an act has a time it happened")
		}
		at := cr.OccurredAt.UTC()
		c.Acts[i].OccurredAt = at
		for j := range c.ClockEvents {
			if c.ClockEvents[j].Seq == cr.Target {
				c.ClockEvents[j].At = at
			}
		}
		if isOpen {
			c.OpenedAt = at
		}
	}
	if cr.Party != nil {
		c.addParty(p, *cr.Party)
	}
	c.Corrections = append(c.Corrections, CorrectionState{Seq: m.Seq, Target: cr.Target, By: m.Sender, Reason: cr.Reason})
	return nil
}

func union(have, add []string) []string {
	for _, x := range add {
		if !slices.Contains(have, x) {
			have = append(have, x)
		}
	}
	sort.Strings(have)
	return have
}

func approverText(a Approval) string {
	if a.Agency == SelfAgency {
		return "a leader of the acting unit"
	}
	return a.Agency
}

// Clocks evaluates the case's clock events on cal against the clock table:
// one Clock per clock ID (and suspect), with its events applied in order. An
// event a clock refuses (an order the law does not allow, a clock stopped
// twice) is skipped and reported in skipped (each a *ClockEventError), so
// that a clock table the deadlines engine changes later never makes a stored
// case unreadable.
//
// A minimum notice anchored to another clock (CR-CUS-02: the extension of
// custody is asked 7 d before CR-CUS-01 expires) counts back from that
// clock's expiry and follows it when it moves (an extension, a pause, a
// restart); a request for an extension of the anchor clock is what the notice
// waited for, and stops it.
func (c *Case) Clocks(table *ClockTable, cal *Calendar) (clocks map[string]*Clock, skipped []error) {
	clocks = map[string]*Clock{}
	open := func(ck *Clock) bool { return ck != nil && (ck.State() == ClockRunning || ck.State() == ClockPaused) }
	// anchored calls f for each open clock anchored to clock id of suspect.
	anchored := func(id, suspect string, f func(*Clock) error, seq chat.Seq, kind EventKind) {
		for key, ck := range clocks {
			sp := ck.Spec()
			if _, sus, _ := strings.Cut(key, "/"); sp.Anchor != id || sus != suspect || !open(ck) {
				continue
			}
			if err := f(ck); err != nil {
				skipped = append(skipped, &ClockEventError{Seq: seq, Kind: kind, Clock: sp.ID, Err: err})
			}
		}
	}
	var asks []ApprovalState // extension requests, in log order
	for _, a := range c.Approvals {
		if a.Extension != "" {
			asks = append(asks, a)
		}
	}
	asked := func(upTo chat.Seq) { // upTo 0: all that are left
		for len(asks) > 0 && (upTo == 0 || asks[0].Seq < upTo) {
			a := asks[0]
			asks = asks[1:]
			anchored(a.Clock, a.Suspect, func(ck *Clock) error { return ck.Stop(a.At) }, a.Seq, EventStop)
		}
	}
	for _, e := range c.ClockEvents {
		asked(e.Seq)
		spec, ok := table.Spec(e.Clock)
		if !ok {
			skipped = append(skipped, &ClockEventError{Seq: e.Seq, Kind: e.Kind, Clock: e.Clock, Err: ErrUnknownClock})
			continue
		}
		key := clockKey(e.Clock, e.Suspect)
		ck := clocks[key]
		if ck == nil {
			ck = NewClock(cal, spec)
			clocks[key] = ck
		}
		// start starts ck at e, counting back from its anchor clock's expiry
		// when it has one that runs.
		start := func() error {
			if spec.Direction == Before && spec.Anchor != "" {
				if a := clocks[clockKey(spec.Anchor, e.Suspect)]; open(a) {
					due, _ := a.Due()
					return ck.StartAnchored(e.At, due, e.Detained)
				}
			}
			return ck.Start(e.At, e.Detained)
		}
		fresh := func() error { // a new full period where the spec names no restart
			ck = NewClock(cal, spec)
			clocks[key] = ck
			return start()
		}
		var err error
		switch e.Kind {
		case EventStart, EventRestart:
			switch {
			case ck.State() == ClockIdle && e.Kind == EventStart:
				err = start()
			case len(spec.Restarts) > 0:
				err = ck.Restart(e.At, spec.Restarts[0].ID, e.Detained)
			default:
				err = fresh()
			}
		case EventStop:
			err = ck.Stop(e.At)
		case EventPause:
			if len(spec.Pauses) == 0 {
				err = fmt.Errorf("clock %s names no pause", spec.ID)
				break
			}
			err = ck.Pause(e.At, spec.Pauses[0].ID)
		case EventResume:
			err = ck.Resume(e.At)
		case EventExtend:
			err = ck.Extend(e.At, e.Ref, e.By)
		}
		if err != nil {
			skipped = append(skipped, &ClockEventError{Seq: e.Seq, Kind: e.Kind, Clock: e.Clock, Err: err})
			continue
		}
		if e.Kind != EventStop && open(ck) {
			due, _ := ck.Due()
			anchored(e.Clock, e.Suspect, func(d *Clock) error {
				if len(d.events) == 0 || d.events[0].Anchor.IsZero() || d.start.Equal(due) {
					return nil // not started from its anchor, or counting from this expiry already
				}
				return d.Reanchor(e.At, due)
			}, e.Seq, EventAnchor)
		}
	}
	asked(0)
	return clocks, skipped
}

// ErrUnknownClock is a clock event for a clock the table does not have.
var ErrUnknownClock = errors.New("casework: unknown clock")

// A ClockEventError is a clock event of the log that its clock refused (Case.Clocks
// skips it): the entry at Seq, what it did to which clock, and why not.
type ClockEventError struct {
	Seq   chat.Seq
	Kind  EventKind
	Clock string
	Err   error
}

func (e *ClockEventError) Error() string {
	return fmt.Sprintf("seq %d: %s %s: %v", e.Seq, e.Kind, e.Clock, e.Err)
}

func (e *ClockEventError) Unwrap() error { return e.Err }

// clockOpen reports whether clock id (of suspect) has been started in the log
// and not stopped since: running or paused, so that an extension or a timed
// act can apply to it.
func (c *Case) clockOpen(id, suspect string) bool {
	open := false
	for _, e := range c.ClockEvents {
		if e.Clock == id && e.Suspect == suspect {
			open = e.Kind != EventStop
		}
	}
	return open
}

// NextDue returns the earliest due time of the running clocks, zero if none.
func NextDue(clocks map[string]*Clock) time.Time {
	var due time.Time
	for _, ck := range clocks {
		if ck.State() != ClockRunning {
			continue
		}
		d, _ := ck.Due()
		if !d.IsZero() && (due.IsZero() || d.Before(due)) {
			due = d
		}
	}
	return due
}
