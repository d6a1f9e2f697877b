package casework

import (
	"errors"
	"fmt"
	"time"
)

// Custody says whether a clock is a custody period, which ends on its calendar
// date and never rolls over a holiday.
//
// RULE: CPL Art. 105 ¶4 (custody periods are not extended for holidays).
type Custody string

// The custody values of a ClockSpec.
const (
	CustodyNever      Custody = "never"       // rolls over rest days (the default)
	CustodyAlways     Custody = "always"      // a custody period: never rolls
	CustodyIfDetained Custody = "if_detained" // strict only while the person is detained, e.g. prosecution review
)

// Direction says which way a clock counts from its start.
type Direction string

// The directions of a ClockSpec.
const (
	After  Direction = "after"  // the period runs from the start (the default)
	Before Direction = "before" // a minimum notice: the act is due Length before the start (e.g. a trial date)
)

// HandlingAgency as a ClockSpec's Agency means whichever agency holds the case
// (or decided the measure) when the clock starts, e.g. the organ that decided bail.
const HandlingAgency = "handling"

// A ClockRow is one row of a deadline table of domain/procedure.md, e.g.
// CR-DET-01, with the clocks it names (one row may name several, as "to detention
// house 24 h; family notice 24 h; interrogate 24 h").
type ClockRow struct {
	ID      string      `json:"id"`      // exactly as procedure.md gives it, or derived in its style
	Owner   string      `json:"owner"`   // the table's "Owner" column, as written
	Trigger string      `json:"trigger"` // the table's "Trigger" column
	Source  string      `json:"source"`  // the table's "Source" column
	Section string      `json:"section"` // where in procedure.md the row is, e.g. "3.4"
	Verify  bool        `json:"verify"`  // procedure.md marks it [verify]: not checked against a primary text
	Note    string      `json:"note"`
	Clocks  []ClockSpec `json:"clocks"`
}

// A ClockSpec is one statutory period. Its ID is its row's ID, or the row's ID
// and a suffix ("CR-DET-01.family") when the row names several periods.
type ClockSpec struct {
	ID        string          `json:"id"`
	Row       string          `json:"-"` // set at load from the enclosing row
	NameZH    string          `json:"name_zh"`
	NameEN    string          `json:"name_en"`
	Agency    string          `json:"agency"`  // agency kind that must act or watch (reminders go to it), or HandlingAgency
	Trigger   string          `json:"trigger"` // the act whose occurred_at starts the clock
	Length    Period          `json:"length"`
	Direction Direction       `json:"direction,omitempty"` // default After
	Custody   Custody         `json:"custody,omitempty"`   // default CustodyNever
	Anchor    string          `json:"anchor,omitempty"`    // Before clocks: the clock whose expiry is the start, if any
	Basis     string          `json:"basis"`               // article(s)
	Verify    bool            `json:"verify,omitempty"`
	Note      string          `json:"note,omitempty"`
	Extends   []ExtensionSpec `json:"extensions,omitempty"`
	Pauses    []PauseSpec     `json:"pauses,omitempty"`
	Restarts  []RestartSpec   `json:"restarts,omitempty"`
}

// An ExtensionSpec is one way the law lets a period be extended.
type ExtensionSpec struct {
	ID     string `json:"id"`
	Length Period `json:"length"`       // the extension, or the new total for Mode "total"
	Min    Period `json:"min,omitzero"` // for a range such as "+1–4 d": the least; zero means Length only
	Mode   string `json:"mode"`         // "add": added to the current due date; "total": the period becomes Length from its start
	Repeat bool   `json:"repeatable"`   // may be granted again and again (e.g. SPC, 1–3 m at a time)
	// Approval is who must approve; nil means the handling organ decides itself on
	// the Condition (e.g. "15 d if the sentence may exceed 1 year").
	Approval  *Approval `json:"approval"`
	Condition string    `json:"condition"`
	Basis     string    `json:"basis"`
	Requires  []string  `json:"requires,omitempty"` // extensions that must have been granted first
	Excludes  []string  `json:"excludes,omitempty"` // extensions that cannot be combined with this one
	// RequestLead is how long before expiry the request must be sent at the
	// latest (MPS-R 148: ≥7 d); RequestWithin how long before expiry it may be sent
	// at the earliest (SPC-Enf2006 Art. 1: within the last 5 d); AnswerLead how long
	// before expiry the approver must answer (SPC-CI 210: ≥5 d).
	RequestLead   Period `json:"request_lead,omitzero"`
	RequestWithin Period `json:"request_within,omitzero"`
	AnswerLead    Period `json:"answer_lead,omitzero"`
}

// A PauseSpec is a reason time does not count (e.g. psychiatric appraisal).
type PauseSpec struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
	Basis  string `json:"basis"`
}

// A RestartSpec is an event after which the period runs again in full from the
// event's occurred_at (e.g. re-transfer after supplementary investigation).
type RestartSpec struct {
	ID      string `json:"id"`
	Trigger string `json:"trigger"`
	Basis   string `json:"basis"`
}

// SelfAgency as an Approval's Agency means the performer's own agency kind:
// a leader of the same unit signs off (e.g. filing by police or procuratorate).
const SelfAgency = "self"

// An Approval names who must approve: an agency kind and role at a level
// relative to the unit that asks. Agency equal to the asking agency's kind with
// Level "same" is an internal sign-off (e.g. the county PSB head); anything else is
// a decision the law gives to another organ.
type Approval struct {
	Agency string `json:"agency"`
	Role   string `json:"role"`
	Level  string `json:"level"` // "same", "higher", "provincial" or "supreme"
	Basis  string `json:"basis,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Errors of clock events; test with errors.Is.
var (
	ErrClockNotRunning = errors.New("casework: clock is not running")
	ErrClockRunning    = errors.New("casework: clock already started")
	ErrClockPaused     = errors.New("casework: clock is paused")
	ErrClockNotPaused  = errors.New("casework: clock is not paused")
	ErrEventOrder      = errors.New("casework: clock event earlier than the previous one")
	ErrExpired         = errors.New("casework: period already expired")
	ErrExtension       = errors.New("casework: extension not allowed")
	ErrUnknownReason   = errors.New("casework: reason not in the clock's specification")
)

// EventKind is what happens to a clock.
type EventKind string

// The clock events; an act's transition names them (see ClockActions).
const (
	EventStart   EventKind = "start"
	EventExtend  EventKind = "extend"
	EventPause   EventKind = "pause"
	EventResume  EventKind = "resume"
	EventRestart EventKind = "restart"
	EventStop    EventKind = "stop"
	// EventAnchor moves the anchor of a Before clock started with one: the
	// clock it counts back from was extended, paused or restarted.
	EventAnchor EventKind = "anchor"
)

// A ClockEvent is one thing that happened to a clock, at the occurred_at of the
// act that did it. Ref is the extension, pause or restart ID; By is an extension's
// length when the law gives a range (zero: the spec's full length); Detained is
// read by start and restart. Anchor, for a Before clock's start (or an
// EventAnchor), is the instant it counts back from when that is not At: the
// expiry of its Anchor clock, which lies ahead of the act that started it.
type ClockEvent struct {
	Kind     EventKind
	At       time.Time
	Ref      string
	By       Period
	Detained bool
	Anchor   time.Time
}

// ClockState is where a clock is.
type ClockState string

// The states of a Clock.
const (
	ClockIdle    ClockState = "idle"
	ClockRunning ClockState = "running"
	ClockPaused  ClockState = "paused"
	ClockStopped ClockState = "stopped"
)

// A Clock is one statutory period of one case (or one suspect) with its events
// applied in order. Its zero value is not usable; make one with NewClock. Methods
// never read the wall clock: every time comes from the caller.
type Clock struct {
	cal  *Calendar
	spec ClockSpec

	state    ClockState
	detained bool
	start    time.Time // start of the current period (a restart moves it)
	last     Date      // day periods: nominal last day, before roll-over
	end      time.Time // hour periods: the instant of expiry
	lastAt   time.Time // time of the latest event, to keep events in order
	pausedAt time.Time // valid in ClockPaused
	stopped  time.Time // valid in ClockStopped
	pauseDay int       // day periods: days excluded so far in this period
	pauseDur time.Duration
	granted  map[string]int // extension ID → times granted in this period
	events   []ClockEvent
}

// NewClock returns an idle clock for spec on calendar cal.
func NewClock(cal *Calendar, spec ClockSpec) *Clock {
	return &Clock{cal: cal, spec: spec, state: ClockIdle, granted: map[string]int{}}
}

// Spec returns the clock's specification.
func (c *Clock) Spec() ClockSpec { return c.spec }

// State returns the clock's state.
func (c *Clock) State() ClockState { return c.state }

// Events returns the events applied so far, in order.
func (c *Clock) Events() []ClockEvent { return append([]ClockEvent(nil), c.events...) }

// Strict reports whether the clock currently counts as a custody period (no
// roll-over).
func (c *Clock) Strict() bool {
	switch c.spec.Custody {
	case CustodyAlways:
		return true
	case CustodyIfDetained:
		return c.detained
	}
	return false
}

// Apply applies one event. Events must come in the order of their times; an
// event that is not allowed in the clock's state, names an unknown extension,
// pause or restart, or breaks an extension's limits is an error and changes
// nothing.
func (c *Clock) Apply(ev ClockEvent) error {
	if c.state != ClockIdle && ev.At.Before(c.lastAt) {
		return fmt.Errorf("%w: %s at %s, previous at %s", ErrEventOrder, ev.Kind, ev.At.In(Shanghai).Format(time.DateTime), c.lastAt.In(Shanghai).Format(time.DateTime))
	}
	var err error
	switch ev.Kind {
	case EventStart:
		err = c.applyStart(ev)
	case EventExtend:
		err = c.applyExtend(ev)
	case EventPause:
		err = c.applyPause(ev)
	case EventResume:
		err = c.applyResume(ev)
	case EventRestart:
		err = c.applyRestart(ev)
	case EventStop:
		err = c.applyStop(ev)
	case EventAnchor:
		err = c.applyAnchor(ev)
	default:
		err = fmt.Errorf("casework: unknown clock event %q", ev.Kind)
	}
	if err != nil {
		return fmt.Errorf("clock %s: %w", c.spec.ID, err)
	}
	c.lastAt = ev.At
	c.events = append(c.events, ev)
	return nil
}

// Start starts the clock at the occurred_at of its trigger. For a Before clock,
// at is the anchor: the trial date, or the expiry of the Anchor clock.
func (c *Clock) Start(at time.Time, detained bool) error {
	return c.Apply(ClockEvent{Kind: EventStart, At: at, Detained: detained})
}

// Extend grants extension ext (an ExtensionSpec ID) decided at at. by is the
// length granted when the law gives a range; zero means the full Length.
func (c *Clock) Extend(at time.Time, ext string, by Period) error {
	return c.Apply(ClockEvent{Kind: EventExtend, At: at, Ref: ext, By: by})
}

// Pause stops time counting at at for reason (a PauseSpec ID).
func (c *Clock) Pause(at time.Time, reason string) error {
	return c.Apply(ClockEvent{Kind: EventPause, At: at, Ref: reason})
}

// Resume lets time count again from at.
func (c *Clock) Resume(at time.Time) error { return c.Apply(ClockEvent{Kind: EventResume, At: at}) }

// Restart begins a new full period at at for trigger (a RestartSpec ID);
// extensions and pauses of the previous period no longer count. It works on a
// running, paused or stopped clock, and starts an idle one.
func (c *Clock) Restart(at time.Time, trigger string, detained bool) error {
	return c.Apply(ClockEvent{Kind: EventRestart, At: at, Ref: trigger, Detained: detained})
}

// Stop ends the clock at at: the act it waited for was done.
func (c *Clock) Stop(at time.Time) error { return c.Apply(ClockEvent{Kind: EventStop, At: at}) }

func (c *Clock) applyStart(ev ClockEvent) error {
	if c.state != ClockIdle {
		return ErrClockRunning
	}
	c.begin(anchorOf(ev), ev.Detained)
	return nil
}

// anchorOf is where a start counts from: the event's Anchor if set, else its time.
func anchorOf(ev ClockEvent) time.Time {
	if !ev.Anchor.IsZero() {
		return ev.Anchor
	}
	return ev.At
}

// StartAnchored starts a Before clock at at (the act that started it) counting
// back from anchor, the expiry of its Anchor clock: later events of the case
// (a stop) are ordered by at, not by the anchor ahead.
func (c *Clock) StartAnchored(at, anchor time.Time, detained bool) error {
	return c.Apply(ClockEvent{Kind: EventStart, At: at, Anchor: anchor, Detained: detained})
}

// Reanchor moves a running or paused Before clock's anchor to anchor at at:
// the clock it counts back from was extended, paused or restarted.
func (c *Clock) Reanchor(at, anchor time.Time) error {
	return c.Apply(ClockEvent{Kind: EventAnchor, At: at, Anchor: anchor})
}

func (c *Clock) applyAnchor(ev ClockEvent) error {
	if c.spec.Direction != Before || ev.Anchor.IsZero() {
		return fmt.Errorf("%w: only a Before clock has an anchor to move", ErrUnknownReason)
	}
	if c.state != ClockRunning && c.state != ClockPaused {
		return ErrClockNotRunning
	}
	c.start = ev.Anchor
	c.last, c.end = c.base(c.spec.Length)
	return nil
}

// begin starts a fresh period at at.
func (c *Clock) begin(at time.Time, detained bool) {
	c.state, c.detained, c.start = ClockRunning, detained, at
	c.pauseDay, c.pauseDur = 0, 0
	c.granted = map[string]int{}
	c.last, c.end = c.base(c.spec.Length)
}

// base computes the nominal end of a period of length p from the current start.
func (c *Clock) base(p Period) (last Date, end time.Time) {
	switch {
	case c.spec.Direction == Before:
		// The anchor day is the day the anchor instant falls in, 24:00 counting as
		// the day it ends (so the anchor of a period expiring at 24:00 of day L is L).
		anchor := DateOf(c.start.Add(-time.Nanosecond))
		if p.Months > 0 {
			anchor = anchor.AddMonths(-p.Months)
		}
		return anchor.AddDays(-p.Days), time.Time{}
	case p.Hours > 0:
		return Date{}, nextFullHour(c.start).Add(time.Duration(p.Hours) * time.Hour)
	}
	last, _ = c.cal.addPeriod(DateOf(c.start), p)
	return last, time.Time{}
}

func (c *Clock) hourly() bool { return c.spec.Length.Hours > 0 }

func (c *Clock) applyExtend(ev ClockEvent) error {
	if c.state != ClockRunning && c.state != ClockPaused {
		return ErrClockNotRunning
	}
	var x *ExtensionSpec
	for i := range c.spec.Extends {
		if c.spec.Extends[i].ID == ev.Ref {
			x = &c.spec.Extends[i]
		}
	}
	if x == nil {
		return fmt.Errorf("%w: %q", ErrUnknownReason, ev.Ref)
	}
	// RULE: CPL Art. 98 — once a period has run out it can no longer be extended;
	// the person must be released (or the period is simply missed).
	if due, _ := c.Due(); !ev.At.Before(due) {
		return fmt.Errorf("%w: extension %s decided at %s, period expired at %s", ErrExpired, x.ID,
			ev.At.In(Shanghai).Format(time.DateTime), due.In(Shanghai).Format(time.DateTime))
	}
	if !x.Repeat && c.granted[x.ID] > 0 {
		return fmt.Errorf("%w: %s already granted once", ErrExtension, x.ID)
	}
	for _, r := range x.Requires {
		if c.granted[r] == 0 {
			return fmt.Errorf("%w: %s requires %s first", ErrExtension, x.ID, r)
		}
	}
	for _, e := range x.Excludes {
		if c.granted[e] > 0 {
			return fmt.Errorf("%w: %s cannot be combined with %s", ErrExtension, x.ID, e)
		}
	}
	by := ev.By
	if by.IsZero() {
		by = x.Length
	}
	if by.unit() != x.Length.unit() || x.Length.less(by) || (!x.Min.IsZero() && by.less(x.Min)) ||
		(x.Min.IsZero() && by != x.Length) {
		return fmt.Errorf("%w: %s grants %s, not %s", ErrExtension, x.ID, rangeText(*x), by)
	}
	switch x.Mode {
	case "add":
		if c.hourly() {
			c.end = c.end.Add(time.Duration(by.Hours) * time.Hour)
		} else {
			c.last, _ = c.cal.addPeriod(c.last, by)
		}
	case "total":
		last, end := c.base(by)
		if c.hourly() {
			end = end.Add(c.pauseDur)
			if !end.After(c.end) {
				return fmt.Errorf("%w: %s to %s would not lengthen the period", ErrExtension, x.ID, by)
			}
			c.end = end
		} else {
			last = last.AddDays(c.pauseDay)
			if !c.last.Before(last) {
				return fmt.Errorf("%w: %s to %s would not lengthen the period", ErrExtension, x.ID, by)
			}
			c.last = last
		}
	}
	c.granted[x.ID]++
	return nil
}

func rangeText(x ExtensionSpec) string {
	if x.Min.IsZero() {
		return x.Length.String()
	}
	return x.Min.String() + "–" + x.Length.String()
}

func (c *Clock) applyPause(ev ClockEvent) error {
	switch c.state {
	case ClockPaused:
		return ErrClockPaused
	case ClockRunning:
	default:
		return ErrClockNotRunning
	}
	if !c.knownPause(ev.Ref) {
		return fmt.Errorf("%w: pause %q", ErrUnknownReason, ev.Ref)
	}
	c.state, c.pausedAt = ClockPaused, ev.At
	return nil
}

func (c *Clock) knownPause(id string) bool {
	for _, p := range c.spec.Pauses {
		if p.ID == id {
			return true
		}
	}
	return false
}

// applyResume moves the end by the time paused. Day and month periods are
// counted in whole days, so the pause is too: the days from the pause's date to
// the resume's date (a pause and resume on one day excludes nothing). Hour
// periods exclude the exact duration.
//
// RULE: CPL Art. 149, 206, 235; SPC-CivI Art. 243 (excluded periods do not count).
func (c *Clock) applyResume(ev ClockEvent) error {
	if c.state != ClockPaused {
		return ErrClockNotPaused
	}
	if c.hourly() {
		d := ev.At.Sub(c.pausedAt)
		c.end, c.pauseDur = c.end.Add(d), c.pauseDur+d
	} else {
		n := DateOf(c.pausedAt).DaysUntil(DateOf(ev.At))
		c.last, c.pauseDay = c.last.AddDays(n), c.pauseDay+n
	}
	c.state = ClockRunning
	return nil
}

func (c *Clock) applyRestart(ev ClockEvent) error {
	ok := false
	for _, r := range c.spec.Restarts {
		ok = ok || r.ID == ev.Ref
	}
	if !ok {
		return fmt.Errorf("%w: restart %q", ErrUnknownReason, ev.Ref)
	}
	// RULE: CPL Art. 160, 175 ¶3, 208 ¶3, 241; SPC-CI Art. 368, 376 — the period is
	// counted anew, in full, from the restarting event. A restart may also revive a
	// stopped clock (the case comes back after supplementary investigation), and
	// on an idle clock it is a start (a remanded case that had no ordinary trial).
	c.begin(anchorOf(ev), ev.Detained)
	return nil
}

func (c *Clock) applyStop(ev ClockEvent) error {
	if c.state != ClockRunning && c.state != ClockPaused {
		return ErrClockNotRunning
	}
	if c.state == ClockPaused {
		// Stopping while paused: the pause simply never ends.
		c.pausedAt = time.Time{}
	}
	c.state, c.stopped = ClockStopped, ev.At
	return nil
}

// LastDay returns the last day of the period after roll-over (day periods), or
// the day of the expiry instant (hour periods), and whether it is provisional.
func (c *Clock) LastDay() (Date, bool) {
	if c.hourly() {
		return DateOf(c.end.Add(-time.Nanosecond)), false
	}
	if c.spec.Direction == Before || c.Strict() {
		return c.last, false
	}
	return c.cal.NextWorkingDay(c.last)
}

// Due returns the instant the period expires: 24:00 Beijing time of its last
// day after roll-over, or the exact instant for hour periods. While the clock is
// paused, Due is where the end would be if it resumed on the day it paused; it
// moves on Resume. provisional is true when the result depends on a year without
// calendar data. An idle clock returns the zero time.
func (c *Clock) Due() (due time.Time, provisional bool) {
	if c.state == ClockIdle {
		return time.Time{}, false
	}
	if c.hourly() {
		return c.end, false
	}
	last, prov := c.LastDay()
	return last.End(), prov
}

// Remaining returns the time left at now: negative once overdue. It is frozen at
// the pause instant while paused, and at the stop instant once stopped (negative
// then means the act came late). An idle clock has no time left: 0.
func (c *Clock) Remaining(now time.Time) time.Duration {
	due, _ := c.Due()
	switch c.state {
	case ClockIdle:
		return 0
	case ClockPaused:
		now = c.pausedAt
	case ClockStopped:
		now = c.stopped
	}
	return due.Sub(now)
}

// Overdue reports whether the period had expired at now (or, for a stopped
// clock, whether it was stopped late).
func (c *Clock) Overdue(now time.Time) bool {
	return c.state != ClockIdle && c.Remaining(now) <= 0
}

// ExtensionRequestBy returns the last instant at which extension ext may be
// requested (its RequestLead before the current due) and, if the law also sets
// an earliest moment (RequestWithin), that one too. ok is false for an unknown
// extension or one with no lead time.
func (c *Clock) ExtensionRequestBy(ext string) (latest, earliest time.Time, ok bool) {
	due, _ := c.Due()
	for _, x := range c.spec.Extends {
		if x.ID != ext || c.state == ClockIdle {
			continue
		}
		if !x.RequestWithin.IsZero() {
			earliest = shiftBack(due, x.RequestWithin)
			ok = true
		}
		if !x.RequestLead.IsZero() {
			latest = shiftBack(due, x.RequestLead)
			ok = true
		} else if ok {
			latest = due
		}
	}
	return latest, earliest, ok
}

// shiftBack moves the expiry instant back by p in Beijing calendar terms: "7 d
// before expiry at 24:00 of day L" is 24:00 of day L−7.
func shiftBack(due time.Time, p Period) time.Time {
	if p.Hours > 0 {
		return due.Add(-time.Duration(p.Hours) * time.Hour)
	}
	d := due.In(Shanghai)
	return d.AddDate(0, -p.Months, -p.Days-p.WorkDays)
}
