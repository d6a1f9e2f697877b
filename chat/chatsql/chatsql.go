// Package chatsql is what chat's SQL stores (chat/sqlite, chat/postgres) share:
// what an entry may hold, what it changes, when it is stored, which page a
// HistoryQuery asks for and whether a blob is what it claims are decided here,
// before any SQL, so that the two stores cannot drift apart. It is pure: no SQL,
// no database.
package chatsql

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"caseroom/acl"
	"caseroom/chat"
)

// An Effect is what an entry changes beside the log, decoded from its payload
// before anything is stored, so a bad payload stores nothing.
type Effect struct {
	Members  []chat.MemberRef // RoomCreate, MemberAdd, MemberRemove, MemberRole
	Units    []acl.UnitID     // UnitAdd
	Name     string           // RoomRename
	Archived bool             // RoomArchive
}

// HasEffect reports whether an entry of kind changes more than the log.
func HasEffect(k chat.Kind) bool {
	switch k {
	case chat.RoomCreate, chat.MemberAdd, chat.MemberRemove, chat.MemberRole, chat.UnitAdd,
		chat.RoomRename, chat.RoomArchive, chat.Edit, chat.Retract:
		return true
	}
	return false
}

// decodeEffect decodes the effect of m's kind. Every error wraps chat.ErrInvalid.
func DecodeEffect(m *chat.Message) (Effect, error) {
	var ef Effect
	switch m.Kind {
	case chat.RoomCreate:
		var p chat.RoomCreated
		if err := DecodePayload(m.Payload, &p); err != nil {
			return ef, err
		}
		if err := CheckMembers(m.Kind, p.Members); err != nil {
			return ef, err
		}
		ef.Members = p.Members
	case chat.MemberAdd, chat.MemberRemove, chat.MemberRole:
		var p chat.MembersChanged
		if err := DecodePayload(m.Payload, &p); err != nil {
			return ef, err
		}
		if len(p.Members) == 0 {
			return ef, Invalid("payload", "no members")
		}
		if err := CheckMembers(m.Kind, p.Members); err != nil {
			return ef, err
		}
		ef.Members = p.Members
	case chat.UnitAdd:
		var p chat.UnitsChanged
		if err := DecodePayload(m.Payload, &p); err != nil {
			return ef, err
		}
		if len(p.Units) == 0 {
			return ef, Invalid("payload", "no units")
		}
		for _, u := range p.Units {
			if u == "" {
				return ef, Invalid("payload", "empty unit id")
			}
			if err := CheckText("payload", string(u)); err != nil {
				return ef, err
			}
		}
		ef.Units = p.Units
	case chat.RoomRename:
		var p chat.RoomRenamed
		if err := DecodePayload(m.Payload, &p); err != nil {
			return ef, err
		}
		if strings.TrimSpace(p.Name) == "" {
			return ef, Invalid("payload", "empty room name")
		}
		if err := CheckText("payload", p.Name); err != nil {
			return ef, err
		}
		ef.Name = p.Name
	case chat.RoomArchive:
		var p chat.RoomArchived
		if err := DecodePayload(m.Payload, &p); err != nil {
			return ef, err
		}
		ef.Archived = p.Archived
	case chat.Edit, chat.Retract:
		if m.Target <= 0 {
			return ef, Invalid("target", "must name an entry of the room")
		}
	}
	return ef, nil
}

// checkCreate checks that created may open the log of r: kind RoomCreate, for
// r, with a payload that describes r as it is stored.
func CheckCreate(r chat.Room, created *chat.Message) error {
	if r.ID == "" {
		return Invalid("id", "empty")
	}
	if created.Kind != chat.RoomCreate {
		return Invalid("kind", "a room's log opens with "+string(chat.RoomCreate))
	}
	if created.Room != r.ID {
		return Invalid("room", "the created entry is for another room")
	}
	if r.Archived {
		return Invalid("archived", "a new room cannot be archived")
	}
	for _, f := range []struct{ name, v string }{
		{"id", string(r.ID)}, {"kind", string(r.Kind)}, {"name", r.Name},
		{"owner_unit", string(r.OwnerUnit)}, {"region", string(r.Region)}, {"created_by", string(r.CreatedBy)},
	} {
		if err := CheckText(f.name, f.v); err != nil {
			return err
		}
	}
	var p chat.RoomCreated
	if err := DecodePayload(created.Payload, &p); err != nil {
		return err
	}
	if p.Kind != r.Kind || p.Name != r.Name || p.OwnerUnit != r.OwnerUnit || p.Region != r.Region {
		return Invalid("payload", "kind, name, owner unit or region differ from the room's")
	}
	return nil
}

// checkEntry refuses what could not be stored exactly or hashed faithfully:
// text that is not UTF-8 or holds NUL (PostgreSQL's text cannot keep it, and
// JSON would change it), and an entry without a kind.
func CheckEntry(m *chat.Message) error {
	if m.Kind == "" {
		return Invalid("kind", "empty")
	}
	for _, f := range []struct{ name, v string }{
		{"room", string(m.Room)}, {"kind", string(m.Kind)}, {"sender", string(m.Sender)},
		{"sender_unit", string(m.SenderUnit)}, {"client_id", m.ClientID}, {"body", m.Body},
	} {
		if err := CheckText(f.name, f.v); err != nil {
			return err
		}
	}
	for _, u := range m.Mentions {
		if err := CheckText("mentions", string(u)); err != nil {
			return err
		}
	}
	return nil
}

func CheckText(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Invalid(field, "contains a NUL character")
	}
	return nil
}

// checkMembers checks the members of a membership change of kind: each names a
// user once, with a unit when they join, and a known role (required to re-role).
func CheckMembers(kind chat.Kind, ms []chat.MemberRef) error {
	seen := make(map[acl.UserID]bool, len(ms))
	for _, r := range ms {
		if r.User == "" {
			return Invalid("payload", "a member without a user id")
		}
		if seen[r.User] {
			return Invalid("payload", fmt.Sprintf("user %s is listed twice", r.User))
		}
		seen[r.User] = true
		joins := kind == chat.RoomCreate || kind == chat.MemberAdd
		switch {
		case joins && r.Unit == "":
			return Invalid("payload", fmt.Sprintf("member %s without a unit", r.User))
		case kind == chat.MemberRole && r.Role == "":
			return Invalid("payload", fmt.Sprintf("member %s without a role", r.User))
		case r.Role != "" && !chat.ValidRoomRole(r.Role):
			return Invalid("payload", fmt.Sprintf("member %s: unknown role %q", r.User, r.Role))
		}
		for _, s := range []string{string(r.User), string(r.Unit), string(r.Role)} {
			if err := CheckText("payload", s); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodePayload decodes a structured kind's payload into v; a payload that is
// missing, null or not the JSON object v describes is invalid.
func DecodePayload(p json.RawMessage, v any) error {
	if t := bytes.TrimSpace(p); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return Invalid("payload", "missing")
	}
	if err := json.Unmarshal(p, v); err != nil {
		return Invalid("payload", err.Error())
	}
	return nil
}

func Invalid(field, reason string) error {
	return &chat.InvalidError{Field: field, Reason: reason}
}

// roleOrMember is the role a joining member gets when none is given.
func RoleOrMember(r chat.RoomRole) chat.RoomRole {
	if r == "" {
		return chat.Member
	}
	return r
}

// admit decides, from the head of e's room, whether e may become its next
// entry: not if ifHead is set and stale (ErrConflict), not in an archived room
// unless e brings it back (ErrArchived), and never a second room.create.
func Admit(e *chat.Message, ef Effect, head chat.Seq, archived bool, ifHead chat.Seq) error {
	switch {
	case ifHead != 0 && head != ifHead:
		return chat.ErrConflict
	case archived && !(e.Kind == chat.RoomArchive && !ef.Archived):
		return chat.ErrArchived
	case e.Kind == chat.RoomCreate && head != 0:
		return Invalid("kind", "the room already exists")
	}
	return nil
}

// WantRole returns the sender decision an Append's caller made
// (chat.WithSenderRole), or nil when it named none.
func WantRole(ctx context.Context) *chat.SenderDecision {
	if d, ok := chat.SenderRole(ctx); ok {
		return &d
	}
	return nil
}

// CheckRole refuses an entry whose caller decided on a sender role (want)
// other than got, the sender's role as read under the room's lock ("" for
// none).
func CheckRole(want *chat.SenderDecision, got chat.RoomRole) error {
	if want != nil && want.Role != got {
		return chat.ErrRoleChanged
	}
	return nil
}

// Stamp is when an entry is stored: the time the caller set (the service's
// clock), in microseconds, or else now, but never before the room's last
// entry. So created_at never goes back along a room's log — not when two
// posts race between the clock and the commit, nor when the clocks of two
// nodes disagree — and History can find a time by a sparse index of marks
// (SelectTimeBounds) instead of an index of every entry's time.
func Stamp(given, last time.Time) time.Time {
	at := given.UTC().Truncate(time.Microsecond)
	if given.IsZero() {
		at = time.Now().UTC().Truncate(time.Microsecond)
	}
	if at.Before(last) {
		return last.UTC()
	}
	return at
}

// encodeMentions stores mentions as a JSON array, in the order given.
func EncodeMentions(ms []acl.UserID) string {
	if len(ms) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ms) // checkEntry has made sure every id is UTF-8
	return string(b)
}

// decodeMentions reads back what encodeMentions stored; none reads as nil.
func DecodeMentions(s string) ([]acl.UserID, error) {
	var ms []acl.UserID
	if err := json.Unmarshal([]byte(s), &ms); err != nil {
		return nil, fmt.Errorf("decode mentions %q: %w", s, err)
	}
	if len(ms) == 0 {
		return nil, nil
	}
	return ms, nil
}

// defaultPage is the page History returns when HistoryQuery.Limit is not set.
const DefaultPage = 50

// A page is a HistoryQuery as bounds of a query: seq in (after, before),
// created_at in [since, until), at most limit entries, the first ones unless
// last is set, in which case the last ones (History still returns them in
// ascending order). A query with Before and no After asks for the last page
// before Before; any other for the first page after After (0: from the start,
// as a client resumes that has seen nothing), so that paging forward from 0
// reads a whole log.
type Page struct {
	After, Before int64
	Since, Until  int64
	Limit         int
	Last          bool
}

func PageOf(q chat.HistoryQuery) Page {
	p := Page{After: max(int64(q.After), 0), Before: math.MaxInt64, Since: math.MinInt64, Until: math.MaxInt64, Limit: q.Limit}
	if q.Before > 0 {
		p.Before = int64(q.Before)
	}
	if !q.Since.IsZero() {
		p.Since = CeilMicro(q.Since)
	}
	if !q.Until.IsZero() {
		p.Until = CeilMicro(q.Until)
	}
	if p.Limit <= 0 {
		p.Limit = DefaultPage
	}
	p.Limit = min(p.Limit, chat.MaxPage)
	p.Last = q.Before > 0 && p.After == 0
	return p
}

// SelectTimeBounds answers, for room $1, the floor and ceil of Page.Narrow for
// Since $2 and Until $3. The marks are the entries whose seq is a multiple of
// 64, the only ones indexed by (room, created_at) (index chat_messages_marks,
// whose predicate this must repeat for the planner to use it; the stores'
// tests check the plans). Since created_at never decreases along a room's log
// (Stamp), the mark nearest before $2 (0 when none) and the mark nearest at or
// after $3 (the largest int64 when none) bound the seqs stored in the range,
// and History reads at most 64 entries it does not return at each end. Only
// marks from the room's time_from on count: entries stored before it were not
// stamped in order, and a mark among them bounds nothing. The same SQL on both
// databases; no row when the room does not exist.
const SelectTimeBounds = `SELECT
	coalesce((SELECT m.seq FROM chat_messages m WHERE m.room = r.id AND m.seq % 64 = 0
		AND m.seq >= r.time_from AND m.created_at < $2 ORDER BY m.created_at DESC LIMIT 1), 0),
	coalesce((SELECT m.seq FROM chat_messages m WHERE m.room = r.id AND m.seq % 64 = 0
		AND m.seq >= r.time_from AND m.created_at >= $3 ORDER BY m.created_at LIMIT 1), 9223372036854775807)
	FROM chat_rooms r WHERE r.id = $1`

// TimeBounded reports whether p selects by time (Since or Until).
func (p Page) TimeBounded() bool { return p.Since != math.MinInt64 || p.Until != math.MaxInt64 }

// Narrow tightens p's seq range to (floor, ceil): floor is a mark stored
// before Since, so every entry up to it is; ceil a mark stored at or after
// Until, so every entry from it on is. It leaves which end of the range the
// page is taken from as it was.
func (p *Page) Narrow(floor, ceil int64) {
	p.After = max(p.After, floor)
	p.Before = min(p.Before, ceil)
}

// chainLimit is how many links Chain returns when limit is not in (0, MaxPage].
func ChainLimit(limit int) int {
	if limit <= 0 || limit > chat.MaxPage {
		return chat.MaxPage
	}
	return limit
}

// ceilMicro is t in Unix microseconds, rounded up: stored times are whole
// microseconds, so created_at >= ceilMicro(t) is created_at >= t.
func CeilMicro(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

// readBlob reads content to its end, but no more than one byte past b.Size,
// and checks that it is b.Size bytes whose SHA-256 is b.SHA256.
func ReadBlob(b chat.Blob, content io.Reader) ([]byte, error) {
	if b.Size < 0 {
		return nil, Invalid("size", "negative")
	}
	if len(b.SHA256) != 2*sha256.Size || strings.ToLower(b.SHA256) != b.SHA256 {
		return nil, Invalid("sha256", "not a SHA-256 in lowercase hex")
	}
	if _, err := hex.DecodeString(b.SHA256); err != nil {
		return nil, Invalid("sha256", "not a SHA-256 in lowercase hex")
	}
	if err := CheckText("type", b.Type); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(content, b.Size+1))
	if err != nil {
		return nil, fmt.Errorf("read content: %w", err)
	}
	switch n := int64(len(data)); {
	case n > b.Size:
		return nil, Invalid("size", fmt.Sprintf("content is longer than the %d bytes given", b.Size))
	case n < b.Size:
		return nil, Invalid("size", fmt.Sprintf("content is %d bytes, not the %d given", n, b.Size))
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != b.SHA256 {
		return nil, Invalid("sha256", "content does not match its hash")
	}
	return data, nil
}

// Rows is what both drivers' result sets offer (pgx.Rows and *sql.Rows), for
// scans that do not depend on the dialect. The caller closes the rows.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanRoomHeads reads (room, head) rows, as MemberHeads selects them.
func ScanRoomHeads(rows Rows) ([]chat.RoomHead, error) {
	var out []chat.RoomHead
	for rows.Next() {
		var room string
		var head int64
		if err := rows.Scan(&room, &head); err != nil {
			return nil, err
		}
		out = append(out, chat.RoomHead{Room: chat.RoomID(room), Head: chat.Seq(head)})
	}
	return out, rows.Err()
}
