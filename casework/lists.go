package casework

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// A Projection is what the store keeps of a case for lists, search and to-do
// queues. It is derived from the case (project) and can be rebuilt from the
// room's log at any time; it is never the truth.
type Projection struct {
	ID         CaseID         `json:"id"`
	Room       chat.RoomID    `json:"room"`
	Procedure  string         `json:"procedure"`
	Title      string         `json:"title"`
	Cause      string         `json:"cause,omitempty"`
	Stage      string         `json:"stage"`
	Holder     acl.UnitID     `json:"holder"`
	PendingTo  acl.UnitID     `json:"pending_to,omitempty"`
	ReturnedTo acl.UnitID     `json:"returned_to,omitempty"`
	Region     acl.RegionCode `json:"region"`
	Committee  acl.UnitID     `json:"committee"`
	Units      []acl.UnitID   `json:"units"`    // participants
	Handlers   []acl.UserID   `json:"handlers"` // of every unit
	Numbers    []string       `json:"numbers"`
	Parties    []Party        `json:"parties"` // personal data: shown to members only
	Closed     bool           `json:"closed"`
	Returns    int            `json:"returns"`
	NextDue    time.Time      `json:"next_due,omitzero"` // earliest due of the running clocks
	Open       []OpenItem     `json:"open"`              // what units have to answer
	Head       chat.Seq       `json:"head"`
	Scanned    chat.Seq       `json:"scanned"` // entries up to here are in the intervention register if they must be
	OpenedAt   time.Time      `json:"opened_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
}

// An OpenItem is something a unit has to answer in a case: the to-do queue's
// raw material.
type OpenItem struct {
	Kind       string     `json:"kind"` // transfer, return, request, notice, challenge, approval, supervision
	Seq        chat.Seq   `json:"seq"`
	Unit       acl.UnitID `json:"unit"` // who must answer
	From       acl.UnitID `json:"from,omitempty"`
	By         acl.UserID `json:"by,omitempty"`
	Transition string     `json:"transition,omitempty"`
	Suspect    string     `json:"suspect,omitempty"`
	Internal   bool       `json:"internal,omitempty"`
	Clock      string     `json:"clock,omitempty"`     // an approval of an extension: the clock
	Extension  string     `json:"extension,omitempty"` // and the extension asked for
}

// A Filter selects projections. Zero fields match everything.
type Filter struct {
	Handler   acl.UserID
	Unit      acl.UnitID       // a participant
	Regions   []acl.RegionCode // the case's region is one of them
	Stage     string
	Procedure string
	Holder    acl.UnitID
	Number    string    // a case number containing this text
	DueBefore time.Time // next due before this
	Closed    *bool
	Limit     int // default 100, at most 500
}

// project derives the projection of c; due is the next due time of its clocks.
func project(c *Case, due time.Time) Projection {
	p := Projection{ID: c.ID, Room: c.Room, Procedure: c.Procedure, Title: c.Title, Cause: c.Cause, Stage: c.Stage,
		Holder: c.Holder, ReturnedTo: c.ReturnedTo, Region: c.Region, Committee: c.Committee,
		Units: slices.Clone(c.Participants), Parties: slices.Clone(c.Parties), Closed: c.Closed, Returns: c.Returns,
		NextDue: due.UTC(), Head: c.Head, Scanned: c.Head, OpenedAt: c.OpenedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
		Handlers: []acl.UserID{}, Numbers: []string{}, Open: []OpenItem{}}
	if due.IsZero() {
		p.NextDue = time.Time{}
	}
	for _, u := range c.Participants {
		for _, h := range c.Handlers[u] {
			if !slices.Contains(p.Handlers, h) {
				p.Handlers = append(p.Handlers, h)
			}
		}
	}
	for u, hs := range c.Handlers {
		if !slices.Contains(c.Participants, u) {
			for _, h := range hs {
				if !slices.Contains(p.Handlers, h) {
					p.Handlers = append(p.Handlers, h)
				}
			}
		}
	}
	sort.Slice(p.Handlers, func(i, j int) bool { return p.Handlers[i] < p.Handlers[j] })
	for _, n := range c.Numbers {
		p.Numbers = append(p.Numbers, n.Number)
	}
	if c.Pending != nil {
		p.PendingTo = c.Pending.To
		p.Open = append(p.Open, OpenItem{Kind: "transfer", Seq: c.Pending.Seq, Unit: c.Pending.To, From: c.Pending.From,
			By: c.Pending.By, Transition: c.Pending.Transition})
	}
	if c.ReturnedTo != "" {
		p.Open = append(p.Open, OpenItem{Kind: "return", Seq: c.ReturnSeq, Unit: c.ReturnedTo})
	}
	for _, r := range c.Requests {
		p.Open = append(p.Open, OpenItem{Kind: r.Kind, Seq: r.Seq, Unit: r.To, From: r.From, By: r.By, Transition: r.Transition, Suspect: r.Suspect})
	}
	for _, s := range c.Suspects {
		if r := s.Request; r != nil {
			p.Open = append(p.Open, OpenItem{Kind: r.Kind, Seq: r.Seq, Unit: r.To, From: r.From, By: r.By, Transition: r.Transition, Suspect: s.Party})
		}
	}
	for _, a := range c.Approvals {
		if a.Decided == 0 {
			p.Open = append(p.Open, OpenItem{Kind: "approval", Seq: a.Seq, Unit: a.Target, From: a.Unit, By: a.By,
				Transition: a.Transition, Suspect: a.Suspect, Internal: a.Internal, Clock: a.Clock, Extension: a.Extension})
		}
	}
	for _, s := range c.Supervisions {
		for _, u := range s.Units {
			if s.Answered[u] == 0 {
				p.Open = append(p.Open, OpenItem{Kind: "supervision", Seq: s.Seq, Unit: u, From: s.Unit, By: s.By})
			}
		}
	}
	return p
}

// ListQuery selects cases for the caller: Scope is "mine" (the caller is a
// named handler), "unit" (the caller's unit takes part) or "jurisdiction"
// (every case of the caller's region, for supervisors and auditors).
type ListQuery struct {
	Scope     string
	Stage     string
	Procedure string
	Region    acl.RegionCode
	Holder    acl.UnitID
	Overdue   bool
	Limit     int
}

// A Summary is one line of a case list.
type Summary struct {
	Projection
}

// List returns the cases q selects, most recently updated first. Parties are
// left out: a list is not the case.
func (s *Service) List(ctx context.Context, q ListQuery) ([]Summary, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	f := Filter{Stage: q.Stage, Procedure: q.Procedure, Holder: q.Holder, Limit: q.Limit}
	if q.Overdue {
		f.DueBefore = s.now()
		open := false
		f.Closed = &open
	}
	base := who.Region
	switch q.Scope {
	case "", "mine":
		f.Handler = who.User
	case "unit":
		f.Unit = who.Unit
	case "jurisdiction":
		res := acl.Resource{Kind: "cases", Unit: who.Unit, Region: who.Region}
		if _, err := s.guard.Check(ctx, who, ListJurisdiction, res); err != nil {
			return nil, err
		}
	default:
		return nil, invalid("scope", `must be "mine", "unit" or "jurisdiction"`)
	}
	if q.Region != "" {
		if q.Scope == "jurisdiction" && !s.guard.Regions().Covers(who.Region, q.Region) {
			return nil, invalid("region", fmt.Sprintf("%s is outside your jurisdiction", q.Region))
		}
		base = q.Region
	}
	if q.Scope == "jurisdiction" || q.Region != "" {
		f.Regions = s.covered(base)
	}
	ps, err := s.store.Cases(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(ps))
	for _, p := range ps {
		p.Parties = nil
		out = append(out, Summary{p})
	}
	return out, nil
}

// covered returns region and every region below it.
func (s *Service) covered(region acl.RegionCode) []acl.RegionCode {
	out := []acl.RegionCode{region}
	tree := s.guard.Regions()
	for code := range s.regions {
		if code != region && tree.Covers(region, code) {
			out = append(out, code)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Search returns the cases the caller may see whose case numbers contain
// number. Hidden cases are left out without a trace.
func (s *Service) Search(ctx context.Context, number string) ([]Summary, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	if n := len([]rune(number)); n < 2 || n > 64 {
		return nil, invalid("number", "must be 2 to 64 characters")
	}
	ps, err := s.store.Cases(ctx, Filter{Number: number, Limit: 100})
	if err != nil {
		return nil, err
	}
	out := []Summary{}
	for _, p := range ps {
		if s.mayRead(ctx, who, p) {
			p.Parties = nil
			out = append(out, Summary{p})
		}
	}
	return out, nil
}

// mayRead asks the Guard, without auditing, whether who may read p's room.
func (s *Service) mayRead(ctx context.Context, who acl.Subject, p Projection) bool {
	var role chat.RoomRole
	if m, err := s.rooms.Membership(ctx, p.Room, who.User); err == nil {
		role = m.Role
	}
	c := Case{Room: p.Room, Committee: p.Committee, Region: p.Region}
	return s.guard.Decide(who, acl.ReadRoom, c.roomResource(role)).Allow
}

// A TodoItem is one thing the caller has to do.
type TodoItem struct {
	Case    CaseID
	Title   string
	Numbers []string
	Stage   string
	Item    OpenItem
	// Mention is set for a message that mentions the caller after their read marker.
	Mention *chat.Message
}

// Todo returns the caller's to-do queue: transfers to accept or return and
// returns to answer (for the unit's officers, clerks and leaders), requests,
// notices and challenges addressed to the unit, supervision notices to act on,
// approvals to decide (for the leaders, or acting leaders, who may give them —
// never the asker), and messages in case rooms that mention the caller and
// that they have not read.
func (s *Service) Todo(ctx context.Context) ([]TodoItem, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	open := false
	ps, err := s.store.Cases(ctx, Filter{Unit: who.Unit, Closed: &open, Limit: 500})
	if err != nil {
		return nil, err
	}
	acting := who.HasAny(acl.Officer, acl.Clerk, acl.Leader)
	out := []TodoItem{}
	for _, p := range ps {
		for _, it := range p.Open {
			if it.Unit != who.Unit {
				continue
			}
			switch it.Kind {
			case "approval":
				if it.By == who.User || !s.mayApprove(ctx, who, p, it) {
					continue
				}
			default:
				if !acting {
					continue
				}
			}
			out = append(out, TodoItem{Case: p.ID, Title: p.Title, Numbers: p.Numbers, Stage: p.Stage, Item: it})
		}
	}
	mentions, err := s.mentions(ctx, who)
	if err != nil {
		return nil, err
	}
	return append(out, mentions...), nil
}

// mayApprove reports whether who could decide approval item it of case p: a
// leader, or the acting leader named on the case for now.
func (s *Service) mayApprove(ctx context.Context, who acl.Subject, p Projection, it OpenItem) bool {
	if who.Has(acl.Leader) {
		return true
	}
	if !it.Internal {
		return false
	}
	room, err := s.rooms.Room(ctx, p.Room)
	if err != nil {
		return false
	}
	v, err := s.load(ctx, room)
	if err != nil {
		return false
	}
	return v.c.withDelegation(who, s.now()).Has(acl.Leader)
}

// mentions returns the unread messages of the caller's case rooms that mention
// them (or @所有人).
func (s *Service) mentions(ctx context.Context, who acl.Subject) ([]TodoItem, error) {
	rooms, err := s.rooms.RoomsOf(ctx, who.User)
	if err != nil {
		return nil, err
	}
	var out []TodoItem
	for _, r := range rooms {
		if r.Room.Kind != chat.CaseRoom || r.Unread == 0 {
			continue
		}
		page, err := s.rooms.History(ctx, r.Room.ID, chat.HistoryQuery{After: r.Read, Limit: chat.MaxPage})
		if err != nil {
			return nil, err
		}
		for i := range page {
			m := page[i]
			if m.Retracted != 0 || m.Sender == who.User {
				continue
			}
			if slices.Contains(m.Mentions, who.User) || slices.Contains(m.Mentions, chat.MentionAllID) {
				out = append(out, TodoItem{Case: CaseID(r.Room.ID), Title: r.Room.Name, Item: OpenItem{Kind: "mention", Seq: m.Seq, Unit: who.Unit, By: m.Sender}, Mention: &m})
			}
		}
	}
	return out, nil
}

// Receipt says, for one act addressed to a unit, what became of it: delivered
// (stored in the room, so on its members' sockets and in their history), read
// by whom and when (from read markers), and accepted or returned by whom and
// when. Receipts are derived, never log entries (DESIGN.md "Act").
type Receipt struct {
	Seq       chat.Seq
	Unit      acl.UnitID
	Delivered time.Time
	Read      []chat.Receipt
	Answered  chat.Seq // the accept, return or decision that answered it
	Outcome   string   // "accepted", "returned", "decided", "" while open
	By        acl.UserID
	At        time.Time
}

// Receipt returns the receipt of the act at seq for the unit it was addressed
// to (a transfer's receiver, a request's addressee, an approval's approver).
func (s *Service) Receipt(ctx context.Context, id CaseID, seq chat.Seq) (Receipt, error) {
	v, err := s.visible(ctx, id)
	if err != nil {
		return Receipt{}, err
	}
	c := &v.c
	r := Receipt{Seq: seq}
	m, err := s.rooms.Message(ctx, v.room.ID, seq)
	if err != nil {
		return Receipt{}, ErrCaseNotFound
	}
	r.Delivered = m.CreatedAt
	i := slices.IndexFunc(c.Acts, func(a ActLog) bool { return a.Seq == seq })
	switch {
	case i >= 0 && c.Acts[i].Target != "":
		r.Unit = c.Acts[i].Target
	answers:
		for _, a := range c.Acts[i+1:] {
			if a.Unit == r.Unit {
				r.Answered, r.By, r.At = a.Seq, a.By, a.PostedAt
				switch a.Kind {
				case KindAccept:
					r.Outcome = "accepted"
				case KindReturn:
					r.Outcome = "returned"
				default:
					r.Outcome = "answered"
				}
				break answers
			}
		}
	default:
		j := slices.IndexFunc(c.Approvals, func(a ApprovalState) bool { return a.Seq == seq })
		if j < 0 {
			return Receipt{}, invalid("seq", "not an act addressed to a unit")
		}
		ap := c.Approvals[j]
		r.Unit = ap.Target
		if ap.Decided != 0 {
			r.Answered, r.By, r.Outcome = ap.Decided, ap.DecidedBy, "refused"
			if ap.Granted {
				r.Outcome = "granted"
			}
			if dm, err := s.rooms.Message(ctx, v.room.ID, ap.Decided); err == nil {
				r.At = dm.CreatedAt
			}
		}
	}
	reads, err := s.chat.Receipts(ctx, v.room.ID, seq, r.Unit)
	if err != nil && !errors.Is(err, chat.ErrNotFound) {
		return Receipt{}, err
	}
	r.Read = reads
	return r, nil
}

// Clocked is an open case with its statutory clocks evaluated.
type Clocked struct {
	Case Case
	// Clocks are keyed by clock ID, with "/" and the party id appended for a
	// suspect's clock (the key the deadline bot's OpenClock.Instance uses).
	Clocks map[string]*Clock
}

// ClockedCases returns the open cases f selects, each replayed from its log
// with its clocks evaluated. It asks no Guard: it serves system paths (the
// deadline bot, through an adapter to its ClockSource) and due lists whose
// callers have decided who may see what. Without Options.Clocks and
// Options.Calendar it answers an error.
func (s *Service) ClockedCases(ctx context.Context, f Filter) ([]Clocked, error) {
	if s.opts.Clocks == nil || s.opts.Calendar == nil {
		return nil, errors.New("casework: no clock table or calendar configured")
	}
	open := false
	f.Closed = &open
	ps, err := s.store.Cases(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]Clocked, 0, len(ps))
	for _, p := range ps {
		room, err := s.rooms.Room(ctx, p.Room)
		if err != nil {
			return nil, err
		}
		v, err := s.load(ctx, room)
		if err != nil {
			return nil, err
		}
		clocks, skipped := v.c.Clocks(s.opts.Clocks, s.opts.Calendar)
		for _, e := range skipped {
			s.log.DebugContext(ctx, "clock event skipped", "case", p.ID, "err", e)
		}
		out = append(out, Clocked{Case: v.c, Clocks: clocks})
	}
	return out, nil
}
