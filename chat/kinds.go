package chat

import (
	"encoding/json"
	"fmt"
	"sync"

	"caseroom/acl"
)

// A KindSpec says how a structured kind is posted: its payload's schema (as a
// validating function, since the payload is a Go type of the registering
// package), whether it counts as unread, and whether members post it directly
// (through Post) or only through the registering package's service (acts).
type KindSpec struct {
	// Validate checks a payload; its error is shown to the client as it is.
	Validate func(payload json.RawMessage) error
	// Countable entries count as unread for other members.
	Countable bool
	// Direct kinds may be posted by members with Post; the others only by their
	// package (casework posts acts after its own checks) with Service.Append.
	Direct bool
	// Action is the ACL action a Direct post of this kind needs (default room.post).
	Action acl.Action
}

// A Registry holds the kinds a Service accepts: chat's own and those other
// packages register at start. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[Kind]KindSpec // guarded by mu
}

// NewRegistry returns a registry with chat's own kinds.
func NewRegistry() *Registry {
	r := &Registry{kinds: map[Kind]KindSpec{}}
	none := func(json.RawMessage) error { return nil }
	r.kinds[Text] = KindSpec{Validate: none, Countable: true, Direct: true}
	r.kinds[File] = KindSpec{Validate: validateFileRef, Countable: true, Direct: true, Action: acl.PostMessage}
	r.kinds[System] = KindSpec{Validate: none, Countable: true}
	for _, k := range []Kind{Edit, Retract, RoomCreate, RoomRename, RoomArchive, MemberAdd, MemberRemove, MemberRole, UnitAdd, RoomLook} {
		r.kinds[k] = KindSpec{Validate: none}
	}
	return r
}

// Register adds kind; registering a kind twice is a programming error.
func (r *Registry) Register(kind Kind, spec KindSpec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.kinds[kind]; ok {
		panic(fmt.Sprintf("chat: kind %q registered twice", kind))
	}
	if spec.Validate == nil {
		spec.Validate = func(json.RawMessage) error { return nil }
	}
	r.kinds[kind] = spec
}

// Spec returns kind's spec and whether it is known.
func (r *Registry) Spec(kind Kind) (KindSpec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.kinds[kind]
	return s, ok
}

// RoomLook records that a supervisor or auditor who is not a member read the
// room (DESIGN.md invariant 1): payload LookedAt.
const RoomLook Kind = "room.look"

// LookedAt is the payload of a RoomLook entry.
type LookedAt struct {
	User acl.UserID `json:"user"`
	Unit acl.UnitID `json:"unit"`
	Role acl.Role   `json:"role"` // supervisor or auditor
	Day  string     `json:"day"`  // one entry per reader per room per day
}

func validateFileRef(p json.RawMessage) error {
	var f FileRef
	if err := strictUnmarshal(p, &f); err != nil {
		return err
	}
	if len(f.SHA256) != 64 {
		return invalid("payload.sha256", "must be 64 hex digits")
	}
	if f.Name == "" || len(f.Name) > 255 {
		return invalid("payload.name", "must be 1 to 255 bytes")
	}
	if f.Size < 0 {
		return invalid("payload.size", "must not be negative")
	}
	return nil
}
