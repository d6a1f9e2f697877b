package bots_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"caseroom/casework"
	"caseroom/casework/bots"
)

// Every clock of every deadline row gets its reminders: each clock of
// configs/clocks.json is started in a case room of its own, the scheduler
// ticks a minute before and at every point of every plan, and each room must
// hold exactly its plan's points, each posted at its time, ending with the
// escalation (or, for a party's period, the notice that it passed).
func TestEveryClockRowGetsItsReminders(t *testing.T) {
	d, rem := mustDomain(t)
	start := bj(2026, time.March, 2, 10, 0)
	w := newWorld(t, start)
	type one struct {
		mc   *memClock
		plan []bots.Point
	}
	var all []one
	rows := map[string]bool{}
	var times []time.Time
	for i, id := range d.Clocks.IDs() {
		spec, _ := d.Clocks.Spec(id)
		room := w.openCase(fmt.Sprintf("row%03d", i))
		def := clockDef{Room: room, Clock: id, Start: start, Detained: true, Holder: police}
		if spec.Direction == casework.Before {
			// A minimum notice runs back from its anchor (the trial date), which
			// an act made known on the start day.
			def.Start, def.Known = start.Add(40*24*time.Hour), start
		}
		mc := w.src.add(t, def)
		oc := w.src.open(mc)
		plan := rem.Plan(&oc)
		if len(plan) < 2 {
			t.Errorf("%s: plan %q has no reminder before expiry", id, planIDs(plan))
		}
		all = append(all, one{mc: mc, plan: plan})
		rows[spec.Row] = true
		for _, p := range plan {
			times = append(times, p.At.Add(-time.Minute), p.At)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	times = slices.CompactFunc(times, func(a, b time.Time) bool { return a.Equal(b) })
	s := w.scheduler(w.src, bots.SchedulerOptions{})
	for _, at := range times {
		if at.Before(start) {
			continue
		}
		w.clock.Set(at)
		if rep := mustTick(t, s); rep.CatchUps != 0 {
			t.Fatalf("tick at %s: %d catch-ups; every point should come on time", at, rep.CatchUps)
		}
	}
	windows := 0
	for _, o := range all {
		id := o.mc.def.Clock
		ms, ns := w.botEntries(o.mc.def.Room)
		got := make([]string, len(ns))
		for i, n := range ns {
			got[i] = n.Point
		}
		if !eq(got, planIDs(o.plan)) {
			t.Errorf("%s: posted %q, plan %q", id, got, planIDs(o.plan))
			continue
		}
		for i, m := range ms {
			if !m.CreatedAt.Equal(o.plan[i].At) {
				t.Errorf("%s %s: posted at %s, due at %s", id, ns[i].Point, m.CreatedAt, o.plan[i].At)
			}
			if ns[i].Row == "" || ns[i].Basis == "" || ns[i].Clock != id {
				t.Errorf("%s %s: notice lacks row or basis: %+v", id, ns[i].Point, ns[i])
			}
		}
		last := ms[len(ms)-1]
		if rem.Window(id) {
			windows++
			if last.Kind != bots.KindReminder || !ns[len(ns)-1].Expired {
				t.Errorf("%s: a party's period ended with %s %+v", id, last.Kind, ns[len(ns)-1])
			}
		} else if last.Kind != bots.KindOverdue || !strings.HasSuffix(ns[len(ns)-1].Point, "overdue") {
			t.Errorf("%s: ended with %s %q, want an overdue escalation", id, last.Kind, ns[len(ns)-1].Point)
		}
	}
	t.Logf("%d deadline rows, %d clocks: every plan posted on time (%d parties' periods, %d escalations)",
		len(rows), len(all), windows, len(all)-windows)
	if len(rows) != len(d.Clocks.Rows) {
		t.Errorf("covered %d rows of %d", len(rows), len(d.Clocks.Rows))
	}
}

// The shipped reminders.json loads, and bad data is refused naming the file
// and the field.
func TestLoadRemindersRefusesBadData(t *testing.T) {
	d, rem := mustDomain(t)
	if rem.TimeOfDay != "08:00" || len(rem.Classes) != 4 {
		t.Errorf("shipped reminders.json: %+v", rem)
	}
	for _, tc := range []struct{ json, want string }{
		{`{"time_of_day": "8 am", "classes": [{"id": "a", "match": "any", "offsets": ["1d"]}]}`, "r.json: time_of_day"},
		{`{"time_of_day": "08:00", "classes": [{"id": "a", "match": "any", "offsets": ["1w"]}]}`, `bad offset "1w"`},
		{`{"time_of_day": "08:00", "classes": [{"id": "a", "match": "custody", "offsets": ["1d"]}]}`, "r.json: classes: the last class must match any"},
		{`{"time_of_day": "08:00", "classes": [{"id": "a", "match": "any", "offsets": ["1d", "1d"]}]}`, "r.json: classes[0].offsets[1]: offset 1d given twice"},
		{`{"time_of_day": "08:00", "classes": [{"id": "a", "match": "any", "offsets": ["1d"]}], "windows": ["CR-XXX-01"]}`, `r.json: windows[0]: unknown clock "CR-XXX-01"`},
		{`{"time_of_day": "08:00", "classes": [{"id": "a", "match": "any", "offsets": ["1d"]}], "escalate_to": ["court"]}`, `r.json: escalate_to[0]: unknown target "court"`},
		{`{"time_of_day": "08:00", "classes": [{"id": "a", "match": "any", "offsets": ["1d"]}], "timed_acts": [{"clock": "CR-APP-01.judgment", "procedure": "criminal", "transition": "file_case"}]}`, "r.json: timed_acts[0].transition"},
		{`{"time_of_day": "08:00", "classes": [{"id": "a", "match": "any", "offsets": ["1d"]}], "overrides": [{"clocks": ["CR-CUS-01"], "offsets": []}]}`, "r.json: overrides[0].offsets: no offsets"},
		{`{"time_of_day": "08:00", "classes": [], "surprise": 1}`, `unknown field "surprise"`},
	} {
		_, err := bots.LoadReminders(mapFS("r.json", tc.json), "r.json", d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadReminders(%s) = %v; want an error containing %q", tc.json, err, tc.want)
		}
	}
}
