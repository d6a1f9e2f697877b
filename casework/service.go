package casework

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/chat"
)

// Directory is what casework needs to know about units and users; acl.Store
// is one.
type Directory interface {
	Unit(ctx context.Context, id acl.UnitID) (acl.Unit, error)
	Units(ctx context.Context, f acl.UnitFilter) ([]acl.Unit, error)
	User(ctx context.Context, id acl.UserID) (acl.User, error)
	Users(ctx context.Context, f acl.UserFilter) ([]acl.User, error)
}

// Store is what casework keeps beside the room logs: the projection of every
// case for lists and search (rebuildable from the logs at any time), case-number
// serials, and the intervention register, which is not in any room. One
// implementation per database (casework/sqlite, casework/postgres), both
// checked by casework/storetest.
type Store interface {
	// PutCase stores p, replacing the stored projection of p.ID unless that one
	// is of a later Head (a slower writer never overwrites a newer state).
	PutCase(ctx context.Context, p Projection) error
	// Case returns the projection of id, or ErrCaseNotFound.
	Case(ctx context.Context, id CaseID) (Projection, error)
	// Cases returns the projections f selects, most recently updated first.
	Cases(ctx context.Context, f Filter) ([]Projection, error)
	// NextSerial allocates the next case-number serial of unit for year and
	// code, from 1; concurrent callers never get the same one.
	NextSerial(ctx context.Context, unit acl.UnitID, year int, code string) (int, error)
	// AppendIntervention appends r to the register's hash chain, setting Seq,
	// Prev and Hash. An automatic entry (SourceSeq set) that is in the register
	// already is not appended again: dup is true and r is left as given.
	AppendIntervention(ctx context.Context, r *Intervention) (dup bool, err error)
	// Interventions returns the register's entries of a case, in order.
	Interventions(ctx context.Context, id CaseID) ([]Intervention, error)
	// InterventionChain returns up to limit entries after seq, in order, to verify.
	InterventionChain(ctx context.Context, after int64, limit int) ([]Intervention, error)
	// Ping checks the database answers.
	Ping(ctx context.Context) error
}

// Options tune a Service. Zero fields take the defaults stated.
type Options struct {
	// Clocks and Calendar evaluate statutory clocks for the projection's NextDue
	// (the "overdue" filter); nil means no clocks are evaluated.
	Clocks   *ClockTable
	Calendar *Calendar
	// Checklists are the evidence checklists acts mark items of; nil accepts
	// any item id.
	Checklists map[string]*Checklist
	// Audit records refusals that the procedure (not the Guard) decides and every
	// read and entry of the intervention register; acl.Store is one. nil records
	// nothing (tests of the pure parts).
	Audit acl.AuditSink
	// Retries is how often an act is re-checked and re-posted when the room moved
	// on meanwhile (chat.ErrConflict); default 3.
	Retries int
}

// Service is every path into cases: HTTP, WebSocket and bots all end in one of
// its methods. The acting subject comes from the context (acl.SubjectFrom).
// A case the caller may not see answers ErrCaseNotFound; an act the Guard
// refuses answers its *acl.DeniedError (audited by the Guard), one the
// procedure refuses a *RefusedError or *acl.DeniedError (audited here).
type Service struct {
	chat    *chat.Service
	rooms   chat.Store
	store   Store
	guard   *acl.Guard
	dir     Directory
	procs   map[string]*Procedure
	regions map[acl.RegionCode]acl.Region
	now     func() time.Time
	log     *slog.Logger
	opts    Options
}

// NewService returns a Service posting acts through chatSvc (whose registry must
// have casework's kinds: RegisterKinds) and reading logs from chatStore.
func NewService(chatSvc *chat.Service, chatStore chat.Store, store Store, guard *acl.Guard, dir Directory,
	procs map[string]*Procedure, regions []acl.Region, now func() time.Time, log *slog.Logger, opts Options) *Service {
	if opts.Retries <= 0 {
		opts.Retries = 3
	}
	rs := make(map[acl.RegionCode]acl.Region, len(regions))
	for _, r := range regions {
		rs[r.Code] = r
	}
	return &Service{chat: chatSvc, rooms: chatStore, store: store, guard: guard, dir: dir, procs: procs,
		regions: rs, now: now, log: log, opts: opts}
}

// Procedure returns the procedure with id, or nil.
func (s *Service) Procedure(id string) *Procedure { return s.procs[id] }

// Procedures returns the procedures, by id.
func (s *Service) Procedures() map[string]*Procedure { return s.procs }

func subject(ctx context.Context) (acl.Subject, error) {
	who, ok := acl.SubjectFrom(ctx)
	if !ok {
		return acl.Subject{}, acl.ErrUnauthenticated
	}
	return who, nil
}

// guarded is a decider over the Guard that remembers whether the Guard itself
// refused (and so audited), so that the service audits only what it refuses.
type guarded struct {
	s      *Service
	ctx    context.Context
	denied bool
}

func (g *guarded) decide(who acl.Subject, a acl.Action, res acl.Resource) error {
	_, err := g.s.guard.Check(g.ctx, who, a, res)
	if _, ok := errors.AsType[*acl.DeniedError](err); ok {
		g.denied = true
	}
	return err
}

// refusal audits err if it is a refusal the Guard did not make, and returns it.
func (s *Service) refusal(ctx context.Context, g *guarded, who acl.Subject, a acl.Action, res acl.Resource, err error) error {
	if err == nil || (g != nil && g.denied) {
		return err
	}
	var rule string
	if d, ok := errors.AsType[*acl.DeniedError](err); ok {
		rule = d.Rule
	} else if r, ok := errors.AsType[*RefusedError](err); ok {
		rule = r.Rule
	} else {
		return err
	}
	if s.opts.Audit != nil {
		detail, _ := json.Marshal(map[string]string{"rule": rule, "kind": res.Kind, "unit": string(who.Unit), "stage": res.Stage})
		rec := audit.Record{Stream: audit.StreamDenials, At: s.now(), Actor: string(who.User), Action: string(a),
			Target: res.Kind + ":" + res.ID, Outcome: audit.Denied, Detail: string(detail)}
		if aerr := s.opts.Audit.Audit(ctx, rec); aerr != nil {
			return errors.Join(err, aerr)
		}
	}
	return err
}

// view is a case as the caller sees it, with what the caller is to it.
type view struct {
	who   acl.Subject
	room  chat.Room
	role  chat.RoomRole // "" when not a member
	proc  *Procedure
	c     Case
	log   []chat.Message
	track []tracked // entries that may be interventions, with the handling units of their moment
}

// visible loads case id for the subject in ctx, or answers ErrCaseNotFound if
// it is missing or hidden from them (invariant 6). A supervisor's or auditor's
// look as a non-member is recorded in the room by chat (invariant 1).
func (s *Service) visible(ctx context.Context, id CaseID) (*view, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	room, role, err := s.chat.Room(ctx, chat.RoomID(id))
	if errors.Is(err, chat.ErrNotFound) || (err == nil && room.Kind != chat.CaseRoom) {
		return nil, ErrCaseNotFound
	}
	if err != nil {
		return nil, err
	}
	v, err := s.load(ctx, room)
	if err != nil {
		return nil, err
	}
	v.who, v.role = who, role
	return v, nil
}

// load replays room's log. It reads the whole log: case logs are short (acts
// and talk of one case), and the log, not the projection, is the truth.
func (s *Service) load(ctx context.Context, room chat.Room) (*view, error) {
	var entries []chat.Message
	var after chat.Seq
	for {
		page, err := s.rooms.History(ctx, room.ID, chat.HistoryQuery{After: after, Limit: chat.MaxPage})
		if err != nil {
			return nil, err
		}
		entries = append(entries, page...)
		if len(page) < chat.MaxPage {
			break
		}
		after = page[len(page)-1].Seq
	}
	var proc *Procedure
	for i := range entries {
		if entries[i].Kind == KindOpen {
			var o Opened
			if err := json.Unmarshal(entries[i].Payload, &o); err != nil {
				return nil, fmt.Errorf("casework: case %s: %w", room.ID, err)
			}
			proc = s.procs[o.Procedure]
			if proc == nil {
				return nil, fmt.Errorf("casework: case %s: unknown procedure %q", room.ID, o.Procedure)
			}
			break
		}
	}
	if proc == nil {
		return nil, ErrCaseNotFound // a room being opened, or not a case
	}
	c, track, err := replayTracked(proc, entries)
	if err != nil {
		return nil, err
	}
	return &view{room: room, proc: proc, c: c, log: entries, track: track}, nil
}

// tracked is a text entry of the log and the handling units when it was posted.
type tracked struct {
	m        *chat.Message
	handling []acl.UnitID
}

// replayTracked is Replay that also notes every text and file entry with the
// handling units of its moment, for the intervention register.
func replayTracked(proc *Procedure, entries []chat.Message) (Case, []tracked, error) {
	c := newCase()
	if len(entries) == 0 {
		return c, nil, fmt.Errorf("casework: replay: empty log")
	}
	c.ID, c.Room = CaseID(entries[0].Room), entries[0].Room
	var track []tracked
	for i := range entries {
		m := &entries[i]
		if err := c.apply(proc, m); err != nil {
			return c, nil, fmt.Errorf("casework: replay %s seq %d (%s): %w", c.Room, m.Seq, m.Kind, err)
		}
		if (m.Kind == chat.Text || m.Kind == chat.File) && c.Procedure != "" {
			track = append(track, tracked{m: m, handling: c.HandlingUnits()})
		}
	}
	return c, track, nil
}

// occurred returns when an act happened: at, or now if at is zero. It is never
// in the future.
func (s *Service) occurred(at time.Time) (time.Time, error) {
	now := s.now()
	if at.IsZero() {
		return now.UTC().Truncate(time.Microsecond), nil
	}
	if at.After(now) {
		return time.Time{}, invalid("occurred_at", "is in the future")
	}
	return at.UTC().Truncate(time.Microsecond), nil
}

// post appends, in order and each only if the room has not moved on, the
// membership entries that make units participants, then the entries of the
// act. It answers chat.ErrConflict if someone else wrote to the room first.
func (s *Service) post(ctx context.Context, v *view, joins []acl.UnitID, ms ...*chat.Message) error {
	head := v.c.Head
	pre, err := s.joinEntries(ctx, v, joins)
	if err != nil {
		return err
	}
	for _, m := range append(pre, ms...) {
		if err := s.chat.Append(ctx, m, head); err != nil {
			return err
		}
		head = m.Seq
	}
	return nil
}

// postAct posts entries (default: just act) and returns act as posted with the refreshed case: the one way every act ends.
func (s *Service) postAct(ctx context.Context, v *view, joins []acl.UnitID, act *chat.Message, entries ...*chat.Message) (chat.Message, Case, error) {
	if len(entries) == 0 {
		entries = []*chat.Message{act}
	}
	if err := s.post(ctx, v, joins, entries...); err != nil {
		return chat.Message{}, Case{}, err
	}
	c, err := s.refresh(ctx, v.room)
	return *act, c, err
}

// joinEntries returns the entries that make units participants of the case:
// unit.add, and member.add for each unit's officers, clerks and leaders who
// are not members yet. RULE DESIGN.md "Act": an act addressed to a unit outside
// the room makes it a participant.
func (s *Service) joinEntries(ctx context.Context, v *view, units []acl.UnitID) ([]*chat.Message, error) {
	var add []acl.UnitID
	for _, u := range units {
		if u != "" && !v.c.IsParticipant(u) && !slices.Contains(add, u) {
			add = append(add, u)
		}
	}
	if len(add) == 0 {
		return nil, nil
	}
	out := []*chat.Message{v.newMessage(chat.UnitAdd, chat.UnitsChanged{Units: add}, time.Time{})}
	var refs []chat.MemberRef
	for _, u := range add {
		staff, err := s.staff(ctx, u, nil)
		if err != nil {
			return nil, err
		}
		for _, usr := range staff {
			if _, err := s.rooms.Membership(ctx, v.room.ID, usr.ID); err == nil {
				continue
			}
			refs = append(refs, chat.MemberRef{User: usr.ID, Unit: usr.Unit, Role: chat.Member})
		}
	}
	if len(refs) > 0 {
		out = append(out, v.newMessage(chat.MemberAdd, chat.MembersChanged{Members: refs}, time.Time{}))
	}
	return out, nil
}

// staff returns the active users of unit who hold one of roles (default: the
// acting roles officer, clerk and leader).
func (s *Service) staff(ctx context.Context, unit acl.UnitID, roles []acl.Role) ([]acl.User, error) {
	if roles == nil {
		roles = []acl.Role{acl.Officer, acl.Clerk, acl.Leader}
	}
	users, err := s.dir.Users(ctx, acl.UserFilter{Unit: unit})
	if err != nil {
		return nil, err
	}
	var out []acl.User
	for _, u := range users {
		if !u.Disabled && !u.Bot && slices.ContainsFunc(u.Roles, func(r acl.Role) bool { return slices.Contains(roles, r) }) {
			out = append(out, u)
		}
	}
	return out, nil
}

// activeUnit returns unit id if it exists and is not disabled.
func (s *Service) activeUnit(ctx context.Context, id acl.UnitID, field string) (acl.Unit, error) {
	u, err := s.dir.Unit(ctx, id)
	if errors.Is(err, acl.ErrNotFound) || (err == nil && u.Disabled) {
		return acl.Unit{}, invalid(field, fmt.Sprintf("no active unit %q", id))
	}
	return u, err
}

// retry runs f again, with a fresh view, when the room moved on meanwhile.
func (s *Service) retry(f func() error) error {
	var err error
	for range s.opts.Retries {
		if err = f(); !errors.Is(err, chat.ErrConflict) {
			return err
		}
	}
	return err
}

// newMessage returns an entry of v's room by the caller.
func (v *view) newMessage(kind chat.Kind, p any, at time.Time) *chat.Message {
	b, _ := json.Marshal(p)
	return &chat.Message{Room: v.room.ID, Kind: kind, Sender: v.who.User, SenderUnit: v.who.Unit, Payload: b, OccurredAt: at}
}

// archive returns the entry that archives v's room (or brings it back).
func (v *view) archive(archived bool) *chat.Message {
	return v.newMessage(chat.RoomArchive, chat.RoomArchived{Archived: archived}, time.Time{})
}

// simulate applies m to a copy of v's case as the next entry, with the same
// code Replay uses: an act Replay would refuse is refused before it is posted.
func (v *view) simulate(m *chat.Message) (Case, error) {
	c := v.c.clone()
	sim := *m
	sim.Seq = c.Head + 1
	if sim.CreatedAt.IsZero() {
		sim.CreatedAt = time.Now().UTC()
	}
	err := c.apply(v.proc, &sim)
	return c, err
}

// ---- Opening a case ----

// OpenInput is what OpenCase needs. Transition is the first act (from the
// procedure's initial stage): by default the first one the caller may perform.
type OpenInput struct {
	Procedure  string
	Transition string
	Title      string
	Cause      string
	Checklist  string
	Parties    []Party
	Handlers   []acl.UserID // of the caller's unit; default the caller
	Target     acl.UnitID   // when the first act is a transfer or request
	Evidence   []string
	Documents  []DocumentRef
	OccurredAt time.Time
	Note       string
}

// OpenCase opens a case of in.Procedure by the caller's unit: it creates the
// case room, owned by the committee unit whose jurisdiction covers the unit's
// region (the county's committee, else the league's, else the region's), with
// the caller, the named handlers and the unit's leaders as members and the
// committee's supervisors as its owners; then it posts the case.open entry
// that carries the procedure's first act.
func (s *Service) OpenCase(ctx context.Context, in OpenInput) (Case, error) {
	who, err := subject(ctx)
	if err != nil {
		return Case{}, err
	}
	proc := s.procs[in.Procedure]
	if proc == nil {
		return Case{}, invalid("procedure", fmt.Sprintf("unknown procedure %q", in.Procedure))
	}
	res := acl.Resource{Kind: "case", Unit: who.Unit, Region: who.Region, Stage: proc.Initial, Holder: who.Unit}
	g := &guarded{s: s, ctx: ctx}
	if err := g.decide(who, OpenCase, res); err != nil {
		return Case{}, err
	}
	t, err := s.firstTransition(proc, in.Transition, who)
	if err != nil {
		return Case{}, s.refusal(ctx, g, who, OpenCase, res, err)
	}
	unit, err := s.activeUnit(ctx, who.Unit, "unit")
	if err != nil {
		return Case{}, err
	}
	committee, err := s.committeeFor(ctx, unit.Region)
	if err != nil {
		return Case{}, err
	}
	at, err := s.occurred(in.OccurredAt)
	if err != nil {
		return Case{}, err
	}
	if in.Checklist != "" && s.opts.Checklists != nil {
		cl := s.opts.Checklists[in.Checklist]
		if cl == nil || cl.Procedure != proc.ID {
			return Case{}, invalid("checklist", fmt.Sprintf("no evidence checklist %q for procedure %s", in.Checklist, proc.ID))
		}
	}
	if err := s.checkEvidence(in.Checklist, in.Evidence); err != nil {
		return Case{}, err
	}
	handlers := in.Handlers
	if len(handlers) == 0 {
		handlers = []acl.UserID{who.User}
	}
	for _, h := range handlers {
		u, err := s.dir.User(ctx, h)
		if errors.Is(err, acl.ErrNotFound) || (err == nil && (u.Disabled || u.Unit != who.Unit)) {
			return Case{}, invalid("handlers", fmt.Sprintf("%q is not an active user of your unit", h))
		}
		if err != nil {
			return Case{}, err
		}
	}
	o := Opened{Procedure: proc.ID, Transition: t.ID, Title: strings.TrimSpace(in.Title), Cause: in.Cause,
		Checklist: in.Checklist, Parties: in.Parties, Unit: who.Unit, UnitKind: who.UnitKind, Committee: committee.ID,
		Region: unit.Region, Handlers: handlers, Evidence: in.Evidence, Documents: in.Documents, Note: in.Note}
	if o.Parties == nil {
		o.Parties = []Party{}
	}
	if in.Target != "" {
		tu, err := s.activeUnit(ctx, in.Target, "target")
		if err != nil {
			return Case{}, err
		}
		o.Target, o.TargetKind = tu.ID, tu.Kind
	}
	if err := o.check(); err != nil {
		return Case{}, err
	}
	id := CaseID(newID("case"))
	v := &view{who: who, proc: proc, c: newCase(), room: chat.Room{ID: chat.RoomID(id)}}
	v.c.ID, v.c.Room, v.c.Head = id, v.room.ID, 2 // room.create and unit.add come first
	open := v.newMessage(KindOpen, o, at)
	sim, err := v.simulate(open)
	if err != nil {
		return Case{}, s.refusal(ctx, g, who, OpenCase, res, err)
	}
	if n, err := s.number(ctx, proc, &sim, who.Unit, at); err != nil {
		return Case{}, err
	} else if n != nil {
		o.Number = n
		open = v.newMessage(KindOpen, o, at)
	}

	members, err := s.openingMembers(ctx, who, handlers, committee.ID)
	if err != nil {
		return Case{}, err
	}
	name := o.Title
	if r := []rune(name); len(r) > 100 {
		name = string(r[:100])
	}
	// The room's region is the case's, not the committee's: whoever's
	// jurisdiction covers the case's region reads it (a committee higher up
	// covers it too).
	room := chat.Room{ID: v.room.ID, Kind: chat.CaseRoom, Name: name, OwnerUnit: committee.ID, Region: unit.Region}
	if err := s.chat.Open(ctx, &room, members, who); err != nil {
		return Case{}, err
	}
	v.room = room
	join := v.newMessage(chat.UnitAdd, chat.UnitsChanged{Units: []acl.UnitID{who.Unit}}, time.Time{})
	if err := s.chat.Append(ctx, join, 1); err != nil {
		return Case{}, err
	}
	v.c.Head = join.Seq
	v.c.Participants = []acl.UnitID{who.Unit}
	var joins []acl.UnitID
	if o.Target != "" {
		joins = append(joins, o.Target)
	}
	_, c, err := s.postAct(ctx, v, joins, open)
	if err != nil {
		return Case{}, err
	}
	s.log.InfoContext(ctx, "case opened", "case", id, "procedure", proc.ID, "unit", who.Unit, "committee", committee.ID)
	return c, nil
}

// firstTransition returns the opening transition: id if given, else the first
// transition from the initial stage that who may perform.
func (s *Service) firstTransition(proc *Procedure, id string, who acl.Subject) (Transition, error) {
	var cands []Transition
	for _, t := range proc.Machine.Transitions {
		if slices.Contains(t.From, proc.Initial) {
			cands = append(cands, t)
		}
	}
	if id != "" {
		i := slices.IndexFunc(cands, func(t Transition) bool { return t.ID == id })
		if i < 0 {
			return Transition{}, invalid("transition", fmt.Sprintf("%q does not open a %s case", id, proc.ID))
		}
		if !mayPerform(cands[i], who) {
			return Transition{}, &acl.DeniedError{Rule: "procedure-actor",
				Reason: fmt.Sprintf("「%s」(%s) is performed by %s.", cands[i].NameZH, cands[i].ID, byText(cands[i]))}
		}
		return cands[i], nil
	}
	for _, t := range cands {
		if mayPerform(t, who) {
			return t, nil
		}
	}
	var by []string
	for _, t := range cands {
		by = append(by, byText(t))
	}
	return Transition{}, &acl.DeniedError{Rule: "procedure-actor",
		Reason: fmt.Sprintf("A %s case is opened by %s.", proc.NameEN, strings.Join(by, "; "))}
}

// committeeFor returns the committee unit whose jurisdiction covers region:
// the region's own, else its league's, else the autonomous region's.
func (s *Service) committeeFor(ctx context.Context, region acl.RegionCode) (acl.Unit, error) {
	for code := region; code != ""; code = s.regions[code].Parent {
		us, err := s.dir.Units(ctx, acl.UnitFilter{Region: code, Kind: acl.Committee})
		if err != nil {
			return acl.Unit{}, err
		}
		for _, u := range us {
			if !u.Disabled && !u.NonTerritorial {
				return u, nil
			}
		}
		if _, known := s.regions[code]; !known {
			break
		}
	}
	return acl.Unit{}, invalid("unit", fmt.Sprintf("no committee unit covers region %s", region))
}

// openingMembers are the first members of a case room: the opener and the
// handlers, the opening unit's leaders (members), and the owning committee's
// supervisors (owners: the committee owns and moderates the room).
func (s *Service) openingMembers(ctx context.Context, who acl.Subject, handlers []acl.UserID, committee acl.UnitID) ([]chat.MemberRef, error) {
	refs := []chat.MemberRef{{User: who.User, Unit: who.Unit, Role: chat.Member}}
	add := func(u acl.UserID, unit acl.UnitID, role chat.RoomRole) {
		if !slices.ContainsFunc(refs, func(r chat.MemberRef) bool { return r.User == u }) {
			refs = append(refs, chat.MemberRef{User: u, Unit: unit, Role: role})
		}
	}
	for _, h := range handlers {
		add(h, who.Unit, chat.Member)
	}
	leaders, err := s.staff(ctx, who.Unit, []acl.Role{acl.Leader})
	if err != nil {
		return nil, err
	}
	for _, l := range leaders {
		add(l.ID, l.Unit, chat.Member)
	}
	sups, err := s.staff(ctx, committee, []acl.Role{acl.Supervisor})
	if err != nil {
		return nil, err
	}
	for _, u := range sups {
		add(u.ID, u.Unit, chat.Owner)
	}
	return refs, nil
}

// number allocates the case number that the act simulated into c gives unit,
// if the procedure has a rule for unit's kind at c's stage, unit holds the case
// and has no number of that code yet.
func (s *Service) number(ctx context.Context, proc *Procedure, c *Case, unit acl.UnitID, at time.Time) (*CaseNumber, error) {
	if c.Holder != unit || c.Pending != nil {
		return nil, nil
	}
	kind := c.kindOf(unit)
	for _, r := range proc.CaseNumbers {
		if acl.UnitKind(r.Agency) != kind || r.Stage != c.Stage {
			continue
		}
		if slices.ContainsFunc(c.Numbers, func(n CaseNumber) bool { return n.Unit == unit && n.Code == r.Code }) {
			return nil, nil
		}
		u, err := s.dir.Unit(ctx, unit)
		if err != nil {
			return nil, err
		}
		year := at.In(Shanghai).Year()
		serial, err := s.store.NextSerial(ctx, unit, year, r.Code)
		if err != nil {
			return nil, err
		}
		num, err := r.Format(CaseNumberInput{Year: year, Division: string(u.Region), Unit: s.shortName(u), Serial: serial})
		if err != nil {
			return nil, err
		}
		return &CaseNumber{Number: num, Unit: unit, Agency: kind, Stage: c.Stage, Code: r.Code, Year: year, Serial: serial}, nil
	}
	return nil, nil
}

// shortName is the short name agencies number their cases by, e.g. 新城 for
// the units of 新城区: the region's name without its last character (区, 旗,
// 县, 市, 盟); the autonomous region's is 内蒙古.
func (s *Service) shortName(u acl.Unit) string {
	r, ok := s.regions[u.Region]
	if !ok || r.Name == "" {
		return string(u.Region)
	}
	if r.Level == acl.LevelProvince {
		return "内蒙古"
	}
	name := []rune(r.Name)
	if len(name) > 2 {
		name = name[:len(name)-1]
	}
	return string(name)
}

func (s *Service) checkEvidence(checklist string, items []string) error {
	if len(items) == 0 || s.opts.Checklists == nil {
		return nil
	}
	cl := s.opts.Checklists[checklist]
	if cl == nil {
		return invalid("evidence", "the case has no evidence checklist to mark items of")
	}
	for i, it := range items {
		if !slices.ContainsFunc(cl.All(), func(e EvidenceItem) bool { return e.ID == it }) {
			return invalid(fmt.Sprintf("evidence[%d]", i), fmt.Sprintf("%q is not an item of checklist %s", it, checklist))
		}
	}
	return nil
}

// ---- Acts ----

// ActInput is one act: a transition of the case's procedure.
type ActInput struct {
	Transition string
	Suspect    string
	Target     acl.UnitID // a transfer's receiver, or the unit a request or notice is addressed to
	Documents  []DocumentRef
	Evidence   []string
	Reason     string
	Missing    []string   // a return: what is missing
	Approvals  []chat.Seq // default: the granted, unused approvals the act needs
	OccurredAt time.Time  // default now; never in the future
	Note       string
}

// Act performs a transition of the case's procedure. A transition that answers
// the pending transfer (an accept or a return of it) is posted as case.accept
// or case.return. When the act enters a read-only stage the room is archived;
// an act that reopens a closed case brings its room back first.
func (s *Service) Act(ctx context.Context, id CaseID, in ActInput) (chat.Message, Case, error) {
	var m chat.Message
	var c Case
	err := s.retry(func() error {
		v, err := s.visible(ctx, id)
		if err != nil {
			return err
		}
		m, c, err = s.act(ctx, v, in, 0)
		return err
	})
	return m, c, err
}

// Close performs in.Transition, which must end the case (enter a terminal
// stage); the room becomes read-only when the stage says so. It is Act with
// that check, for callers that mean to close.
func (s *Service) Close(ctx context.Context, id CaseID, in ActInput) (chat.Message, Case, error) {
	if err := s.checkTransitionKind(ctx, id, in.Transition, func(p *Procedure, t Transition) bool {
		st, _ := p.Stage(t.To)
		return st.Terminal
	}, "does not close the case"); err != nil {
		return chat.Message{}, Case{}, err
	}
	return s.Act(ctx, id, in)
}

// Reopen performs in.Transition, which must be one that reopens a closed case
// (a retrial, a revocation); the room comes back first. It is Act with that
// check.
func (s *Service) Reopen(ctx context.Context, id CaseID, in ActInput) (chat.Message, Case, error) {
	if err := s.checkTransitionKind(ctx, id, in.Transition, func(_ *Procedure, t Transition) bool { return t.Act == "reopen" },
		"does not reopen a case"); err != nil {
		return chat.Message{}, Case{}, err
	}
	return s.Act(ctx, id, in)
}

func (s *Service) checkTransitionKind(ctx context.Context, id CaseID, tid string, ok func(*Procedure, Transition) bool, what string) error {
	v, err := s.visible(ctx, id) // a hidden case is not found, whatever the transition
	if err != nil {
		return err
	}
	proc := v.proc
	if t, found := proc.Transition(tid); !found || !ok(proc, t) {
		return invalid("transition", fmt.Sprintf("%q %s", tid, what))
	}
	return nil
}

// Accept accepts the pending transfer at seq transfer with in.Transition (by
// default the first accepting transition from the current stage).
func (s *Service) Accept(ctx context.Context, id CaseID, transfer chat.Seq, in ActInput) (chat.Message, Case, error) {
	return s.answer(ctx, id, transfer, "accept", in)
}

// Return returns the pending transfer at seq transfer with in.Transition (by
// default the first returning transition from the current stage); it needs a
// reason and the missing items.
func (s *Service) Return(ctx context.Context, id CaseID, transfer chat.Seq, in ActInput) (chat.Message, Case, error) {
	return s.answer(ctx, id, transfer, "return", in)
}

func (s *Service) answer(ctx context.Context, id CaseID, transfer chat.Seq, act string, in ActInput) (chat.Message, Case, error) {
	var m chat.Message
	var c Case
	err := s.retry(func() error {
		v, err := s.visible(ctx, id)
		if err != nil {
			return err
		}
		if v.c.Pending == nil || v.c.Pending.Seq != transfer {
			return refused("no-pending-transfer", "There is no pending transfer at seq %d.", transfer)
		}
		if in.Transition == "" {
			for _, t := range v.proc.From(v.c.Stage) {
				if t.Act == act && !v.proc.isSuspectTransition(t.ID) {
					in.Transition = t.ID
					break
				}
			}
		}
		if t, ok := v.proc.Transition(in.Transition); !ok || t.Act != act {
			return invalid("transition", fmt.Sprintf("%q is not a transition that would %s the transfer", in.Transition, act))
		}
		m, c, err = s.act(ctx, v, in, transfer)
		return err
	})
	return m, c, err
}

// act checks and posts one act on v.
func (s *Service) act(ctx context.Context, v *view, in ActInput, answers chat.Seq) (chat.Message, Case, error) {
	who, c := v.who, &v.c
	t, ok := v.proc.Transition(in.Transition)
	if !ok {
		return chat.Message{}, Case{}, invalid("transition", fmt.Sprintf("procedure %s has no transition %q", v.proc.ID, in.Transition))
	}
	action := ActAction(t.Act)
	g := &guarded{s: s, ctx: ctx}
	res, err := checkPerform(g.decide, v.proc, c, who, v.role, t, in.Suspect, "")
	if err != nil {
		return chat.Message{}, Case{}, s.refusal(ctx, g, who, action, res, err)
	}
	at, err := s.occurred(in.OccurredAt)
	if err != nil {
		return chat.Message{}, Case{}, err
	}
	if err := s.checkEvidence(c.Checklist, in.Evidence); err != nil {
		return chat.Message{}, Case{}, err
	}
	a := Act{Transition: t.ID, UnitKind: who.UnitKind, Suspect: in.Suspect, Documents: in.Documents, Evidence: in.Evidence,
		Reason: strings.TrimSpace(in.Reason), Missing: in.Missing, Approvals: in.Approvals, Note: in.Note, Answers: answers}
	if in.Target != "" {
		tu, err := s.activeUnit(ctx, in.Target, "target")
		if err != nil {
			return chat.Message{}, Case{}, err
		}
		if t.Act != "transfer" {
			if kinds := requestTargetKinds(v.proc, t, who.UnitKind); len(kinds) > 0 && !slices.Contains(kinds, tu.Kind) {
				return chat.Message{}, Case{}, invalid("target", fmt.Sprintf("「%s」 is addressed to a unit of kind %v", t.NameZH, kinds))
			}
		}
		a.Target, a.TargetKind = tu.ID, tu.Kind
	}
	if len(a.Approvals) == 0 {
		a.Approvals = c.grantedFor(t, in.Suspect, res.Unit)
	}
	kind := KindAct
	if c.Pending != nil && !v.proc.isSuspectTransition(t.ID) && slices.Contains(t.From, c.Stage) {
		switch t.Act {
		case "accept":
			kind, a.Answers = KindAccept, c.Pending.Seq
		case "return":
			kind, a.Answers = KindReturn, c.Pending.Seq
		}
	}
	if err := a.check(); err != nil {
		return chat.Message{}, Case{}, err
	}
	m := v.newMessage(kind, a, at)
	sim, err := v.simulate(m)
	if err != nil {
		return chat.Message{}, Case{}, s.refusal(ctx, g, who, action, res, err)
	}
	if n, err := s.number(ctx, v.proc, &sim, who.Unit, at); err != nil {
		return chat.Message{}, Case{}, err
	} else if n != nil {
		a.Number = n
		m = v.newMessage(kind, a, at)
	}
	var entries []*chat.Message
	if t.Act == "reopen" && v.room.Archived {
		entries = append(entries, v.archive(false))
	}
	entries = append(entries, m)
	if st, _ := v.proc.Stage(sim.Stage); st.ReadOnly && !v.proc.isSuspectTransition(t.ID) {
		// RULE issue 4 §8: closing a case makes its room read-only and archives it.
		entries = append(entries, v.archive(true))
	}
	var joins []acl.UnitID
	if a.Target != "" {
		joins = append(joins, a.Target)
	}
	if v.room.Archived && t.Act != "reopen" {
		return chat.Message{}, Case{}, chat.ErrArchived
	}
	return s.postAct(ctx, v, joins, m, entries...)
}

// grantedFor returns the granted, unused approvals unit holds for t (on suspect).
func (c *Case) grantedFor(t Transition, suspect string, unit acl.UnitID) []chat.Seq {
	var out []chat.Seq
	for i := range t.Approvals {
		for _, a := range c.Approvals {
			if a.Transition == t.ID && a.Suspect == suspect && a.Index == i && a.Granted && a.Used == 0 && a.Unit == unit {
				out = append(out, a.Seq)
				break
			}
		}
	}
	return out
}

// requestTargetKinds returns the kinds of unit a request (or notice) t may be
// addressed to: those that act on what it asks — the approvers and deniers
// leaving t's stage, else those that decide there, else any other actor there —
// besides the requester's own kind. Empty means any.
func requestTargetKinds(p *Procedure, t Transition, own acl.UnitKind) []acl.UnitKind {
	tiers := [][]string{{"approve", "deny"}, {"decide"}, nil}
	for _, acts := range tiers {
		var out []acl.UnitKind
		for _, n := range p.From(t.To) {
			if n.ID == t.ID || (acts != nil && !slices.Contains(acts, n.Act)) {
				continue
			}
			for _, k := range byKinds(n) {
				if k != own && !slices.Contains(out, k) {
					out = append(out, k)
				}
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// ---- Approvals ----

// ApprovalInput asks for the Index-th approval of Transition (on Suspect).
// Target is the approving unit for another organ's approval; by default the
// unit of the approval's agency kind at the level it names (same region, the
// parent region, the autonomous region).
type ApprovalInput struct {
	Transition string
	Suspect    string
	Index      int
	Target     acl.UnitID
	Summary    string
}

// RequestApproval asks for an approval that a transition needs. The asker must
// be someone who could then perform the transition.
func (s *Service) RequestApproval(ctx context.Context, id CaseID, in ApprovalInput) (chat.Message, Case, error) {
	var m chat.Message
	var out Case
	err := s.retry(func() error {
		v, err := s.visible(ctx, id)
		if err != nil {
			return err
		}
		who, c := v.who, &v.c
		t, ok := v.proc.Transition(in.Transition)
		if !ok {
			return invalid("transition", fmt.Sprintf("procedure %s has no transition %q", v.proc.ID, in.Transition))
		}
		if in.Index < 0 || in.Index >= len(t.Approvals) {
			return invalid("index", fmt.Sprintf("「%s」 needs %d approval(s)", t.NameZH, len(t.Approvals)))
		}
		g := &guarded{s: s, ctx: ctx}
		res, err := checkPerform(g.decide, v.proc, c, who, v.role, t, in.Suspect, RequestApproval)
		if err != nil {
			return s.refusal(ctx, g, who, RequestApproval, res, err)
		}
		need := t.Approvals[in.Index]
		r := ApprovalRequest{Transition: t.ID, Suspect: in.Suspect, Index: in.Index, UnitKind: who.UnitKind, Summary: in.Summary}
		if need.Agency == SelfAgency || (acl.UnitKind(need.Agency) == who.UnitKind && need.Level == "same") {
			r.Target, r.TargetKind, r.Internal = who.Unit, who.UnitKind, true
		} else {
			target, err := s.approver(ctx, who, need, in.Target)
			if err != nil {
				return err
			}
			r.Target, r.TargetKind = target.ID, target.Kind
		}
		if err := r.check(); err != nil {
			return err
		}
		at, _ := s.occurred(time.Time{})
		msg := v.newMessage(KindApprovalReq, r, at)
		if _, err := v.simulate(msg); err != nil {
			return s.refusal(ctx, g, who, RequestApproval, res, err)
		}
		msgs := []*chat.Message{msg}
		if v.room.Archived && t.Act == "reopen" {
			// Reopening a closed case (a retrial) is asked for in its room: the
			// room comes back for the request; the case stays closed until the act.
			msgs = append([]*chat.Message{v.archive(false)}, msgs...)
		}
		m, out, err = s.postAct(ctx, v, []acl.UnitID{r.Target}, msg, msgs...)
		return err
	})
	return m, out, err
}

// approver finds (or checks) the unit of need's agency at need's level relative
// to who's region. The supreme organs are outside this deployment: a
// "supreme" approval is asked of the autonomous-region unit of the kind, which
// transmits the supreme organ's decision.
func (s *Service) approver(ctx context.Context, who acl.Subject, need Approval, given acl.UnitID) (acl.Unit, error) {
	var region acl.RegionCode
	switch need.Level {
	case "same":
		region = who.Region
	case "higher":
		region = s.regions[who.Region].Parent
	default: // provincial, supreme
		region = acl.RootRegion
	}
	if given != "" {
		u, err := s.activeUnit(ctx, given, "target")
		if err != nil {
			return acl.Unit{}, err
		}
		if string(u.Kind) != need.Agency || (region != "" && u.Region != region) {
			return acl.Unit{}, invalid("target", fmt.Sprintf("this approval is given by a %s at region %s (%s level)", need.Agency, region, need.Level))
		}
		return u, nil
	}
	if region == "" {
		return acl.Unit{}, invalid("target", fmt.Sprintf("no %s level above region %s", need.Level, who.Region))
	}
	us, err := s.dir.Units(ctx, acl.UnitFilter{Region: region, Kind: acl.UnitKind(need.Agency)})
	if err != nil {
		return acl.Unit{}, err
	}
	for _, u := range us {
		if !u.Disabled && !u.NonTerritorial {
			return u, nil
		}
	}
	return acl.Unit{}, invalid("target", fmt.Sprintf("no %s at region %s gives this approval; name the unit", need.Agency, region))
}

// Decide grants or refuses the approval requested at seq request. An internal
// approval is signed by a leader (or acting leader) of the asking unit who is
// not the asker; another organ's approval by its unit, in the role the
// procedure (or, for a clock's extension, the clock's data) names. Granting
// an extension extends its clock at the decision; a grant the clock no longer
// allows (rule extension-expired, extension-not-allowed) stores nothing.
func (s *Service) Decide(ctx context.Context, id CaseID, request chat.Seq, granted bool, note string) (chat.Message, Case, error) {
	var m chat.Message
	var out Case
	err := s.retry(func() error {
		v, err := s.visible(ctx, id)
		if err != nil {
			return err
		}
		c := &v.c
		i := slices.IndexFunc(c.Approvals, func(a ApprovalState) bool { return a.Seq == request })
		if i < 0 {
			return invalid("request", fmt.Sprintf("no approval request at seq %d", request))
		}
		ap := c.Approvals[i]
		need, t, err := s.approvalNeed(v, ap) // a transition's approval, or a clock extension's
		if err != nil {
			return err
		}
		who := c.withDelegation(v.who, s.now())
		res := c.resource(v.role)
		res.Author = ap.By
		action := DecideApproval
		if ap.Internal {
			action, res.Unit = SignApproval, ap.Unit
		} else {
			res.Unit, res.RequestUnit = ap.Target, ap.Unit
		}
		g := &guarded{s: s, ctx: ctx}
		if err := g.decide(who, action, res); err != nil {
			return err
		}
		if !who.Has(acl.Role(need.Role)) {
			return s.refusal(ctx, g, who, action, res, &acl.DeniedError{Rule: "approver-role",
				Reason: fmt.Sprintf("This approval is given by a %s.", need.Role)})
		}
		d := ApprovalDecision{Request: request, Granted: granted, Note: note}
		if err := d.check(); err != nil {
			return err
		}
		at, _ := s.occurred(time.Time{})
		msg := v.newMessage(KindApprovalDec, d, at)
		sim, err := v.simulate(msg)
		if err == nil {
			err = s.checkExtensionGrant(&sim, ap, granted)
		}
		if err != nil {
			return s.refusal(ctx, g, who, action, res, err)
		}
		msgs := []*chat.Message{msg}
		if !granted && t.Act == "reopen" && c.Closed && !v.room.Archived {
			msgs = append(msgs, v.archive(true)) // the reopening was refused: read-only again
		}
		m, out, err = s.postAct(ctx, v, nil, msg, msgs...)
		return err
	})
	return m, out, err
}

// ---- Challenges, supervision, handlers, corrections ----

// ChallengeInput is a check message of procedure.md §4.4 against the act at
// seq Against. Target defaults to the unit that performed it (for a review or
// protest, that unit's next-higher counterpart). Transition, if the procedure
// models the challenge, is performed too.
type ChallengeInput struct {
	Type       string
	Against    chat.Seq
	Target     acl.UnitID
	Transition string
	Suspect    string
	Reason     string
	Documents  []DocumentRef
}

// Challenge sends a challenge.
func (s *Service) Challenge(ctx context.Context, id CaseID, in ChallengeInput) (chat.Message, Case, error) {
	var m chat.Message
	var out Case
	err := s.retry(func() error {
		v, err := s.visible(ctx, id)
		if err != nil {
			return err
		}
		who, c := v.who, &v.c
		rule, ok := ChallengeRules[in.Type]
		if !ok {
			return invalid("type", fmt.Sprintf("unknown challenge %q", in.Type))
		}
		g := &guarded{s: s, ctx: ctx}
		res := c.challengeResource(v.role, rule, who)
		if err := g.decide(who, Challenge, res); err != nil {
			return err
		}
		if !slices.Contains(rule.By, who.UnitKind) || !who.HasAny(acl.Officer, acl.Leader) {
			return s.refusal(ctx, g, who, Challenge, res, &acl.DeniedError{Rule: "challenge-actor",
				Reason: fmt.Sprintf("A %s is sent by an officer or leader of %v (%s).", rule.NameZH, rule.By, rule.Basis)})
		}
		i := slices.IndexFunc(c.Acts, func(a ActLog) bool { return a.Seq == in.Against })
		if i < 0 {
			return invalid("against", fmt.Sprintf("no act at seq %d", in.Against))
		}
		against := c.Acts[i]
		target := in.Target
		if target == "" {
			target = against.Unit
			if rule.Higher {
				u, err := s.dir.Unit(ctx, against.Unit)
				if err != nil {
					return err
				}
				hu, err := s.approver(ctx, acl.Subject{Region: u.Region}, Approval{Agency: string(u.Kind), Level: "higher"}, "")
				if err != nil {
					return err
				}
				target = hu.ID
			}
		}
		tu, err := s.activeUnit(ctx, target, "target")
		if err != nil {
			return err
		}
		ch := ChallengeAct{Type: in.Type, Against: in.Against, Transition: in.Transition, Suspect: in.Suspect,
			UnitKind: who.UnitKind, Target: tu.ID, TargetKind: tu.Kind, Reason: strings.TrimSpace(in.Reason), Documents: in.Documents}
		if in.Transition != "" {
			t, ok := v.proc.Transition(in.Transition)
			if !ok {
				return invalid("transition", fmt.Sprintf("procedure %s has no transition %q", v.proc.ID, in.Transition))
			}
			g2 := &guarded{s: s, ctx: ctx}
			res2, err := checkPerform(g2.decide, v.proc, c, who, v.role, t, in.Suspect, "")
			if err != nil {
				return s.refusal(ctx, g2, who, ActAction(t.Act), res2, err)
			}
			ch.Approvals = c.grantedFor(t, in.Suspect, res2.Unit)
		}
		if err := ch.check(); err != nil {
			return err
		}
		at, _ := s.occurred(time.Time{})
		msg := v.newMessage(KindChallenge, ch, at)
		if _, err := v.simulate(msg); err != nil {
			return s.refusal(ctx, g, who, Challenge, res, err)
		}
		m, out, err = s.postAct(ctx, v, []acl.UnitID{tu.ID}, msg)
		return err
	})
	return m, out, err
}

// challengeResource is the case as the Guard sees a challenge by who: the unit
// entitled is the participant of the challenging kind engaged in the case.
func (c *Case) challengeResource(role chat.RoomRole, rule ChallengeRule, who acl.Subject) acl.Resource {
	res := c.resource(role)
	kinds := rule.By
	if slices.Contains(kinds, who.UnitKind) {
		kinds = []acl.UnitKind{who.UnitKind}
	}
	res.Unit = c.unitOfKind(kinds)
	return res
}

// SuperviseInput is a supervision notice (督办).
type SuperviseInput struct {
	Notice string
	Units  []acl.UnitID // default: the holder
	DueBy  *time.Time
}

// Supervise issues a supervision notice: the committee's formal instrument,
// which is not an intervention. The Guard requires a committee supervisor or
// leader whose jurisdiction covers the case.
func (s *Service) Supervise(ctx context.Context, id CaseID, in SuperviseInput) (chat.Message, Case, error) {
	var m chat.Message
	var out Case
	err := s.retry(func() error {
		v, err := s.visible(ctx, id)
		if err != nil {
			return err
		}
		c := &v.c
		res := c.resource(v.role)
		res.Unit = c.Committee
		if _, err := s.guard.Check(ctx, v.who, Supervise, res); err != nil {
			return err
		}
		units := in.Units
		if len(units) == 0 {
			units = []acl.UnitID{c.Holder}
		}
		for i, u := range units {
			if !c.IsParticipant(u) {
				return invalid(fmt.Sprintf("units[%d]", i), fmt.Sprintf("%s takes no part in the case", u))
			}
		}
		if v.room.Archived {
			return chat.ErrArchived
		}
		sp := Supervision{Notice: strings.TrimSpace(in.Notice), Units: units, DueBy: in.DueBy}
		if err := sp.check(); err != nil {
			return err
		}
		at, _ := s.occurred(time.Time{})
		msg := v.newMessage(KindSupervise, sp, at)
		m, out, err = s.postAct(ctx, v, nil, msg)
		return err
	})
	return m, out, err
}

// AssignHandlers names unit's handling officers (承办人) on the case, replacing
// the earlier list; a leader of the unit does it. Handlers who are not members
// of the room become members.
func (s *Service) AssignHandlers(ctx context.Context, id CaseID, unit acl.UnitID, users []acl.UserID) (chat.Message, Case, error) {
	return s.handlers(ctx, id, AssignHandlers, Handlers{Unit: unit, Handlers: users})
}

// Delegate makes user the acting leader (代理负责人) of the caller's unit on the
// case from from until until; a leader of the unit does it.
func (s *Service) Delegate(ctx context.Context, id CaseID, user acl.UserID, from, until time.Time) (chat.Message, Case, error) {
	who, err := subject(ctx)
	if err != nil {
		return chat.Message{}, Case{}, err
	}
	return s.handlers(ctx, id, DelegateLeader, Handlers{Unit: who.Unit,
		Acting: &Delegation{User: user, From: from.UTC().Truncate(time.Microsecond), Until: until.UTC().Truncate(time.Microsecond)}})
}

func (s *Service) handlers(ctx context.Context, id CaseID, action acl.Action, h Handlers) (chat.Message, Case, error) {
	var m chat.Message
	var out Case
	err := s.retry(func() error {
		v, err := s.visible(ctx, id)
		if err != nil {
			return err
		}
		c := &v.c
		if h.Unit == "" {
			h.Unit = v.who.Unit
		}
		res := c.resource(v.role)
		res.Unit = h.Unit
		if _, err := s.guard.Check(ctx, v.who, action, res); err != nil {
			return err
		}
		if !c.IsParticipant(h.Unit) {
			return invalid("unit", fmt.Sprintf("%s takes no part in the case", h.Unit))
		}
		users := slices.Clone(h.Handlers)
		if h.Acting != nil {
			h.Acting.Unit, h.Acting.By = h.Unit, v.who.User
			users = append(users, h.Acting.User)
		}
		var refs []chat.MemberRef
		for _, uid := range users {
			u, err := s.dir.User(ctx, uid)
			if errors.Is(err, acl.ErrNotFound) || (err == nil && (u.Disabled || u.Unit != h.Unit)) {
				return invalid("handlers", fmt.Sprintf("%q is not an active user of %s", uid, h.Unit))
			}
			if err != nil {
				return err
			}
			if _, err := s.rooms.Membership(ctx, v.room.ID, uid); errors.Is(err, chat.ErrNotFound) && !slices.ContainsFunc(refs, func(r chat.MemberRef) bool { return r.User == uid }) {
				refs = append(refs, chat.MemberRef{User: uid, Unit: h.Unit, Role: chat.Member})
			}
		}
		if err := h.check(); err != nil {
			return err
		}
		at, _ := s.occurred(time.Time{})
		var msgs []*chat.Message
		if len(refs) > 0 {
			msgs = append(msgs, v.newMessage(chat.MemberAdd, chat.MembersChanged{Members: refs}, time.Time{}))
		}
		msg := v.newMessage(KindHandlers, h, at)
		msgs = append(msgs, msg)
		m, out, err = s.postAct(ctx, v, nil, msg, msgs...)
		return err
	})
	return m, out, err
}

// CorrectionInput corrects the act at seq Target.
type CorrectionInput struct {
	Target     chat.Seq
	Reason     string
	OccurredAt *time.Time
	Party      *Party
}

// Correct posts a correction of an earlier act; the unit that performed the
// act corrects it. The act itself stays as it was: acts are never edited.
func (s *Service) Correct(ctx context.Context, id CaseID, in CorrectionInput) (chat.Message, Case, error) {
	var m chat.Message
	var out Case
	err := s.retry(func() error {
		v, err := s.visible(ctx, id)
		if err != nil {
			return err
		}
		c := &v.c
		res := c.resource(v.role)
		target, err := s.rooms.Message(ctx, v.room.ID, in.Target)
		if errors.Is(err, chat.ErrNotFound) || (err == nil && !slices.Contains(Kinds, target.Kind)) {
			return invalid("target", fmt.Sprintf("no act at seq %d", in.Target))
		}
		if err != nil {
			return err
		}
		res.Unit, res.Author = target.SenderUnit, target.Sender
		g := &guarded{s: s, ctx: ctx}
		if err := g.decide(v.who, Correct, res); err != nil {
			return err
		}
		if in.OccurredAt != nil {
			at, err := s.occurred(*in.OccurredAt)
			if err != nil {
				return err
			}
			in.OccurredAt = &at
		}
		cr := Correction{Target: in.Target, Reason: strings.TrimSpace(in.Reason), OccurredAt: in.OccurredAt, Party: in.Party}
		if err := cr.check(); err != nil {
			return err
		}
		if v.room.Archived {
			return chat.ErrArchived
		}
		at, _ := s.occurred(time.Time{})
		msg := v.newMessage(KindCorrection, cr, at)
		if _, err := v.simulate(msg); err != nil {
			return s.refusal(ctx, g, v.who, Correct, res, err)
		}
		m, out, err = s.postAct(ctx, v, nil, msg)
		return err
	})
	return m, out, err
}

// ---- Reading ----

// CaseView is a case as the caller may see it: the state, the caller's role in
// the room, and the transitions the caller could perform now. Parties are
// personal data: only members of the room see them.
type CaseView struct {
	Case
	RoomRole  chat.RoomRole
	Archived  bool
	Available []Available
}

// Available is a transition the caller could perform now, and whether it is
// ready (its approvals granted) or what it still needs.
type Available struct {
	Transition Transition
	Suspect    string
	Ready      bool
	Needs      string // the refusal's reason when not ready
}

// Case returns case id as the caller may see it, or ErrCaseNotFound.
func (s *Service) Case(ctx context.Context, id CaseID) (CaseView, error) {
	v, err := s.visible(ctx, id)
	if err != nil {
		return CaseView{}, err
	}
	cv := CaseView{Case: v.c, RoomRole: v.role, Archived: v.room.Archived, Available: s.available(v)}
	if v.role == "" {
		cv.Parties = maskParties(cv.Parties)
	}
	return cv, nil
}

// maskParties hides names and ID numbers from non-members.
func maskParties(ps []Party) []Party {
	out := make([]Party, len(ps))
	for i, p := range ps {
		out[i] = Party{ID: p.ID, Role: p.Role, Kind: p.Kind, Name: "***"}
	}
	return out
}

// available lists what v's caller could do now, asking the Guard without
// auditing (a list is not an attempt).
func (s *Service) available(v *view) []Available {
	if v.role == "" || v.role == chat.Observer {
		return nil
	}
	decide := func(who acl.Subject, a acl.Action, res acl.Resource) error {
		if d := s.guard.Decide(who, a, res); !d.Allow {
			return &acl.DeniedError{Rule: d.Rule, Reason: d.Reason}
		}
		return nil
	}
	var out []Available
	try := func(t Transition, suspect string) {
		if _, err := checkPerform(decide, v.proc, &v.c, v.who, v.role, t, suspect, ""); err != nil {
			return
		}
		a := Act{Transition: t.ID, UnitKind: v.who.UnitKind, Suspect: suspect, Reason: "-", Missing: []string{"-"}}
		unit, _ := v.c.entitled(v.proc, t, suspect, v.who.UnitKind)
		a.Approvals = v.c.grantedFor(t, suspect, unit)
		for _, d := range t.Documents {
			if d.Required {
				a.Documents = append(a.Documents, DocumentRef{Name: d.NameZH})
			}
		}
		if t.Act == "transfer" {
			a.Target, a.TargetKind = "~", acl.UnitKind(t.Receiver)
		}
		kind := KindAct
		if v.c.Pending != nil && slices.Contains(t.From, v.c.Stage) && (t.Act == "accept" || t.Act == "return") {
			kind = KindAccept
			if t.Act == "return" {
				kind = KindReturn
			}
		}
		_, err := v.simulate(v.newMessage(kind, a, time.Now()))
		av := Available{Transition: t, Suspect: suspect, Ready: err == nil}
		if r, ok := errors.AsType[*RefusedError](err); ok {
			if r.Rule != "approval-required" {
				return // not possible now at all (stage, count…)
			}
			av.Needs = r.Reason
		} else if err != nil && t.Act != "request" {
			return
		}
		out = append(out, av)
	}
	for _, t := range v.proc.Machine.Transitions {
		if slices.Contains(t.From, v.c.Stage) {
			try(t, "")
		}
	}
	if v.proc.Suspect != nil {
		for _, sus := range v.c.Suspects {
			for _, t := range v.proc.Suspect.Transitions {
				if slices.Contains(t.From, sus.State) {
					try(t, sus.Party)
				}
			}
		}
	}
	return out
}

// History returns the case room's log as the caller may see it (chat's view).
func (s *Service) History(ctx context.Context, id CaseID, q chat.HistoryQuery) ([]chat.Message, bool, error) {
	ms, full, err := s.chat.History(ctx, chat.RoomID(id), q)
	if errors.Is(err, chat.ErrNotFound) {
		return nil, false, ErrCaseNotFound
	}
	return ms, full, err
}

// ---- Projection ----

// refresh replays room's log, enters what the intervention register must hold,
// and stores the projection.
func (s *Service) refresh(ctx context.Context, room chat.Room) (Case, error) {
	if r, err := s.rooms.Room(ctx, room.ID); err == nil {
		room = r
	}
	v, err := s.load(ctx, room)
	if err != nil {
		return Case{}, err
	}
	prev, err := s.store.Case(ctx, v.c.ID)
	if err != nil && !errors.Is(err, ErrCaseNotFound) {
		return Case{}, err
	}
	if err := s.scanInterventions(ctx, v, prev.Scanned); err != nil {
		return Case{}, err
	}
	p := s.Project(&v.c)
	if err := s.store.PutCase(ctx, p); err != nil {
		return Case{}, err
	}
	return v.c, nil
}

// Project returns the projection of c that the store keeps for lists.
func (s *Service) Project(c *Case) Projection {
	var due time.Time
	if s.opts.Clocks != nil && s.opts.Calendar != nil && !c.Closed {
		clocks, _ := c.Clocks(s.opts.Clocks, s.opts.Calendar)
		due = NextDue(clocks)
	}
	return project(c, due)
}

// Sync brings the projection of case id up to date with its log; the hub's
// broker subscription (Run) calls it for every entry of a case room, so that
// text posted through chat reaches the intervention register.
func (s *Service) Sync(ctx context.Context, id CaseID) error {
	room, err := s.rooms.Room(ctx, chat.RoomID(id))
	if errors.Is(err, chat.ErrNotFound) || (err == nil && room.Kind != chat.CaseRoom) {
		return ErrCaseNotFound
	}
	if err != nil {
		return err
	}
	_, err = s.refresh(ctx, room)
	return err
}

// Run follows the broker and syncs every case room that gets a text or file
// entry, until ctx ends. Missed events are caught up by the next act's or
// read's refresh, which scans the log from the last entry scanned.
func (s *Service) Run(ctx context.Context, broker chat.Broker) error {
	work := make(chan chat.RoomID, 1024)
	notCase := map[chat.RoomID]bool{} // rooms known not to be case rooms
	done, err := broker.Subscribe(ctx, func(e chat.Event) {
		if e.Type != chat.EvMessage || (e.Kind != chat.Text && e.Kind != chat.File) {
			return
		}
		select {
		case work <- e.Room:
		default: // full: a later refresh catches up from the store
		}
	})
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case room := <-work:
			if notCase[room] {
				continue
			}
			err := s.Sync(ctx, CaseID(room))
			switch {
			case errors.Is(err, ErrCaseNotFound):
				// A room's kind never changes: a chat room is not looked up
				// again for each of its messages (a store read per post).
				if len(notCase) >= 1<<16 {
					clear(notCase)
				}
				notCase[room] = true
			case err != nil:
				s.log.WarnContext(ctx, "case sync failed", "room", room, "err", err)
			}
		}
	}
}

// Rebuild replays case id from its log and returns the projection the store
// should hold, without storing it (the rebuild test compares the two).
func (s *Service) Rebuild(ctx context.Context, id CaseID) (Projection, error) {
	room, err := s.rooms.Room(ctx, chat.RoomID(id))
	if err != nil {
		return Projection{}, err
	}
	v, err := s.load(ctx, room)
	if err != nil {
		return Projection{}, err
	}
	p := s.Project(&v.c)
	return p, nil
}

// newID returns prefix + "_" + 16 random base32 characters (80 bits).
func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + "_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}
