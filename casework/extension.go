package casework

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// Extensions of statutory clocks.
//
// A clock's specification (configs/clocks.json) lists the extensions the law
// allows, each with who approves it and by when it must be asked. Asking is an
// approval request (KindApprovalReq with Extension set) addressed to that
// approver, who becomes a participant of the case; granting it is the approval
// decision (KindApprovalDec), and Replay records the extension at that
// decision's entry (an EventExtend clock event at its occurred_at), so the
// clock is extended in the replayed case and nowhere else.

// ExtensionInput asks for Extension (an ExtensionSpec ID) of Clock (a
// ClockSpec ID) of the case, or of Suspect's clock. By is the length asked
// where the law gives a range ("+1–4 d"); zero asks the full length. Target
// is the approving unit when the spec names another organ: by default the
// unit of the spec's agency kind at its level above the asking unit's region
// (the league's procuratorate for a county's police).
type ExtensionInput struct {
	Clock     string
	Suspect   string
	Extension string
	By        Period
	Target    acl.UnitID
	Summary   string
}

// RequestExtension asks for an extension of a running clock of case id: an
// approval request addressed to the approver that the clock's specification
// names (CPL Art. 156: the higher-level procuratorate, for investigative
// custody after arrest), or to the asking unit's own leader when the spec
// leaves the decision to the handling organ. The asker is an officer or
// leader of the unit that must act on the clock (the police for custody);
// anyone else is refused by the Guard (rule case-own-unit) or rule
// extension-asker. A request after the extension's lead time (rule
// extension-lead-time: MPS-R Art. 148, 7 d before expiry), before its window
// opens (extension-window), once the period has expired
// (extension-expired), for an extension the clock does not allow now
// (extension-not-allowed: granted once already, one it requires not granted,
// one it excludes granted, a length outside its range), or while the same
// extension is awaiting a decision (extension-pending) stores nothing. The
// clock is extended only when Decide grants the request.
func (s *Service) RequestExtension(ctx context.Context, id CaseID, in ExtensionInput) (chat.Message, Case, error) {
	var m chat.Message
	var out Case
	err := s.retry(func() error {
		v, err := s.visible(ctx, id)
		if err != nil {
			return err
		}
		who, c := v.who, &v.c
		if s.opts.Clocks == nil || s.opts.Calendar == nil {
			return errors.New("casework: no clock table or calendar configured")
		}
		spec, ok := s.opts.Clocks.Spec(in.Clock)
		if !ok {
			return invalid("clock", fmt.Sprintf("no clock %q", in.Clock))
		}
		x, ok := extensionSpec(spec, in.Extension)
		if !ok {
			return invalid("extension", fmt.Sprintf("clock %s has no extension %q", spec.ID, in.Extension))
		}
		if in.Suspect != "" && c.suspect(in.Suspect) == nil {
			return invalid("suspect", fmt.Sprintf("no suspect %q in the case", in.Suspect))
		}
		g := &guarded{s: s, ctx: ctx}
		res := c.resource(v.role)
		res.Unit = c.ClockUnit(spec.Agency)
		if err := checkExtensionAsker(g.decide, who, res, spec); err != nil {
			return s.refusal(ctx, g, who, RequestApproval, res, err)
		}
		if err := s.extensionAllowed(c, spec, x, in.Suspect, in.By, s.now()); err != nil {
			return s.refusal(ctx, g, who, RequestApproval, res, err)
		}
		need := extensionApproval(x)
		r := ApprovalRequest{Suspect: in.Suspect, Extension: &ExtensionAsk{Clock: spec.ID, Extension: x.ID, By: in.By},
			UnitKind: who.UnitKind, Summary: in.Summary}
		if need.Agency == SelfAgency || (acl.UnitKind(need.Agency) == who.UnitKind && need.Level == "same") {
			if in.Target != "" && in.Target != who.Unit {
				return invalid("target", "this extension is decided by a leader of your own unit")
			}
			r.Target, r.TargetKind, r.Internal = who.Unit, who.UnitKind, true
		} else {
			target, err := s.approver(ctx, who, need, in.Target)
			if err != nil {
				return err
			}
			r.Target, r.TargetKind = target.ID, target.Kind
		}
		if err := r.check(); err != nil {
			return err
		}
		if v.room.Archived {
			return chat.ErrArchived
		}
		at, _ := s.occurred(time.Time{})
		msg := v.newMessage(KindApprovalReq, r, at)
		if _, err := v.simulate(msg); err != nil {
			return s.refusal(ctx, g, who, RequestApproval, res, err)
		}
		m, out, err = s.postAct(ctx, v, []acl.UnitID{r.Target}, msg)
		return err
	})
	return m, out, err
}

// checkExtensionAsker checks that who may ask for an extension of a clock of
// spec, whose acting unit is res.Unit: the Guard (the unit's own staff, never
// the committee, never a bot), then an officer or leader of the clock's
// agency kind.
func checkExtensionAsker(decide decider, who acl.Subject, res acl.Resource, spec ClockSpec) error {
	if err := decide(who, RequestApproval, res); err != nil {
		return err
	}
	if (spec.Agency != HandlingAgency && string(who.UnitKind) != spec.Agency) || !who.HasAny(acl.Officer, acl.Leader) {
		return &acl.DeniedError{Rule: "extension-asker",
			Reason: fmt.Sprintf("An extension of 「%s」 is asked by an officer or leader of the unit that must act on it.", spec.NameZH)}
	}
	return nil
}

// extensionAllowed checks, against the clocks of c at now, that extension x
// of clock spec (of suspect) may be asked for now.
func (s *Service) extensionAllowed(c *Case, spec ClockSpec, x ExtensionSpec, suspect string, by Period, now time.Time) error {
	clocks, _ := c.Clocks(s.opts.Clocks, s.opts.Calendar)
	ck := clocks[clockKey(spec.ID, suspect)]
	if ck == nil || (ck.State() != ClockRunning && ck.State() != ClockPaused) {
		return refused("clock-not-running", "「%s」(%s) is not running in this case: there is nothing to extend.", spec.NameZH, spec.ID)
	}
	if slices.ContainsFunc(c.Approvals, func(a ApprovalState) bool {
		return a.Clock == spec.ID && a.Suspect == suspect && a.Extension == x.ID && a.Decided == 0
	}) {
		return refused("extension-pending", "The extension (%s) of 「%s」 has been asked for and awaits a decision.", x.Condition, spec.NameZH)
	}
	due, _ := ck.Due()
	// RULE CPL Art. 98: a period that has run out is no longer extended; the
	// person must be released.
	if !now.Before(due) {
		return refused("extension-expired", "「%s」 expired at %s: a period that has run out can no longer be extended.", spec.NameZH, instantText(due))
	}
	latest, earliest, ok := ck.ExtensionRequestBy(x.ID)
	// RULE MPS-R Art. 148–150, SPC-CI Art. 210, SPC-Lim2000 Art. 12: the
	// extension is asked a lead time before expiry, at the latest.
	if ok && !x.RequestLead.IsZero() && !now.Before(latest) {
		return refused("extension-lead-time", "The extension (%s) of 「%s」 had to be asked by %s, %s before expiry (%s).",
			x.Condition, spec.NameZH, instantText(latest), x.RequestLead, x.Basis)
	}
	// RULE SPC-Enf2006 Art. 1: some extensions are asked only within the last days.
	if !earliest.IsZero() && now.Before(earliest) {
		return refused("extension-window", "The extension (%s) of 「%s」 may be asked from %s, within %s before expiry (%s).",
			x.Condition, spec.NameZH, instantText(earliest), x.RequestWithin, x.Basis)
	}
	try, _ := c.Clocks(s.opts.Clocks, s.opts.Calendar)
	if err := try[clockKey(spec.ID, suspect)].Extend(now, x.ID, by); err != nil {
		return refused("extension-not-allowed", "The extension %s of 「%s」 is not possible: %s.", x.ID, spec.NameZH, clockReason(err))
	}
	return nil
}

// checkExtensionGrant checks that the clock accepts the extension that the
// decision on ap, simulated into sim as its last entry, grants: a grant the
// clock would refuse (the period expired meanwhile, the extension granted by
// another decision) is refused and stores nothing.
func (s *Service) checkExtensionGrant(sim *Case, ap ApprovalState, granted bool) error {
	if ap.Extension == "" || !granted || s.opts.Clocks == nil || s.opts.Calendar == nil {
		return nil
	}
	_, skipped := sim.Clocks(s.opts.Clocks, s.opts.Calendar)
	for _, e := range skipped {
		ce, ok := errors.AsType[*ClockEventError](e)
		if !ok || ce.Seq != sim.Head || ce.Kind != EventExtend || ce.Clock != ap.Clock {
			continue
		}
		spec, _ := s.opts.Clocks.Spec(ap.Clock)
		if errors.Is(ce.Err, ErrExpired) {
			return refused("extension-expired", "「%s」 has expired: a period that has run out can no longer be extended.", spec.NameZH)
		}
		return refused("extension-not-allowed", "The extension %s of 「%s」 is not possible: %s.", ap.Extension, spec.NameZH, clockReason(ce.Err))
	}
	return nil
}

// approvalNeed returns the approval that ap asks for: the transition's
// Index-th, or the extension's approver (with the transition zero).
func (s *Service) approvalNeed(v *view, ap ApprovalState) (Approval, Transition, error) {
	if ap.Extension == "" {
		t, _ := v.proc.Transition(ap.Transition)
		if ap.Index < 0 || ap.Index >= len(t.Approvals) {
			return Approval{}, t, fmt.Errorf("casework: case %s: approval request %d names approval %d of %q", v.c.ID, ap.Seq, ap.Index, ap.Transition)
		}
		return t.Approvals[ap.Index], t, nil
	}
	if s.opts.Clocks == nil {
		return Approval{}, Transition{}, errors.New("casework: no clock table configured")
	}
	spec, ok := s.opts.Clocks.Spec(ap.Clock)
	if !ok {
		return Approval{}, Transition{}, fmt.Errorf("casework: case %s: approval request %d: unknown clock %s", v.c.ID, ap.Seq, ap.Clock)
	}
	x, ok := extensionSpec(spec, ap.Extension)
	if !ok {
		return Approval{}, Transition{}, fmt.Errorf("casework: case %s: approval request %d: clock %s has no extension %s", v.c.ID, ap.Seq, ap.Clock, ap.Extension)
	}
	return extensionApproval(x), Transition{}, nil
}

// applyExtensionRequest records an approval request for an extension.
func (c *Case) applyExtensionRequest(m *chat.Message, r *ApprovalRequest) error {
	x := r.Extension
	if r.Suspect != "" && c.suspect(r.Suspect) == nil {
		return invalid("suspect", fmt.Sprintf("no suspect %q in the case", r.Suspect))
	}
	if c.Closed {
		return refused("case-closed", "The case is closed.")
	}
	if !c.clockOpen(x.Clock, r.Suspect) {
		return refused("clock-not-running", "Clock %s is not running in this case: there is nothing to extend.", x.Clock)
	}
	if slices.ContainsFunc(c.Approvals, func(a ApprovalState) bool {
		return a.Clock == x.Clock && a.Suspect == r.Suspect && a.Extension == x.Extension && a.Decided == 0
	}) {
		return refused("extension-pending", "The extension %s of clock %s has been asked for and awaits a decision.", x.Extension, x.Clock)
	}
	c.Units[m.SenderUnit] = r.UnitKind
	c.join(r.Target, r.TargetKind)
	c.Approvals = append(c.Approvals, ApprovalState{Seq: m.Seq, Suspect: r.Suspect, Unit: m.SenderUnit, By: m.Sender,
		Target: r.Target, Internal: r.Internal, At: m.CreatedAt, Clock: x.Clock, Extension: x.Extension, ExtendBy: x.By})
	return nil
}

// ClockUnit returns the unit that must act on a clock of agency kind (a
// ClockSpec's Agency) in c: the holder if it is of that kind, else the
// latest handling unit of that kind, else a participant of it; HandlingAgency
// and a kind not found give the holder.
func (c *Case) ClockUnit(kind string) acl.UnitID {
	if kind == HandlingAgency || kind == "" || string(c.Units[c.Holder]) == kind {
		return c.Holder
	}
	hs := c.HandlingUnits()
	for i := len(hs) - 1; i >= 0; i-- {
		if string(c.Units[hs[i]]) == kind {
			return hs[i]
		}
	}
	for _, u := range c.Participants {
		if string(c.Units[u]) == kind {
			return u
		}
	}
	return c.Holder
}

// extensionSpec returns spec's extension id.
func extensionSpec(spec ClockSpec, id string) (ExtensionSpec, bool) {
	for _, x := range spec.Extends {
		if x.ID == id {
			return x, true
		}
	}
	return ExtensionSpec{}, false
}

// extensionApproval is who decides extension x: its approver, or, where the
// law leaves it to the handling organ itself (approval null), a leader of
// the asking unit.
func extensionApproval(x ExtensionSpec) Approval {
	if x.Approval == nil {
		return Approval{Agency: SelfAgency, Role: string(acl.Leader), Level: "same", Basis: x.Basis}
	}
	return *x.Approval
}

// clockKey names a clock of the case, or of a suspect ("CR-CUS-01/s1"), as
// Case.Clocks keys them.
func clockKey(id, suspect string) string {
	if suspect == "" {
		return id
	}
	return id + "/" + suspect
}

// clockReason is a clock's refusal in words, without the package prefixes.
func clockReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "casework: "); i >= 0 {
		msg = msg[i+len("casework: "):]
	}
	return msg
}

// instantText is an instant as people read it: Beijing time, 24:00 for the
// end of a day.
func instantText(t time.Time) string {
	b := t.In(Shanghai)
	if b.Hour() == 0 && b.Minute() == 0 && b.Second() == 0 {
		return DateOf(t.Add(-time.Nanosecond)).String() + " 24:00"
	}
	return b.Format("2006-01-02 15:04")
}
