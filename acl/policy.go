package acl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
)

// Action names something a subject may try. The list is closed: a policy rule
// naming an action not in Actions stops the start.
type Action string

// Directory and security administration.
const (
	ImportDirectory Action = "directory.import"
	ReadDirectory   Action = "directory.read"
	CreateUnit      Action = "unit.create"
	DisableUnit     Action = "unit.disable"
	CreateUser      Action = "user.create"
	DisableUser     Action = "user.disable"
	ResetPassword   Action = "user.password.reset"
	GrantRoles      Action = "user.roles.set"
	UnlockUser      Action = "user.unlock"
	ReadAudit       Action = "audit.read"
	ReadSecurityLog Action = "security.read"
)

// Rooms and messages.
const (
	CreateRoom    Action = "room.create"
	ReadRoom      Action = "room.read" // history, members, events, attachments
	PostMessage   Action = "room.post"
	RenameRoom    Action = "room.rename"
	ArchiveRoom   Action = "room.archive"
	AddMember     Action = "room.member.add"
	RemoveMember  Action = "room.member.remove"
	EditMessage   Action = "message.edit"
	RetractOwn    Action = "message.retract"
	ModerateRoom  Action = "room.moderate" // retract others' messages, change roles
	MentionAll    Action = "room.mention_all"
	ReadVersions  Action = "message.versions" // every version of edited/retracted messages
	UploadFile    Action = "room.upload"
	ReadReceipts  Action = "room.receipts"
	ReadUnitRooms Action = "room.unit.read"
)

// Actions lists every action the policy may name. casework appends its own with
// RegisterActions before the policy is loaded.
var Actions = []Action{
	ImportDirectory, ReadDirectory, CreateUnit, DisableUnit, CreateUser, DisableUser,
	ResetPassword, GrantRoles, UnlockUser, ReadAudit, ReadSecurityLog,
	CreateRoom, ReadRoom, PostMessage, RenameRoom, ArchiveRoom, AddMember, RemoveMember,
	EditMessage, RetractOwn, ModerateRoom, MentionAll, ReadVersions, UploadFile, ReadReceipts,
	ReadUnitRooms,
}

// RegisterActions adds actions defined by another package. Call it at init.
func RegisterActions(as ...Action) { Actions = append(Actions, as...) }

// A Resource is what an action is on, with the facts about it (and about the
// subject's relation to it) that rules and invariants look at. The service that
// asks fills in what it knows; empty fields match no condition that needs them.
type Resource struct {
	Kind     string // "room", "case", "unit", "user", "directory", "audit"
	ID       string
	Unit     UnitID     // the owning unit (a room's owner, a user's unit)
	Region   RegionCode // the owning unit's region
	RoomKind string     // for rooms: group, unit, case, direct
	RoomRole string     // the subject's role in the room; "" when not a member
	Author   UserID     // who wrote the message or made the request acted on
	Stage    string     // a case's stage
	Holder   UnitID     // the unit holding a case
	// RequestUnit is the unit whose request a decision answers (arrest approval,
	// extension): RULE invariant 2, no agency decides its own request.
	RequestUnit UnitID
}

// Relations a rule may require between the subject and the resource.
const (
	RelAny          = ""             // no requirement
	RelOwnUnit      = "own-unit"     // the subject's unit is the resource's unit
	RelJurisdiction = "jurisdiction" // the subject's region covers the resource's region
	RelAuthor       = "author"       // the subject wrote the message or made the request
)

// A Rule allows an action when every condition it names holds. Empty lists
// match anything.
type Rule struct {
	ID        string     `json:"id"`
	Actions   []Action   `json:"actions"`
	Roles     []Role     `json:"roles,omitempty"`      // the subject holds one of them
	UnitKinds []UnitKind `json:"unit_kinds,omitempty"` // the subject's unit is of one of these kinds
	RoomRoles []string   `json:"room_roles,omitempty"` // the subject's role in the room
	RoomKinds []string   `json:"room_kinds,omitempty"`
	Relation  string     `json:"relation,omitempty"`
	Stages    []string   `json:"stages,omitempty"`
	Bots      bool       `json:"bots,omitempty"` // bots may use the rule too (subject to their scope)
	// Reason says, for the person refused, what the rule requires.
	Reason string `json:"reason"`
	Doc    string `json:"doc,omitempty"`
}

// A Policy is the rule list of configs/policy.json.
type Policy struct {
	Rules []Rule `json:"rules"`
	kinds []UnitKind
}

// LoadPolicy reads and validates the policy file at name in fsys against the
// known unit kinds. Errors name the file and the field.
func LoadPolicy(fsys fs.FS, name string, kinds []UnitKind) (*Policy, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p.kinds = kinds
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &p, nil
}

func (p *Policy) validate() error {
	seen := map[string]bool{}
	for i, r := range p.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		if r.ID == "" {
			return fmt.Errorf("%s.id: missing", at)
		}
		if seen[r.ID] {
			return fmt.Errorf("%s.id: duplicate rule %q", at, r.ID)
		}
		seen[r.ID] = true
		if len(r.Actions) == 0 {
			return fmt.Errorf("%s.actions: rule %q allows nothing", at, r.ID)
		}
		for j, a := range r.Actions {
			if !slices.Contains(Actions, a) {
				return fmt.Errorf("%s.actions[%d]: unknown action %q", at, j, a)
			}
		}
		for j, role := range r.Roles {
			if !ValidRole(role) {
				return fmt.Errorf("%s.roles[%d]: unknown role %q", at, j, role)
			}
		}
		for j, k := range r.UnitKinds {
			if !slices.Contains(p.kinds, k) {
				return fmt.Errorf("%s.unit_kinds[%d]: unknown unit kind %q", at, j, k)
			}
		}
		for j, rr := range r.RoomRoles {
			switch rr {
			case "owner", "moderator", "member", "observer":
			default:
				return fmt.Errorf("%s.room_roles[%d]: unknown room role %q", at, j, rr)
			}
		}
		switch r.Relation {
		case RelAny, RelOwnUnit, RelJurisdiction, RelAuthor:
		default:
			return fmt.Errorf("%s.relation: unknown relation %q", at, r.Relation)
		}
		if r.Reason == "" {
			return fmt.Errorf("%s.reason: missing (it is what a refused user reads)", at)
		}
	}
	return nil
}

// matches reports whether rule r allows subject s action a on res.
func (r *Rule) matches(s Subject, a Action, res Resource, regions *Regions) bool {
	if !slices.Contains(r.Actions, a) {
		return false
	}
	if s.Bot && !r.Bots {
		return false
	}
	if len(r.Roles) > 0 && !s.HasAny(r.Roles...) {
		return false
	}
	if len(r.UnitKinds) > 0 && !slices.Contains(r.UnitKinds, s.UnitKind) {
		return false
	}
	if len(r.RoomRoles) > 0 && !slices.Contains(r.RoomRoles, res.RoomRole) {
		return false
	}
	if len(r.RoomKinds) > 0 && !slices.Contains(r.RoomKinds, res.RoomKind) {
		return false
	}
	if len(r.Stages) > 0 && !slices.Contains(r.Stages, res.Stage) {
		return false
	}
	switch r.Relation {
	case RelOwnUnit:
		return res.Unit != "" && s.Unit == res.Unit
	case RelJurisdiction:
		return regions.Covers(s.Region, res.Region)
	case RelAuthor:
		return res.Author != "" && s.User == res.Author
	}
	return true
}
