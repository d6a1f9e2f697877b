package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"caseroom/acl"
)

// Directory is what chat needs to know about users and units; acl.Store is one.
type Directory interface {
	User(ctx context.Context, id acl.UserID) (acl.User, error)
	Unit(ctx context.Context, id acl.UnitID) (acl.Unit, error)
	Users(ctx context.Context, f acl.UserFilter) ([]acl.User, error)
}

// Options tune a Service. Zero fields take the defaults stated.
type Options struct {
	MaxText       int           // largest message body in bytes; default 16 KiB
	MaxUpload     int64         // largest attachment in bytes; default 50 MiB
	RetractWindow time.Duration // how long an author may retract; default 24h (DingTalk's habit)
	PostRate      float64       // posts per second per user; default 20
	PostBurst     int           // burst above the rate; default 2×PostRate
	TempDir       string        // where uploads are spooled while hashed; default os.TempDir()
}

func (o *Options) defaults() {
	if o.MaxText <= 0 {
		o.MaxText = 16 << 10
	}
	if o.MaxUpload <= 0 {
		o.MaxUpload = 50 << 20
	}
	if o.RetractWindow <= 0 {
		o.RetractWindow = 24 * time.Hour
	}
	if o.PostRate <= 0 {
		o.PostRate = 20
	}
	if o.PostBurst <= 0 {
		o.PostBurst = int(2 * o.PostRate)
	}
}

// Service is every path into rooms and messages: HTTP, WebSocket and bots all
// end in one of its methods, so visibility, policy and audit happen here. The
// acting subject comes from the context (acl.SubjectFrom).
type Service struct {
	store  Store
	broker Broker
	guard  *acl.Guard
	dir    Directory
	kinds  *Registry
	now    func() time.Time
	log    *slog.Logger
	opts   Options
	posts  *limiter
	access *accessCache // rooms and memberships posts were decided on
}

// NewService returns a Service.
func NewService(store Store, broker Broker, guard *acl.Guard, dir Directory, kinds *Registry, now func() time.Time, log *slog.Logger, opts Options) *Service {
	opts.defaults()
	return &Service{store: store, broker: broker, guard: guard, dir: dir, kinds: kinds, now: now, log: log, opts: opts,
		posts: newLimiter(opts.PostRate, opts.PostBurst, now), access: newAccessCache(accessCacheSize)}
}

// Store returns the service's store, for the hub and verification.
func (s *Service) Store() Store { return s.store }

// Options returns the options in force.
func (s *Service) Options() Options { return s.opts }

func subject(ctx context.Context) (acl.Subject, error) {
	who, ok := acl.SubjectFrom(ctx)
	if !ok {
		return acl.Subject{}, acl.ErrUnauthenticated
	}
	return who, nil
}

// accessCacheSize bounds the remembered (room, member) pairs: about 300 bytes
// each, so at most about 20 MB.
const accessCacheSize = 65536

// roomAccess is a room as the subject may see it.
type roomAccess struct {
	room   Room
	role   RoomRole // "" when not a member
	look   bool     // read as a non-member supervisor or auditor
	member Membership
}

func (a roomAccess) resource() acl.Resource {
	return acl.Resource{Kind: "room", ID: string(a.room.ID), Unit: a.room.OwnerUnit, Region: a.room.Region,
		RoomKind: string(a.room.Kind), RoomRole: string(a.role)}
}

// visibleRoom returns the room if who may read it, and ErrNotFound whether it is
// missing or hidden from who (RULE invariant 6: existence does not leak). A
// non-member supervisor's or auditor's read is recorded in the room (invariant 1).
func (s *Service) visibleRoom(ctx context.Context, who acl.Subject, id RoomID) (roomAccess, error) {
	r, m, err := s.store.RoomAccess(ctx, id, who.User) // one read on every request's path
	if err != nil {
		return roomAccess{}, err
	}
	a := roomAccess{room: r}
	if m.Role != "" {
		a.role, a.member = m.Role, m
	}
	d, err := s.guard.Check(ctx, who, acl.ReadRoom, a.resource())
	if err != nil {
		var denied *acl.DeniedError
		if errors.As(err, &denied) {
			return roomAccess{}, ErrNotFound
		}
		return roomAccess{}, err
	}
	if d.Look {
		a.look = true
		if err := s.recordLook(ctx, who, r); err != nil {
			return roomAccess{}, err
		}
	}
	return a, nil
}

// recordLook appends one RoomLook entry per reader, room and day; the client id
// makes repeats within the day idempotent.
func (s *Service) recordLook(ctx context.Context, who acl.Subject, r Room) error {
	if r.Archived {
		return nil // an archived room takes no entries; the read is in the audit log
	}
	role := acl.Auditor
	if who.Has(acl.Supervisor) {
		role = acl.Supervisor
	}
	day := s.now().In(shanghai).Format(time.DateOnly)
	payload, _ := json.Marshal(LookedAt{User: who.User, Unit: who.Unit, Role: role, Day: day})
	m := &Message{Room: r.ID, Kind: RoomLook, Sender: who.User, SenderUnit: who.Unit,
		ClientID: "look:" + day, Payload: payload}
	return s.append(ctx, m, 0)
}

// shanghai is the zone days are counted in; fixed, as China has no daylight saving.
var shanghai = time.FixedZone("CST", 8*60*60)

// check asks the guard about a on the room and returns its *acl.DeniedError.
func (s *Service) check(ctx context.Context, who acl.Subject, a acl.Action, res acl.Resource) error {
	_, err := s.guard.Check(ctx, who, a, res)
	return err
}

// append stores m and publishes it. A duplicate (same client id) is not
// published again: it was published when first stored.
func (s *Service) append(ctx context.Context, m *Message, ifHead Seq) error {
	spec, ok := s.kinds.Spec(m.Kind)
	if !ok {
		return invalid("kind", fmt.Sprintf("unknown message kind %q", m.Kind))
	}
	m.Countable = spec.Countable
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.now() // the service's clock, so windows and days agree with it
	}
	_, err := s.appendPublish(ctx, m, ifHead)
	return err
}

// appendPublish stores m and publishes it once committed: from the store's
// commit hook when the store calls it (in seq order per room, see
// WithCommitHook), else after Append returns.
func (s *Service) appendPublish(ctx context.Context, m *Message, ifHead Seq) (dup bool, err error) {
	published := false
	hctx := WithCommitHook(ctx, func(e *Message) {
		published = true
		s.publish(ctx, e)
	})
	dup, err = s.store.Append(hctx, m, ifHead)
	if err == nil && !dup && !published {
		s.publish(ctx, m)
	}
	return dup, err
}

func (s *Service) publish(ctx context.Context, m *Message) {
	ev := Event{Type: EvMessage, Room: m.Room, Seq: m.Seq, Kind: m.Kind, Data: EncodeMessage(m)}
	switch m.Kind {
	case MemberAdd, MemberRemove:
		var p MembersChanged
		if json.Unmarshal(m.Payload, &p) == nil {
			for _, u := range p.Members {
				ev.Users = append(ev.Users, u.User)
			}
		}
	case RoomCreate:
		var p RoomCreated
		if json.Unmarshal(m.Payload, &p) == nil {
			for _, u := range p.Members {
				ev.Users = append(ev.Users, u.User)
			}
		}
	}
	// A broker may drop an event; the hub fills the gap from the store, so a failed
	// publish delays delivery but loses nothing. Log it and go on.
	if err := s.broker.Publish(context.WithoutCancel(ctx), ev); err != nil {
		s.log.WarnContext(ctx, "publish failed; hubs will fill the gap", "room", m.Room, "seq", m.Seq, "err", err)
	}
}

// Append stores an entry prepared by another package's service (casework's
// acts), which has done its own checks; m.Kind must be registered. With ifHead
// set it answers ErrConflict when the room has moved on.
func (s *Service) Append(ctx context.Context, m *Message, ifHead Seq) error {
	spec, ok := s.kinds.Spec(m.Kind)
	if !ok {
		return invalid("kind", fmt.Sprintf("unknown message kind %q", m.Kind))
	}
	if err := spec.Validate(m.Payload); err != nil {
		return err
	}
	return s.append(ctx, m, ifHead)
}

// NewRoom is what CreateRoom needs.
type NewRoom struct {
	Name    string
	Members []acl.UserID // besides the creator, who becomes the owner
}

// CreateRoom creates a group room owned by the creator's unit, with the creator
// as its owner and the given users as members.
func (s *Service) CreateRoom(ctx context.Context, in NewRoom) (Room, error) {
	who, err := subject(ctx)
	if err != nil {
		return Room{}, err
	}
	if err := s.check(ctx, who, acl.CreateRoom, acl.Resource{Kind: "room", Unit: who.Unit, Region: who.Region, RoomKind: string(GroupRoom)}); err != nil {
		return Room{}, err
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return Room{}, invalid("name", "must be 1 to 100 characters")
	}
	refs := []MemberRef{{User: who.User, Unit: who.Unit, Role: Owner}}
	for _, id := range in.Members {
		if id == who.User || slices.ContainsFunc(refs, func(r MemberRef) bool { return r.User == id }) {
			continue
		}
		u, err := s.activeUser(ctx, id, "members")
		if err != nil {
			return Room{}, err
		}
		refs = append(refs, MemberRef{User: u.ID, Unit: u.Unit, Role: Member})
	}
	if len(refs) > 5000 {
		return Room{}, invalid("members", "a room holds at most 5000 members")
	}
	r := Room{ID: RoomID(newID("r")), Kind: GroupRoom, Name: name, OwnerUnit: who.Unit, Region: who.Region, CreatedBy: who.User}
	return r, s.Open(ctx, &r, refs, who)
}

// Open creates room r with its first members, as by; it does no ACL check, for
// services that did their own (casework opens case rooms, cmd opens unit rooms).
func (s *Service) Open(ctx context.Context, r *Room, members []MemberRef, by acl.Subject) error {
	if r.ID == "" {
		r.ID = RoomID(newID("r"))
	}
	r.CreatedBy = by.User
	payload, _ := json.Marshal(RoomCreated{Kind: r.Kind, Name: r.Name, OwnerUnit: r.OwnerUnit, Region: r.Region, Members: members})
	m := &Message{Room: r.ID, Kind: RoomCreate, Sender: by.User, SenderUnit: by.Unit, Payload: payload, CreatedAt: s.now()}
	r.CreatedAt = m.CreatedAt
	if err := s.store.CreateRoom(ctx, *r, m); err != nil {
		return err
	}
	r.CreatedAt, r.Head, r.LastAt = m.CreatedAt, 1, m.CreatedAt
	s.publish(ctx, m)
	return nil
}

func (s *Service) activeUser(ctx context.Context, id acl.UserID, field string) (acl.User, error) {
	u, err := s.dir.User(ctx, id)
	if errors.Is(err, acl.ErrNotFound) || (err == nil && u.Disabled) {
		return acl.User{}, invalid(field, fmt.Sprintf("no active user %q", id))
	}
	return u, err
}

// Room returns a room the caller may see, with the caller's role in it.
func (s *Service) Room(ctx context.Context, id RoomID) (Room, RoomRole, error) {
	who, err := subject(ctx)
	if err != nil {
		return Room{}, "", err
	}
	a, err := s.visibleRoom(ctx, who, id)
	return a.room, a.role, err
}

// Rename gives a room a new name (owner or moderator).
func (s *Service) Rename(ctx context.Context, id RoomID, name string) (Message, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return Message{}, invalid("name", "must be 1 to 100 characters")
	}
	payload, _ := json.Marshal(RoomRenamed{Name: name})
	return s.roomChange(ctx, id, acl.RenameRoom, RoomRename, payload)
}

// Archive archives a room, making it read-only, or brings it back (owner).
func (s *Service) Archive(ctx context.Context, id RoomID, archived bool) (Message, error) {
	payload, _ := json.Marshal(RoomArchived{Archived: archived})
	return s.roomChange(ctx, id, acl.ArchiveRoom, RoomArchive, payload)
}

func (s *Service) roomChange(ctx context.Context, id RoomID, action acl.Action, kind Kind, payload json.RawMessage) (Message, error) {
	who, err := subject(ctx)
	if err != nil {
		return Message{}, err
	}
	a, err := s.visibleRoom(ctx, who, id)
	if err != nil {
		return Message{}, err
	}
	if err := s.check(ctx, who, action, a.resource()); err != nil {
		return Message{}, err
	}
	m := &Message{Room: id, Kind: kind, Sender: who.User, SenderUnit: who.Unit, Payload: payload}
	return *m, s.append(ctx, m, 0)
}

// Members returns a room's members.
func (s *Service) Members(ctx context.Context, id RoomID) ([]Membership, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.visibleRoom(ctx, who, id); err != nil {
		return nil, err
	}
	return s.store.Members(ctx, id)
}

// AddMembers adds users to a room with role (default member). The owner and
// moderators add anyone; a participating unit's leader adds users of that unit.
func (s *Service) AddMembers(ctx context.Context, id RoomID, users []acl.UserID, role RoomRole) (Message, error) {
	who, err := subject(ctx)
	if err != nil {
		return Message{}, err
	}
	if role == "" {
		role = Member
	}
	if !ValidRoomRole(role) || role == Owner {
		return Message{}, invalid("role", "must be moderator, member or observer")
	}
	if len(users) == 0 || len(users) > 500 {
		return Message{}, invalid("users", "name 1 to 500 users")
	}
	a, err := s.visibleRoom(ctx, who, id)
	if err != nil {
		return Message{}, err
	}
	var refs []MemberRef
	for _, uid := range users {
		u, err := s.activeUser(ctx, uid, "users")
		if err != nil {
			return Message{}, err
		}
		res := a.resource()
		res.Unit = u.Unit // the unit-leader rule is about the added user's unit
		if err := s.check(ctx, who, acl.AddMember, res); err != nil {
			return Message{}, err
		}
		if _, err := s.store.Membership(ctx, id, uid); err == nil {
			continue // already a member: adding is idempotent
		}
		refs = append(refs, MemberRef{User: u.ID, Unit: u.Unit, Role: role})
	}
	if len(refs) == 0 {
		return Message{}, nil
	}
	payload, _ := json.Marshal(MembersChanged{Members: refs})
	m := &Message{Room: id, Kind: MemberAdd, Sender: who.User, SenderUnit: who.Unit, Payload: payload}
	return *m, s.append(ctx, m, 0)
}

// AddUnits makes units participants of a room (owner or moderator): each unit
// is entered in the log (unit.add) and its leaders join as members, so that
// they can add the unit's other users (policy rule member-add-unit-leader).
// Units already participating are skipped.
func (s *Service) AddUnits(ctx context.Context, id RoomID, units []acl.UnitID) (Message, error) {
	who, err := subject(ctx)
	if err != nil {
		return Message{}, err
	}
	if len(units) == 0 || len(units) > 50 {
		return Message{}, invalid("units", "name 1 to 50 units")
	}
	a, err := s.visibleRoom(ctx, who, id)
	if err != nil {
		return Message{}, err
	}
	if err := s.check(ctx, who, acl.ModerateRoom, a.resource()); err != nil {
		return Message{}, err
	}
	have, err := s.store.Units(ctx, id)
	if err != nil {
		return Message{}, err
	}
	var add []acl.UnitID
	var leaders []MemberRef
	for _, uid := range units {
		u, err := s.dir.Unit(ctx, uid)
		if errors.Is(err, acl.ErrNotFound) || (err == nil && u.Disabled) {
			return Message{}, invalid("units", fmt.Sprintf("no active unit %q", uid))
		}
		if err != nil {
			return Message{}, err
		}
		if slices.Contains(have, uid) || slices.Contains(add, uid) {
			continue
		}
		add = append(add, uid)
		users, err := s.dir.Users(ctx, acl.UserFilter{Unit: uid})
		if err != nil {
			return Message{}, err
		}
		for _, usr := range users {
			if usr.Disabled || usr.Bot || !slices.Contains(usr.Roles, acl.Leader) {
				continue
			}
			if _, err := s.store.Membership(ctx, id, usr.ID); err == nil {
				continue
			}
			leaders = append(leaders, MemberRef{User: usr.ID, Unit: usr.Unit, Role: Member})
		}
	}
	if len(add) == 0 {
		return Message{}, nil
	}
	payload, _ := json.Marshal(UnitsChanged{Units: add})
	m := &Message{Room: id, Kind: UnitAdd, Sender: who.User, SenderUnit: who.Unit, Payload: payload}
	if err := s.append(ctx, m, 0); err != nil {
		return Message{}, err
	}
	if len(leaders) > 0 {
		payload, _ := json.Marshal(MembersChanged{Members: leaders})
		lm := &Message{Room: id, Kind: MemberAdd, Sender: who.User, SenderUnit: who.Unit, Payload: payload}
		if err := s.append(ctx, lm, 0); err != nil {
			return *m, err
		}
	}
	return *m, nil
}

// Units returns the units participating in a room.
func (s *Service) Units(ctx context.Context, id RoomID) ([]acl.UnitID, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.visibleRoom(ctx, who, id); err != nil {
		return nil, err
	}
	return s.store.Units(ctx, id)
}

// RemoveMember removes user from a room: a member may leave; the owner and
// moderators remove others. The last owner cannot leave.
func (s *Service) RemoveMember(ctx context.Context, id RoomID, user acl.UserID) (Message, error) {
	who, err := subject(ctx)
	if err != nil {
		return Message{}, err
	}
	a, err := s.visibleRoom(ctx, who, id)
	if err != nil {
		return Message{}, err
	}
	target, err := s.store.Membership(ctx, id, user)
	if errors.Is(err, ErrNotFound) {
		return Message{}, invalid("user", "is not a member of the room")
	}
	if err != nil {
		return Message{}, err
	}
	if user != who.User || a.role == "" {
		if err := s.check(ctx, who, acl.RemoveMember, a.resource()); err != nil {
			return Message{}, err
		}
	}
	if target.Role == Owner {
		return Message{}, invalid("user", "the room's owner cannot be removed")
	}
	payload, _ := json.Marshal(MembersChanged{Members: []MemberRef{{User: target.User, Unit: target.Unit}}})
	m := &Message{Room: id, Kind: MemberRemove, Sender: who.User, SenderUnit: who.Unit, Payload: payload}
	return *m, s.append(ctx, m, 0)
}

// Post is what a member sends.
type Post struct {
	ClientID string
	Kind     Kind // default text
	Body     string
	Payload  json.RawMessage
	ReplyTo  Seq
	Mentions []acl.UserID
}

// MentionAllID in Mentions is @所有人, reserved to the room's owner.
const MentionAllID acl.UserID = "all"

// Post stores a member's message and publishes it. A repeated ClientID returns
// the first result and stores nothing (dup true).
func (s *Service) Post(ctx context.Context, id RoomID, in Post) (m Message, dup bool, err error) {
	who, err := subject(ctx)
	if err != nil {
		return Message{}, false, err
	}
	if in.Kind == "" {
		in.Kind = Text
	}
	spec, ok := s.kinds.Spec(in.Kind)
	if !ok || !spec.Direct {
		return Message{}, false, invalid("kind", fmt.Sprintf("%q cannot be posted here", in.Kind))
	}
	if err := s.validatePost(in, spec); err != nil {
		return Message{}, false, err
	}
	// A post is decided on the room and the sender's membership, remembered
	// from the sender's last post when it can be; the store checks at commit
	// that the membership is still the one decided on, and if it is not, the
	// post is decided again from the store.
	for attempt := 0; ; attempt++ {
		m, dup, err := s.post(ctx, who, id, in, spec, attempt == 0)
		if errors.Is(err, ErrRoleChanged) {
			s.access.forget(id, who.User)
			if attempt == 0 {
				continue
			}
			err = ErrConflict
		}
		return m, dup, err
	}
}

// post decides and stores one post; cached says whether the decision may rest
// on the remembered room and membership.
func (s *Service) post(ctx context.Context, who acl.Subject, id RoomID, in Post, spec KindSpec, cached bool) (m Message, dup bool, err error) {
	a, err := s.postAccess(ctx, who, id, in.ReplyTo, cached)
	if err != nil {
		return Message{}, false, err
	}
	action := spec.Action
	if action == "" {
		action = acl.PostMessage
	}
	if err := s.check(ctx, who, action, a.resource()); err != nil {
		return Message{}, false, err
	}
	if slices.Contains(in.Mentions, MentionAllID) {
		if err := s.check(ctx, who, acl.MentionAll, a.resource()); err != nil {
			return Message{}, false, err
		}
	}
	if in.ReplyTo > a.room.Head {
		return Message{}, false, invalid("reply_to", "no such message in the room")
	}
	if in.Kind == File {
		var f FileRef
		json.Unmarshal(in.Payload, &f)
		if _, err := s.store.StatBlob(ctx, id, f.SHA256); err != nil {
			return Message{}, false, invalid("payload.sha256", "upload the file to this room first")
		}
	}
	if !s.posts.allow(string(who.User)) {
		return Message{}, false, ErrRateLimit
	}
	msg := &Message{Room: id, Kind: in.Kind, Sender: who.User, SenderUnit: who.Unit, ClientID: in.ClientID,
		ReplyTo: in.ReplyTo, Mentions: in.Mentions, Body: in.Body, Payload: in.Payload}
	msg.Countable = spec.Countable
	msg.CreatedAt = s.now()
	dup, err = s.appendPublish(WithSenderRole(ctx, a.role, a.room.Head), msg, 0)
	if err != nil {
		return Message{}, false, err
	}
	return *msg, dup, nil
}

// postAccess returns the room as who may post to it: from the access cache
// when cached allows, the pair is there, the guard still lets who read the
// room as a member (a pure decision: nothing read, nothing audited) and the
// remembered head covers replyTo; else from the store, remembering what a
// member gets.
func (s *Service) postAccess(ctx context.Context, who acl.Subject, id RoomID, replyTo Seq, cached bool) (roomAccess, error) {
	if e, ok := s.access.get(id, who.User); cached && ok && replyTo <= e.room.Head {
		a := roomAccess{room: e.room, role: e.member.Role, member: e.member}
		if d := s.guard.Decide(who, acl.ReadRoom, a.resource()); d.Allow && !d.Look {
			return a, nil
		}
	}
	a, err := s.visibleRoom(ctx, who, id)
	if err == nil && a.role != "" && !a.look {
		s.access.put(id, who.User, accessEntry{room: a.room, member: a.member})
	}
	return a, err
}

func (s *Service) validatePost(in Post, spec KindSpec) error {
	if len(in.ClientID) > 64 {
		return invalid("client_id", "must be at most 64 bytes")
	}
	if len(in.Body) > s.opts.MaxText {
		return &InvalidError{Field: "body", Reason: fmt.Sprintf("must be at most %d bytes", s.opts.MaxText)}
	}
	if !utf8.ValidString(in.Body) {
		return invalid("body", "must be valid UTF-8")
	}
	if in.Kind == Text && strings.TrimSpace(in.Body) == "" {
		return invalid("body", "must not be empty")
	}
	if len(in.Mentions) > 100 {
		return invalid("mentions", "at most 100 mentions")
	}
	if in.ReplyTo < 0 {
		return invalid("reply_to", "must not be negative")
	}
	if len(in.Payload) > 0 && !json.Valid(in.Payload) {
		return invalid("payload", "must be JSON")
	}
	if len(in.Payload) > 64<<10 {
		return invalid("payload", "must be at most 64 KiB")
	}
	return spec.Validate(in.Payload)
}

// Edit replaces the text of the caller's own message; every version is kept.
func (s *Service) Edit(ctx context.Context, id RoomID, seq Seq, body string) (Message, error) {
	if strings.TrimSpace(body) == "" || len(body) > s.opts.MaxText || !utf8.ValidString(body) {
		return Message{}, invalid("body", fmt.Sprintf("must be 1 to %d bytes of UTF-8", s.opts.MaxText))
	}
	return s.changeMessage(ctx, id, seq, Edit, body)
}

// Retract hides the caller's own message from members within the retract
// window; a moderator retracts any message at any time. Auditors still see it.
func (s *Service) Retract(ctx context.Context, id RoomID, seq Seq) (Message, error) {
	return s.changeMessage(ctx, id, seq, Retract, "")
}

func (s *Service) changeMessage(ctx context.Context, id RoomID, seq Seq, kind Kind, body string) (Message, error) {
	who, err := subject(ctx)
	if err != nil {
		return Message{}, err
	}
	a, err := s.visibleRoom(ctx, who, id)
	if err != nil {
		return Message{}, err
	}
	target, err := s.store.Message(ctx, id, seq)
	if err != nil {
		return Message{}, err
	}
	// RULE acts are never edited or retracted: a correction is a new act.
	if target.Kind != Text && !(kind == Retract && target.Kind == File) {
		return Message{}, invalid("seq", fmt.Sprintf("a %s entry cannot be changed", target.Kind))
	}
	if target.Retracted != 0 {
		return Message{}, invalid("seq", "the message is retracted")
	}
	res := a.resource()
	res.Author = target.Sender
	action := acl.EditMessage
	if kind == Retract {
		action = acl.RetractOwn
	}
	err = s.check(ctx, who, action, res)
	if kind == Retract {
		late := s.now().Sub(target.CreatedAt) > s.opts.RetractWindow
		var denied *acl.DeniedError
		if (err == nil && late) || errors.As(err, &denied) {
			// Past the window, or someone else's message: only a moderator may.
			if merr := s.check(ctx, who, acl.ModerateRoom, res); merr != nil {
				if err == nil {
					return Message{}, &acl.DeniedError{Rule: "retract-window",
						Reason: fmt.Sprintf("A message can be retracted within %s of sending it.", s.opts.RetractWindow)}
				}
				return Message{}, err
			}
			err = nil
		}
	}
	if err != nil {
		return Message{}, err
	}
	m := &Message{Room: id, Kind: kind, Sender: who.User, SenderUnit: who.Unit, Target: seq, Body: body}
	return *m, s.append(ctx, m, 0)
}

// History returns a page of a room's log as the caller may see it: members get
// retracted content hidden; a non-member auditor gets everything (full reports it).
func (s *Service) History(ctx context.Context, id RoomID, q HistoryQuery) (ms []Message, full bool, err error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, false, err
	}
	a, err := s.visibleRoom(ctx, who, id)
	if err != nil {
		return nil, false, err
	}
	if q.Limit <= 0 || q.Limit > MaxPage {
		q.Limit = min(max(q.Limit, 50), MaxPage)
	}
	ms, err = s.store.History(ctx, id, q)
	return ms, a.look && who.Has(acl.Auditor), err
}

// Versions returns every edit of a message, for those the policy lets see them
// (auditors).
func (s *Service) Versions(ctx context.Context, id RoomID, seq Seq) (Message, []Message, error) {
	who, err := subject(ctx)
	if err != nil {
		return Message{}, nil, err
	}
	a, err := s.visibleRoom(ctx, who, id)
	if err != nil {
		return Message{}, nil, err
	}
	if err := s.check(ctx, who, acl.ReadVersions, a.resource()); err != nil {
		return Message{}, nil, err
	}
	orig, err := s.store.Message(ctx, id, seq)
	if err != nil {
		return Message{}, nil, err
	}
	vs, err := s.store.Versions(ctx, id, seq)
	return orig, vs, err
}

// MyRooms returns the caller's rooms, most recently active first.
func (s *Service) MyRooms(ctx context.Context) ([]RoomSummary, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.RoomsOf(ctx, who.User)
}

// MarkRead moves the caller's read marker forward and tells the room.
func (s *Service) MarkRead(ctx context.Context, id RoomID, seq Seq) (Seq, error) {
	who, err := subject(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := s.store.Membership(ctx, id, who.User); err != nil {
		return 0, err // not a member: not found, whether the room exists or not
	}
	got, err := s.store.MarkRead(ctx, id, who.User, seq, s.now())
	if err != nil {
		return 0, err
	}
	s.broker.Publish(context.WithoutCancel(ctx), Event{Type: EvRead, Room: id, User: who.User, Data: EncodeRead(id, who.User, got)})
	return got, nil
}

// Typing tells a room's members the caller is typing.
func (s *Service) Typing(ctx context.Context, id RoomID) error {
	who, err := subject(ctx)
	if err != nil {
		return err
	}
	m, err := s.store.Membership(ctx, id, who.User)
	if err != nil {
		return err
	}
	if m.Role == Observer {
		return nil
	}
	return s.broker.Publish(context.WithoutCancel(ctx), Event{Type: EvTyping, Room: id, User: who.User, Data: EncodeTyping(id, who.User)})
}

// A Receipt says whether a member has read up to a message.
type Receipt struct {
	User acl.UserID
	Unit acl.UnitID
	Read bool
	At   time.Time // when the marker last moved, if read
}

// Receipts lists the room's members (optionally only those of unit) and whether
// each has read the message at seq: "N 人未读" and who.
func (s *Service) Receipts(ctx context.Context, id RoomID, seq Seq, unit acl.UnitID) ([]Receipt, error) {
	who, err := subject(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.visibleRoom(ctx, who, id)
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx, who, acl.ReadReceipts, a.resource()); err != nil {
		return nil, err
	}
	m, err := s.store.Message(ctx, id, seq)
	if err != nil {
		return nil, err
	}
	members, err := s.store.Members(ctx, id)
	if err != nil {
		return nil, err
	}
	markers, err := s.store.ReadMarkers(ctx, id)
	if err != nil {
		return nil, err
	}
	byUser := make(map[acl.UserID]ReadMarker, len(markers))
	for _, rm := range markers {
		byUser[rm.User] = rm
	}
	var out []Receipt
	for _, mem := range members {
		if (unit != "" && mem.Unit != unit) || mem.User == m.Sender {
			continue
		}
		rm, ok := byUser[mem.User]
		r := Receipt{User: mem.User, Unit: mem.Unit, Read: ok && rm.Seq >= seq}
		if r.Read {
			r.At = rm.At
		}
		out = append(out, r)
	}
	return out, nil
}

// Upload stores an attachment in a room, reading at most MaxUpload bytes of
// content, and returns its reference for a File message.
func (s *Service) Upload(ctx context.Context, id RoomID, name, typ string, content io.Reader) (FileRef, error) {
	who, err := subject(ctx)
	if err != nil {
		return FileRef{}, err
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 255 || strings.ContainsAny(name, "/\\\x00") {
		return FileRef{}, invalid("name", "must be a file name of 1 to 255 bytes")
	}
	if typ == "" {
		typ = "application/octet-stream"
	}
	a, err := s.visibleRoom(ctx, who, id)
	if err != nil {
		return FileRef{}, err
	}
	if err := s.check(ctx, who, acl.UploadFile, a.resource()); err != nil {
		return FileRef{}, err
	}
	// Spool to a temporary file while hashing: the store is given the hash it
	// checks, and a 50 MiB upload never sits in memory.
	f, err := os.CreateTemp(s.opts.TempDir, "caseroom-upload-*")
	if err != nil {
		return FileRef{}, fmt.Errorf("chat: spool upload: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(content, s.opts.MaxUpload+1))
	if err != nil {
		return FileRef{}, fmt.Errorf("chat: read upload: %w", err)
	}
	if n > s.opts.MaxUpload {
		return FileRef{}, ErrTooLarge
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return FileRef{}, err
	}
	ref := FileRef{SHA256: hex.EncodeToString(h.Sum(nil)), Name: name, Size: n, Type: typ}
	b := Blob{SHA256: ref.SHA256, Size: n, Type: typ, CreatedAt: s.now()}
	if err := s.store.PutBlob(ctx, id, b, f); err != nil {
		return FileRef{}, err
	}
	return ref, nil
}

// Download opens an attachment of a room the caller may read.
func (s *Service) Download(ctx context.Context, id RoomID, sha string) (Blob, io.ReadCloser, error) {
	who, err := subject(ctx)
	if err != nil {
		return Blob{}, nil, err
	}
	if _, err := s.visibleRoom(ctx, who, id); err != nil {
		return Blob{}, nil, err
	}
	return s.store.OpenBlob(ctx, id, strings.ToLower(sha))
}

// Verify checks a room's hash chain (auditors, supervisors, members).
func (s *Service) Verify(ctx context.Context, id RoomID) error {
	who, err := subject(ctx)
	if err != nil {
		return err
	}
	if _, err := s.visibleRoom(ctx, who, id); err != nil {
		return err
	}
	return VerifyRoom(ctx, s.store, id)
}

// EnsureUnitRoom makes sure unit has its unit room, and that every active user
// of the unit is a member of it (leaders as moderators). It is idempotent; cmd
// calls it when a unit or a user is created.
func (s *Service) EnsureUnitRoom(ctx context.Context, unit acl.Unit, by acl.Subject) (Room, error) {
	r, err := s.store.UnitRoom(ctx, unit.ID)
	if errors.Is(err, ErrNotFound) {
		r = Room{Kind: UnitRoom, Name: unit.Name, OwnerUnit: unit.ID, Region: unit.Region}
		err = s.Open(ctx, &r, nil, by)
		if errors.Is(err, ErrExists) { // another node made it first
			r, err = s.store.UnitRoom(ctx, unit.ID)
		}
	}
	if err != nil {
		return Room{}, err
	}
	users, err := s.dir.Users(ctx, acl.UserFilter{Unit: unit.ID})
	if err != nil {
		return Room{}, err
	}
	var refs []MemberRef
	for _, u := range users {
		if u.Disabled {
			continue
		}
		if _, err := s.store.Membership(ctx, r.ID, u.ID); err == nil {
			continue
		}
		role := Member
		if slices.Contains(u.Roles, acl.Leader) {
			role = Moderator
		}
		refs = append(refs, MemberRef{User: u.ID, Unit: u.Unit, Role: role})
	}
	if len(refs) > 0 {
		payload, _ := json.Marshal(MembersChanged{Members: refs})
		m := &Message{Room: r.ID, Kind: MemberAdd, Sender: by.User, SenderUnit: by.Unit, Payload: payload}
		if err := s.append(ctx, m, 0); err != nil {
			return Room{}, err
		}
	}
	return r, nil
}

// newID returns prefix + "_" + 16 random base32 characters (80 bits).
func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + "_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// strictUnmarshal decodes a payload refusing unknown fields, with errors a
// client can act on.
func strictUnmarshal(p json.RawMessage, v any) error {
	if len(p) == 0 {
		return invalid("payload", "is required")
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("payload", err.Error())
	}
	return nil
}
