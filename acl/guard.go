package acl

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"time"

	"caseroom/acl/audit"
)

// A Decision is what the policy decision point answers.
type Decision struct {
	Allow  bool
	Rule   string // the rule that decided: an invariant's id or a policy rule's id
	Reason string // for a denial, one plain sentence for the person refused
	// Look is set when a room is read by someone who is not its member (a
	// supervisor or auditor whose jurisdiction covers it): RULE invariant 1, that
	// look is recorded and shown in the room.
	Look bool
}

// Action classes the invariants are about. casework adds its actions to them.
var (
	// JudicialActions are decisions the law gives to an agency: RULE invariant 4,
	// the committee never performs one.
	JudicialActions []Action
	// DecisionActions answer another unit's request: RULE invariant 2, no unit
	// decides its own request.
	DecisionActions []Action
	// InternalApprovals are approvals inside one agency: RULE invariant 2, the
	// approver is a leader and never the person who asked.
	InternalApprovals []Action
	// readActions may be done by a non-member supervisor or auditor whose
	// jurisdiction covers the room.
	readActions = []Action{ReadRoom, ReadReceipts, ReadVersions}
	// roomActions need membership of the room (invariant 1).
	roomActions = []Action{ReadRoom, PostMessage, RenameRoom, ArchiveRoom, AddMember, RemoveMember,
		EditMessage, RetractOwn, ModerateRoom, MentionAll, ReadVersions, UploadFile, ReadReceipts}
)

// RegisterRoomActions declares actions (casework's acts) that, like posting, need
// membership of the room they are done in.
func RegisterRoomActions(as ...Action) { roomActions = append(roomActions, as...) }

// AuditSink appends audit records; acl.Store is one.
type AuditSink interface {
	Audit(ctx context.Context, rec audit.Record) error
}

// A Guard is the one policy decision point: every service asks it before acting.
type Guard struct {
	policy  *Policy
	regions atomic.Pointer[Regions]
	audit   AuditSink
	now     func() time.Time
}

// NewGuard returns a guard over policy and the region tree, auditing denials to a.
func NewGuard(policy *Policy, regions *Regions, a AuditSink, now func() time.Time) *Guard {
	g := &Guard{policy: policy, audit: a, now: now}
	g.regions.Store(regions)
	return g
}

// SetRegions replaces the region tree (after a directory import).
func (g *Guard) SetRegions(r *Regions) { g.regions.Store(r) }

// Regions returns the region tree in force.
func (g *Guard) Regions() *Regions { return g.regions.Load() }

// Decide answers whether s may do a on res: first the invariants of DESIGN.md,
// written here so that no policy data can undo them, then the policy's rules in
// order; the first rule that allows decides. Nothing allows by default.
func (g *Guard) Decide(s Subject, a Action, res Resource) Decision {
	regions := g.regions.Load()
	look := false
	// RULE invariant 4: the committee moderates and supervises, never judges.
	if s.UnitKind == Committee && slices.Contains(JudicialActions, a) {
		return deny("committee-no-judicial", "The political-legal committee supervises cases but cannot perform judicial acts.")
	}
	// RULE invariant 2: no agency decides its own request…
	if slices.Contains(DecisionActions, a) && res.RequestUnit != "" && s.Unit == res.RequestUnit {
		return deny("no-own-request", "A unit cannot decide on its own request; the law gives this decision to another agency.")
	}
	// …and an internal approval is a leader's, never the asker's.
	if slices.Contains(InternalApprovals, a) {
		if res.Author != "" && s.User == res.Author {
			return deny("no-self-approval", "You cannot approve your own request.")
		}
		if !s.Has(Leader) {
			return deny("approver-must-be-leader", "Only a leader of the unit can give this approval.")
		}
	}
	// RULE invariant 1: rooms are read and written by their members; a supervisor
	// or auditor whose jurisdiction covers the room may read it, and that is a look.
	if slices.Contains(roomActions, a) && res.RoomRole == "" {
		if !slices.Contains(readActions, a) || !s.HasAny(Supervisor, Auditor) || !regions.Covers(s.Region, res.Region) {
			return deny("members-only", "Only members of this room can do that.")
		}
		look = true
	}
	if res.RoomRole == string("observer") && a != ReadRoom && a != ReadReceipts && slices.Contains(roomActions, a) {
		return deny("observer-read-only", "Observers of a room can read it but not write in it.")
	}
	var first *Rule
	for i := range g.policy.Rules {
		r := &g.policy.Rules[i]
		if r.matches(s, a, res, regions) {
			return Decision{Allow: true, Rule: r.ID, Look: look}
		}
		if first == nil && slices.Contains(r.Actions, a) {
			first = r
		}
	}
	if first != nil {
		return deny(first.ID, first.Reason)
	}
	return deny("no-rule", "No rule allows this action.")
}

func deny(rule, reason string) Decision { return Decision{Rule: rule, Reason: reason} }

// Check decides like Decide and, on a denial, audits it (stream "denials") and
// returns a *DeniedError naming the rule. On an allow it returns the decision.
func (g *Guard) Check(ctx context.Context, s Subject, a Action, res Resource) (Decision, error) {
	d := g.Decide(s, a, res)
	if d.Allow {
		return d, nil
	}
	detail, _ := json.Marshal(map[string]string{"rule": d.Rule, "kind": res.Kind, "unit": string(s.Unit)})
	rec := audit.Record{Stream: audit.StreamDenials, At: g.now(), Actor: string(s.User),
		Action: string(a), Target: res.Kind + ":" + res.ID, Outcome: audit.Denied, Detail: string(detail)}
	if err := g.audit.Audit(ctx, rec); err != nil {
		return d, err // a denial that cannot be audited is still a denial, but say why
	}
	return d, &DeniedError{Rule: d.Rule, Reason: d.Reason}
}
