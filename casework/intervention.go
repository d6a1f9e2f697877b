package casework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/chat"
)

// The intervention register (防止干预司法"三个规定", procedure.md §10; DESIGN.md
// invariant 5). It is one append-only hash chain in casework's store, never in a
// room: the person who intervened may be a member of the room, and must never
// see the entry.
//
// What is entered automatically — the rule, kept simple so that it cannot be
// argued around: every text or file message posted in a case room by
//
//   - a user of a committee unit (政法委), whatever their role, or
//   - a user holding the leader role whose unit is not a handling unit of the
//     case at that moment (the holder, a unit with the case pending, or a unit
//     that performed an act in it)
//
// is an instruction on a specific case by someone outside the handling unit,
// and is entered, once, with the message's seq. The committee's formal
// instrument, the supervision notice (督办, Service.Supervise), is a structured
// act and is not entered. Everything else that happened outside the system is
// entered by the handlers with RecordIntervention.
//
// Who sees the register of a case: auditors whose jurisdiction covers it
// (policy rule), leaders of its handling units (policy rule), and whoever
// recorded an entry; never the person who intervened (in code, whatever the
// policy says) and nobody else.

// The regulations of the "three regulations" an entry falls under.
const (
	RegLeader   = "1"     // 领导干部干预司法活动 (中办、国办 2015)
	RegInternal = "2"     // 司法机关内部人员过问案件 (中央政法委 2015)
	RegContact  = "3"     // 司法人员与当事人、律师等接触交往 (两高三部 2015)
	RegOther    = "other" // SPP 2019: classmates, relatives, acquaintances…
)

// StreamInterventions is the audit stream that records who entered and who read
// the register (procedure.md §10 "System design" 6).
const StreamInterventions = "interventions"

// An Intervention is one entry of the register: the fields of procedure.md §10
// "System design" 1. Entries are never changed; a correction is a new entry
// with Corrects set.
type Intervention struct {
	Seq       int64          `json:"seq"` // position in the register, from 1
	Case      CaseID         `json:"case"`
	SourceSeq chat.Seq       `json:"source_seq,omitempty"` // the room message, for automatic entries
	Auto      bool           `json:"auto"`
	At        time.Time      `json:"at"` // when entered
	Recorder  acl.UserID     `json:"recorder"`
	RecUnit   acl.UnitID     `json:"recorder_unit"`
	Units     []acl.UnitID   `json:"units"`  // the handling units when entered (whose leaders see it)
	Region    acl.RegionCode `json:"region"` // the case's, for auditors' jurisdiction

	Regulation      string     `json:"regulation"`
	IntervenorUser  acl.UserID `json:"intervenor_user,omitempty"` // when the intervenor is a user of the system
	IntervenorName  string     `json:"intervenor_name"`
	IntervenorUnit  string     `json:"intervenor_unit,omitempty"`
	IntervenorPost  string     `json:"intervenor_post,omitempty"`
	Relationship    string     `json:"relationship,omitempty"`
	Channel         string     `json:"channel"` // one of Channels
	OccurredAt      time.Time  `json:"occurred_at"`
	Place           string     `json:"place,omitempty"`
	Summary         string     `json:"summary"`
	Attachments     []string   `json:"attachments,omitempty"` // sha256 of room files
	MaterialsPassed bool       `json:"materials_passed"`
	Response        string     `json:"response,omitempty"` // refused, referred, reported
	Impact          string     `json:"impact"`             // none or affected
	ReportedTo      string     `json:"reported_to,omitempty"`
	Corrects        int64      `json:"corrects,omitempty"`

	Prev []byte `json:"-"`
	Hash []byte `json:"-"`
}

// Channels are how an intervention reached the handler.
var Channels = []string{"in_system", "in_person", "phone", "message", "letter", "third_party", "document"}

// Canonical is the byte form the entry's hash covers: every field but Prev and
// Hash, times as Unix microseconds.
func (r *Intervention) Canonical() []byte {
	type canon Intervention
	c := canon(*r)
	c.Prev, c.Hash = nil, nil
	b, _ := json.Marshal(struct {
		canon
		At         int64 `json:"at"`
		OccurredAt int64 `json:"occurred_at"`
	}{c, r.At.UnixMicro(), r.OccurredAt.UnixMicro()})
	return b
}

// Link returns the entry as the chain verifier sees it.
func (r *Intervention) Link() audit.Link {
	return audit.Link{Seq: r.Seq, Prev: r.Prev, Hash: r.Hash, Canonical: r.Canonical()}
}

func (r *Intervention) check() error {
	if !slices.Contains([]string{RegLeader, RegInternal, RegContact, RegOther}, r.Regulation) {
		return invalid("regulation", `must be "1", "2", "3" or "other"`)
	}
	if err := checkText("intervenor_name", r.IntervenorName, 1, 100); err != nil {
		return err
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"intervenor_unit", r.IntervenorUnit, 200}, {"intervenor_post", r.IntervenorPost, 100},
		{"relationship", r.Relationship, 100}, {"place", r.Place, 200}, {"response", r.Response, 1000},
		{"reported_to", r.ReportedTo, 200}} {
		if err := checkText(f.name, f.v, 0, f.max); err != nil {
			return err
		}
	}
	if !slices.Contains(Channels, r.Channel) {
		return invalid("channel", "must be one of "+strings.Join(Channels, ", "))
	}
	if err := checkText("summary", r.Summary, 1, maxPayloadText); err != nil {
		return err
	}
	if r.Impact != "none" && r.Impact != "affected" {
		return invalid("impact", `must be "none" or "affected"`)
	}
	if r.OccurredAt.IsZero() {
		return invalid("occurred_at", "is required")
	}
	for i, a := range r.Attachments {
		if len(a) != 64 {
			return invalid(fmt.Sprintf("attachments[%d]", i), "must be 64 hex digits")
		}
	}
	return nil
}

// scanInterventions enters in the register every tracked message of v after
// seq scanned that the rule above makes an intervention.
func (s *Service) scanInterventions(ctx context.Context, v *view, scanned chat.Seq) error {
	for _, tr := range v.track {
		m := tr.m
		if m.Seq <= scanned {
			continue
		}
		u, err := s.dir.User(ctx, m.Sender)
		if errors.Is(err, acl.ErrNotFound) {
			continue // a bot or the console: not a person who can intervene
		}
		if err != nil {
			return err
		}
		unit, err := s.dir.Unit(ctx, m.SenderUnit)
		if err != nil && !errors.Is(err, acl.ErrNotFound) {
			return err
		}
		reg := ""
		switch {
		case unit.Kind == acl.Committee:
			reg = RegLeader
		case slices.Contains(u.Roles, acl.Leader) && !slices.Contains(tr.handling, m.SenderUnit):
			reg = RegInternal
			if !slices.Contains([]acl.UnitKind{"police", "procuratorate", "court", "justice", "state_security", "detention", "prison"}, unit.Kind) {
				reg = RegLeader
			}
		}
		if reg == "" {
			continue
		}
		summary := m.Body
		if m.Kind == chat.File {
			var f chat.FileRef
			json.Unmarshal(m.Payload, &f)
			summary = "file: " + f.Name
		}
		if strings.TrimSpace(summary) == "" {
			summary = "(empty)"
		}
		if r := []rune(summary); len(r) > maxPayloadText {
			summary = string(r[:maxPayloadText])
		}
		r := &Intervention{Case: v.c.ID, SourceSeq: m.Seq, Auto: true, At: s.now().UTC(), Recorder: "system",
			RecUnit: "", Units: slices.Clone(tr.handling), Region: v.c.Region, Regulation: reg,
			IntervenorUser: u.ID, IntervenorName: u.Name, IntervenorUnit: unit.Name, IntervenorPost: postOf(u),
			Channel: "in_system", OccurredAt: m.CreatedAt, Summary: summary, Impact: "none"}
		dup, err := s.store.AppendIntervention(ctx, r)
		if err != nil {
			return err
		}
		if !dup {
			s.log.InfoContext(ctx, "intervention entered", "case", v.c.ID, "seq", m.Seq, "entry", r.Seq)
			s.auditRegister(ctx, acl.Subject{User: "system"}, "intervention.enter", v.c.ID, r.Seq)
		}
	}
	return nil
}

func postOf(u acl.User) string {
	var rs []string
	for _, r := range u.Roles {
		rs = append(rs, string(r))
	}
	return strings.Join(rs, ",")
}

func (s *Service) auditRegister(ctx context.Context, who acl.Subject, action string, id CaseID, seq int64) {
	if s.opts.Audit == nil {
		return
	}
	detail, _ := json.Marshal(map[string]any{"case": id, "entry": seq})
	rec := audit.Record{Stream: StreamInterventions, At: s.now(), Actor: string(who.User), Action: action,
		Target: "case:" + string(id), Outcome: audit.OK, Detail: string(detail)}
	if err := s.opts.Audit.Audit(ctx, rec); err != nil {
		s.log.ErrorContext(ctx, "audit of the intervention register failed", "case", id, "err", err)
	}
}

// InterventionInput is an intervention that happened outside the system, as
// the handler who received it records it.
type InterventionInput struct {
	Regulation      string
	IntervenorName  string
	IntervenorUnit  string
	IntervenorPost  string
	Relationship    string
	Channel         string
	OccurredAt      time.Time
	Place           string
	Summary         string
	Attachments     []string
	MaterialsPassed bool
	Response        string
	Impact          string
	ReportedTo      string
	Corrects        int64
}

// registerResource is the case as the Guard sees the register: the unit is the
// caller's own if it handles the case, else the holder.
func (c *Case) registerResource(role chat.RoomRole, who acl.Subject) acl.Resource {
	res := c.resource(role)
	if c.IsHandling(who.Unit) {
		res.Unit = who.Unit
	}
	return res
}

// RecordIntervention enters an intervention that happened outside the system;
// a handler (officer, clerk or leader) of a handling unit records it. The entry
// is not posted in the room.
func (s *Service) RecordIntervention(ctx context.Context, id CaseID, in InterventionInput) (Intervention, error) {
	v, err := s.visible(ctx, id)
	if err != nil {
		return Intervention{}, err
	}
	if _, err := s.guard.Check(ctx, v.who, RecordIntervention, v.c.registerResource(v.role, v.who)); err != nil {
		return Intervention{}, err
	}
	if !in.OccurredAt.IsZero() && in.OccurredAt.After(s.now()) {
		return Intervention{}, invalid("occurred_at", "is in the future")
	}
	if in.Impact == "" {
		in.Impact = "none"
	}
	r := &Intervention{Case: v.c.ID, At: s.now().UTC(), Recorder: v.who.User, RecUnit: v.who.Unit,
		Units: v.c.HandlingUnits(), Region: v.c.Region, Regulation: in.Regulation, IntervenorName: strings.TrimSpace(in.IntervenorName),
		IntervenorUnit: in.IntervenorUnit, IntervenorPost: in.IntervenorPost, Relationship: in.Relationship,
		Channel: in.Channel, OccurredAt: in.OccurredAt.UTC(), Place: in.Place, Summary: strings.TrimSpace(in.Summary),
		Attachments: in.Attachments, MaterialsPassed: in.MaterialsPassed, Response: in.Response, Impact: in.Impact,
		ReportedTo: in.ReportedTo, Corrects: in.Corrects}
	if err := r.check(); err != nil {
		return Intervention{}, err
	}
	if r.Corrects != 0 {
		entries, err := s.store.Interventions(ctx, v.c.ID)
		if err != nil {
			return Intervention{}, err
		}
		if !slices.ContainsFunc(entries, func(e Intervention) bool { return e.Seq == r.Corrects }) {
			return Intervention{}, invalid("corrects", fmt.Sprintf("no entry %d in this case's register", r.Corrects))
		}
	}
	if _, err := s.store.AppendIntervention(ctx, r); err != nil {
		return Intervention{}, err
	}
	s.auditRegister(ctx, v.who, "intervention.record", v.c.ID, r.Seq)
	if r.Impact == "affected" {
		// RULE 三个规定 No.1: an intervention that affects the case is reported at once.
		s.log.WarnContext(ctx, "intervention affecting a case recorded: report at once", "case", v.c.ID, "entry", r.Seq)
	}
	return *r, nil
}

// Interventions returns the register's entries of case id that the caller may
// see. The Guard decides who reads the register at all; then, in code whatever
// the policy says, an entry about the caller is never shown to them
// (invariant 5), and leaders see the entries of units they handle for.
func (s *Service) Interventions(ctx context.Context, id CaseID) ([]Intervention, error) {
	v, err := s.visible(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.refresh(ctx, v.room); err != nil { // enter what chat posted since
		return nil, err
	}
	if _, err := s.guard.Check(ctx, v.who, ReadInterventions, v.c.registerResource(v.role, v.who)); err != nil {
		return nil, err
	}
	all, err := s.store.Interventions(ctx, v.c.ID)
	if err != nil {
		return nil, err
	}
	out := []Intervention{}
	for _, r := range all {
		if visibleEntry(r, v.who, s.guard.Regions()) {
			out = append(out, r)
		}
	}
	s.auditRegister(ctx, v.who, "intervention.read", v.c.ID, int64(len(out)))
	return out, nil
}

// visibleEntry reports whether who may see entry r: never its intervenor;
// auditors of its region; leaders of a unit that handled the case when it was
// entered, or handles it now; whoever recorded it.
func visibleEntry(r Intervention, who acl.Subject, regions *acl.Regions) bool {
	// RULE DESIGN.md invariant 5: never the person who intervened.
	if r.IntervenorUser != "" && r.IntervenorUser == who.User {
		return false
	}
	switch {
	case r.Recorder == who.User:
		return true
	case who.Has(acl.Auditor) && regions.Covers(who.Region, r.Region):
		return true
	case who.Has(acl.Leader) && slices.Contains(r.Units, who.Unit):
		return true
	}
	return false
}

// VerifyInterventions checks the whole register's hash chain.
func VerifyInterventions(ctx context.Context, st Store) error {
	var after int64
	var prev []byte
	for {
		page, err := st.InterventionChain(ctx, after, 500)
		if err != nil {
			return err
		}
		links := make([]audit.Link, len(page))
		for i := range page {
			links[i] = page[i].Link()
		}
		if err := audit.VerifyLinks(after+1, prev, links); err != nil {
			return err
		}
		if len(page) < 500 {
			return nil
		}
		after, prev = page[len(page)-1].Seq, page[len(page)-1].Hash
	}
}
