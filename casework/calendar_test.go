package casework

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func mustDate(t *testing.T, s string) Date {
	t.Helper()
	d, err := ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAddMonths(t *testing.T) {
	tests := []struct {
		from string
		n    int
		want string
	}{
		{"2025-03-15", 2, "2025-05-15"},
		{"2025-01-31", 1, "2025-02-28"}, // no Feb 31: clamp to the month's last day
		{"2024-01-31", 1, "2024-02-29"}, // leap year
		{"2028-01-30", 1, "2028-02-29"}, // leap year 2028, clamp
		{"2025-02-28", 1, "2025-03-31"}, // Feb 28 2025 is a month end: to the next month's end
		{"2024-02-28", 1, "2024-03-28"}, // not a month end in a leap year
		{"2024-02-29", 1, "2024-03-31"},
		{"2028-02-29", 12, "2029-02-28"},
		{"2025-04-30", 1, "2025-05-31"},
		{"2025-08-31", 1, "2025-09-30"},
		{"2025-11-30", 3, "2026-02-28"},
		{"2025-12-31", 2, "2026-02-28"},
		{"2025-10-15", 24, "2027-10-15"},
		{"2025-03-31", -1, "2025-02-28"},
	}
	for _, tt := range tests {
		if got := mustDate(t, tt.from).AddMonths(tt.n).String(); got != tt.want {
			t.Errorf("AddMonths(%s, %d) = %s, want %s", tt.from, tt.n, got, tt.want)
		}
	}
}

func TestParsePeriod(t *testing.T) {
	good := []struct {
		in   string
		want Period
	}{
		{"3d", Period{Days: 3}},
		{"2m", Period{Months: 2}},
		{"1m15d", Period{Months: 1, Days: 15}},
		{"2y", Period{Months: 24}},
		{"1y6m", Period{Months: 18}},
		{"24h", Period{Hours: 24}},
		{"3wd", Period{WorkDays: 3}},
	}
	for _, tt := range good {
		got, err := ParsePeriod(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParsePeriod(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "3", "d", "0d", "3x", "1h2d", "2wd3d", "3d3d", "-1d"} {
		if got, err := ParsePeriod(in); err == nil {
			t.Errorf("ParsePeriod(%q) = %+v, nil; want an error", in, got)
		}
	}
}

func TestRestDay(t *testing.T) {
	cal := mustLoadShipped(t).Calendar
	tests := []struct {
		day         string
		rest, known bool
	}{
		{"2025-10-01", true, true},   // National Day
		{"2025-10-08", true, true},   // National Day (Wednesday)
		{"2025-09-28", false, true},  // 调休 Sunday, a working day
		{"2025-10-11", false, true},  // 调休 Saturday
		{"2025-10-12", true, true},   // ordinary Sunday
		{"2025-10-09", false, true},  // ordinary Thursday
		{"2026-02-14", false, true},  // 调休 Saturday before Spring Festival
		{"2026-02-23", true, true},   // Spring Festival (Monday)
		{"2027-01-01", false, false}, // no 2027 data: a Friday counts as working
		{"2027-01-02", true, false},  // no data: Saturday is a rest day
	}
	for _, tt := range tests {
		rest, known := cal.RestDay(mustDate(t, tt.day))
		if rest != tt.rest || known != tt.known {
			t.Errorf("RestDay(%s) = %v, %v; want %v, %v", tt.day, rest, known, tt.rest, tt.known)
		}
	}
}

func TestNextWorkingDay(t *testing.T) {
	cal := mustLoadShipped(t).Calendar
	tests := []struct {
		day, want string
		prov      bool
	}{
		{"2025-10-01", "2025-10-09", false},
		{"2025-10-04", "2025-10-09", false},
		{"2026-02-15", "2026-02-24", false},
		{"2025-10-11", "2025-10-11", false},
		{"2026-01-01", "2026-01-04", false}, // Jan 4 2026 is a 调休 Sunday
		{"2025-12-31", "2025-12-31", false},
		{"2026-12-31", "2026-12-31", false},
		{"2027-01-02", "2027-01-04", true},
	}
	for _, tt := range tests {
		got, prov := cal.NextWorkingDay(mustDate(t, tt.day))
		if got.String() != tt.want || prov != tt.prov {
			t.Errorf("NextWorkingDay(%s) = %s, %v; want %s, %v", tt.day, got, prov, tt.want, tt.prov)
		}
	}
}

func TestDateEndIsMidnightShanghai(t *testing.T) {
	got := mustDate(t, "2025-10-09").End()
	want := time.Date(2025, 10, 9, 16, 0, 0, 0, time.UTC) // 24:00 Beijing = 16:00 UTC
	if !got.Equal(want) {
		t.Errorf("Date(2025-10-09).End() = %s, want %s", got, want)
	}
	if off := got.In(Shanghai).Format("-0700"); off != "+0800" {
		t.Errorf("Shanghai offset = %s, want +0800", off)
	}
}

func TestLoadCalendarErrors(t *testing.T) {
	const head = "date,kind,occasion\n"
	tests := []struct {
		name, csv, want string
	}{
		{"bad date", head + "2025-02-30,holiday,x\n", `holidays.csv: line 2: date: bad date "2025-02-30"`},
		{"not a date", head + "2025/01/01,holiday,x\n", `holidays.csv: line 2: date: bad date "2025/01/01"`},
		{"unknown kind", head + "2025-01-01,vacation,x\n", `holidays.csv: line 2: kind: unknown kind "vacation"`},
		{"duplicate", head + "2025-01-01,holiday,x\n2025-01-01,holiday,y\n", `holidays.csv: line 3: date: duplicate date 2025-01-01 (first on line 2)`},
		{"workday on a weekday", head + "2025-01-02,workday,x\n", `holidays.csv: line 2: kind: 2025-01-02 is a Thursday`},
		{"bad header", "day,kind,occasion\n", `holidays.csv: line 1: header is "day,kind,occasion"`},
		{"wrong field count", head + "2025-01-01,holiday\n", `holidays.csv: record on line 2: wrong number of fields`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"holidays.csv": {Data: []byte(tt.csv)}}
			_, err := LoadCalendar(fsys, "holidays.csv")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadCalendar(%q) error = %v, want it to contain %q", tt.csv, err, tt.want)
			}
		})
	}
	ok := fstest.MapFS{"h.csv": {Data: []byte(head + "2025-01-26,workday,春节\n2025-01-28,holiday,春节\n")}}
	cal, err := LoadCalendar(ok, "h.csv")
	if err != nil || cal.Kind(mustDate(t, "2025-01-26")) != Workday || len(cal.Years()) != 1 {
		t.Errorf("LoadCalendar(good file) = %v, %v", cal, err)
	}
}

func TestShippedCalendarIsTheSharedFile(t *testing.T) {
	cal := mustLoadShipped(t).Calendar
	holidays, workdays := 0, 0
	for _, y := range []int{2025, 2026} {
		for d := (Date{y, 1, 1}); d.Year == y; d = d.AddDays(1) {
			switch cal.Kind(d) {
			case Holiday:
				holidays++
			case Workday:
				workdays++
			}
		}
	}
	// domain/holidays-cn-2025-2026.csv: 72 rows, 61 holidays and 11 workdays.
	if holidays != 61 || workdays != 11 {
		t.Errorf("calendar has %d holidays and %d workdays, want 61 and 11", holidays, workdays)
	}
}
