package bots

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"caseroom/acl"
	"caseroom/casework"
	"caseroom/chat"
)

// The scopes of a due list.
const (
	ScopeMine         = "mine"         // clocks of the cases the caller handles (承办)
	ScopeUnit         = "unit"         // clocks the caller's unit must act on
	ScopeJurisdiction = "jurisdiction" // clocks of every case in the caller's jurisdiction (supervisors, auditors)
)

// A DueItem is one open clock in a due list. It names the case, never its
// parties: a list is not the case.
type DueItem struct {
	Case        string
	CaseNumber  string
	Room        chat.RoomID
	Region      acl.RegionCode
	Clock       string
	Row         string
	NameZH      string
	NameEN      string
	Basis       string
	Suspect     string // the party id, for per-suspect clocks
	Holder      acl.UnitID
	State       casework.ClockState
	Due         time.Time
	LastDay     string
	Left        time.Duration // at the time of the list; negative once overdue
	Strict      bool
	Provisional bool
	Extensions  []ExtensionNote
}

// Overdue reports whether the clock had run out when the list was made.
func (d DueItem) Overdue() bool { return d.Left <= 0 }

// Due answers "what is due": the open clocks of the caller, of the caller's
// unit, or of the caller's jurisdiction, sorted by time left, each with its
// legal basis.
type Due struct {
	src     ClockSource
	guard   *acl.Guard
	regions []acl.RegionCode
	now     func() time.Time
}

// NewDue returns a Due reading clocks from src and deciding with guard; regions
// are every region of the directory, for jurisdiction lists.
func NewDue(src ClockSource, guard *acl.Guard, regions []acl.Region, now func() time.Time) *Due {
	rs := make([]acl.RegionCode, len(regions))
	for i, r := range regions {
		rs[i] = r.Code
	}
	return &Due{src: src, guard: guard, regions: rs, now: now}
}

// ErrInvalidScope is a due list asked for with an unknown scope.
var ErrInvalidScope = errors.New(`bots: scope must be "mine", "unit" or "jurisdiction"`)

// List returns the due list of scope for the subject in ctx. "mine" needs
// nothing more than signing in; "unit" needs what reading the unit's room does
// (staff of the unit); "jurisdiction" what listing the jurisdiction's cases
// does (supervisors and auditors). A refusal is the Guard's *acl.DeniedError,
// audited. Bots use the Gateway.
func (d *Due) List(ctx context.Context, scope string) ([]DueItem, error) {
	who, ok := acl.SubjectFrom(ctx)
	if !ok || who.User == "" {
		return nil, acl.ErrUnauthenticated
	}
	var f ClockFilter
	switch scope {
	case ScopeMine, "":
		f.Officer = who.User
	case ScopeUnit:
		res := acl.Resource{Kind: "unit", ID: string(who.Unit), Unit: who.Unit, Region: who.Region}
		if _, err := d.guard.Check(ctx, who, acl.ReadUnitRooms, res); err != nil {
			return nil, err
		}
		f.Holder = who.Unit
	case ScopeJurisdiction:
		res := acl.Resource{Kind: "cases", Unit: who.Unit, Region: who.Region}
		if _, err := d.guard.Check(ctx, who, casework.ListJurisdiction, res); err != nil {
			return nil, err
		}
		f.Regions = d.covered(who.Region)
	default:
		return nil, ErrInvalidScope
	}
	return d.list(ctx, f)
}

// unit returns the due list of unit, for a bot the Gateway has checked.
func (d *Due) unit(ctx context.Context, unit acl.UnitID) ([]DueItem, error) {
	return d.list(ctx, ClockFilter{Holder: unit})
}

func (d *Due) list(ctx context.Context, f ClockFilter) ([]DueItem, error) {
	clocks, err := d.src.OpenClocks(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("bots: due: %w", err)
	}
	now := d.now()
	out := make([]DueItem, 0, len(clocks))
	for i := range clocks {
		c := &clocks[i]
		it := DueItem{Case: c.Case, CaseNumber: c.CaseNumber, Room: c.Room, Region: c.Region, Clock: c.Spec.ID, Row: c.Spec.Row,
			NameZH: c.Spec.NameZH, NameEN: c.Spec.NameEN, Basis: c.Spec.Basis, Suspect: c.Suspect, Holder: c.Holder,
			State: c.State, Due: c.Due, LastDay: c.LastDay().String(), Left: c.Left(now), Strict: c.Strict, Provisional: c.Provisional}
		for _, x := range c.Extensions {
			if !x.RequestBy.Before(now) {
				it.Extensions = append(it.Extensions, ExtensionNote{ID: x.Spec.ID, Condition: x.Spec.Condition,
					Approver: approverText(x.Spec.Approval), RequestBy: x.RequestBy,
					LastDay: casework.DateOf(x.RequestBy.Add(-time.Nanosecond)).String()})
			}
		}
		out = append(out, it)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Left != out[j].Left {
			return out[i].Left < out[j].Left
		}
		if out[i].Case != out[j].Case {
			return out[i].Case < out[j].Case
		}
		return out[i].Clock+"/"+out[i].Suspect < out[j].Clock+"/"+out[j].Suspect
	})
	return out, nil
}

// covered returns region and every region below it.
func (d *Due) covered(region acl.RegionCode) []acl.RegionCode {
	out := []acl.RegionCode{region}
	tree := d.guard.Regions()
	for _, code := range d.regions {
		if code != region && tree.Covers(region, code) {
			out = append(out, code)
		}
	}
	slices.Sort(out)
	return out
}
