package casework

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// at parses "2006-01-02 15:04" (or "2006-01-02 24:00", the end of that day) as
// Beijing time.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	if day, ok := strings.CutSuffix(s, " 24:00"); ok {
		d, err := ParseDate(day)
		if err != nil {
			t.Fatalf("bad test time %q: %v", s, err)
		}
		return d.End()
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, Shanghai)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return v
}

// show prints an instant the way the tests write it: midnight as 24:00 of the
// day before, so that "ends at 24:00 of Oct 9" reads as such.
func show(v time.Time) string {
	v = v.In(Shanghai)
	if v.Hour() == 0 && v.Minute() == 0 && v.Second() == 0 && v.Nanosecond() == 0 {
		return v.AddDate(0, 0, -1).Format("2006-01-02") + " 24:00"
	}
	if v.Second() == 0 && v.Nanosecond() == 0 {
		return v.Format("2006-01-02 15:04")
	}
	return v.Format("2006-01-02 15:04:05.999999999")
}

// ev is one clock event of a test case: kind, time, reference, and for
// extensions the length granted ("" = the full length).
type ev struct{ kind, at, ref, by string }

// rowCase is one computation of one clock.
type rowCase struct {
	clock    string // ClockSpec ID
	start    string
	detained bool
	events   []ev
	want     string // due, as at() writes it
	prov     bool   // want provisional
	why      string // what the case shows
}

// rowCases holds, per deadline row, cases that together cover every clock of
// the row: its start and length, roll-over (or custody: none), and where the
// row has them, extensions, pauses and restarts. Dates are chosen on month ends,
// leap years, National Day 2025 (Oct 1–8), Spring Festival 2026 (Feb 15–23),
// 调休 Saturdays/Sundays that are workdays, and years without calendar data.
var rowCases = map[string][]rowCase{
	// ---- criminal, procedure.md §3.4
	"CR-FIL-01": {
		{clock: "CR-FIL-01", start: "2025-06-03 09:00", want: "2025-06-06 24:00", why: "3 d, start day not counted"},
		{clock: "CR-FIL-01", start: "2025-06-03 09:00", events: []ev{{"extend", "2025-06-04 10:00", "leads", ""}}, want: "2025-06-10 24:00", why: "to 7 d when leads need checking"},
		{clock: "CR-FIL-01", start: "2025-06-03 09:00", events: []ev{{"extend", "2025-06-04 10:00", "leads", ""}, {"extend", "2025-06-09 10:00", "major", ""}}, want: "2025-07-03 24:00", why: "to 30 d with the PSB head's approval"},
		{clock: "CR-FIL-01", start: "2025-09-28 10:00", want: "2025-10-09 24:00", why: "last day Oct 1 rolls over National Day to Oct 9"},
	},
	"CR-FIL-02": {{clock: "CR-FIL-02", start: "2026-02-12 16:00", want: "2026-02-24 24:00", why: "Feb 15 rolls over Spring Festival 2026"}},
	"CR-FIL-03": {
		{clock: "CR-FIL-03.request", start: "2025-09-24 09:00", want: "2025-10-09 24:00", why: "7 d ending Oct 1"},
		{clock: "CR-FIL-03.decide", start: "2025-01-01 09:00", want: "2025-02-05 24:00", why: "30 d ending Jan 31 inside Spring Festival 2025"},
		{clock: "CR-FIL-03.review-request", start: "2025-09-21 09:00", want: "2025-09-28 24:00", why: "last day a 调休 Sunday: a working day, no roll"},
		{clock: "CR-FIL-03.review-decide", start: "2025-03-10 09:00", want: "2025-04-09 24:00", why: "30 d on weekdays"},
	},
	"CR-SUP-01": {{clock: "CR-SUP-01", start: "2025-04-27 09:00", want: "2025-05-06 24:00", why: "7 d ending on Labour Day May 4"}},
	"CR-SUP-02": {{clock: "CR-SUP-02", start: "2026-09-12 09:00", want: "2026-09-28 24:00", why: "15 d ending Sep 27 (Mid-Autumn 2026)"}},
	"CR-INV-01": {
		{clock: "CR-INV-01", start: "2025-10-01 09:30", want: "2025-10-01 22:00", why: "12 h from the next full hour, on a holiday"},
		{clock: "CR-INV-01", start: "2025-10-01 08:00", want: "2025-10-01 21:00", why: "a start exactly on the hour still does not count that hour"},
		{clock: "CR-INV-01", start: "2025-10-01 09:30", events: []ev{{"extend", "2025-10-01 15:00", "major", ""}}, want: "2025-10-02 10:00", why: "to 24 h when especially major"},
	},
	"CR-DET-01": {
		{clock: "CR-DET-01.custody", start: "2025-12-31 23:10", want: "2026-01-01 24:00", why: "24 h from midnight, across the year end"},
		{clock: "CR-DET-01.family", start: "2025-12-31 23:10", want: "2026-01-01 24:00", why: "24 h, custody, holiday irrelevant"},
		{clock: "CR-DET-01.interrogate", start: "2026-02-16 07:59", want: "2026-02-17 08:00", why: "24 h from 08:00 during Spring Festival"},
	},
	"CR-DET-02": {
		{clock: "CR-DET-02", start: "2025-09-28 22:00", detained: true, want: "2025-10-01 24:00", why: "custody: ends on National Day, never rolls"},
		{clock: "CR-DET-02", start: "2025-09-28 22:00", events: []ev{{"extend", "2025-09-30 10:00", "special", ""}}, want: "2025-10-05 24:00", why: "+4 d"},
		{clock: "CR-DET-02", start: "2025-09-28 22:00", events: []ev{{"extend", "2025-09-30 10:00", "special", "2d"}}, want: "2025-10-03 24:00", why: "+2 d of the 1–4 d range"},
		{clock: "CR-DET-02", start: "2025-09-28 22:00", events: []ev{{"extend", "2025-09-30 10:00", "roving", ""}}, want: "2025-10-28 24:00", why: "to 30 d for roving/repeat/gang suspects"},
	},
	"CR-ARR-01": {{clock: "CR-ARR-01", start: "2026-02-10 10:00", want: "2026-02-17 24:00", why: "custody: ends in Spring Festival, no roll"}},
	"CR-ARR-02": {
		{clock: "CR-ARR-02", start: "2026-02-01 10:00", want: "2026-02-24 24:00", why: "15 d, not custody: rolls over Spring Festival"},
		{clock: "CR-ARR-02", start: "2025-03-03 10:00", events: []ev{{"extend", "2025-03-10 10:00", "major", ""}}, want: "2025-03-24 24:00", why: "to 20 d, Sunday rolls to Monday"},
	},
	"CR-ARR-03": {
		{clock: "CR-ARR-03.request", start: "2025-05-26 10:00", want: "2025-06-03 24:00", why: "5 d ending on Dragon Boat May 31"},
		{clock: "CR-ARR-03.decide", start: "2025-04-28 10:00", want: "2025-05-06 24:00", why: "7 d ending May 5"},
		{clock: "CR-ARR-03.review-request", start: "2025-01-21 10:00", want: "2025-01-26 24:00", why: "5 d ending on a 调休 Sunday"},
		{clock: "CR-ARR-03.review-decide", start: "2025-12-20 10:00", want: "2026-01-04 24:00", why: "15 d across the year, 调休 Sunday"},
		{clock: "CR-ARR-03.correction", start: "2025-07-01 10:00", want: "2025-07-16 24:00", why: "15 d"},
	},
	"CR-ARR-04": {{clock: "CR-ARR-04", start: "2025-02-05 10:00", want: "2025-02-08 24:00", why: "3 d ending on a 调休 Saturday"}},
	"CR-ARR-05": {
		{clock: "CR-ARR-05.family", start: "2025-06-30 23:59", want: "2025-07-01 24:00", why: "24 h from the next full hour"},
		{clock: "CR-ARR-05.interrogate", start: "2025-06-30 00:00", want: "2025-07-01 01:00", why: "start at 00:00 still skips that hour"},
	},
	"CR-CUS-01": {
		{clock: "CR-CUS-01", start: "2025-08-05 10:00", want: "2025-10-05 24:00", why: "2 m, custody: ends on National Day"},
		{clock: "CR-CUS-01", start: "2025-08-05 10:00", events: []ev{{"extend", "2025-09-20 10:00", "complex", ""}, {"extend", "2025-10-20 10:00", "art158", ""}, {"extend", "2025-12-20 10:00", "art159", ""}},
			want: "2026-03-05 24:00", why: "+1 m +2 m +2 m = 7 m"},
		{clock: "CR-CUS-01", start: "2025-08-05 10:00", events: []ev{{"pause", "2025-09-01 09:00", "psychiatric", ""}, {"resume", "2025-09-21 15:00", "", ""}}, want: "2025-10-25 24:00", why: "20 days of appraisal excluded"},
		{clock: "CR-CUS-01", start: "2025-08-05 10:00", events: []ev{{"extend", "2025-09-20 10:00", "complex", ""}, {"restart", "2025-09-25 10:00", "new-crime", ""}, {"extend", "2025-11-20 10:00", "complex", ""}},
			want: "2025-12-25 24:00", why: "new crime: 2 m anew from Sep 25, and the extension may be granted again"},
		{clock: "CR-CUS-01", start: "2025-08-05 10:00", events: []ev{{"restart", "2025-08-20 10:00", "identity", ""}}, want: "2025-10-20 24:00", why: "identity established: counted from then"},
		{clock: "CR-CUS-01", start: "2024-12-31 10:00", want: "2025-02-28 24:00", why: "Dec 31 is a month end: to Feb's last day"},
		{clock: "CR-CUS-01", start: "2024-12-31 10:00", events: []ev{{"extend", "2025-02-20 10:00", "complex", ""}}, want: "2025-03-31 24:00", why: "+1 m from Feb 28, itself a month end: to Mar 31"},
		{clock: "CR-CUS-01", start: "2023-12-31 10:00", want: "2024-02-29 24:00", why: "leap year 2024; custody, so not provisional"},
		{clock: "CR-CUS-01", start: "2027-12-31 10:00", want: "2028-02-29 24:00", why: "leap year 2028 without calendar data: custody needs none"},
	},
	"CR-CUS-02": {{clock: "CR-CUS-02", start: "2025-10-05 24:00", want: "2025-09-28 24:00", why: "7 d before CR-CUS-01 expires at 24:00 Oct 5"}},
	"CR-CUS-03": {{clock: "CR-CUS-03", start: "2025-05-28 10:00", want: "2025-06-03 24:00", why: "5 d ending Jun 2 (Dragon Boat)"}},
	"CR-PRC-01": {
		{clock: "CR-PRC-01", start: "2026-09-13 10:00", want: "2026-09-27 24:00", why: "14 d custody: ends on Mid-Autumn, no roll"},
		{clock: "CR-PRC-01", start: "2026-09-13 10:00", events: []ev{{"extend", "2026-09-20 10:00", "special", ""}}, want: "2026-09-30 24:00", why: "+3 d"},
	},
	"CR-BAIL-01": {{clock: "CR-BAIL-01", start: "2025-10-07 10:00", want: "2026-10-08 24:00", why: "12 m ending on National Day 2026"}},
	"CR-RSL-01":  {{clock: "CR-RSL-01", start: "2025-08-31 10:00", want: "2026-02-28 24:00", why: "6 m from a month end to Feb 28 2026, a 调休 Saturday"}},
	"CR-PRS-00": {
		{clock: "CR-PRS-00.suspect", start: "2025-12-29 10:00", want: "2026-01-04 24:00", why: "3 d ending New Year 2026, rolls to 调休 Sunday Jan 4"},
		{clock: "CR-PRS-00.victim", start: "2025-12-29 10:00", want: "2026-01-04 24:00", why: "same"},
	},
	"CR-PRS-01": {
		{clock: "CR-PRS-01", start: "2025-01-31 10:00", detained: true, want: "2025-02-28 24:00", why: "1 m from Jan 31 to Feb 28"},
		{clock: "CR-PRS-01", start: "2025-09-01 10:00", detained: true, want: "2025-10-01 24:00", why: "detained: strict, ends on National Day"},
		{clock: "CR-PRS-01", start: "2025-09-01 10:00", want: "2025-10-09 24:00", why: "not detained: rolls over National Day"},
		{clock: "CR-PRS-01", start: "2025-09-01 10:00", detained: true, events: []ev{{"extend", "2025-09-20 10:00", "major", ""}}, want: "2025-10-16 24:00", why: "+15 d"},
		{clock: "CR-PRS-01", start: "2025-09-01 10:00", events: []ev{{"pause", "2025-09-02 10:00", "supervision-measures", ""}, {"resume", "2025-09-12 10:00", "", ""}}, want: "2025-10-11 24:00", why: "10 d excluded, ends on 调休 Saturday Oct 11"},
		{clock: "CR-PRS-01", start: "2025-09-01 10:00", events: []ev{{"stop", "2025-09-20 10:00", "", ""}, {"restart", "2025-11-20 10:00", "re-transfer", ""}}, want: "2025-12-22 24:00", why: "re-transfer: 1 m anew, Saturday rolls to Monday"},
		{clock: "CR-PRS-01", start: "2025-09-01 10:00", events: []ev{{"restart", "2025-09-10 10:00", "jurisdiction", ""}}, want: "2025-10-10 24:00", why: "change of jurisdiction: counted from receipt"},
	},
	"CR-PRS-02": {
		{clock: "CR-PRS-02", start: "2026-02-05 10:00", want: "2026-02-24 24:00", why: "10 d rolls over Spring Festival"},
		{clock: "CR-PRS-02", start: "2026-02-05 10:00", detained: true, want: "2026-02-15 24:00", why: "detained: no roll"},
		{clock: "CR-PRS-02", start: "2026-02-05 10:00", detained: true, events: []ev{{"extend", "2026-02-10 10:00", "over-1y", ""}}, want: "2026-02-20 24:00", why: "to 15 d"},
	},
	"CR-PRS-03": {
		{clock: "CR-PRS-03", start: "2025-01-21 10:00", want: "2025-01-31 24:00", why: "10 d custody ending in Spring Festival"},
		{clock: "CR-PRS-03", start: "2025-01-21 10:00", events: []ev{{"extend", "2025-01-25 10:00", "special", ""}}, want: "2025-02-04 24:00", why: "+4 d"},
	},
	"CR-SUPP-01": {
		{clock: "CR-SUPP-01", start: "2025-04-30 10:00", want: "2025-06-03 24:00", why: "Apr 30 month end → May 31, Dragon Boat → Jun 3"},
		{clock: "CR-SUPP-01", start: "2025-04-30 10:00", detained: true, want: "2025-05-31 24:00", why: "detained: no roll"},
	},
	"CR-SUPP-02": {
		{clock: "CR-SUPP-02", start: "2024-01-29 10:00", want: "2024-02-29 24:00", prov: true, why: "2024 has no calendar data: provisional"},
		{clock: "CR-SUPP-02", start: "2024-01-29 10:00", detained: true, want: "2024-02-29 24:00", why: "detained: the calendar does not matter"},
	},
	"CR-NP-01": {
		{clock: "CR-NP-01.request", start: "2026-04-28 10:00", want: "2026-05-06 24:00", why: "7 d ending on Labour Day 2026"},
		{clock: "CR-NP-01.decide", start: "2026-01-20 10:00", want: "2026-02-24 24:00", why: "30 d ending in Spring Festival"},
		{clock: "CR-NP-01.review-request", start: "2026-05-02 10:00", want: "2026-05-09 24:00", why: "ends on 调休 Saturday May 9"},
		{clock: "CR-NP-01.review-decide", start: "2026-05-22 10:00", want: "2026-06-22 24:00", why: "ends on Dragon Boat Jun 21"},
	},
	"CR-NP-02": {
		{clock: "CR-NP-02.petition", start: "2025-12-27 10:00", want: "2026-01-04 24:00", why: "ends Jan 3 (holiday), rolls to 调休 Sunday"},
		{clock: "CR-NP-02.review", start: "2025-11-30 10:00", want: "2026-02-28 24:00", why: "3 m from a month end to Feb 28, a 调休 Saturday"},
		{clock: "CR-NP-02.review", start: "2025-11-30 10:00", events: []ev{{"extend", "2026-02-01 10:00", "complex", ""}}, want: "2026-06-01 24:00", why: "to 6 m: May 31 Sunday rolls to Monday"},
	},
	"CR-NP-03": {{clock: "CR-NP-03", start: "2026-12-28 10:00", want: "2027-01-04 24:00", prov: true, why: "ends in 2027, a year without data"}},
	"CR-CRT-01": {
		{clock: "CR-CRT-01.review", start: "2026-09-18 10:00", want: "2026-09-28 24:00", why: "7 d ending Mid-Autumn 2026"},
		{clock: "CR-CRT-01.supplement", start: "2026-09-29 10:00", want: "2026-10-08 24:00", why: "3 d ending National Day 2026"},
	},
	"CR-CRT-02": {
		{clock: "CR-CRT-02.copy", start: "2025-10-20 09:00", want: "2025-10-10 24:00", why: "serve 10 d before the trial"},
		{clock: "CR-CRT-02.copy", start: "2025-10-11 09:00", want: "2025-10-01 24:00", why: "a minimum notice never rolls, even to a holiday"},
		{clock: "CR-CRT-02.notices", start: "2026-02-26 09:30", want: "2026-02-23 24:00", why: "3 d before, on a holiday: no roll"},
	},
	"CR-CRT-03": {
		{clock: "CR-CRT-03", start: "2025-12-31 10:00", detained: true, want: "2026-02-28 24:00", why: "2 m from Dec 31 to Feb 28"},
		{clock: "CR-CRT-03", start: "2025-12-01 10:00", want: "2026-02-02 24:00", why: "not detained: Sunday Feb 1 rolls"},
		{clock: "CR-CRT-03", start: "2025-12-01 10:00", events: []ev{{"extend", "2026-01-20 10:00", "three-months", ""}}, want: "2026-03-02 24:00", why: "to 3 m"},
		{clock: "CR-CRT-03", start: "2025-12-01 10:00", events: []ev{{"extend", "2026-01-20 10:00", "higher", ""}, {"extend", "2026-05-01 10:00", "supreme", "2m"}}, want: "2026-08-03 24:00", why: "to 6 m (higher court), then +2 m (SPC)"},
		{clock: "CR-CRT-03", start: "2025-12-31 10:00", detained: true, events: []ev{{"pause", "2026-01-05 10:00", "suspension", ""}, {"resume", "2026-01-25 10:00", "", ""}}, want: "2026-03-20 24:00", why: "20 d of suspension excluded"},
		{clock: "CR-CRT-03", start: "2025-12-31 10:00", detained: true, events: []ev{{"stop", "2026-01-10 10:00", "", ""}, {"restart", "2026-03-10 10:00", "supp-return", ""}}, want: "2026-05-10 24:00", why: "back from supplementary investigation: 2 m anew, custody"},
		{clock: "CR-CRT-03", start: "2026-03-10 10:00", events: []ev{{"restart", "2026-03-15 10:00", "conversion", ""}}, want: "2026-05-15 24:00", why: "conversion: from the decision"},
		{clock: "CR-CRT-03", start: "2026-03-10 10:00", events: []ev{{"restart", "2026-03-16 10:00", "jurisdiction", ""}}, want: "2026-05-18 24:00", why: "new court: from receipt; Saturday rolls"},
		{clock: "CR-CRT-03", start: "2026-03-10 10:00", events: []ev{{"restart", "2026-04-02 10:00", "remand", ""}}, want: "2026-06-02 24:00", why: "remand: from receipt"},
	},
	"CR-CRT-04": {
		{clock: "CR-CRT-04", start: "2026-02-01 10:00", detained: true, want: "2026-02-21 24:00", why: "20 d custody in Spring Festival"},
		{clock: "CR-CRT-04", start: "2026-02-01 10:00", want: "2026-02-24 24:00", why: "not detained: rolls"},
		{clock: "CR-CRT-04", start: "2026-02-01 10:00", events: []ev{{"extend", "2026-02-10 10:00", "over-3y", ""}}, want: "2026-03-16 24:00", why: "to 1.5 m = 1 m + 15 d"},
	},
	"CR-CRT-05": {
		{clock: "CR-CRT-05", start: "2025-09-21 10:00", want: "2025-10-09 24:00", why: "10 d to National Day, rolls"},
		{clock: "CR-CRT-05", start: "2025-09-21 10:00", detained: true, want: "2025-10-01 24:00", why: "detained: no roll"},
		{clock: "CR-CRT-05", start: "2025-09-21 10:00", detained: true, events: []ev{{"extend", "2025-09-25 10:00", "over-1y", ""}}, want: "2025-10-06 24:00", why: "to 15 d"},
	},
	"CR-CRT-06": {
		{clock: "CR-CRT-06", start: "2025-01-04 10:00", want: "2025-02-05 24:00", why: "1 m to Feb 4 (Spring Festival)"},
		{clock: "CR-CRT-06", start: "2025-01-04 10:00", detained: true, want: "2025-02-04 24:00", why: "detained: no roll"},
	},
	"CR-CRT-07": {{clock: "CR-CRT-07", start: "2025-04-01 10:00", want: "2025-10-09 24:00", why: "6 m to Oct 1"}},
	"CR-CRT-08": {{clock: "CR-CRT-08", start: "2026-06-16 10:00", want: "2026-06-22 24:00", why: "5 d to Dragon Boat 2026"}},
	"CR-APP-01": {
		{clock: "CR-APP-01.judgment", start: "2026-09-17 10:00", want: "2026-09-28 24:00", why: "10 d from the day after receipt"},
		{clock: "CR-APP-01.ruling", start: "2025-12-28 10:00", want: "2026-01-04 24:00", why: "5 d to Jan 2 (holiday)"},
	},
	"CR-APP-02": {
		{clock: "CR-APP-02.request", start: "2025-04-29 10:00", want: "2025-05-06 24:00", why: "5 d to May 4"},
		{clock: "CR-APP-02.answer", start: "2025-02-03 10:00", want: "2025-02-08 24:00", why: "5 d to a 调休 Saturday"},
	},
	"CR-APP-03": {{clock: "CR-APP-03", start: "2025-05-30 10:00", want: "2025-06-03 24:00", why: "3 d to Jun 2"}},
	"CR-APP-04": {
		{clock: "CR-APP-04", start: "2024-12-29 10:00", detained: true, want: "2025-02-28 24:00", why: "2 m: Feb has no 29th in 2025"},
		{clock: "CR-APP-04", start: "2025-12-05 10:00", events: []ev{{"extend", "2026-01-20 10:00", "high-court", ""}}, want: "2026-04-07 24:00", why: "+2 m to Apr 5 (Qingming)"},
		{clock: "CR-APP-04", start: "2025-12-05 10:00", events: []ev{{"extend", "2026-01-20 10:00", "high-court", ""}, {"extend", "2026-03-20 10:00", "supreme", "1m"}}, want: "2026-05-06 24:00", why: "+1 m (SPC) to May 5"},
		{clock: "CR-APP-04", start: "2025-12-05 10:00", detained: true, events: []ev{{"pause", "2026-01-05 10:00", "file-reading", ""}, {"resume", "2026-02-04 10:00", "", ""}}, want: "2026-03-07 24:00", why: "30 d of file reading excluded"},
	},
	"CR-EXE-01": {{clock: "CR-EXE-01", start: "2025-01-18 10:00", want: "2025-02-05 24:00", why: "10 d to Jan 28"}},
	"CR-EXE-02": {{clock: "CR-EXE-02", start: "2028-01-31 10:00", want: "2028-02-29 24:00", prov: true, why: "1 m in leap 2028, no data"}},
	"CR-EXE-03": {{clock: "CR-EXE-03", start: "2025-09-01 10:00", want: "2025-10-09 24:00", why: "1 m to Oct 1"}},
	"CR-EXE-04": {
		{clock: "CR-EXE-04.opinion", start: "2026-01-26 10:00", want: "2026-02-24 24:00", why: "20 d to Feb 15"},
		{clock: "CR-EXE-04.rehear", start: "2026-01-31 10:00", want: "2026-02-28 24:00", why: "1 m from Jan 31 to Feb 28, a 调休 Saturday"},
	},
	"CR-CC-01": {
		{clock: "CR-CC-01.notify", start: "2025-09-26 10:00", want: "2025-10-09 24:00", why: "5 d to Oct 1"},
		{clock: "CR-CC-01.documents", start: "2025-09-26 10:00", want: "2025-10-09 24:00", why: "10 d to Oct 6"},
	},
	"CR-CC-02": {{clock: "CR-CC-02", start: "2026-05-01 10:00", want: "2026-05-11 24:00", why: "10 d from a holiday"}},
	"CR-CC-03": {
		{clock: "CR-CC-03.arrest", start: "2026-10-01 10:15", want: "2026-10-03 11:00", why: "48 h from the next full hour"},
		{clock: "CR-CC-03.ruling", start: "2025-09-01 10:00", detained: true, want: "2025-10-01 24:00", why: "detained: no roll"},
		{clock: "CR-CC-03.ruling", start: "2025-09-01 10:00", want: "2025-10-09 24:00", why: "not detained: rolls"},
		{clock: "CR-CC-03.custody", start: "2025-09-06 10:00", want: "2025-10-06 24:00", why: "custody ≤30 d, no roll"},
	},
	"CR-LA-01": {
		{clock: "CR-LA-01.notify", start: "2026-10-04 10:00", want: "2026-10-08 24:00", why: "3 d to Oct 7"},
		{clock: "CR-LA-01.assign", start: "2026-10-07 10:00", want: "2026-10-10 24:00", why: "3 d to 调休 Saturday Oct 10"},
	},
	"CR-LA-02": {{clock: "CR-LA-02", start: "2026-01-01 00:30", want: "2026-01-02 01:00", why: "24 h from 01:00"}},

	// ---- civil, procedure.md §5 (derived IDs)
	"CV-FIL-01": {
		{clock: "CV-FIL-01", start: "2026-04-28 10:00", want: "2026-05-06 24:00", why: "7 d to Labour Day"},
		{clock: "CV-FIL-01", start: "2026-04-28 10:00", events: []ev{{"restart", "2026-05-20 10:00", "supplement", ""}}, want: "2026-05-27 24:00", why: "counted from the supplement"},
	},
	"CV-FIL-02": {{clock: "CV-FIL-02", start: "2025-09-08 10:00", want: "2025-10-09 24:00", why: "30 d to Oct 8"}},
	"CV-FIL-03": {{clock: "CV-FIL-03", start: "2026-02-07 10:00", want: "2026-02-24 24:00", why: "15 d to Feb 22"}},
	"CV-SRV-01": {
		{clock: "CV-SRV-01.copy", start: "2026-09-20 10:00", want: "2026-09-28 24:00", why: "5 d to Sep 25 (Mid-Autumn)"},
		{clock: "CV-SRV-01.defence", start: "2025-09-16 10:00", want: "2025-10-09 24:00", why: "15 d to Oct 1"},
		{clock: "CV-SRV-01.defence-copy", start: "2025-10-06 10:00", want: "2025-10-11 24:00", why: "5 d to 调休 Saturday"},
	},
	"CV-TRL-01": {
		{clock: "CV-TRL-01", start: "2025-04-01 10:00", want: "2025-10-09 24:00", why: "6 m to Oct 1"},
		{clock: "CV-TRL-01", start: "2025-04-01 10:00", events: []ev{{"extend", "2025-09-01 10:00", "president", ""}, {"extend", "2026-03-01 10:00", "higher", "3m"}}, want: "2026-07-01 24:00", why: "+6 m (president) from the nominal Oct 1, +3 m (higher court)"},
		{clock: "CV-TRL-01", start: "2025-04-01 10:00", events: []ev{{"pause", "2025-05-10 10:00", "appraisal", ""}, {"resume", "2025-06-09 10:00", "", ""}}, want: "2025-10-31 24:00", why: "30 d of appraisal excluded"},
		{clock: "CV-TRL-01", start: "2025-08-31 10:00", events: []ev{{"extend", "2026-02-01 10:00", "president", ""}}, want: "2026-08-31 24:00", why: "6 m to Feb 28 (month end), +6 m to Aug 31"},
	},
	"CV-TRL-02": {
		{clock: "CV-TRL-02", start: "2024-08-31 10:00", want: "2025-02-28 24:00", why: "6 m from Aug 31 to Feb 28"},
		{clock: "CV-TRL-02", start: "2025-08-29 10:00", want: "2026-02-28 24:00", why: "Feb 2026 has no 29th: clamp"},
		{clock: "CV-TRL-02", start: "2024-08-31 10:00", events: []ev{{"extend", "2025-01-10 10:00", "president", ""}, {"extend", "2025-08-20 10:00", "higher", "2m"}},
			want: "2025-10-31 24:00", why: "+6 m from Feb 28 (month end) to Aug 31, +2 m to Oct 31"},
		{clock: "CV-TRL-02", start: "2024-08-31 10:00", events: []ev{{"extend", "2025-01-10 10:00", "president", ""}}, want: "2025-09-01 24:00", why: "Aug 31 2025 is a Sunday: rolls"},
	},
	"CV-TRL-03": {
		{clock: "CV-TRL-03", start: "2025-11-15 10:00", want: "2026-02-24 24:00", why: "3 m to Feb 15"},
		{clock: "CV-TRL-03", start: "2025-11-15 10:00", events: []ev{{"extend", "2026-02-01 10:00", "president", ""}}, want: "2026-03-16 24:00", why: "+1 m, Sunday rolls"},
	},
	"CV-TRL-04": {
		{clock: "CV-TRL-04", start: "2025-07-31 10:00", want: "2025-09-30 24:00", why: "2 m from Jul 31 to Sep 30"},
		{clock: "CV-TRL-04", start: "2025-07-31 10:00", events: []ev{{"extend", "2025-09-01 10:00", "president", ""}}, want: "2025-10-31 24:00", why: "+1 m from Sep 30 (month end) to Oct 31"},
		{clock: "CV-TRL-04.evidence", start: "2025-09-24 10:00", want: "2025-10-09 24:00", why: "7 d to Oct 1"},
	},
	"CV-TRL-05": {
		{clock: "CV-TRL-05", start: "2026-01-05 10:00", want: "2026-02-04 24:00", why: "30 d"},
		{clock: "CV-TRL-05", start: "2026-01-05 10:00", events: []ev{{"extend", "2026-01-20 10:00", "president", "10d"}}, want: "2026-02-14 24:00", why: "+10 d to 调休 Saturday Feb 14"},
	},
	"CV-TRL-06": {
		{clock: "CV-TRL-06", start: "2026-03-31 10:00", want: "2026-06-30 24:00", why: "3 m from Mar 31 to Jun 30"},
		{clock: "CV-TRL-06", start: "2026-03-31 10:00", events: []ev{{"extend", "2026-06-01 10:00", "president", "1m"}}, want: "2026-07-31 24:00", why: "+1 m from Jun 30 (month end)"},
	},
	"CV-TRL-07": {{clock: "CV-TRL-07", start: "2026-05-22 10:00", want: "2026-06-22 24:00", why: "30 d to Dragon Boat"}},
	"CV-APP-01": {
		{clock: "CV-APP-01.judgment", start: "2025-09-16 10:00", want: "2025-10-09 24:00", why: "15 d to Oct 1"},
		{clock: "CV-APP-01.ruling", start: "2025-12-22 10:00", want: "2026-01-04 24:00", why: "10 d to Jan 1"},
		{clock: "CV-APP-01.abroad", start: "2026-01-16 10:00", want: "2026-02-24 24:00", why: "30 d to Feb 15"},
	},
	"CV-APP-02": {
		{clock: "CV-APP-02.copy", start: "2025-05-27 10:00", want: "2025-06-03 24:00", why: "5 d to Jun 1"},
		{clock: "CV-APP-02.defence", start: "2025-01-16 10:00", want: "2025-02-05 24:00", why: "15 d to Jan 31"},
		{clock: "CV-APP-02.forward", start: "2025-02-03 10:00", want: "2025-02-08 24:00", why: "5 d to 调休 Saturday"},
	},
	"CV-ENF-01": {
		{clock: "CV-ENF-01", start: "2025-02-28 10:00", want: "2027-03-01 24:00", prov: true, why: "2 y from a month end to Sunday Feb 28 2027: no data, weekend rolls"},
		{clock: "CV-ENF-01", start: "2025-02-28 10:00", events: []ev{{"restart", "2025-06-10 10:00", "interruption", ""}}, want: "2027-06-10 24:00", prov: true, why: "interruption: 2 y anew"},
		{clock: "CV-ENF-01", start: "2025-02-28 10:00", events: []ev{{"pause", "2025-03-01 10:00", "suspension", ""}, {"resume", "2025-03-11 10:00", "", ""}}, want: "2027-03-10 24:00", prov: true, why: "10 d suspended"},
		{clock: "CV-ENF-01", start: "2024-02-29 10:00", want: "2026-02-28 24:00", why: "leap-day start to Feb 28 2026, a 调休 Saturday"},
	},
	"CV-ENF-02": {
		{clock: "CV-ENF-02", start: "2025-10-31 10:00", want: "2026-04-30 24:00", why: "6 m from Oct 31 to Apr 30"},
		{clock: "CV-ENF-02", start: "2025-10-31 10:00", events: []ev{{"extend", "2026-04-27 10:00", "president", ""}}, want: "2026-07-31 24:00", why: "+3 m asked in the last 5 d"},
		{clock: "CV-ENF-02", start: "2025-10-31 10:00", events: []ev{{"extend", "2026-04-27 10:00", "president", ""}, {"extend", "2026-07-28 10:00", "high-court", "1m"}}, want: "2026-08-31 24:00", why: "+1 m more, recorded with the high court"},
		{clock: "CV-ENF-02", start: "2025-10-31 10:00", events: []ev{{"pause", "2025-11-01 10:00", "auction", ""}, {"resume", "2025-12-01 10:00", "", ""}}, want: "2026-06-01 24:00", why: "30 d of auction excluded; May 30 Saturday rolls"},
	},
	"CV-ENF-03": {
		{clock: "CV-ENF-03", start: "2025-07-01 10:00", want: "2025-10-09 24:00", why: "3 m to Oct 1"},
		{clock: "CV-ENF-03", start: "2025-07-01 10:00", events: []ev{{"extend", "2025-09-28 10:00", "president", ""}, {"extend", "2025-12-28 10:00", "high-court", "1m"}}, want: "2026-02-02 24:00", why: "+3 m, +1 m: Feb 1 Sunday rolls"},
	},
	"CV-ENF-04": {
		{clock: "CV-ENF-04.assign", start: "2025-09-24 10:00", want: "2025-10-09 24:00", why: "7 d to Oct 1"},
		{clock: "CV-ENF-04.notice", start: "2025-09-25 10:00", want: "2025-09-28 24:00", why: "3 d to 调休 Sunday"},
		{clock: "CV-ENF-04.leads", start: "2026-02-12 10:00", want: "2026-02-24 24:00", why: "3 d to Feb 15"},
		{clock: "CV-ENF-04.verify", start: "2026-04-30 10:00", want: "2026-05-06 24:00", why: "5 d to May 5"},
		{clock: "CV-ENF-04.investigate", start: "2026-06-09 10:00", want: "2026-06-22 24:00", why: "10 d to Jun 19"},
		{clock: "CV-ENF-04.assets", start: "2026-08-31 10:00", want: "2026-09-30 24:00", why: "1 m from Aug 31 to Sep 30"},
	},
	"CV-ENF-05": {{clock: "CV-ENF-05", start: "2025-03-31 10:00", want: "2025-09-30 24:00", why: "6 m from Mar 31 to Sep 30"}},
	"CV-ENF-06": {{clock: "CV-ENF-06", start: "2025-09-20 10:00", want: "2025-10-05 24:00", why: "judicial detention is custody: no roll"}},

	// ---- administrative, §6
	"AD-REC-01": {{clock: "AD-REC-01", start: "2025-08-02 10:00", want: "2025-10-09 24:00", why: "60 d to Oct 1"}},
	"AD-REC-02": {
		{clock: "AD-REC-02.ordinary", start: "2025-12-17 10:00", want: "2026-02-24 24:00", why: "60 d to Feb 15"},
		{clock: "AD-REC-02.ordinary", start: "2025-12-17 10:00", events: []ev{{"extend", "2026-02-01 10:00", "head", ""}}, want: "2026-03-17 24:00", why: "+30 d from the nominal Feb 15"},
		{clock: "AD-REC-02.simple", start: "2026-09-01 10:00", want: "2026-10-08 24:00", why: "30 d to Oct 1 2026"},
	},
	"AD-SUIT-01": {{clock: "AD-SUIT-01", start: "2026-09-16 10:00", want: "2026-10-08 24:00", why: "15 d to Oct 1 2026"}},
	"AD-SUIT-02": {
		{clock: "AD-SUIT-02.direct", start: "2025-04-01 10:00", want: "2025-10-09 24:00", why: "6 m to Oct 1"},
		{clock: "AD-SUIT-02.direct", start: "2025-04-01 10:00", events: []ev{{"pause", "2025-05-01 10:00", "obstacle", ""}, {"resume", "2025-05-11 10:00", "", ""}}, want: "2025-10-11 24:00", why: "10 d excluded to a 调休 Saturday"},
		{clock: "AD-SUIT-02.cap-property", start: "2025-06-15 10:00", want: "2045-06-15 24:00", prov: true, why: "20 y"},
		{clock: "AD-SUIT-02.cap-other", start: "2026-02-28 10:00", want: "2031-02-28 24:00", prov: true, why: "5 y from a month end"},
	},
	"AD-SUIT-03": {{clock: "AD-SUIT-03", start: "2025-12-31 10:00", want: "2026-02-28 24:00", why: "2 m to Feb 28 2026, a 调休 Saturday"}},
	"AD-FIL-01": {
		{clock: "AD-FIL-01", start: "2026-06-12 10:00", want: "2026-06-22 24:00", why: "7 d to Jun 19"},
		{clock: "AD-FIL-01", start: "2026-06-12 10:00", events: []ev{{"restart", "2026-06-25 10:00", "supplement", ""}}, want: "2026-07-02 24:00", why: "from the supplement"},
	},
	"AD-SRV-01": {
		{clock: "AD-SRV-01.copy", start: "2026-04-30 10:00", want: "2026-05-06 24:00", why: "5 d to May 5"},
		{clock: "AD-SRV-01.defence", start: "2025-12-18 10:00", want: "2026-01-04 24:00", why: "15 d to Jan 2"},
		{clock: "AD-SRV-01.defence-copy", start: "2026-09-15 10:00", want: "2026-09-20 24:00", why: "5 d to 调休 Sunday Sep 20"},
	},
	"AD-TRL-01": {
		{clock: "AD-TRL-01", start: "2026-04-07 10:00", want: "2026-10-08 24:00", why: "6 m to Oct 7 2026"},
		{clock: "AD-TRL-01", start: "2026-04-07 10:00", events: []ev{{"extend", "2026-09-01 10:00", "high-court", "3m"}}, want: "2027-01-07 24:00", prov: true, why: "+3 m into 2027"},
	},
	"AD-TRL-02": {{clock: "AD-TRL-02", start: "2025-08-17 10:00", want: "2025-10-09 24:00", why: "45 d to Oct 1"}},
	"AD-APP-01": {
		{clock: "AD-APP-01.judgment", start: "2026-02-02 10:00", want: "2026-02-24 24:00", why: "15 d to Feb 17"},
		{clock: "AD-APP-01.ruling", start: "2025-04-24 10:00", want: "2025-05-06 24:00", why: "10 d to May 4"},
	},
	"AD-TRL-03": {
		{clock: "AD-TRL-03", start: "2025-07-05 10:00", want: "2025-10-09 24:00", why: "3 m to Oct 5"},
		{clock: "AD-TRL-03", start: "2025-07-05 10:00", events: []ev{{"extend", "2025-09-30 10:00", "high-court", "1m"}}, want: "2025-11-05 24:00", why: "+1 m from the nominal Oct 5"},
	},

	// ---- public interest, §7
	"PI-SUG-01": {
		{clock: "PI-SUG-01.ordinary", start: "2025-08-01 10:00", want: "2025-10-09 24:00", why: "2 m to Oct 1"},
		{clock: "PI-SUG-01.urgent", start: "2026-06-05 10:00", want: "2026-06-22 24:00", why: "15 d to Jun 20"},
	},
	"PI-DEC-01": {
		{clock: "PI-DEC-01.decide", start: "2025-12-01 10:00", want: "2026-02-02 24:00", why: "2 m to Sunday Feb 1"},
		{clock: "PI-DEC-01.closing", start: "2026-02-08 10:00", want: "2026-02-24 24:00", why: "7 d to Feb 15"},
	},
	"PI-ANN-01": {{clock: "PI-ANN-01", start: "2026-01-16 10:00", want: "2026-02-24 24:00", why: "30 d to Feb 15"}},
	"PI-SRV-01": {{clock: "PI-SRV-01", start: "2025-04-29 10:00", want: "2025-05-06 24:00", why: "5 d to May 4"}},
	"PI-APR-01": {{clock: "PI-APR-01", start: "2025-09-25 10:00", want: "2025-09-28 24:00", why: "3 d to 调休 Sunday"}},

	// ---- enforcement co-operation, §8
	"EN-DL-01": {
		{clock: "EN-DL-01.listing", start: "2025-10-01 10:00", want: "2027-10-01 24:00", prov: true, why: "2 y into 2027: no data, so Oct 1 2027 counts as a working Friday"},
		{clock: "EN-DL-01.listing", start: "2025-10-01 10:00", events: []ev{{"extend", "2026-10-01 10:00", "aggravated", "1y"}}, want: "2028-10-02 24:00", prov: true, why: "+1 y: Sunday rolls"},
		{clock: "EN-DL-01.removal", start: "2025-09-30 10:00", want: "2025-10-11 24:00", why: "3 working days: Oct 9, 10 and 调休 Saturday 11"},
		{clock: "EN-DL-01.correction", start: "2026-09-12 10:00", want: "2026-09-28 24:00", why: "15 d to Sep 27"},
	},
}

// runRowCase applies one case and returns the due and provisional flag.
func runRowCase(t *testing.T, cal *Calendar, spec ClockSpec, c rowCase) (time.Time, bool, error) {
	t.Helper()
	cl := NewClock(cal, spec)
	if err := cl.Start(at(t, c.start), c.detained); err != nil {
		return time.Time{}, false, err
	}
	for _, e := range c.events {
		var by Period
		if e.by != "" {
			p, err := ParsePeriod(e.by)
			if err != nil {
				t.Fatalf("bad test period %q", e.by)
			}
			by = p
		}
		err := cl.Apply(ClockEvent{Kind: EventKind(e.kind), At: at(t, e.at), Ref: e.ref, By: by, Detained: c.detained})
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%s %s at %s: %w", e.kind, e.ref, e.at, err)
		}
	}
	due, prov := cl.Due()
	return due, prov, nil
}

// TestDeadlineRows runs, for every row of the shipped clock table, the cases of
// rowCases; every clock of every row must be covered, and so must each of its
// extensions, pauses and restarts.
func TestDeadlineRows(t *testing.T) {
	d := mustLoadShipped(t)
	for _, row := range d.Clocks.Rows {
		t.Run(row.ID, func(t *testing.T) {
			cases, ok := rowCases[row.ID]
			if !ok {
				t.Fatalf("row %s has no test cases", row.ID)
			}
			covered := map[string]bool{}
			for _, c := range cases {
				spec, ok := d.Clocks.Spec(c.clock)
				if !ok || spec.Row != row.ID {
					t.Errorf("case clock %q is not a clock of row %s", c.clock, row.ID)
					continue
				}
				covered[c.clock] = true
				for _, e := range c.events {
					covered[c.clock+"/"+e.ref] = true
				}
				due, prov, err := runRowCase(t, d.Calendar, spec, c)
				if err != nil {
					t.Errorf("%s from %s (detained %v): %v", c.clock, c.start, c.detained, err)
					continue
				}
				if show(due) != c.want || prov != c.prov {
					t.Errorf("Due(%s, start %s, detained %v, events %v) = %s provisional %v, want %s provisional %v (%s)",
						c.clock, c.start, c.detained, c.events, show(due), prov, c.want, c.prov, c.why)
				}
			}
			for _, spec := range row.Clocks {
				if !covered[spec.ID] {
					t.Errorf("clock %s has no test case", spec.ID)
				}
				for _, x := range spec.Extends {
					if !covered[spec.ID+"/"+x.ID] {
						t.Errorf("extension %s of %s has no test case", x.ID, spec.ID)
					}
				}
				for _, p := range spec.Pauses {
					if !covered[spec.ID+"/"+p.ID] && !pauseCoveredElsewhere(spec, p.ID) {
						t.Errorf("pause %s of %s has no test case", p.ID, spec.ID)
					}
				}
				for _, r := range spec.Restarts {
					if !covered[spec.ID+"/"+r.ID] {
						t.Errorf("restart %s of %s has no test case", r.ID, spec.ID)
					}
				}
			}
		})
	}
	for id := range rowCases {
		if _, ok := d.Clocks.Row(id); !ok {
			t.Errorf("rowCases has %s, which is not a row of configs/clocks.json", id)
		}
	}
}

// pauseCoveredElsewhere: pause reasons only differ by their name (every pause
// excludes time the same way), so for clocks with a list of several reasons
// one tested reason covers the mechanism. The lists themselves are data.
func pauseCoveredElsewhere(spec ClockSpec, id string) bool { return len(spec.Pauses) > 1 }
