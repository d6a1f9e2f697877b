package bots

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"caseroom/casework"
)

// Reminders is configs/reminders.json: when the deadline bot speaks about a
// clock. It is immutable after loading.
type Reminders struct {
	Comment string `json:"comment,omitempty"`
	// TimeOfDay is when day reminders are posted, Beijing time ("08:00"): a
	// reminder "3 days before" comes at that time on the third day before the
	// last day.
	TimeOfDay string `json:"time_of_day"`
	// Classes choose offsets by the kind of clock; the first that matches wins
	// and the last must match "any".
	Classes []ReminderClass `json:"classes"`
	// Overrides give named clocks their own offsets.
	Overrides []ReminderOverride `json:"overrides,omitempty"`
	// ExtensionDeadlines adds, for every extension still open to a clock that has
	// a lead time, a reminder on the last day to ask for it.
	ExtensionDeadlines bool `json:"extension_deadlines"`
	// Windows are parties' periods (an appeal window, a petition period): their
	// expiry is no breach, so the bot posts that the period passed and escalates
	// nothing.
	Windows []string `json:"windows,omitempty"`
	// EscalateTo names whose unit rooms hear of an overdue clock besides the
	// case room: "committee" (the jurisdiction's committee, the room's owner) and
	// "procuratorate" (the supervising procuratorate).
	EscalateTo []string `json:"escalate_to"`
	// TimedActs name the acts the expiry of a clock makes happen, which the bot
	// posts through the case service (see TimedActor).
	TimedActs []TimedAct `json:"timed_acts,omitempty"`

	at      time.Duration // TimeOfDay after midnight
	byClock map[string][]Offset
	windows map[string]bool
	timed   map[string]string
}

// A ReminderClass is the offsets of one kind of clock.
type ReminderClass struct {
	ID string `json:"id"`
	// Match is "hours" (periods counted in hours), "custody" (custody periods:
	// strict, no roll-over), "before" (minimum notices before a date) or "any".
	Match   string   `json:"match"`
	Offsets []Offset `json:"offsets"`
	Doc     string   `json:"doc,omitempty"`
}

// A ReminderOverride gives the clocks it names their own offsets.
type ReminderOverride struct {
	Clocks  []string `json:"clocks"`
	Offsets []Offset `json:"offsets"`
	Doc     string   `json:"doc,omitempty"`
}

// A TimedAct is the transition a clock's expiry makes happen.
type TimedAct struct {
	Clock      string `json:"clock"`
	Procedure  string `json:"procedure"`
	Transition string `json:"transition"`
	Doc        string `json:"doc,omitempty"`
}

// An Offset is how long before expiry a reminder comes: "7d" (days, at
// TimeOfDay of the day that many days before the last day; "0d" is the last
// day itself) or "12h" (hours before the expiry instant).
type Offset struct {
	N     int
	Hours bool
}

func (o Offset) String() string {
	if o.Hours {
		return strconv.Itoa(o.N) + "h"
	}
	return strconv.Itoa(o.N) + "d"
}

// ParseOffset parses "7d", "0d" or "12h".
func ParseOffset(s string) (Offset, error) {
	var o Offset
	num, unit := s, ""
	if i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		num, unit = s[:i], s[i:]
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > 3660 || (unit != "d" && unit != "h") {
		return o, fmt.Errorf("bad offset %q: want days or hours before expiry, e.g. 7d, 0d, 12h", s)
	}
	return Offset{N: n, Hours: unit == "h"}, nil
}

// MarshalText implements encoding.TextMarshaler.
func (o Offset) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *Offset) UnmarshalText(b []byte) error {
	p, err := ParseOffset(string(b))
	if err != nil {
		return err
	}
	*o = p
	return nil
}

// The escalation targets of Reminders.EscalateTo.
const (
	EscalateCommittee     = "committee"
	EscalateProcuratorate = "procuratorate"
)

// LoadReminders reads and validates the reminder configuration at file in fsys
// against the loaded domain: offsets well formed and unique per class, the
// classes ending with "any", every clock named known, every timed act a
// transition of its procedure. Errors name the file and the field; all
// problems are reported together.
func LoadReminders(fsys fs.FS, file string, d *casework.Domain) (*Reminders, error) {
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, fmt.Errorf("bots: %w", err)
	}
	var r Reminders
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: data after the JSON object", file)
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", file, field, fmt.Sprintf(format, args...)))
	}
	r.validate(d, bad)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &r, nil
}

func (r *Reminders) validate(d *casework.Domain, bad func(field, format string, args ...any)) {
	t, err := time.Parse("15:04", r.TimeOfDay)
	if err != nil {
		bad("time_of_day", "%q is not a time of day like 08:00", r.TimeOfDay)
	}
	r.at = time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
	knownClock := func(field, id string) bool {
		if _, ok := d.Clocks.Spec(id); !ok {
			bad(field, "unknown clock %q", id)
			return false
		}
		return true
	}
	checkOffsets := func(field string, os []Offset) {
		if len(os) == 0 {
			bad(field, "no offsets: a clock without reminders would only ever be escalated")
		}
		seen := map[Offset]bool{}
		for i, o := range os {
			if seen[o] {
				bad(fmt.Sprintf("%s[%d]", field, i), "offset %s given twice", o)
			}
			seen[o] = true
		}
	}
	ids := map[string]bool{}
	for i, c := range r.Classes {
		f := fmt.Sprintf("classes[%d]", i)
		if c.ID == "" || ids[c.ID] {
			bad(f+".id", "missing or duplicate class id %q", c.ID)
		}
		ids[c.ID] = true
		switch c.Match {
		case "hours", "custody", "before", "any":
		default:
			bad(f+".match", "unknown match %q: want hours, custody, before or any", c.Match)
		}
		if c.Match == "any" && i != len(r.Classes)-1 {
			bad(f+".match", "a class matching any must be the last: the classes after it would never match")
		}
		checkOffsets(f+".offsets", c.Offsets)
	}
	if len(r.Classes) == 0 || r.Classes[len(r.Classes)-1].Match != "any" {
		bad("classes", "the last class must match any, so that every clock has reminders")
	}
	r.byClock = map[string][]Offset{}
	for i, o := range r.Overrides {
		f := fmt.Sprintf("overrides[%d]", i)
		checkOffsets(f+".offsets", o.Offsets)
		if len(o.Clocks) == 0 {
			bad(f+".clocks", "names no clock")
		}
		for j, id := range o.Clocks {
			if !knownClock(fmt.Sprintf("%s.clocks[%d]", f, j), id) {
				continue
			}
			if _, dup := r.byClock[id]; dup {
				bad(fmt.Sprintf("%s.clocks[%d]", f, j), "clock %q overridden twice", id)
			}
			r.byClock[id] = o.Offsets
		}
	}
	r.windows = map[string]bool{}
	for i, id := range r.Windows {
		if knownClock(fmt.Sprintf("windows[%d]", i), id) {
			r.windows[id] = true
		}
	}
	for i, e := range r.EscalateTo {
		if e != EscalateCommittee && e != EscalateProcuratorate {
			bad(fmt.Sprintf("escalate_to[%d]", i), "unknown target %q: want committee or procuratorate", e)
		}
	}
	r.timed = map[string]string{}
	for i, ta := range r.TimedActs {
		f := fmt.Sprintf("timed_acts[%d]", i)
		knownClock(f+".clock", ta.Clock)
		p, ok := d.Procedures[ta.Procedure]
		if !ok {
			bad(f+".procedure", "unknown procedure %q", ta.Procedure)
			continue
		}
		tr, ok := p.Transition(ta.Transition)
		if !ok {
			bad(f+".transition", "procedure %s has no transition %q", ta.Procedure, ta.Transition)
			continue
		}
		if !slices.Contains(tr.ClocksFor(1).Stop, ta.Clock) {
			bad(f+".transition", "transition %s does not stop clock %s, so it is not what the clock's expiry makes happen", ta.Transition, ta.Clock)
		} else if !slices.Contains(tr.Timed, ta.Clock) {
			bad(f+".transition", "procedure %s does not mark transition %s as performed by the expiry of %s (its \"timed\" list), so the case service would refuse it", ta.Procedure, ta.Transition, ta.Clock)
		}
		r.timed[ta.Clock] = ta.Transition
	}
}

// OffsetsFor returns the offsets of clock c: its override, else its class's.
func (r *Reminders) OffsetsFor(c *OpenClock) []Offset {
	if os, ok := r.byClock[c.Spec.ID]; ok {
		return os
	}
	return r.Classes[r.classOf(c)].Offsets
}

func (r *Reminders) classOf(c *OpenClock) int {
	for i, cl := range r.Classes {
		switch cl.Match {
		case "any":
			return i
		case "hours":
			if c.Hourly() {
				return i
			}
		case "custody":
			if c.Strict {
				return i
			}
		case "before":
			if c.Spec.Direction == casework.Before {
				return i
			}
		}
	}
	return len(r.Classes) - 1
}

// Window reports whether clock id is a party's period, whose expiry is no breach.
func (r *Reminders) Window(id string) bool { return r.windows[id] }

// TimedTransition returns the transition that clock id's expiry makes happen.
func (r *Reminders) TimedTransition(id string) (string, bool) {
	t, ok := r.timed[id]
	return t, ok
}

// Lead returns how long before expiry the earliest point of any plan can be:
// the largest offset or extension lead time, plus a day. A scheduler asks its
// source for the clocks due within that horizon.
func (r *Reminders) Lead(t *casework.ClockTable) time.Duration {
	days := 0
	all := slices.Clone(r.Classes)
	for _, o := range r.Overrides {
		all = append(all, ReminderClass{Offsets: o.Offsets})
	}
	for _, c := range all {
		for _, o := range c.Offsets {
			if o.Hours {
				days = max(days, o.N/24+1)
			} else {
				days = max(days, o.N)
			}
		}
	}
	if r.ExtensionDeadlines {
		for _, id := range t.IDs() {
			s, _ := t.Spec(id)
			for _, x := range s.Extends {
				lead := x.RequestLead
				days = max(days, lead.Months*31+lead.Days+lead.WorkDays*2+lead.Hours/24+1)
			}
		}
	}
	return time.Duration(days+1) * 24 * time.Hour
}

// A Point is one moment of a clock's plan at which the bot speaks.
type Point struct {
	ID string    // "T-7d", "T-12h", "ext:complex", "overdue" or "expired"; several at one instant are joined with "+"
	At time.Time // when it is due
	// Final is the expiry point (overdue or expired).
	Final bool
}

// Plan returns the points of clock c, strictly increasing in time: the
// reminders at its offsets, the last day to ask for each open extension, and
// the expiry. Points before c.Since do not apply to the current due instant and
// are left out, as are points at the same instant as an earlier one (they
// merge into one point whose ID joins theirs).
func (r *Reminders) Plan(c *OpenClock) []Point {
	var ps []Point
	day := func(d casework.Date) time.Time { return d.Start().Add(r.at) }
	last := c.LastDay()
	for _, o := range r.OffsetsFor(c) {
		var at time.Time
		if o.Hours || c.Hourly() {
			n := o.N
			if !o.Hours {
				n *= 24
			}
			at = c.Due.Add(-time.Duration(n) * time.Hour)
		} else {
			at = day(last.AddDays(-o.N))
		}
		ps = append(ps, Point{ID: "T-" + o.String(), At: at})
	}
	if r.ExtensionDeadlines {
		for _, x := range c.Extensions {
			if x.RequestBy.IsZero() || x.Spec.RequestLead.IsZero() {
				continue
			}
			at := day(casework.DateOf(x.RequestBy.Add(-time.Nanosecond)))
			if c.Hourly() || !at.Before(x.RequestBy) {
				at = x.RequestBy.Add(-time.Hour)
			}
			ps = append(ps, Point{ID: "ext:" + x.Spec.ID, At: at})
		}
	}
	final := "overdue"
	if r.Window(c.Spec.ID) {
		final = "expired"
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if !ps[i].At.Equal(ps[j].At) {
			return ps[i].At.Before(ps[j].At)
		}
		return ps[i].ID < ps[j].ID
	})
	var out []Point
	for _, p := range ps {
		if p.At.Before(c.Since) || !p.At.Before(c.Due) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].At.Equal(p.At) {
			out[n-1].ID += "+" + p.ID
			continue
		}
		out = append(out, p)
	}
	return append(out, Point{ID: final, At: c.Due, Final: true})
}
