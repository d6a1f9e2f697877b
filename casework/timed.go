package casework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// Time-driven acts.
//
// Some transitions are performed by nobody: the passing of time does them. A
// first-instance judgment becomes effective when the appeal period passes
// unused (CPL Art. 259). The procedure's data marks such a transition with the
// clocks whose expiry performs it (Transition.Timed); the deadline bot, once
// such a clock has expired still running, posts it through TimedAct as a
// system act (KindSystem), exactly once.

// TimedInput is a time-driven act: Transition, performed because Clock (of
// Suspect, for a suspect's clock) expired. ClientID makes it idempotent: the
// bot derives it from the clock's key, which names the due instant
// ("timed:CR-APP-01.judgment@20260313T0000"), and a second call with it posts
// nothing and answers the entry posted first.
type TimedInput struct {
	Transition string
	Clock      string
	Suspect    string
	ClientID   string
}

// TimedAct posts what the expiry of a clock of case id performs, as a system
// act of the subject in ctx, which must be a bot (rule timed-act-bot: no
// person performs it) that the Guard allows (rule case-timed-bot: the
// deadline bot of a committee whose jurisdiction covers the case). The bot
// needs no membership of the room. The transition must be marked time-driven
// by the procedure for that clock (rule not-timed), the clock must be running
// (clock-not-running) and past its due instant at the service's now
// (clock-not-expired), and the case at a stage the transition leaves
// (stage). The act's occurred_at is the clock's due instant; it is recorded
// for the participant of the transition's acting kind (the court holding the
// case). A call whose ClientID the bot used in the room already answers that
// entry and posts nothing, whatever happened since.
func (s *Service) TimedAct(ctx context.Context, id CaseID, in TimedInput) (chat.Message, Case, error) {
	who, err := subject(ctx)
	if err != nil {
		return chat.Message{}, Case{}, err
	}
	if !who.Bot {
		res := acl.Resource{Kind: "case", ID: string(id)}
		return chat.Message{}, Case{}, s.refusal(ctx, nil, who, PostTimedAct, res, errTimedNotBot)
	}
	if in.ClientID == "" {
		return chat.Message{}, Case{}, invalid("client_id", "a timed act needs the client id that makes it idempotent")
	}
	if s.opts.Clocks == nil || s.opts.Calendar == nil {
		return chat.Message{}, Case{}, errors.New("casework: no clock table or calendar configured")
	}
	var m chat.Message
	var out Case
	err = s.retry(func() error {
		room, err := s.rooms.Room(ctx, chat.RoomID(id))
		if errors.Is(err, chat.ErrNotFound) || (err == nil && room.Kind != chat.CaseRoom) {
			return ErrCaseNotFound
		}
		if err != nil {
			return err
		}
		v, err := s.load(ctx, room)
		if err != nil {
			return err
		}
		v.who = who
		c := &v.c
		// Posted already (this call is a retry, or another node's): that entry.
		for i := range v.log {
			if e := &v.log[i]; e.Sender == who.User && e.ClientID == in.ClientID {
				m, out = *e, v.c
				return nil
			}
		}
		g := &guarded{s: s, ctx: ctx}
		res := c.resource("")
		if err := checkTimedAct(g.decide, who, res); err != nil {
			return s.refusal(ctx, g, who, PostTimedAct, res, err)
		}
		t, ok := v.proc.Transition(in.Transition)
		if !ok {
			return invalid("transition", fmt.Sprintf("procedure %s has no transition %q", v.proc.ID, in.Transition))
		}
		if !slices.Contains(t.Timed, in.Clock) {
			return s.refusal(ctx, g, who, PostTimedAct, res, refused("not-timed",
				"「%s」 does not happen by itself when clock %s expires.", t.NameZH, in.Clock))
		}
		spec, _ := s.opts.Clocks.Spec(in.Clock)
		clocks, _ := c.Clocks(s.opts.Clocks, s.opts.Calendar)
		ck := clocks[clockKey(in.Clock, in.Suspect)]
		if ck == nil || ck.State() != ClockRunning {
			return s.refusal(ctx, g, who, PostTimedAct, res, refused("clock-not-running",
				"「%s」(%s) is not running in this case.", spec.NameZH, spec.ID))
		}
		due, _ := ck.Due()
		if s.now().Before(due) {
			return s.refusal(ctx, g, who, PostTimedAct, res, refused("clock-not-expired",
				"「%s」(%s) expires at %s, not before.", spec.NameZH, spec.ID, instantText(due)))
		}
		suspect := ""
		if v.proc.isSuspectTransition(t.ID) {
			suspect = in.Suspect
		}
		unit, _ := c.entitled(v.proc, t, suspect, "")
		if unit == "" {
			return s.refusal(ctx, g, who, PostTimedAct, res, refused("system-act-unit",
				"No unit of %v takes part in the case to record 「%s」 for.", byKinds(t), t.NameZH))
		}
		sa := SystemAct{Transition: t.ID, Clock: spec.ID, Suspect: in.Suspect, Due: due.UTC(), Unit: unit, UnitKind: c.kindOf(unit)}
		if err := sa.check(); err != nil {
			return err
		}
		b, _ := json.Marshal(sa)
		msg := &chat.Message{Room: room.ID, Kind: KindSystem, Sender: who.User, SenderUnit: who.Unit, ClientID: in.ClientID,
			Body: systemText(spec, t, due), Payload: b, OccurredAt: due.UTC()}
		sim, err := v.simulate(msg)
		if err != nil {
			return s.refusal(ctx, g, who, PostTimedAct, res, err)
		}
		if room.Archived {
			return chat.ErrArchived
		}
		entries := []*chat.Message{msg}
		if st, _ := v.proc.Stage(sim.Stage); st.ReadOnly && !v.proc.isSuspectTransition(t.ID) {
			entries = append(entries, v.archive(true))
		}
		m, out, err = s.postAct(ctx, v, nil, msg, entries...)
		if err == nil {
			s.log.InfoContext(ctx, "timed act posted", "case", id, "transition", t.ID, "clock", spec.ID, "seq", msg.Seq)
		}
		return err
	})
	return m, out, err
}

// errTimedNotBot refuses a person a timed act.
var errTimedNotBot = &acl.DeniedError{Rule: "timed-act-bot",
	Reason: "What the passing of time performs is posted by the deadline bot, never by a person."}

// checkTimedAct checks that who may post a time-driven act in the case res
// describes: a bot (RULE: nobody performs it; time does), then the Guard.
func checkTimedAct(decide decider, who acl.Subject, res acl.Resource) error {
	if !who.Bot {
		return errTimedNotBot
	}
	return decide(who, PostTimedAct, res)
}

// applySystem applies a time-driven act: its transition, recorded for the
// unit the act names, once its clock has run (and is still running, so that
// a second one, or one after an appeal stopped the clock, is refused).
func (c *Case) applySystem(p *Procedure, m *chat.Message, sa *SystemAct) error {
	t, ok := p.Transition(sa.Transition)
	if !ok {
		return invalid("transition", fmt.Sprintf("procedure %s has no transition %q", p.ID, sa.Transition))
	}
	if !slices.Contains(t.Timed, sa.Clock) {
		return refused("not-timed", "「%s」 does not happen by itself when clock %s expires.", t.NameZH, sa.Clock)
	}
	if !c.clockOpen(sa.Clock, sa.Suspect) {
		return refused("clock-not-running", "Clock %s is not running in this case.", sa.Clock)
	}
	if !slices.Contains(byKinds(t), sa.UnitKind) || !c.IsParticipant(sa.Unit) ||
		(c.kindOf(sa.Unit) != "" && c.kindOf(sa.Unit) != sa.UnitKind) {
		return refused("system-act-unit", "「%s」 is recorded for a participating unit of %v, not %s.", t.NameZH, byKinds(t), sa.Unit)
	}
	a := Act{Transition: t.ID, UnitKind: sa.UnitKind}
	if p.isSuspectTransition(t.ID) {
		a.Suspect = sa.Suspect
	}
	as := *m
	as.SenderUnit = sa.Unit // the act is the unit's by operation of law; the entry's sender stays the bot
	return c.applyAct(p, &as, KindSystem, &a)
}

// systemText is the body of a system act, as the room reads it, e.g.
// 【依法生效】判决上诉、抗诉期（CR-APP-01.judgment，CPL Art. 230）已于 2026-03-12 24:00 届满：判决生效（CPL Art. 259）。
func systemText(spec ClockSpec, t Transition, due time.Time) string {
	return fmt.Sprintf("【依法生效】%s（%s，%s）已于 %s 届满：%s（%s）。", spec.NameZH, spec.ID, spec.Basis, instantText(due), t.NameZH, t.Basis)
}
