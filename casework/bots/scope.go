package bots

import (
	"fmt"
	"slices"

	"caseroom/acl"
	"caseroom/chat"
)

// A Scope is what a bot token may do. It only narrows: inside its scope a bot
// still needs what the ACL asks of anyone (membership of the room, a rule with
// "bots": true), so a scope can never give a bot more than its principal has.
type Scope struct {
	Rooms []chat.RoomID `json:"rooms"`          // the rooms it may use
	Post  []chat.Kind   `json:"post,omitempty"` // the kinds it may post in them (members' kinds: text, file)
	Read  bool          `json:"read"`           // it may read their history and have their entries sent to its webhooks
	Due   []acl.UnitID  `json:"due,omitempty"`  // the units whose due list it may read (only the bot's own unit counts)
}

// The rules a scope refusal names. Each refusal is audited like an ACL denial.
const (
	RuleScopeRoom = "bot-scope-room" // the room is not in the token's scope
	RuleScopeKind = "bot-scope-kind" // the token may not post that kind
	RuleScopeRead = "bot-scope-read" // the token may not read
	RuleScopeDue  = "bot-scope-due"  // the token may not read that unit's due list
)

// HasRoom reports whether the scope names room.
func (s Scope) HasRoom(room chat.RoomID) bool { return slices.Contains(s.Rooms, room) }

// check returns the denial of action a on room (and kind, for posts), or nil.
func (s Scope) check(a acl.Action, room chat.RoomID, kind chat.Kind) *acl.DeniedError {
	if !s.HasRoom(room) {
		return &acl.DeniedError{Rule: RuleScopeRoom, Reason: "This bot token is not scoped to that room."}
	}
	switch a {
	case acl.ReadRoom:
		if !s.Read {
			return &acl.DeniedError{Rule: RuleScopeRead, Reason: "This bot token may not read rooms."}
		}
	case acl.PostMessage:
		if !slices.Contains(s.Post, kind) {
			return &acl.DeniedError{Rule: RuleScopeKind, Reason: fmt.Sprintf("This bot token may not post %q messages.", kind)}
		}
	}
	return nil
}

// validate checks the scope's shape; reg says which kinds members may post.
func (s Scope) validate(reg *chat.Registry) error {
	if len(s.Rooms) > 1000 {
		return &acl.InvalidError{Field: "scope.rooms", Reason: "at most 1000 rooms"}
	}
	for i, r := range s.Rooms {
		if r == "" || len(r) > 64 {
			return &acl.InvalidError{Field: fmt.Sprintf("scope.rooms[%d]", i), Reason: "is not a room id"}
		}
	}
	for i, k := range s.Post {
		spec, ok := reg.Spec(k)
		if !ok || !spec.Direct {
			return &acl.InvalidError{Field: fmt.Sprintf("scope.post[%d]", i), Reason: fmt.Sprintf("%q is not a kind members post", k)}
		}
	}
	if len(s.Due) > 100 {
		return &acl.InvalidError{Field: "scope.due", Reason: "at most 100 units"}
	}
	return nil
}
