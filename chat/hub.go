package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"caseroom/acl"
)

// HubOptions tune a Hub. Zero fields take the defaults stated.
type HubOptions struct {
	// SendQueue is the most frames a session may have waiting for its socket;
	// one more ends the session with ErrSlowConsumer. Default 1024.
	SendQueue int
	// SendQueueBytes bounds the bytes of those frames the same way. Default 4 MiB.
	SendQueueBytes int
	// NewRoomBacklog decides where the backlog of a room the client did not name
	// in since starts: 0 (the default) replays the room's whole log from seq 1,
	// N > 0 only its latest N entries (older ones are there in History).
	NewRoomBacklog int
	// Page is how many entries one store read brings during backlog replays and
	// gap fills; default and at most MaxPage.
	Page int
	// PresenceInterval is how often presence changes are published, coalesced
	// per room (a user who leaves and comes back within it publishes nothing).
	// Default 1s; negative turns presence off.
	PresenceInterval time.Duration
	// PresenceBurst is how many presence changes within one interval make a
	// burst (a reconnect storm, a node restarting): publication then waits,
	// up to presenceMaxDefer intervals, until an interval brings fewer, so
	// that users who drop and come back cancel out instead of being announced
	// offline and online in every room they are in. Default 1000.
	PresenceBurst int
}

// presenceMaxDefer bounds how many intervals a burst holds presence back.
const presenceMaxDefer = 5

func (o *HubOptions) defaults() {
	if o.SendQueue <= 0 {
		o.SendQueue = 1024
	}
	if o.SendQueueBytes <= 0 {
		o.SendQueueBytes = 4 << 20
	}
	if o.Page <= 0 || o.Page > MaxPage {
		o.Page = MaxPage
	}
	if o.PresenceInterval == 0 {
		o.PresenceInterval = time.Second
	}
	if o.PresenceBurst <= 0 {
		o.PresenceBurst = 1000
	}
}

// Why a session ended. Transports map each to a close code (docs/protocol.md).
var (
	ErrSlowConsumer = errors.New("chat: session too slow: send queue full")
	ErrRevoked      = errors.New("chat: session revoked")
	ErrHubClosed    = errors.New("chat: hub stopped")
	ErrSessionEnded = errors.New("chat: session closed") // by its own Close
)

// Frames the hub writes itself; the message, read and typing frames are in
// wire.go. Transports add their own (error, pong).
type (
	// ReadyFrame opens every session: the user and the head of each room they
	// are in when the session starts. Backlogs follow.
	ReadyFrame struct {
		Type  string     `json:"type"` // "ready"
		User  acl.UserID `json:"user"`
		Rooms []RoomHead `json:"rooms"`
	}
	// RoomHead is one room of a ReadyFrame.
	RoomHead struct {
		Room RoomID `json:"room"`
		Head Seq    `json:"head"`
	}
	// CaughtUpFrame follows the last backlog entry of a room at the start of a
	// session: what follows in that room is live.
	CaughtUpFrame struct {
		Type string `json:"type"` // "caught_up"
		Room RoomID `json:"room"`
		Seq  Seq    `json:"seq"`
	}
	// RoomRemovedFrame says the user is no longer a member of room: sent after
	// the member.remove entry (Seq is its seq), or at the start of a session for
	// a room named in since that the user left while away (Seq 0).
	RoomRemovedFrame struct {
		Type string `json:"type"` // "room_removed"
		Room RoomID `json:"room"`
		Seq  Seq    `json:"seq,omitempty"`
	}
	// PresenceFrame says which members of room came online or went offline.
	PresenceFrame struct {
		Type    string       `json:"type"` // "presence"
		Room    RoomID       `json:"room"`
		Online  []acl.UserID `json:"online,omitempty"`
		Offline []acl.UserID `json:"offline,omitempty"`
	}
)

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("chat: encode %T: %v", v, err)) // only our own frame types reach here
	}
	return b
}

// A Hub fans events out to the sessions (sockets) on this node; other nodes are
// the Broker's job. It is safe for concurrent use.
//
// Delivery. Each Session keeps, for every room it is in, the last seq it has
// queued for its client. An EvMessage with seq last+1 is queued as it came:
// its Data bytes were encoded once by the node that stored the entry and are
// shared by every recipient. A seq <= last is a duplicate and dropped. A seq
// beyond last+1 means events were lost (a broker may drop them): the room goes
// into "fill" mode, in which live events of the room only raise the seq known
// to exist, and the session's own goroutine (in Next) reads the missing
// entries from the store after last, page by page, until a page comes back
// short and no event beyond it has been seen; then the room is live again. The
// store is always ahead of the broker (an entry is published only after its
// commit), so this never leaves a gap and never sends an entry twice.
//
// Resume. Join registers the session under its user first (so that a
// membership change that happens meanwhile reaches it), reads the user's
// memberships from the store, and puts every room in fill mode from the seq
// the client gave in since; the backlog is then read by Next, so a resume
// while others keep posting has neither gap nor duplicate, and the store reads
// never run under the hub's lock or in the broker's goroutine. Each room's
// backlog ends with a caught_up frame. A room not in since starts as
// HubOptions.NewRoomBacklog says; a room in since the user no longer belongs to
// gets a room_removed frame.
//
// Membership. A member.add (or room.create) entry that names a user with
// sessions here adds the room to them from that entry on (they receive the
// entry itself and what follows); a member.remove entry reaches the removed
// user's sessions, followed by room_removed, and then they leave the room. The
// users come from Event.Users (or the entry's payload, when an event lacks
// them); backlog and gap fills read them from the stored entries.
//
// Slow clients. A session's send queue is bounded (HubOptions.SendQueue,
// SendQueueBytes); a session whose queue is full is ended at once with
// ErrSlowConsumer, so it never slows the room or the broker. The broker's
// goroutine does only O(recipients) non-blocking work per event. If the hub's
// own broker subscription is ended as slow, Run subscribes again and puts every
// room of every session into fill mode, since events may have been lost.
//
// Ephemeral events (read, typing, presence) go to the sessions in their room
// with no seq and no replay. EvRevoke ends every session of its user with
// ErrRevoked. Presence: when a user's first session on this node starts, or
// their last one ends, the change is published to their rooms, coalesced per
// room every HubOptions.PresenceInterval.
type Hub struct {
	store  Store
	broker Broker
	log    *slog.Logger
	opts   HubOptions

	// mu guards the indexes below. Lock order: Hub.mu before Session.mu.
	mu       sync.RWMutex
	rooms    map[RoomID]map[*Session]struct{}     // sessions in each room
	users    map[acl.UserID]map[*Session]struct{} // sessions of each user
	sessions int                                  // joined and not yet unregistered
	closed   bool                                 // Run has ended: Join refuses

	// dispatched counts the entries dispatched; quiet[b] is the count when an
	// entry of a room in bucket b was last dispatched, lost the count when
	// the broker subscription was (re)made, after which events may be missing.
	// Join uses them to start a room that has nothing new at once (no store read).
	dispatched atomic.Uint64
	quiet      [quietBuckets]atomic.Uint64
	lost       atomic.Uint64

	// presMu guards pres, the presence changes not yet published, and churn,
	// the changes recorded since the last tick.
	presMu sync.Mutex
	pres   map[acl.UserID]presenceChange
	churn  int
	wakeP  chan struct{}
	// subscribed is closed once Run has subscribed to the broker: Join waits
	// for it, since an event published before (a revocation above all) would
	// never reach a session that joined earlier.
	subscribed     chan struct{}
	subscribedOnce sync.Once

	slow, revoked atomic.Uint64 // sessions ended for a full queue, for a revocation (Stats)
}

// presenceChange is a user's pending presence: online or not, and the rooms to
// tell.
type presenceChange struct {
	online bool
	rooms  []RoomID
}

// NewHub returns a Hub reading backlogs from store and events from broker; it
// delivers nothing live until Run is called.
func NewHub(store Store, broker Broker, log *slog.Logger, opts HubOptions) *Hub {
	opts.defaults()
	return &Hub{
		store: store, broker: broker, log: log, opts: opts,
		rooms: map[RoomID]map[*Session]struct{}{},
		users: map[acl.UserID]map[*Session]struct{}{},
		pres:  map[acl.UserID]presenceChange{},
		wakeP: make(chan struct{}, 1),

		subscribed: make(chan struct{}),
	}
}

// Run subscribes to the broker and delivers events until ctx ends; then it
// ends every session with ErrHubClosed, refuses new ones and returns nil. When
// the subscription is ended (as slow, or by a broker failure) it subscribes
// again and brings every session up to date from the store.
func (h *Hub) Run(ctx context.Context) error {
	defer h.shutdown()
	if h.opts.PresenceInterval > 0 {
		go h.presenceLoop(ctx)
	}
	backoff := 100 * time.Millisecond
	for {
		done, err := h.broker.Subscribe(ctx, h.dispatch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.log.ErrorContext(ctx, "hub: broker subscribe failed; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		h.subscribedOnce.Do(func() { close(h.subscribed) })
		// Events published before this subscription may have been missed
		// (before the first one, or between a lost one and this).
		h.lost.Store(h.dispatched.Add(1))
		h.refill()
		err = <-done
		if ctx.Err() != nil {
			return nil
		}
		h.log.WarnContext(ctx, "hub: broker subscription ended; resubscribing, sessions refill from the store", "err", err)
	}
}

func (h *Hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	var all []*Session
	for _, ss := range h.users {
		for s := range ss {
			all = append(all, s)
		}
	}
	h.mu.Unlock()
	for _, s := range all {
		s.fail(ErrHubClosed)
	}
}

// refill puts every room of every session into fill mode.
func (h *Hub) refill() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, ss := range h.users {
		for s := range ss {
			s.mu.Lock()
			for _, p := range s.rooms {
				if !p.fill {
					p.fill, p.want, p.barrier, p.live = true, p.sent, s.pushed, nil
					s.fills++
				}
			}
			s.mu.Unlock()
			s.signal()
		}
	}
}

// Join starts a session for who, resuming each room after the seq since names
// (the last one the client has). It returns once the session knows its rooms;
// the ready frame is the first that Next returns, the backlogs follow. The
// caller must Close the session when it is done with it. Until Run has
// subscribed to the broker it waits (or returns ctx's error).
func (h *Hub) Join(ctx context.Context, who acl.Subject, since map[RoomID]Seq) (*Session, error) {
	select {
	case <-h.subscribed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s := &Session{hub: h, who: who, rooms: map[RoomID]*roomPos{}, wake: make(chan struct{}, 1),
		done: make(chan struct{}), joining: true, since: since}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	ss := h.users[who.User]
	if ss == nil {
		ss = map[*Session]struct{}{}
		h.users[who.User] = ss
	}
	first := len(ss) == 0
	ss[s] = struct{}{}
	h.sessions++
	h.mu.Unlock()

	mark := h.dispatched.Load() // before the heads are read
	heads, err := h.memberships(ctx, who.User)
	if err != nil {
		h.unregister(s)
		return nil, err
	}

	h.mu.Lock()
	s.mu.Lock()
	ready := ReadyFrame{Type: "ready", User: who.User, Rooms: []RoomHead{}}
	var current []RoomID // rooms the client has up to their heads, with nothing dispatched since
	for _, rh := range heads {
		if _, ok := s.rooms[rh.Room]; !ok { // not already added by a member.add meanwhile
			p := s.startPos(rh.Room, rh.Head)
			if p.sent == rh.Head && h.quietSince(rh.Room, mark) {
				// Nothing to replay and nothing dispatched since the head was
				// read (dispatch holds h.mu, so none can slip in before the
				// index below): the room is live at once, with no store read.
				p.fill, p.resume = false, false
				current = append(current, rh.Room)
			} else {
				s.fills++
			}
			s.rooms[rh.Room] = p
		}
		h.indexLocked(rh.Room, s)
	}
	for room, p := range s.rooms {
		ready.Rooms = append(ready.Rooms, RoomHead{Room: room, Head: max(p.want, p.sent)})
	}
	slices.SortFunc(ready.Rooms, func(a, b RoomHead) int { return cmpString(a.Room, b.Room) })
	// The opening frames do not count against the send queue's bounds: a
	// client may name many rooms it has left.
	s.appendLocked(encode(ready))
	for room := range since {
		if _, ok := s.rooms[room]; !ok {
			s.appendLocked(encode(RoomRemovedFrame{Type: "room_removed", Room: room}))
		}
	}
	for _, room := range current {
		s.appendLocked(encode(CaughtUpFrame{Type: "caught_up", Room: room, Seq: s.rooms[room].sent}))
	}
	for _, p := range s.rooms {
		p.barrier = s.pushed // backlogs after the ready frame
	}
	s.joining, s.since = false, nil
	rooms := s.roomIDsLocked()
	s.mu.Unlock()
	h.mu.Unlock()
	s.signal()
	if first {
		h.presence(who.User, rooms, true)
	}
	return s, nil
}

func cmpString[T ~string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// memberships returns the rooms user is a member of, with their heads.
func (h *Hub) memberships(ctx context.Context, user acl.UserID) ([]RoomHead, error) {
	heads, err := h.store.MemberHeads(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("chat: memberships of %s: %w", user, err)
	}
	// Every session keeps its rooms' ids for as long as it lives, and each
	// store read returns fresh strings: unique.Make gives the sessions that
	// join while an id's canonical copy is alive (a burst of connections
	// above all) one copy between them instead of one each.
	for i := range heads {
		heads[i].Room = unique.Make(heads[i].Room).Value()
	}
	return heads, nil
}

// quietBuckets is how many buckets the rooms' dispatch marks are hashed into.
const quietBuckets = 4096

// markDispatch records that an entry of room is being dispatched: Join then
// knows the room may have moved on since it read the heads.
func (h *Hub) markDispatch(room RoomID) {
	h.quiet[bucketOf(room)].Store(h.dispatched.Add(1))
}

// quietSince reports whether no entry of room (nor of a room sharing its
// bucket) was dispatched, and no event may have been lost, since the
// dispatch count was mark: then the head read after mark is still the head,
// as far as any event can tell.
func (h *Hub) quietSince(room RoomID, mark uint64) bool {
	return h.quiet[bucketOf(room)].Load() <= mark && h.lost.Load() <= mark
}

func bucketOf(room RoomID) int {
	x := uint32(2166136261) // FNV-1a
	for i := 0; i < len(room); i++ {
		x = (x ^ uint32(room[i])) * 16777619
	}
	return int(x % quietBuckets)
}

// indexLocked records that s is in room. h.mu is held.
func (h *Hub) indexLocked(room RoomID, s *Session) {
	ss := h.rooms[room]
	if ss == nil {
		ss = map[*Session]struct{}{}
		h.rooms[room] = ss
	}
	ss[s] = struct{}{}
}

// unindexLocked forgets that s is in room. h.mu is held.
func (h *Hub) unindexLocked(room RoomID, s *Session) {
	if ss := h.rooms[room]; ss != nil {
		delete(ss, s)
		if len(ss) == 0 {
			delete(h.rooms, room)
		}
	}
}

// leaveRoom takes s out of room's index unless s has rejoined it meanwhile.
func (h *Hub) leaveRoom(room RoomID, s *Session) {
	h.mu.Lock()
	s.mu.Lock()
	if _, ok := s.rooms[room]; !ok {
		h.unindexLocked(room, s)
	}
	s.mu.Unlock()
	h.mu.Unlock()
}

// unregister removes s from every index and reports whether it was its user's
// last session here, with the rooms it was in.
func (h *Hub) unregister(s *Session) (last bool, rooms []RoomID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.mu.Lock()
	rooms = s.roomIDsLocked()
	s.mu.Unlock()
	for _, r := range rooms {
		h.unindexLocked(r, s)
	}
	ss := h.users[s.who.User]
	if _, ok := ss[s]; !ok {
		return false, nil
	}
	delete(ss, s)
	h.sessions--
	if len(ss) == 0 {
		delete(h.users, s.who.User)
		return true, rooms
	}
	return false, nil
}

// HubStats is what a hub holds and has done, for /metrics.
type HubStats struct {
	Sessions, Users, Rooms int    // sessions joined, their users, the rooms they are in
	SlowConsumers, Revoked uint64 // sessions ended so far for a full send queue, for a revocation
}

// Stats returns the hub's counts now.
func (h *Hub) Stats() HubStats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return HubStats{Sessions: h.sessions, Users: len(h.users), Rooms: len(h.rooms),
		SlowConsumers: h.slow.Load(), Revoked: h.revoked.Load()}
}

// dispatch is the broker's handler: O(recipients) work, none of it blocking.
func (h *Hub) dispatch(e Event) {
	switch e.Type {
	case EvMessage:
		h.markDispatch(e.Room)
		adds, removes := membershipUsers(e)
		if adds == nil && removes == nil {
			h.mu.RLock()
			for s := range h.rooms[e.Room] {
				s.message(e, false, false)
			}
			h.mu.RUnlock()
			return
		}
		h.membershipEvent(e, adds, removes)
	case EvRevoke:
		h.Revoke(e.User, "")
	default: // EvRead, EvTyping, EvPresence: ephemeral, to whoever is in the room
		if len(e.Data) == 0 {
			return
		}
		h.mu.RLock()
		for s := range h.rooms[e.Room] {
			s.ephemeral(e.Room, e.Data)
		}
		h.mu.RUnlock()
	}
}

// membershipEvent delivers an entry that adds or removes members, changing the
// room index under the write lock (membership changes are rare).
func (h *Hub) membershipEvent(e Event, adds, removes []acl.UserID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.rooms[e.Room] {
		if s.message(e, slices.Contains(adds, s.who.User), slices.Contains(removes, s.who.User)) {
			h.unindexLocked(e.Room, s)
		}
	}
	for _, u := range adds {
		for s := range h.users[u] {
			if s.added(e) {
				h.indexLocked(e.Room, s)
			}
		}
	}
}

// membershipUsers returns the users an entry adds and removes, from the event
// or, when the publisher left them out, from the frame in Data.
func membershipUsers(e Event) (adds, removes []acl.UserID) {
	kind := e.Kind
	users := e.Users
	if kind == "" || (users == nil && isMembershipKind(kind)) {
		if kind != "" || bytes.Contains(e.Data, []byte(`"kind":"member.`)) || bytes.Contains(e.Data, []byte(`"kind":"room.create"`)) {
			var f struct {
				Message struct {
					Kind    Kind            `json:"kind"`
					Payload json.RawMessage `json:"payload"`
				} `json:"message"`
			}
			if json.Unmarshal(e.Data, &f) == nil {
				kind = f.Message.Kind
				users = payloadUsers(kind, f.Message.Payload)
			}
		}
	}
	switch kind {
	case MemberAdd, RoomCreate:
		return users, nil
	case MemberRemove:
		return nil, users
	}
	return nil, nil
}

func isMembershipKind(k Kind) bool { return k == MemberAdd || k == MemberRemove || k == RoomCreate }

// payloadUsers returns the users a membership entry's payload names.
func payloadUsers(kind Kind, payload json.RawMessage) []acl.UserID {
	if !isMembershipKind(kind) || len(payload) == 0 {
		return nil
	}
	var p struct {
		Members []MemberRef `json:"members"` // RoomCreated and MembersChanged alike
	}
	if json.Unmarshal(payload, &p) != nil {
		return nil
	}
	users := make([]acl.UserID, 0, len(p.Members))
	for _, m := range p.Members {
		users = append(users, m.User)
	}
	return users
}

// presence records a presence change of user for the next publication.
func (h *Hub) presence(user acl.UserID, rooms []RoomID, online bool) {
	if h.opts.PresenceInterval < 0 || len(rooms) == 0 {
		return
	}
	h.presMu.Lock()
	h.churn++
	if c, ok := h.pres[user]; ok && c.online != online {
		delete(h.pres, user) // back to what was last published: nothing to say
	} else {
		h.pres[user] = presenceChange{online: online, rooms: rooms}
	}
	h.presMu.Unlock()
}

// presenceLoop publishes the pending presence changes every interval, one
// event per room, holding them back while a burst lasts (PresenceBurst).
func (h *Hub) presenceLoop(ctx context.Context) {
	t := time.NewTicker(h.opts.PresenceInterval)
	defer t.Stop()
	deferred := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.presMu.Lock()
		churn := h.churn
		h.churn = 0
		pending := h.pres
		if len(pending) == 0 {
			h.presMu.Unlock()
			deferred = 0
			continue
		}
		if churn >= h.opts.PresenceBurst && deferred < presenceMaxDefer {
			h.presMu.Unlock()
			deferred++
			continue
		}
		deferred = 0
		h.pres = map[acl.UserID]presenceChange{}
		h.presMu.Unlock()
		frames := map[RoomID]*PresenceFrame{}
		for u, c := range pending {
			for _, r := range c.rooms {
				f := frames[r]
				if f == nil {
					f = &PresenceFrame{Type: "presence", Room: r}
					frames[r] = f
				}
				if c.online {
					f.Online = append(f.Online, u)
				} else {
					f.Offline = append(f.Offline, u)
				}
			}
		}
		for r, f := range frames {
			slices.Sort(f.Online)
			slices.Sort(f.Offline)
			if err := h.broker.Publish(ctx, Event{Type: EvPresence, Room: r, Data: encode(f)}); err != nil && ctx.Err() == nil {
				h.log.WarnContext(ctx, "hub: publish presence failed", "room", r, "err", err)
			}
		}
	}
}

// A Session is one client connection's view of the hub: the rooms its user is
// in, the last seq it has queued in each, and a bounded queue of encoded frames
// for the transport to write. Its per-room state is a few words, and it holds
// no goroutine of its own: the transport calls Next (or TryNext), which also
// does the session's store reads.
type Session struct {
	hub    *Hub
	who    acl.Subject
	wake   chan struct{}          // buffered 1: something was queued or the state changed
	done   chan struct{}          // closed when the session ends
	notify atomic.Pointer[func()] // OnWake's function, called with every wake

	// mu guards the fields below. Lock order: Hub.mu before Session.mu.
	mu      sync.Mutex
	rooms   map[RoomID]*roomPos
	fills   int      // rooms in fill mode
	queue   [][]byte // frames waiting for Next, in order
	queued  int      // bytes in queue
	spare   [][]byte // the slice Next returned last time, reused when small
	pushed  uint64   // frames ever queued
	taken   uint64   // frames ever returned from the queue by Next
	turn    bool     // Next's next turn goes to a fill, so live traffic cannot starve fills
	err     error    // why the session ended; nil while it runs
	joining bool
	since   map[RoomID]Seq // the client's positions, while joining
	closed  bool           // Close has run
}

// roomPos is a session's position in one room.
type roomPos struct {
	sent   Seq  // the last entry queued for the client
	want   Seq  // while filling: the highest seq known to exist
	fill   bool // entries after sent come from the store before live ones
	resume bool // this fill is the session's backlog: end it with caught_up
	out    bool // while filling: the user was removed at sent and not re-added since
	// live holds, while filling, the live entries that arrived, contiguous from
	// live[0].seq; once the store reads reach live[0] the rest comes from here,
	// so that a fill ends even while the room keeps moving.
	live []liveEntry
	// barrier is the count of frames queued when the fill began: the fill waits
	// until Next has taken them, since some may be this room's, before sent.
	barrier uint64
}

// liveEntry is a live entry kept while its room fills; add and remove say
// whether it adds or removes the session's user.
type liveEntry struct {
	seq         Seq
	data        []byte
	add, remove bool
}

// maxLive bounds a filling room's live entries; beyond it the store serves.
const maxLive = 1024

// startPos returns where a room starts at join: after the client's seq, or as
// HubOptions.NewRoomBacklog says for a room the client did not name.
func (s *Session) startPos(room RoomID, head Seq) *roomPos {
	from, ok := s.since[room]
	if !ok && s.hub.opts.NewRoomBacklog > 0 {
		from = head - Seq(s.hub.opts.NewRoomBacklog)
	}
	from = max(0, min(from, head))
	return &roomPos{sent: from, want: head, fill: true, resume: true}
}

// Subject returns whose session this is.
func (s *Session) Subject() acl.Subject { return s.who }

// Done is closed when the session has ended; Err says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended: ErrSlowConsumer, ErrRevoked, ErrHubClosed,
// ErrSessionEnded (Close), or a store error from a backlog read; nil while it
// runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Rooms returns the rooms the session is in, sorted.
func (s *Session) Rooms() []RoomID {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roomIDsLocked()
	slices.Sort(r)
	return r
}

func (s *Session) roomIDsLocked() []RoomID {
	r := make([]RoomID, 0, len(s.rooms))
	for id := range s.rooms {
		r = append(r, id)
	}
	return r
}

// Close ends the session (if it has not ended) and takes it out of the hub. It
// is idempotent.
func (s *Session) Close() {
	s.fail(ErrSessionEnded)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	if last, rooms := s.hub.unregister(s); last {
		s.hub.presence(s.who.User, rooms, false)
	}
}

// Revoke ends with ErrRevoked the sessions on this node of user, or, with
// user empty, those joined with session (acl.Subject.Session), wherever their
// user. It is local: a node that learns of a revocation from its database's
// feed (every node does) ends its own sockets; EvRevoke is the same through
// the broker.
func (h *Hub) Revoke(user acl.UserID, session string) {
	var ss []*Session
	h.mu.RLock()
	if user != "" {
		for s := range h.users[user] {
			ss = append(ss, s)
		}
	} else if session != "" {
		for _, us := range h.users {
			for s := range us {
				if s.who.Session == session {
					ss = append(ss, s)
				}
			}
		}
	}
	h.mu.RUnlock()
	for _, s := range ss {
		s.mu.Lock()
		if s.err == nil { // not ended already (by an earlier revocation, say)
			s.failLocked(ErrRevoked)
			h.revoked.Add(1)
		}
		s.mu.Unlock()
	}
}

// Subjects returns the subject of every session joined to the hub, one per
// acl session (a user's sockets of one login share it), for a sweep that
// checks each is still active.
func (h *Hub) Subjects() []acl.Subject {
	h.mu.RLock()
	defer h.mu.RUnlock()
	seen := map[string]bool{}
	var out []acl.Subject
	for _, us := range h.users {
		for s := range us {
			if k := string(s.who.User) + "\x00" + s.who.Session; !seen[k] {
				seen[k] = true
				out = append(out, s.who)
			}
		}
	}
	return out
}

// fail ends the session with err unless it has ended. It never blocks, so it
// may run in the broker's goroutine.
func (s *Session) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(err)
}

func (s *Session) failLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	s.queue, s.spare, s.queued = nil, nil, 0
	close(s.done)
	s.signal() // a transport waiting only on OnWake learns of the end
}

// OnWake sets a function called whenever the session has something for
// TryNext — frames queued, a backlog to read, or its end — so that a transport
// can run its writer only while there is work instead of parking a goroutine
// in Next. f must not block or call into the session synchronously; it may
// run with the session's lock held.
func (s *Session) OnWake(f func()) {
	s.notify.Store(&f)
	f() // whatever is already there (the ready frame, the backlogs)
}

// signal wakes Next and calls OnWake's function.
func (s *Session) signal() {
	if f := s.notify.Load(); f != nil {
		(*f)()
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pushLocked queues a frame, or ends the session if its queue is full.
func (s *Session) pushLocked(f []byte) {
	if len(s.queue) >= s.hub.opts.SendQueue || s.queued+len(f) > s.hub.opts.SendQueueBytes {
		s.hub.log.Warn("hub: client dropped: send queue full",
			"user", s.who.User, "queued", len(s.queue), "bytes", s.queued)
		s.failLocked(ErrSlowConsumer)
		s.hub.slow.Add(1)
		return
	}
	s.appendLocked(f)
}

func (s *Session) appendLocked(f []byte) {
	s.queue = append(s.queue, f)
	s.queued += len(f)
	s.pushed++
}

// Send queues a frame of the transport's own (a reply such as pong or error)
// behind what is queued; like any frame, it ends the session as slow if the
// queue is full. It does nothing once the session has ended.
func (s *Session) Send(frame []byte) {
	s.mu.Lock()
	if s.err == nil {
		s.pushLocked(frame)
	}
	s.mu.Unlock()
	s.signal()
}

// ephemeral queues an ephemeral frame of room.
func (s *Session) ephemeral(room RoomID, data []byte) {
	s.mu.Lock()
	if s.err == nil && !s.joining && s.rooms[room] != nil { // nothing before ready
		s.pushLocked(data)
	}
	s.mu.Unlock()
	s.signal()
}

// message handles a live log entry of a room the session is in; add and
// remove say whether it adds or removes the session's user. It reports
// whether the session has left the room.
func (s *Session) message(e Event, add, remove bool) (left bool) {
	s.mu.Lock()
	defer s.signal()
	defer s.mu.Unlock()
	p := s.rooms[e.Room]
	if s.err != nil || p == nil {
		return false
	}
	switch {
	case p.fill:
		p.want = max(p.want, e.Seq)
		if e.Seq <= p.sent {
			return false
		}
		le := liveEntry{seq: e.Seq, data: e.Data, add: add, remove: remove}
		switch n := len(p.live); {
		case n == 0:
			p.live = append(p.live, le)
		case n >= maxLive || e.Seq <= p.live[n-1].seq:
			// full, or a duplicate: the store has it
		case e.Seq == p.live[n-1].seq+1:
			p.live = append(p.live, le)
		default: // a gap among live entries: keep the newest run, the store has the rest
			p.live = append(p.live[:0], le)
		}
	case e.Seq <= p.sent: // a duplicate
	case e.Seq == p.sent+1:
		s.pushLocked(e.Data)
		p.sent = e.Seq
		if remove {
			s.pushLocked(encode(RoomRemovedFrame{Type: "room_removed", Room: e.Room, Seq: e.Seq}))
			delete(s.rooms, e.Room)
			return true
		}
	default: // a gap: fill it from the store, this entry included
		p.fill, p.want, p.barrier = true, e.Seq, s.pushed
		p.live = append(p.live[:0], liveEntry{seq: e.Seq, data: e.Data, add: add, remove: remove})
		s.fills++
	}
	return false
}

// added handles an entry that adds the session's user to e.Room. It reports
// whether the session joined the room by it.
func (s *Session) added(e Event) (joined bool) {
	s.mu.Lock()
	if s.err != nil || s.rooms[e.Room] != nil {
		s.mu.Unlock()
		return false
	}
	if s.joining {
		// Join has not read the memberships yet, or read them before this entry:
		// start where the client said, and fill through this entry.
		s.rooms[e.Room] = s.startPos(e.Room, e.Seq)
		s.fills++
		s.mu.Unlock()
		return true
	}
	s.rooms[e.Room] = &roomPos{sent: e.Seq - 1}
	s.mu.Unlock()
	s.message(e, true, false)
	return true
}

// Next waits until there are frames to send and returns them, in order: the
// queued frames, or else the next page of a room's backlog or gap fill, which
// it reads from the store itself. The slice is valid until the next call; the
// frames are shared and must not be modified. When the session has ended it
// returns the reason (see Err); when ctx ends, ctx's error.
func (s *Session) Next(ctx context.Context) ([][]byte, error) {
	return s.next(ctx, true)
}

// TryNext is Next without the wait: when there is nothing to send now it
// returns no frames and no error. A transport that uses it calls it again
// when OnWake's function runs.
func (s *Session) TryNext(ctx context.Context) ([][]byte, error) {
	return s.next(ctx, false)
}

func (s *Session) next(ctx context.Context, wait bool) ([][]byte, error) {
	s.mu.Lock()
	clear(s.spare) // the caller is done with what it was given last: let those frames go
	s.mu.Unlock()
	for {
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return nil, err
		}
		var room RoomID
		if s.fills > 0 && (s.turn || len(s.queue) == 0) {
			for id, p := range s.rooms {
				if p.fill && p.barrier <= s.taken {
					room = id
					break
				}
			}
		}
		if room == "" && len(s.queue) > 0 {
			q := s.queue
			s.queue, s.queued = s.spare[:0], 0
			if cap(q) <= 32 { // keep small buffers; let big ones go with the burst
				s.spare = q
			} else {
				s.spare = nil
			}
			s.taken = s.pushed
			s.turn = true
			s.mu.Unlock()
			return q, nil
		}
		s.turn = false
		s.mu.Unlock()
		if room != "" {
			frames, err := s.fill(ctx, room)
			if err != nil {
				return nil, err
			}
			if len(frames) > 0 {
				return frames, nil
			}
			continue
		}
		if !wait {
			return nil, nil
		}
		select {
		case <-s.wake:
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// fill reads the next page of room after the last entry sent and returns its
// frames. When the page reaches the live entries kept meanwhile it goes on
// with those, and the room is live again once nothing beyond is known.
func (s *Session) fill(ctx context.Context, room RoomID) ([][]byte, error) {
	s.mu.Lock()
	p := s.rooms[room]
	if p == nil || !p.fill {
		s.mu.Unlock()
		return nil, nil
	}
	after := p.sent
	var ms []Message
	read := len(p.live) == 0 || p.live[0].seq > after+1 // else the live entries go on from here
	s.mu.Unlock()

	page := s.hub.opts.Page
	if read {
		var err error
		ms, err = s.hub.store.History(ctx, room, HistoryQuery{After: after, Limit: page})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			err = fmt.Errorf("chat: backlog of %s after %d: %w", room, after, err)
			s.hub.log.ErrorContext(ctx, "hub: backlog read failed; closing session", "user", s.who.User, "room", room, "err", err)
			s.fail(err)
			return nil, err
		}
	}

	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return nil, err
	}
	if s.rooms[room] != p || p.sent != after || !p.fill { // only this goroutine moves a filling room
		s.mu.Unlock()
		return nil, nil
	}
	frames := make([][]byte, 0, len(ms)+len(p.live)+1)
	emit := func(seq Seq, add, remove bool, data func() []byte) {
		p.sent = seq
		if p.out { // removed earlier in this fill: skip until added again
			if add {
				p.out = false
				frames = append(frames, data())
			}
			return
		}
		frames = append(frames, data())
		if remove {
			p.out = true
			frames = append(frames, encode(RoomRemovedFrame{Type: "room_removed", Room: room, Seq: seq}))
		}
	}
	for i := range ms {
		m := &ms[i]
		if m.Seq != p.sent+1 {
			break // a store never skips; read again from here
		}
		self := isMembershipKind(m.Kind) && slices.Contains(payloadUsers(m.Kind, m.Payload), s.who.User)
		emit(m.Seq, self && m.Kind != MemberRemove, self && m.Kind == MemberRemove, func() []byte { return EncodeMessage(m) })
	}
	spliced := false
	if len(p.live) > 0 && p.live[0].seq <= p.sent+1 {
		for _, le := range p.live {
			if le.seq == p.sent+1 {
				emit(le.seq, le.add, le.remove, func() []byte { return le.data })
			}
		}
		p.live = p.live[:0]
		spliced = true
	}
	left := false
	if p.want <= p.sent && (spliced || (read && len(ms) < page)) {
		p.fill, p.live = false, nil
		s.fills--
		switch {
		case p.out:
			delete(s.rooms, room)
			left = true
		case p.resume:
			frames = append(frames, encode(CaughtUpFrame{Type: "caught_up", Room: room, Seq: p.sent}))
		}
		p.resume = false
	}
	s.mu.Unlock()
	if left {
		s.hub.leaveRoom(room, s)
	}
	return frames, nil
}
