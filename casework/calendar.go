package casework

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // so that Asia/Shanghai resolves on hosts without a zoneinfo database
)

// Shanghai is the zone every statutory period is counted in: a period "ends at
// 24:00 of its last day" in Beijing time, wherever the server runs. It is
// Asia/Shanghai from the embedded tz database, or a fixed UTC+8 zone (China has
// had no DST since 1991) if that could not be loaded.
var Shanghai = loadShanghai()

func loadShanghai() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*60*60)
	}
	return loc
}

// A Date is a civil date in Beijing time, without a time of day.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the Beijing-time date of t.
func DateOf(t time.Time) Date {
	y, m, d := t.In(Shanghai).Date()
	return Date{y, m, d}
}

// ParseDate parses "2006-01-02". Impossible dates such as 2025-02-30 are errors.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("bad date %q: want YYYY-MM-DD", s)
	}
	return DateOf(time.Date(t.Year(), t.Month(), t.Day(), 12, 0, 0, 0, Shanghai)), nil
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// Start returns 00:00 of d in Beijing time.
func (d Date) Start() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, Shanghai) }

// End returns 24:00 of d, that is 00:00 of the next day: the instant a period
// whose last day is d expires.
func (d Date) End() time.Time { return d.AddDays(1).Start() }

// AddDays returns the date n days after d (before, for negative n).
func (d Date) AddDays(n int) Date {
	t := time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC)
	return Date{t.Year(), t.Month(), t.Day()}
}

// DaysUntil returns the number of days from d to e (negative if e is earlier).
func (d Date) DaysUntil(e Date) int {
	a := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC)
	b := time.Date(e.Year, e.Month, e.Day, 12, 0, 0, 0, time.UTC)
	return int(b.Sub(a).Round(24*time.Hour) / (24 * time.Hour))
}

// Before reports whether d is earlier than e.
func (d Date) Before(e Date) bool { return d.DaysUntil(e) > 0 }

// Weekday returns d's day of the week.
func (d Date) Weekday() time.Weekday {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).Weekday()
}

func lastDayOfMonth(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 12, 0, 0, 0, time.UTC).Day()
}

// AddMonths counts n months from d by the rule of SPC-CI Art. 202 ¶1: to the same
// day of the n-th following month; if d is the last day of its month, to the last
// day of that month; if that month has no such day, to its last day.
//
// RULE: SPC-CI Art. 202 ¶1 (months run to the same date; month-end clamping).
func (d Date) AddMonths(n int) Date {
	y, m := d.Year, d.Month+time.Month(n)
	for m > 12 {
		y, m = y+1, m-12
	}
	for m < 1 {
		y, m = y-1, m+12
	}
	last := lastDayOfMonth(y, m)
	if d.Day == lastDayOfMonth(d.Year, d.Month) || d.Day > last {
		return Date{y, m, last}
	}
	return Date{y, m, d.Day}
}

// DayKind is how the official calendar marks a date.
type DayKind string

// The kinds of holidays.csv.
const (
	Holiday DayKind = "holiday" // a day off, whatever its weekday
	Workday DayKind = "workday" // a Saturday or Sunday made a working day (调休上班)
)

// A Calendar is the official holiday calendar: which dates are rest days. It is
// immutable after loading and safe for concurrent use.
type Calendar struct {
	days  map[Date]DayKind
	years map[int]bool // years with published data
}

// NewCalendar returns a calendar with the given marked days; every year that has
// at least one marked day is a year with data. It is mostly useful in tests;
// LoadCalendar reads the shipped file.
func NewCalendar(days map[Date]DayKind) *Calendar {
	c := &Calendar{days: map[Date]DayKind{}, years: map[int]bool{}}
	for d, k := range days {
		c.days[d] = k
		c.years[d.Year] = true
	}
	return c
}

// Years returns the years the calendar has data for, in order.
func (c *Calendar) Years() []int {
	var ys []int
	for y := range c.years {
		ys = append(ys, y)
	}
	sort.Ints(ys)
	return ys
}

// Kind returns how the calendar marks d, or "" if it does not mark it.
func (c *Calendar) Kind(d Date) DayKind { return c.days[d] }

// RestDay reports whether d is a rest day: a holiday, or a Saturday or Sunday not
// marked workday. known is false when d's year has no calendar data; then only
// weekends count as rest days.
func (c *Calendar) RestDay(d Date) (rest, known bool) {
	known = c.years[d.Year]
	switch c.days[d] {
	case Holiday:
		return true, known
	case Workday:
		return false, known
	}
	wd := d.Weekday()
	return wd == time.Saturday || wd == time.Sunday, known
}

// NextWorkingDay returns d itself if it is a working day, else the first working
// day after it. provisional is true if a year without data was consulted.
//
// RULE: CPL Art. 105 ¶4, CivPL Art. 85 ¶3 (a last day on a holiday rolls to the
// first working day after it).
func (c *Calendar) NextWorkingDay(d Date) (day Date, provisional bool) {
	for {
		rest, known := c.RestDay(d)
		if !known {
			provisional = true
		}
		if !rest {
			return d, provisional
		}
		d = d.AddDays(1)
	}
}

// LoadCalendar reads a holiday file with the header "date,kind,occasion": one
// row per marked date, kind "holiday" or "workday". It rejects bad dates, unknown
// kinds, duplicate dates and a "workday" that is not a Saturday or Sunday; each
// error names the file, the line and the field.
func LoadCalendar(fsys fs.FS, file string) (*Calendar, error) {
	f, err := fsys.Open(file)
	if err != nil {
		return nil, fmt.Errorf("casework: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 3
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: line 1: %w", file, err)
	}
	if strings.Join(head, ",") != "date,kind,occasion" {
		return nil, fmt.Errorf("%s: line 1: header is %q, want \"date,kind,occasion\"", file, strings.Join(head, ","))
	}
	c := &Calendar{days: map[Date]DayKind{}, years: map[int]bool{}}
	seen := map[Date]int{}
	var errs []error
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			if pe := (*csv.ParseError)(nil); errors.As(err, &pe) && pe.Err == csv.ErrFieldCount {
				continue
			}
			break
		}
		bad := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: line %d: %s: %s", file, line, field, fmt.Sprintf(format, args...)))
		}
		d, err := ParseDate(rec[0])
		if err != nil {
			bad("date", "%v", err)
			continue
		}
		kind := DayKind(rec[1])
		switch kind {
		case Holiday:
		case Workday:
			if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
				bad("kind", "%s is a %s: only a Saturday or Sunday can be made a workday", d, wd)
				continue
			}
		default:
			bad("kind", "unknown kind %q (want holiday or workday)", rec[1])
			continue
		}
		if prev, dup := seen[d]; dup {
			bad("date", "duplicate date %s (first on line %d)", d, prev)
			continue
		}
		seen[d] = line
		c.days[d] = kind
		c.years[d.Year] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// A Period is a statutory length: months and days, hours, or working days. Months
// are counted first, then days (1.5 months = "1m15d", SPC-CI Art. 202: half a
// month is 15 days). Its text form, used in the JSON files, is e.g. "3d", "2m",
// "1m15d", "2y" (= 24 months), "24h", "3wd".
type Period struct {
	Months   int
	Days     int
	Hours    int
	WorkDays int
}

// IsZero reports whether p is no time at all.
func (p Period) IsZero() bool { return p == Period{} }

// unit names p's unit family: "h", "wd" or "d" (months and days).
func (p Period) unit() string {
	switch {
	case p.Hours != 0:
		return "h"
	case p.WorkDays != 0:
		return "wd"
	}
	return "d"
}

// less orders two periods of one unit family.
func (p Period) less(q Period) bool {
	if p.Months != q.Months {
		return p.Months < q.Months
	}
	return p.Days+p.Hours+p.WorkDays < q.Days+q.Hours+q.WorkDays
}

func (p Period) String() string {
	var b strings.Builder
	if p.Months != 0 {
		fmt.Fprintf(&b, "%dm", p.Months)
	}
	if p.Days != 0 {
		fmt.Fprintf(&b, "%dd", p.Days)
	}
	if p.Hours != 0 {
		fmt.Fprintf(&b, "%dh", p.Hours)
	}
	if p.WorkDays != 0 {
		fmt.Fprintf(&b, "%dwd", p.WorkDays)
	}
	if b.Len() == 0 {
		return "0d"
	}
	return b.String()
}

// ParsePeriod parses the text form of a Period. Hours and working days cannot be
// mixed with anything else; every number must be positive.
func ParsePeriod(s string) (Period, error) {
	var p Period
	rest := s
	if rest == "" {
		return p, errors.New("empty period")
	}
	seen := map[string]bool{}
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return Period{}, fmt.Errorf("bad period %q: want e.g. 3d, 2m, 1m15d, 2y, 24h, 3wd", s)
		}
		n, _ := strconv.Atoi(rest[:i])
		rest = rest[i:]
		unit := ""
		for _, u := range []string{"wd", "y", "m", "d", "h"} {
			if strings.HasPrefix(rest, u) {
				unit = u
				break
			}
		}
		if unit == "" || n <= 0 || seen[unit] {
			return Period{}, fmt.Errorf("bad period %q: want e.g. 3d, 2m, 1m15d, 2y, 24h, 3wd", s)
		}
		seen[unit] = true
		rest = rest[len(unit):]
		switch unit {
		case "y":
			p.Months += 12 * n
		case "m":
			p.Months += n
		case "d":
			p.Days = n
		case "h":
			p.Hours = n
		case "wd":
			p.WorkDays = n
		}
	}
	if (p.Hours != 0 || p.WorkDays != 0) && len(seen) > 1 {
		return Period{}, fmt.Errorf("bad period %q: hours and working days cannot be mixed with other units", s)
	}
	return p, nil
}

// MarshalText implements encoding.TextMarshaler.
func (p Period) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Period) UnmarshalText(b []byte) error {
	q, err := ParsePeriod(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// nextFullHour returns the first full hour after t: the hour in which t falls is
// not counted, even if t is exactly on the hour.
//
// RULE: CPL Art. 105 ¶2 (期间开始的时和日不算在期间以内: the starting hour is not counted).
func nextFullHour(t time.Time) time.Time {
	t = t.In(Shanghai)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, Shanghai).Add(time.Hour)
}

// addPeriod returns the nominal last day of a day-based period of length p that
// starts on day start (which is not counted), before any roll-over. Working days
// are counted on this calendar; provisional reports use of a year without data.
//
// RULE: CPL Art. 105 ¶2, CivPL Art. 85 ¶2 (the start day is not counted).
func (c *Calendar) addPeriod(start Date, p Period) (last Date, provisional bool) {
	if p.WorkDays > 0 {
		d := start
		for n := 0; n < p.WorkDays; {
			d = d.AddDays(1)
			rest, known := c.RestDay(d)
			if !known {
				provisional = true
			}
			if !rest {
				n++
			}
		}
		return d, provisional
	}
	return start.AddMonths(p.Months).AddDays(p.Days), false
}

// Due returns the instant the period of spec expires for a clock started at
// start (an act's occurred_at), with no extension, pause or restart. detained
// says whether the person concerned is in custody, which matters for clocks whose
// Custody is CustodyIfDetained.
//
// Day and month periods end at 24:00 Beijing time of their last day; a last day
// that is a rest day rolls to the next working day unless the clock is a custody
// period. Hour periods count from the next full hour and never roll. A Before
// clock ends at 24:00 of the day Length before the day of start and never rolls.
// provisional is true when the result depends on a year the calendar has no data
// for (only weekends were counted as rest days then).
func (c *Calendar) Due(spec ClockSpec, start time.Time, detained bool) (due time.Time, provisional bool) {
	cl := NewClock(c, spec)
	if err := cl.Start(start, detained); err != nil {
		// Start only fails on an invalid spec, which loading rejects.
		return time.Time{}, false
	}
	return cl.Due()
}
