package bots

import (
	"context"
	"errors"

	"caseroom/acl"
	"caseroom/casework"
	"caseroom/chat"
)

// TimedActs is what TimedClocks needs of the case service; casework.Service
// is one.
type TimedActs interface {
	TimedAct(ctx context.Context, id casework.CaseID, in casework.TimedInput) (chat.Message, casework.Case, error)
}

// TimedClocks is the ClockSource on the case service that is also a
// TimedActor: CaseClocks lists the clocks, and the case service posts what
// their expiry performs (a judgment becoming effective, CPL Art. 259) as a
// system act of the deadline bot. cmd/caseroomd gives the Scheduler one.
type TimedClocks struct {
	*CaseClocks
	acts TimedActs
}

// NewTimedClocks returns src posting timed acts through acts.
func NewTimedClocks(src *CaseClocks, acts TimedActs) *TimedClocks {
	return &TimedClocks{CaseClocks: src, acts: acts}
}

// TimedClientID is the client id of the timed act that the expiry of the
// clock with key performs: the key names the clock instance and its due
// instant, so the act is posted once per expiry, however often it is asked.
func TimedClientID(key string) string { return "timed:" + key }

// TimedAct posts transition, which the expiry of c performs, in c's case as
// bot, with the client id derived from c's key: a second call (a restarted
// scheduler, another node) answers the entry posted first and posts nothing.
// A refusal that retrying cannot change (the case moved on: an appeal stopped
// the clock, the act was recorded by hand, the case was closed) is logged and
// answers nil, so the schedule moves on; a refusal because the clock has not
// expired yet (the nodes' clocks disagree) and any other failure answer the
// error, and the next tick tries again.
func (s *TimedClocks) TimedAct(ctx context.Context, bot acl.Subject, c OpenClock, transition string) error {
	in := casework.TimedInput{Transition: transition, Clock: c.Spec.ID, Suspect: c.Suspect, ClientID: TimedClientID(c.Key())}
	m, _, err := s.acts.TimedAct(acl.WithSubject(ctx, bot), casework.CaseID(c.Case), in)
	var r *casework.RefusedError
	switch {
	case err == nil:
		s.log.DebugContext(ctx, "timed act", "room", c.Room, "clock", c.Key(), "transition", transition, "seq", m.Seq)
		return nil
	case errors.As(err, &r) && r.Rule != "clock-not-expired",
		errors.Is(err, casework.ErrCaseNotFound), errors.Is(err, chat.ErrArchived):
		s.log.InfoContext(ctx, "timed act not posted: the case has moved on", "room", c.Room, "clock", c.Key(),
			"transition", transition, "err", err)
		return nil
	}
	return err
}

var _ TimedActor = (*TimedClocks)(nil)
