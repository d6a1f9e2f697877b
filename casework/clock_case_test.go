package casework

import (
	"caseroom/chat"
	"errors"
	"testing"
)

// Case.Clocks on a case's clock events: an extension granted by a decision
// extends its clock; CR-CUS-02 (ask for the extension 7 d before CR-CUS-01
// expires) counts back from CR-CUS-01's expiry and follows it through a
// pause and a restart, and the extension request is what it waited for.
func TestCaseClocksExtendAndFollowTheAnchor(t *testing.T) {
	d := mustLoadShipped(t)
	c := Case{}
	ev := func(seq int, clock string, kind EventKind, when string) {
		c.ClockEvents = append(c.ClockEvents, ClockEventRecord{Seq: chat.Seq(seq), Clock: clock, Suspect: "s1", Kind: kind, At: at(t, when), Detained: true})
	}
	check := func(step string, want map[string]string) {
		t.Helper()
		clocks, skipped := c.Clocks(d.Clocks, d.Calendar)
		for _, err := range skipped {
			t.Errorf("%s: skipped %v", step, err)
		}
		for key, w := range want {
			ck := clocks[key]
			if ck == nil {
				t.Errorf("%s: no clock %s", step, key)
				continue
			}
			due, _ := ck.Due()
			if got := show(due) + " " + string(ck.State()); got != w {
				t.Errorf("%s: %s = %s, want %s", step, key, got, w)
			}
		}
	}
	ev(10, "CR-CUS-01", EventStart, "2025-08-05 10:00")
	ev(10, "CR-CUS-02", EventStart, "2025-08-05 10:00")
	check("arrest", map[string]string{"CR-CUS-01/s1": "2025-10-05 24:00 running", "CR-CUS-02/s1": "2025-09-28 24:00 running"})
	ev(11, "CR-CUS-01", EventPause, "2025-08-20 10:00")
	ev(12, "CR-CUS-01", EventResume, "2025-08-30 10:00")
	check("10 days of psychiatric appraisal", map[string]string{"CR-CUS-01/s1": "2025-10-15 24:00 running", "CR-CUS-02/s1": "2025-10-08 24:00 running"})
	ev(13, "CR-CUS-01", EventRestart, "2025-09-01 10:00")
	check("new crime found", map[string]string{"CR-CUS-01/s1": "2025-11-01 24:00 running", "CR-CUS-02/s1": "2025-10-25 24:00 running"})
	c.Approvals = append(c.Approvals, ApprovalState{Seq: 14, Suspect: "s1", Clock: "CR-CUS-01", Extension: "complex", At: at(t, "2025-10-10 09:00")})
	check("extension asked", map[string]string{"CR-CUS-01/s1": "2025-11-01 24:00 running", "CR-CUS-02/s1": "2025-10-25 24:00 stopped"})
	c.ClockEvents = append(c.ClockEvents, ClockEventRecord{Seq: 15, Clock: "CR-CUS-01", Suspect: "s1", Kind: EventExtend, At: at(t, "2025-10-12 15:00"), Ref: "complex"})
	check("extension granted", map[string]string{"CR-CUS-01/s1": "2025-12-01 24:00 running", "CR-CUS-02/s1": "2025-10-25 24:00 stopped"})

	// A second grant of complex is refused by the clock and reported with
	// the decision's seq; the clock keeps its due.
	c.ClockEvents = append(c.ClockEvents, ClockEventRecord{Seq: 16, Clock: "CR-CUS-01", Suspect: "s1", Kind: EventExtend, At: at(t, "2025-10-13 15:00"), Ref: "complex"})
	clocks, skipped := c.Clocks(d.Clocks, d.Calendar)
	var ce *ClockEventError
	if len(skipped) != 1 || !errors.As(skipped[0], &ce) || ce.Seq != 16 || ce.Kind != EventExtend || !errors.Is(ce, ErrExtension) {
		t.Errorf("a second complex extension: skipped %v", skipped)
	}
	if due, _ := clocks["CR-CUS-01/s1"].Due(); show(due) != "2025-12-01 24:00" {
		t.Errorf("CR-CUS-01 after a refused second grant: %s", show(due))
	}
}
