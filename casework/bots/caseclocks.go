package bots

import (
	"context"

	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"caseroom/acl"
	"caseroom/casework"
	"caseroom/chat"
)

// Cases is what CaseClocks needs of the case service's store: the projections
// of the cases whose clocks may be open. casework.Store is one.
type Cases interface {
	Cases(ctx context.Context, f casework.Filter) ([]casework.Projection, error)
}

// maxCases is the most casework.Store.Cases returns for one filter.
const maxCases = 500

// CaseClocks is the ClockSource on the case service. The projection (which
// is never the truth, only an index) finds the open cases that may have a clock
// in the filter; each such case's clocks are then derived from its room's log
// with casework.Replay and Case.Clocks, exactly as the case service derives
// them. Replays are kept while the projection's head is unchanged.
type CaseClocks struct {
	cases   Cases
	rooms   chat.Store
	d       *casework.Domain
	regions []acl.RegionCode
	log     *slog.Logger

	mu    sync.Mutex
	cache map[casework.CaseID]replayed // guarded by mu
}

type replayed struct {
	head   chat.Seq
	clocks []OpenClock
}

// NewCaseClocks returns a CaseClocks reading projections from cases and logs
// from rooms, with the clock table and calendar of d. regions are every region
// of the directory: a query the projection store caps is split by region.
func NewCaseClocks(cases Cases, rooms chat.Store, d *casework.Domain, regions []acl.Region, log *slog.Logger) *CaseClocks {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rs := make([]acl.RegionCode, len(regions))
	for i, r := range regions {
		rs[i] = r.Code
	}
	return &CaseClocks{cases: cases, rooms: rooms, d: d, regions: rs, log: log, cache: map[casework.CaseID]replayed{}}
}

// OpenClocks returns the running and paused clocks f selects.
func (s *CaseClocks) OpenClocks(ctx context.Context, f ClockFilter) ([]OpenClock, error) {
	open := false
	cf := casework.Filter{Handler: f.Officer, Unit: f.Holder, Regions: f.Regions, Closed: &open, Limit: maxCases}
	if !f.DueBefore.IsZero() && !slices.Contains(f.States, casework.ClockPaused) && len(f.States) > 0 {
		// The projection's NextDue is the earliest due of the running clocks.
		cf.DueBefore = f.DueBefore
	}
	ps, err := s.projections(ctx, cf)
	if err != nil {
		return nil, err
	}
	var out []OpenClock
	seen := map[casework.CaseID]bool{}

	for _, p := range ps {
		if seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		if len(f.Rooms) > 0 && !slices.Contains(f.Rooms, p.Room) {
			continue
		}
		cs, err := s.caseClocks(ctx, p)
		if err != nil {
			// One unreadable case must not silence the reminders of the others.
			s.log.WarnContext(ctx, "case clocks not derived", "case", p.ID, "err", err)
			continue
		}
		for i := range cs {
			if f.Match(&cs[i]) {
				out = append(out, cs[i])
			}
		}
	}
	if f.Officer == "" && f.Holder == "" && len(f.Regions) == 0 && len(f.Rooms) == 0 {
		// A query of every open case (the scheduler's) forgets the replays of
		// the cases it no longer returns, so the cache holds open cases only.
		s.mu.Lock()
		for id := range s.cache {
			if !seen[id] {
				delete(s.cache, id)
			}
		}
		s.mu.Unlock()
	}
	return out, nil
}

// projections runs cf, splitting it by region when the store's cap is hit.
func (s *CaseClocks) projections(ctx context.Context, cf casework.Filter) ([]casework.Projection, error) {
	ps, err := s.cases.Cases(ctx, cf)
	if err != nil || len(ps) < maxCases {
		return ps, err
	}
	regions := cf.Regions
	if len(regions) <= 1 {
		if len(regions) == 1 || len(s.regions) == 0 {
			s.log.WarnContext(ctx, "case list capped; some clocks are left for the next tick", "cap", maxCases, "regions", regions)
			return ps, nil
		}
		regions = s.regions
	}
	var out []casework.Projection
	for _, r := range regions {
		f := cf
		f.Regions = []acl.RegionCode{r}
		part, err := s.cases.Cases(ctx, f)
		if err != nil {
			return nil, err
		}
		if len(part) >= maxCases {
			s.log.WarnContext(ctx, "case list capped; some clocks are left for the next tick", "cap", maxCases, "region", r)
		}
		out = append(out, part...)
	}
	return out, nil
}

// caseClocks returns the open clocks of the case p projects, replaying its
// log unless the replay of the same head is kept.
func (s *CaseClocks) caseClocks(ctx context.Context, p casework.Projection) ([]OpenClock, error) {
	s.mu.Lock()
	r, ok := s.cache[p.ID]
	s.mu.Unlock()
	if ok && r.head == p.Head {
		return r.clocks, nil
	}
	proc, ok := s.d.Procedures[p.Procedure]
	if !ok {
		return nil, fmt.Errorf("unknown procedure %q", p.Procedure)
	}
	entries, err := s.logOf(ctx, p.Room)
	if err != nil {
		return nil, err
	}
	c, err := casework.Replay(proc, entries)
	if err != nil {
		return nil, err
	}
	cs := s.Derive(&c, entries)
	s.mu.Lock()
	s.cache[p.ID] = replayed{head: p.Head, clocks: cs}
	s.mu.Unlock()
	return cs, nil
}

// logOf reads room's whole log: the log, not the projection, is the truth.
func (s *CaseClocks) logOf(ctx context.Context, room chat.RoomID) ([]chat.Message, error) {
	var out []chat.Message
	q := chat.HistoryQuery{Limit: chat.MaxPage}
	for {
		ms, err := s.rooms.History(ctx, room, q)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
		if len(ms) < chat.MaxPage {
			return out, nil
		}
		q.After = ms[len(ms)-1].Seq
	}
}

// Derive returns the open clocks of case c, replayed from entries (its room's
// log): one per clock and suspect, with the unit that must act (the unit of
// the clock's agency kind engaged in the case, or the holder), the committee
// owning the room, a participating procuratorate of the case's region if there
// is one, and the handling officers.
func (s *CaseClocks) Derive(c *casework.Case, entries []chat.Message) []OpenClock {
	clocks, _ := c.Clocks(s.d.Clocks, s.d.Calendar)
	posted := map[chat.Seq]time.Time{}
	for _, m := range entries {
		posted[m.Seq] = m.CreatedAt
	}
	var out []OpenClock
	for key, ck := range clocks {
		if st := ck.State(); st != casework.ClockRunning && st != casework.ClockPaused {
			continue
		}
		id, suspect, _ := strings.Cut(key, "/")
		oc := OpenClock{Case: string(c.ID), Room: c.Room, Region: c.Region, Suspect: suspect, Committee: c.Committee}
		oc.SetTimes(ck)
		if oc.Spec.Direction == casework.Before {
			// A minimum notice counts back from its anchor, which lies ahead: its
			// points apply from when the act that set it was posted.
			oc.Since = startPosted(c, id, suspect, posted)
		}
		for _, p := range c.Parties {
			if p.ID == suspect {
				oc.SuspectName = p.Name
			}
		}
		oc.Holder = c.ClockUnit(oc.Spec.Agency)
		oc.Officers = slices.Clone(c.Handlers[oc.Holder])
		for _, n := range c.Numbers {
			if oc.CaseNumber == "" || n.Unit == oc.Holder {
				oc.CaseNumber = n.Number
			}
		}
		for _, u := range c.Participants {
			if c.Units[u] == "procuratorate" && strings.HasPrefix(string(u), string(c.Region)+"-") {
				oc.Procuratorate = u
			}
		}
		out = append(out, oc)
	}
	slices.SortFunc(out, func(a, b OpenClock) int { return strings.Compare(a.Instance(), b.Instance()) })
	return out
}

// startPosted returns when the entry that last started or restarted the clock
// was posted.
func startPosted(c *casework.Case, id, suspect string, posted map[chat.Seq]time.Time) time.Time {
	var at time.Time
	for _, e := range c.ClockEvents {
		if e.Clock == id && e.Suspect == suspect && (e.Kind == casework.EventStart || e.Kind == casework.EventRestart) {
			at = posted[e.Seq]
		}
	}
	return at
}
