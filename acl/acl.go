// Package acl holds caseroom's principals and its one policy decision point.
//
// Every action, whatever path it arrives by (HTTP, WebSocket, bot), is decided by
// Guard.Check, which runs the invariants written in Go first and then the policy
// rules loaded from configs/policy.json, so that data can add permissions but never
// undo an invariant. A denial names the rule that decided and is audited.
package acl

import (
	"context"
	"slices"
)

// IDs are typed so that a unit id is never passed where a user id belongs.
type (
	UserID     string // a user or a bot
	UnitID     string // one concrete office, e.g. "150102-court"
	RegionCode string // GB/T 2260 code: "150000" region, "150100" league, "150102" county
	Role       string // a role a user holds in their unit
	UnitKind   string // an agency kind from configs/unit-kinds.json
)

// The roles of DESIGN.md. A user holds one or more of them in their unit.
const (
	Officer    Role = "officer"
	Leader     Role = "leader"
	Clerk      Role = "clerk"
	Supervisor Role = "supervisor"
	Auditor    Role = "auditor"
	SecAdmin   Role = "secadmin" // security administrator: roles, unlocks, security events
	SysAdmin   Role = "sysadmin" // system administrator: the directory, never case content
)

// Roles lists every role, in the order the documentation uses.
var Roles = []Role{Officer, Leader, Clerk, Supervisor, Auditor, SecAdmin, SysAdmin}

// ValidRole reports whether r is one of Roles.
func ValidRole(r Role) bool { return slices.Contains(Roles, r) }

// Committee is the agency kind that owns case rooms (政法委). The other kinds are
// data (configs/unit-kinds.json); this one is named in code because invariant 4 of
// DESIGN.md is about it.
const Committee UnitKind = "committee"

// A Subject is whoever acts: a user of a unit, or a bot. It is built from a
// verified access token by acl/token and travels in the request context.
type Subject struct {
	User     UserID
	Name     string // display name, for logs of who did what (never for decisions)
	Unit     UnitID
	UnitKind UnitKind
	Region   RegionCode // the region of the subject's unit
	Roles    []Role
	Bot      bool
	Session  string // refresh-token family the access token belongs to; empty for bots
}

// Has reports whether s holds role r.
func (s Subject) Has(r Role) bool { return slices.Contains(s.Roles, r) }

// HasAny reports whether s holds any of roles.
func (s Subject) HasAny(roles ...Role) bool {
	for _, r := range roles {
		if s.Has(r) {
			return true
		}
	}
	return false
}

type subjectKey struct{}

// WithSubject returns a context that carries s.
func WithSubject(ctx context.Context, s Subject) context.Context {
	return context.WithValue(ctx, subjectKey{}, s)
}

// SubjectFrom returns the subject in ctx; ok is false for an anonymous request.
func SubjectFrom(ctx context.Context) (s Subject, ok bool) {
	s, ok = ctx.Value(subjectKey{}).(Subject)
	return s, ok
}
