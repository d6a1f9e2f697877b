package casework

import (
	"errors"
	"testing"
	"time"
)

// procedureMDRowIDs is every row ID of domain/procedure.md §3.4, copied by hand
// from that table (not from configs/clocks.json).
var procedureMDRowIDs = []string{
	"CR-FIL-01", "CR-FIL-02", "CR-FIL-03", "CR-SUP-01", "CR-SUP-02", "CR-INV-01",
	"CR-DET-01", "CR-DET-02", "CR-ARR-01", "CR-ARR-02", "CR-ARR-03", "CR-ARR-04", "CR-ARR-05",
	"CR-CUS-01", "CR-CUS-02", "CR-CUS-03", "CR-PRC-01", "CR-BAIL-01", "CR-RSL-01",
	"CR-PRS-00", "CR-PRS-01", "CR-PRS-02", "CR-PRS-03", "CR-SUPP-01", "CR-SUPP-02",
	"CR-NP-01", "CR-NP-02", "CR-NP-03",
	"CR-CRT-01", "CR-CRT-02", "CR-CRT-03", "CR-CRT-04", "CR-CRT-05", "CR-CRT-06", "CR-CRT-07", "CR-CRT-08",
	"CR-APP-01", "CR-APP-02", "CR-APP-03", "CR-APP-04",
	"CR-EXE-01", "CR-EXE-02", "CR-EXE-03", "CR-EXE-04",
	"CR-CC-01", "CR-CC-02", "CR-CC-03", "CR-LA-01", "CR-LA-02",
}

// civilRowIDs are the IDs derived for the civil section (procedure.md §5 gives
// none): one per period of §5.1 filing and service, per row of the §5.2 trial
// table, per paragraph of §5.3 appeals and per period of §5.4 enforcement.
var civilRowIDs = []string{
	"CV-FIL-01", // §5.1 file or rule within 7 d (CivPL 126; SPC-Reg 8)
	"CV-FIL-02", // §5.1 third-party revocation suit 30 d
	"CV-FIL-03", // §5.1 enforcement-objection suit 15 d
	"CV-SRV-01", // §5.1 complaint copy 5 d, defence 15 d, defence copy 5 d (Art. 128)
	"CV-TRL-01", // §5.2 ordinary 6 m
	"CV-TRL-02", // §5.2 ordinary, single judge: as ordinary
	"CV-TRL-03", // §5.2 simple 3 m
	"CV-TRL-04", // §5.2 small claims 2 m; evidence period ≤7 d
	"CV-TRL-05", // §5.2 special procedures 30 d
	"CV-TRL-06", // §5.2 appeal against judgment 3 m
	"CV-TRL-07", // §5.2 appeal against ruling 30 d
	"CV-APP-01", // §5.3 appeal 15 d / 10 d / 30 d without PRC domicile
	"CV-APP-02", // §5.3 copy 5 d, defence 15 d, file to higher court 5 d
	"CV-ENF-01", // §5.4 application period 2 y
	"CV-ENF-02", // §5.4 cases with property 6 m
	"CV-ENF-03", // §5.4 non-litigation enforcement 3 m
	"CV-ENF-04", // §5.4 internal steps 7 d, 3 d, 3 d, 5 d, 10 d, 1 m
	"CV-ENF-05", // §5.4 6 m without enforcement → higher court
	"CV-ENF-06", // §5.4 judicial detention ≤15 d
}

// otherRowIDs are the IDs derived for §6 administrative, §7 public-interest and
// §8 enforcement co-operation.
var otherRowIDs = []string{
	"AD-REC-01", "AD-REC-02", "AD-SUIT-01", "AD-SUIT-02", "AD-SUIT-03", "AD-FIL-01", "AD-SRV-01",
	"AD-TRL-01", "AD-TRL-02", "AD-APP-01", "AD-TRL-03",
	"PI-SUG-01", "PI-DEC-01", "PI-ANN-01", "PI-SRV-01", "PI-APR-01",
	"EN-DL-01",
}

func TestEveryRowIDIsInTheData(t *testing.T) {
	d := mustLoadShipped(t)
	var all []string
	all = append(all, procedureMDRowIDs...)
	all = append(all, civilRowIDs...)
	all = append(all, otherRowIDs...)
	want := map[string]bool{}
	for _, id := range all {
		want[id] = true
		if _, ok := d.Clocks.Row(id); !ok {
			t.Errorf("configs/clocks.json lacks row %s", id)
		}
	}
	for _, r := range d.Clocks.Rows {
		if !want[r.ID] {
			t.Errorf("configs/clocks.json has row %s, which no list of this test names", r.ID)
		}
	}
	if len(procedureMDRowIDs) != 49 {
		t.Errorf("procedure.md §3.4 has 49 rows, the list here %d", len(procedureMDRowIDs))
	}
}

func mustSpec(t *testing.T, d *Domain, id string) ClockSpec {
	t.Helper()
	s, ok := d.Clocks.Spec(id)
	if !ok {
		t.Fatalf("no clock %s", id)
	}
	return s
}

func TestClockEventErrors(t *testing.T) {
	d := mustLoadShipped(t)
	type step struct {
		ev      ClockEvent
		wantErr error // nil: must succeed
	}
	tests := []struct {
		name  string
		clock string
		steps []step
	}{
		{"extension after expiry", "CR-INV-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-10-01 09:30")}, nil},
			{ClockEvent{Kind: EventExtend, At: at(t, "2025-10-01 22:00"), Ref: "major"}, ErrExpired},
		}},
		{"extension granted twice", "CR-CUS-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-05 10:00")}, nil},
			{ClockEvent{Kind: EventExtend, At: at(t, "2025-09-20 10:00"), Ref: "complex"}, nil},
			{ClockEvent{Kind: EventExtend, At: at(t, "2025-09-21 10:00"), Ref: "complex"}, ErrExtension},
		}},
		{"Art. 158 before Art. 156 extension", "CR-CUS-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-05 10:00")}, nil},
			{ClockEvent{Kind: EventExtend, At: at(t, "2025-09-20 10:00"), Ref: "art158"}, ErrExtension},
		}},
		{"roving after special", "CR-DET-02", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-09-28 22:00")}, nil},
			{ClockEvent{Kind: EventExtend, At: at(t, "2025-09-30 10:00"), Ref: "special"}, nil},
			{ClockEvent{Kind: EventExtend, At: at(t, "2025-10-01 10:00"), Ref: "roving"}, ErrExtension},
		}},
		{"extension outside its range", "CR-DET-02", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-09-28 22:00")}, nil},
			{ClockEvent{Kind: EventExtend, At: at(t, "2025-09-30 10:00"), Ref: "special", By: Period{Days: 5}}, ErrExtension},
		}},
		{"fixed extension given another length", "CR-CUS-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-05 10:00")}, nil},
			{ClockEvent{Kind: EventExtend, At: at(t, "2025-09-20 10:00"), Ref: "complex", By: Period{Days: 10}}, ErrExtension},
		}},
		{"unknown extension", "CR-CUS-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-05 10:00")}, nil},
			{ClockEvent{Kind: EventExtend, At: at(t, "2025-09-20 10:00"), Ref: "npcsc"}, ErrUnknownReason},
		}},
		{"unknown pause reason", "CR-CUS-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-05 10:00")}, nil},
			{ClockEvent{Kind: EventPause, At: at(t, "2025-09-20 10:00"), Ref: "holiday"}, ErrUnknownReason},
		}},
		{"unknown restart trigger", "CR-CUS-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-05 10:00")}, nil},
			{ClockEvent{Kind: EventRestart, At: at(t, "2025-09-20 10:00"), Ref: "conversion"}, ErrUnknownReason},
		}},
		{"pause twice", "CR-CUS-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-05 10:00")}, nil},
			{ClockEvent{Kind: EventPause, At: at(t, "2025-09-01 10:00"), Ref: "psychiatric"}, nil},
			{ClockEvent{Kind: EventPause, At: at(t, "2025-09-02 10:00"), Ref: "psychiatric"}, ErrClockPaused},
		}},
		{"resume a running clock", "CR-CUS-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-05 10:00")}, nil},
			{ClockEvent{Kind: EventResume, At: at(t, "2025-09-02 10:00")}, ErrClockNotPaused},
		}},
		{"start twice", "CR-CUS-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-05 10:00")}, nil},
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-06 10:00")}, ErrClockRunning},
		}},
		{"extend an idle clock", "CR-CUS-01", []step{
			{ClockEvent{Kind: EventExtend, At: at(t, "2025-08-06 10:00"), Ref: "complex"}, ErrClockNotRunning},
		}},
		{"stop a stopped clock", "CR-ARR-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-05 10:00")}, nil},
			{ClockEvent{Kind: EventStop, At: at(t, "2025-08-06 10:00")}, nil},
			{ClockEvent{Kind: EventStop, At: at(t, "2025-08-07 10:00")}, ErrClockNotRunning},
		}},
		{"events out of order", "CR-CUS-01", []step{
			{ClockEvent{Kind: EventStart, At: at(t, "2025-08-05 10:00")}, nil},
			{ClockEvent{Kind: EventPause, At: at(t, "2025-08-04 10:00"), Ref: "psychiatric"}, ErrEventOrder},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := NewClock(d.Calendar, mustSpec(t, d, tt.clock))
			for i, s := range tt.steps {
				before, _ := cl.Due()
				err := cl.Apply(s.ev)
				if !errors.Is(err, s.wantErr) || (err != nil) != (s.wantErr != nil) {
					t.Fatalf("%s step %d: Apply(%s %s) = %v, want %v", tt.clock, i, s.ev.Kind, s.ev.Ref, err, s.wantErr)
				}
				if after, _ := cl.Due(); err != nil && !after.Equal(before) {
					t.Errorf("%s step %d: failed Apply changed Due from %s to %s", tt.clock, i, show(before), show(after))
				}
			}
		})
	}
}

func TestClockRemainingAndState(t *testing.T) {
	d := mustLoadShipped(t)
	cl := NewClock(d.Calendar, mustSpec(t, d, "CR-ARR-01")) // 7 d, custody
	if got := cl.Remaining(at(t, "2026-02-10 10:00")); got != 0 || cl.State() != ClockIdle {
		t.Errorf("idle clock: Remaining = %v, State = %s, want 0, idle", got, cl.State())
	}
	if err := cl.Start(at(t, "2026-02-10 10:00"), true); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now  string
		want time.Duration
	}{
		{"2026-02-17 12:00", 12 * time.Hour},
		{"2026-02-17 24:00", 0},
		{"2026-02-18 06:00", -6 * time.Hour},
	}
	for _, tt := range tests {
		if got := cl.Remaining(at(t, tt.now)); got != tt.want {
			t.Errorf("Remaining(%s) = %v, want %v", tt.now, got, tt.want)
		}
	}
	if !cl.Overdue(at(t, "2026-02-17 24:00")) || cl.Overdue(at(t, "2026-02-17 23:59")) {
		t.Errorf("Overdue: want true at 24:00 of the last day and false a minute before")
	}
	if err := cl.Stop(at(t, "2026-02-16 12:00")); err != nil {
		t.Fatal(err)
	}
	if got := cl.Remaining(at(t, "2026-03-01 00:00")); got != 36*time.Hour || cl.State() != ClockStopped {
		t.Errorf("stopped clock: Remaining = %v, State = %s, want 36h (frozen at the stop), stopped", got, cl.State())
	}
	if len(cl.Events()) != 2 {
		t.Errorf("Events() = %d events, want 2", len(cl.Events()))
	}

	// A paused clock's remaining time is frozen at the pause.
	p := NewClock(d.Calendar, mustSpec(t, d, "CR-CUS-01"))
	_ = p.Start(at(t, "2025-08-05 10:00"), true)
	_ = p.Pause(at(t, "2025-10-04 00:00"), "psychiatric")
	if got, want := p.Remaining(at(t, "2025-12-01 00:00")), 48*time.Hour; got != want || p.State() != ClockPaused {
		t.Errorf("paused clock: Remaining = %v, State = %s, want %v, paused", got, p.State(), want)
	}
}

func TestExtensionRequestBy(t *testing.T) {
	d := mustLoadShipped(t)
	tests := []struct {
		clock, start, ext     string
		wantLatest, wantFirst string // "" = zero
	}{
		// MPS-R 148: ≥7 d before expiry at 24:00 Oct 5 → by 24:00 Sep 28.
		{"CR-CUS-01", "2025-08-05 10:00", "complex", "2025-09-28 24:00", ""},
		// SPC-CI 210: ≥15 d before expiry (24:00 Feb 28 2026).
		{"CR-CRT-03", "2025-12-31 10:00", "higher", "2026-02-13 24:00", ""},
		// SPC-Enf2006 Art. 1: within the last 5 d before 24:00 Apr 30 2026.
		{"CV-ENF-02", "2025-10-31 10:00", "president", "2026-04-30 24:00", "2026-04-25 24:00"},
	}
	for _, tt := range tests {
		cl := NewClock(d.Calendar, mustSpec(t, d, tt.clock))
		if err := cl.Start(at(t, tt.start), true); err != nil {
			t.Fatal(err)
		}
		latest, first, ok := cl.ExtensionRequestBy(tt.ext)
		gotFirst := ""
		if !first.IsZero() {
			gotFirst = show(first)
		}
		if !ok || show(latest) != tt.wantLatest || gotFirst != tt.wantFirst {
			t.Errorf("ExtensionRequestBy(%s %s from %s) = %s, %q, %v; want %s, %q, true",
				tt.clock, tt.ext, tt.start, show(latest), gotFirst, ok, tt.wantLatest, tt.wantFirst)
		}
	}
	cl := NewClock(d.Calendar, mustSpec(t, d, "CR-DET-02"))
	_ = cl.Start(at(t, "2025-09-28 22:00"), true)
	if _, _, ok := cl.ExtensionRequestBy("special"); ok {
		t.Errorf("ExtensionRequestBy(CR-DET-02 special) ok = true, want false: no lead time")
	}
}

// TestAnchoredClock follows CR-CUS-02 as its anchor CR-CUS-01 moves.
func TestAnchoredClock(t *testing.T) {
	d := mustLoadShipped(t)
	cus := NewClock(d.Calendar, mustSpec(t, d, "CR-CUS-01"))
	_ = cus.Start(at(t, "2025-08-05 10:00"), true)
	ask := func() string {
		due, _ := cus.Due()
		got, _ := d.Calendar.Due(mustSpec(t, d, "CR-CUS-02"), due, true)
		return show(got)
	}
	if got := ask(); got != "2025-09-28 24:00" {
		t.Errorf("CR-CUS-02 for CR-CUS-01 due 2025-10-05 24:00 = %s, want 2025-09-28 24:00", got)
	}
	_ = cus.Extend(at(t, "2025-09-20 10:00"), "complex", Period{})
	if got := ask(); got != "2025-10-29 24:00" {
		t.Errorf("CR-CUS-02 after the 1 m extension = %s, want 2025-10-29 24:00", got)
	}
}

func TestCalendarDueIdleSpec(t *testing.T) {
	d := mustLoadShipped(t)
	due, prov := d.Calendar.Due(mustSpec(t, d, "CR-FIL-01"), at(t, "2025-09-28 10:00"), false)
	if show(due) != "2025-10-09 24:00" || prov {
		t.Errorf("Calendar.Due(CR-FIL-01, 2025-09-28 10:00) = %s %v, want 2025-10-09 24:00 false", show(due), prov)
	}
}
