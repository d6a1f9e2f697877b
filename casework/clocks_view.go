package casework

import (
	"slices"
	"strings"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// A CaseClock is one statutory clock of a case (or of one of its suspects) as
// the case room's log has run it, at a moment: what the case API and the case
// panel show.
type CaseClock struct {
	Key         string // the clock ID, with "/" and the party id for a suspect's clock
	Spec        ClockSpec
	Suspect     string     // party id; "" for a clock of the whole case
	Unit        acl.UnitID // the unit that must act on it (Case.ClockUnit)
	State       ClockState // running, paused or stopped
	Due         time.Time  // the expiry instant (24:00 Beijing time of the last day for day periods)
	LastDay     Date
	Left        time.Duration // at the moment asked: frozen while paused, at the stop once stopped; negative is overdue or late
	Overdue     bool
	Strict      bool // a custody period: no holiday roll-over
	Provisional bool // the due date depends on a year without calendar data
	Granted     []string
	Extensions  []ClockExtension // still open to the clock
}

// A ClockExtension is an extension still open to a clock: who decides it, the
// window in which it may be asked, and the request awaiting a decision, if any.
type ClockExtension struct {
	Spec      ExtensionSpec
	Approver  Approval  // Agency SelfAgency: a leader of the unit that asks
	RequestBy time.Time // the last moment to ask: its lead time before expiry, else the expiry
	Earliest  time.Time // the first moment to ask, when the law sets one; else zero
	Pending   chat.Seq  // an approval request for it awaiting a decision; 0 if none
	Askable   bool      // it may be asked for at the moment the list was made: inside its window, none pending
}

// ClocksOf returns the clocks of c at the service's now: running and paused
// ones first, by due instant, then stopped ones, most recent first. Idle
// clocks and events the clock table does not know are left out. Without
// Options.Clocks and Options.Calendar it returns nil.
func (s *Service) ClocksOf(c *Case) []CaseClock {
	if s.opts.Clocks == nil || s.opts.Calendar == nil {
		return nil
	}
	return c.clockList(s.opts.Clocks, s.opts.Calendar, s.now())
}

func (c *Case) clockList(table *ClockTable, cal *Calendar, now time.Time) []CaseClock {
	clocks, _ := c.Clocks(table, cal)
	out := make([]CaseClock, 0, len(clocks))
	for key, ck := range clocks {
		st := ck.State()
		if st == ClockIdle {
			continue
		}
		id, suspect, _ := strings.Cut(key, "/")
		spec := ck.Spec()
		due, prov := ck.Due()
		last, _ := ck.LastDay()
		cc := CaseClock{Key: key, Spec: spec, Suspect: suspect, Unit: c.ClockUnit(spec.Agency), State: st, Due: due,
			LastDay: last, Left: ck.Remaining(now), Overdue: ck.Overdue(now), Strict: ck.Strict(), Provisional: prov}
		for _, x := range spec.Extends {
			for range ck.granted[x.ID] {
				cc.Granted = append(cc.Granted, x.ID)
			}
		}
		if st == ClockRunning || st == ClockPaused {
			for _, x := range ck.openExtensions() {
				ce := ClockExtension{Spec: x, Approver: extensionApproval(x), RequestBy: due}
				if latest, earliest, ok := ck.ExtensionRequestBy(x.ID); ok {
					ce.RequestBy, ce.Earliest = latest, earliest
				}
				for _, a := range c.Approvals {
					if a.Clock == id && a.Suspect == suspect && a.Extension == x.ID && a.Decided == 0 {
						ce.Pending = a.Seq
					}
				}
				ce.Askable = ce.Pending == 0 && now.Before(ce.RequestBy) && (ce.Earliest.IsZero() || !now.Before(ce.Earliest))
				cc.Extensions = append(cc.Extensions, ce)
			}
		}
		out = append(out, cc)
	}
	rank := func(s ClockState) int {
		if s == ClockStopped {
			return 1
		}
		return 0
	}
	slices.SortFunc(out, func(a, b CaseClock) int {
		if r := rank(a.State) - rank(b.State); r != 0 {
			return r
		}
		if !a.Due.Equal(b.Due) {
			if a.State == ClockStopped {
				return b.Due.Compare(a.Due)
			}
			return a.Due.Compare(b.Due)
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// openExtensions returns the extensions of the clock's spec that may still be
// granted in its current period: not granted already unless repeatable, none
// they exclude granted, all they require granted.
func (c *Clock) openExtensions() []ExtensionSpec {
	var out []ExtensionSpec
	for _, x := range c.spec.Extends {
		if (!x.Repeat && c.granted[x.ID] > 0) ||
			slices.ContainsFunc(x.Excludes, func(e string) bool { return c.granted[e] > 0 }) ||
			slices.ContainsFunc(x.Requires, func(r string) bool { return c.granted[r] == 0 }) {
			continue
		}
		out = append(out, x)
	}
	return out
}
