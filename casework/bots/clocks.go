package bots

import (
	"context"
	"slices"
	"time"

	"caseroom/acl"
	"caseroom/casework"
	"caseroom/chat"
)

// An OpenClock is one running or paused statutory period of a case, or of one
// suspect of it, as the case service derives it from the case room's log. The
// deadline bot and the due lists read nothing else about cases.
type OpenClock struct {
	Case       string // the case id
	CaseNumber string // the holder's case number, for people to read
	Room       chat.RoomID
	Region     acl.RegionCode // the case's jurisdiction: the region of the committee owning the room
	Spec       casework.ClockSpec
	Suspect    string // the suspect's party id; "" for a clock of the whole case
	// SuspectName is how the case room names the suspect (personal data: it is
	// shown in the case room only, never in unit rooms or logs).
	SuspectName string

	State casework.ClockState // ClockRunning or ClockPaused; stopped and idle clocks are not open
	// Since is the occurred_at of the latest act that moved the due instant (the
	// start, a restart, an extension, a resume): plan points before it do not
	// apply to this due instant.
	Since       time.Time
	PausedAt    time.Time // when a paused clock paused
	Due         time.Time
	Provisional bool // Due depends on a year without calendar data
	Strict      bool // a custody period: no holiday roll-over
	Extensions  []Extension

	Holder        acl.UnitID   // the unit that must act
	Committee     acl.UnitID   // the committee owning the case room ("" means the room's owner)
	Procuratorate acl.UnitID   // the supervising procuratorate ("" lets the Scheduler look it up)
	Officers      []acl.UserID // the holder's handling officers (承办人) on the case
}

// An Extension is one extension still open to a clock, with the window in which
// it may be asked for.
type Extension struct {
	Spec      casework.ExtensionSpec
	RequestBy time.Time // the last moment to ask (its lead time before expiry)
	Earliest  time.Time // the first moment to ask, when the law sets one; else zero
}

// Instance names the clock within its case: the clock ID, and the suspect's id
// for per-suspect clocks ("CR-CUS-01/s_2").
func (c *OpenClock) Instance() string {
	if c.Suspect == "" {
		return c.Spec.ID
	}
	return c.Spec.ID + "/" + c.Suspect
}

// Key names the clock instance with its current due instant, Beijing time to
// the minute ("CR-CUS-01/s_2@20260316T0000"). An extension, a restart or a
// pause that moves the due instant makes a new key, so the new deadline gets its
// own reminders.
func (c *OpenClock) Key() string {
	return c.Instance() + "@" + c.Due.In(casework.Shanghai).Format("20060102T1504")
}

// Left returns the time left at now: negative once overdue, frozen at the
// pause while the clock is paused.
func (c *OpenClock) Left(now time.Time) time.Duration {
	if c.State == casework.ClockPaused && !c.PausedAt.IsZero() {
		now = c.PausedAt
	}
	return c.Due.Sub(now)
}

// Hourly reports whether the period is counted in hours.
func (c *OpenClock) Hourly() bool { return c.Spec.Length.Hours > 0 }

// LastDay returns the Beijing-time day in which the period ends: for a day
// period ending at 24:00, that day.
func (c *OpenClock) LastDay() casework.Date { return casework.DateOf(c.Due.Add(-time.Nanosecond)) }

// SetTimes fills the clock's Spec, State, Since, Due, Provisional, Strict and
// Extensions from a casework.Clock with its events applied, which is how a
// ClockSource derives them.
func (c *OpenClock) SetTimes(cl *casework.Clock) {
	c.Spec = cl.Spec()
	c.State = cl.State()
	c.Due, c.Provisional = cl.Due()
	c.Strict = cl.Strict()
	c.Since, c.PausedAt = time.Time{}, time.Time{}
	granted := map[string]int{}
	for _, ev := range cl.Events() {
		switch ev.Kind {
		case casework.EventStart, casework.EventRestart:
			c.Since = ev.At
			clear(granted)
		case casework.EventExtend:
			c.Since = ev.At
			granted[ev.Ref]++
		case casework.EventResume:
			c.Since = ev.At
		case casework.EventPause:
			c.PausedAt = ev.At
		}
	}
	c.Extensions = nil
	for _, x := range c.Spec.Extends {
		if (!x.Repeat && granted[x.ID] > 0) || slices.ContainsFunc(x.Excludes, func(e string) bool { return granted[e] > 0 }) ||
			slices.ContainsFunc(x.Requires, func(r string) bool { return granted[r] == 0 }) {
			continue
		}
		latest, earliest, ok := cl.ExtensionRequestBy(x.ID)
		if !ok {
			continue
		}
		c.Extensions = append(c.Extensions, Extension{Spec: x, RequestBy: latest, Earliest: earliest})
	}
}

// A ClockFilter selects open clocks. Zero fields match everything; set fields
// must all match.
type ClockFilter struct {
	DueBefore time.Time             // clocks due before this instant
	Holder    acl.UnitID            // clocks this unit must act on
	Officer   acl.UserID            // clocks of cases this user handles
	Regions   []acl.RegionCode      // clocks of cases in these regions
	Rooms     []chat.RoomID         // clocks of these case rooms
	States    []casework.ClockState // default: running and paused
}

// Match reports whether c passes f; sources that filter in memory use it.
func (f ClockFilter) Match(c *OpenClock) bool {
	switch {
	case !f.DueBefore.IsZero() && !c.Due.Before(f.DueBefore):
		return false
	case f.Holder != "" && c.Holder != f.Holder:
		return false
	case f.Officer != "" && !slices.Contains(c.Officers, f.Officer):
		return false
	case len(f.Regions) > 0 && !slices.Contains(f.Regions, c.Region):
		return false
	case len(f.Rooms) > 0 && !slices.Contains(f.Rooms, c.Room):
		return false
	case len(f.States) > 0 && !slices.Contains(f.States, c.State):
		return false
	}
	return c.State == casework.ClockRunning || c.State == casework.ClockPaused
}

// A ClockSource lists the open clocks of cases. The case service is the one
// that counts: it derives every clock from the case rooms' logs (which act
// started it, when, for which suspect, its extensions, pauses and restarts).
type ClockSource interface {
	// OpenClocks returns the running and paused clocks that f selects, in any
	// order.
	OpenClocks(ctx context.Context, f ClockFilter) ([]OpenClock, error)
}

// A TimedActor is a ClockSource that can also post the acts that the passing of
// time makes happen, such as a judgment becoming effective when the appeal
// period passes unused (CPL Art. 259). The Scheduler calls it, as the deadline
// bot, when a clock named in reminders.json's timed_acts expires. It must be
// idempotent: a second call for the same clock key posts nothing. TimedClocks
// implements it on the case service (casework.Service.TimedAct), which posts
// the transition named in timed_acts as a system act with occurred_at = the
// clock's due instant.
type TimedActor interface {
	TimedAct(ctx context.Context, bot acl.Subject, c OpenClock, transition string) error
}
