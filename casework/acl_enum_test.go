package casework

// The ACL enumeration: every combination of agency kind × role × act × stage ×
// jurisdiction is tried against the real decision path (the Guard on the
// shipped configs/policy.json, then the procedure checks and the replay of the
// act), and compared with what procedure.md and DESIGN.md say — written here as
// law, never by asking the Guard. TestPolicyRulesBite then deletes or widens
// each rule of the shipped policy in turn and shows that some expectation
// fails every time.

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

type outcome int

const (
	allowed outcome = iota
	denied
	notFound
)

func (o outcome) String() string { return [...]string{"allowed", "denied", "not found"}[o] }

// Jurisdictions of a subject relative to the case, whose region is 150102
// (新城区, Hohhot; league 150100): own (a unit of the case's county, in the
// room), higher (the league's unit, not in the room), higher-member (the
// league's unit, in the room: addressed once for an approval or a review),
// outside (a unit of 150203 in Baotou, not in the room), outside-member (the
// same, in the room: an assisting unit).
var jurisdictions = []string{"own", "higher-member", "higher", "outside-member", "outside"}

var jurisdictionRegion = map[string]acl.RegionCode{
	"own": "150102", "higher-member": "150100", "higher": "150100", "outside-member": "150203", "outside": "150203",
}

const caseRegion acl.RegionCode = "150102"

func unitOf(kind acl.UnitKind, juris string) acl.UnitID {
	return acl.UnitID(string(jurisdictionRegion[juris]) + "-" + string(kind))
}

func isMember(juris string) bool { return juris == "own" || strings.HasSuffix(juris, "-member") }

// A subj is one subject of the enumeration.
type subj struct {
	who   acl.Subject
	juris string
	role  chat.RoomRole // in the room; "" if not a member
}

func (s subj) String() string {
	b := ""
	if s.who.Bot {
		b = " bot"
	}
	return fmt.Sprintf("%s %s%s of %s (%s)", s.who.UnitKind, s.who.Roles[0], b, s.who.Unit, s.juris)
}

// subjects returns every kind × role × jurisdiction, and a bot of each kind and
// role in the room.
func subjects() []subj {
	var out []subj
	for _, k := range AgencyKinds {
		kind := acl.UnitKind(k)
		for _, r := range acl.Roles {
			for _, j := range jurisdictions {
				s := subj{juris: j, who: acl.Subject{User: acl.UserID(fmt.Sprintf("%s.%s.%s", j, k, r)), Unit: unitOf(kind, j),
					UnitKind: kind, Region: jurisdictionRegion[j], Roles: []acl.Role{r}}}
				if isMember(j) {
					s.role = chat.Member
					if kind == acl.Committee && j == "own" {
						s.role = chat.Owner
					}
				}
				out = append(out, s)
			}
			bot := subj{juris: "own", role: chat.Member, who: acl.Subject{User: acl.UserID("bot." + k + "." + string(r)), Unit: unitOf(kind, "own"),
				UnitKind: kind, Region: caseRegion, Roles: []acl.Role{r}, Bot: true}}
			out = append(out, bot)
		}
	}
	return out
}

// visibleByLaw: DESIGN.md invariant 1 — members read the room; a supervisor or
// auditor whose jurisdiction covers the case reads it without being a member.
func visibleByLaw(s subj, regions *acl.Regions) bool {
	if s.role != "" {
		return true
	}
	return !s.who.Bot && s.who.HasAny(acl.Supervisor, acl.Auditor) && regions.Covers(s.who.Region, caseRegion)
}

// A fixture is a case at one stage, as a log would have made it: the holder is
// the agency that acts most at the stage; an intake stage has the transfer into
// it pending; a review stage has the request into it open.
type fixture struct {
	p       *Procedure
	stage   string
	holder  acl.UnitID
	pending *Transfer
	caseReq *Request // open request of the case
	susReq  *Request // open request about the suspect
	suspect string   // the suspect's state
}

// newFixture builds the fixture of stage for attempts at t.
func newFixture(p *Procedure, stage string, t Transition) fixture {
	f := fixture{p: p, stage: stage, suspect: "free"}
	if p.isSuspectTransition(t.ID) {
		f.suspect = t.From[0]
	}
	count := map[string]int{}
	var order []string
	for _, tr := range p.Machine.Transitions {
		if slices.Contains(tr.From, stage) {
			for _, k := range byKinds(tr) {
				if count[string(k)] == 0 {
					order = append(order, string(k))
				}
				count[string(k)]++
			}
		}
	}
	holderKind := ""
	for _, k := range order {
		if holderKind == "" || count[k] > count[holderKind] {
			holderKind = k
		}
	}
	for _, tr := range p.Machine.Transitions {
		if tr.To == stage && holderKind == "" {
			holderKind = tr.By[0].Agency
		}
		if tr.To == stage && tr.Act == "transfer" && f.pending == nil {
			from := unitOf(acl.UnitKind(tr.By[0].Agency), "own")
			to := unitOf(acl.UnitKind(tr.Receiver), "own")
			if tr.Receiver == tr.By[0].Agency {
				to = unitOf(acl.UnitKind(tr.Receiver), "higher-member") // e.g. an appeal goes up
			}
			f.pending = &Transfer{Seq: 2, Transition: tr.ID, From: from, To: to, By: "sender"}
		}
		if tr.To == stage && tr.Act == "request" && tr.To != tr.From[0] && f.caseReq == nil {
			if ks := requestTargetKinds(p, tr, acl.UnitKind(tr.By[0].Agency)); len(ks) > 0 {
				f.caseReq = &Request{Seq: 2, Kind: "request", Transition: tr.ID, From: unitOf(acl.UnitKind(tr.By[0].Agency), "own"), To: unitOf(ks[0], "own"), By: "asker"}
			}
		}
	}
	f.holder = unitOf(acl.UnitKind(holderKind), "own")
	if f.pending != nil {
		f.holder = f.pending.From
	}
	if p.Suspect != nil {
		for _, tr := range p.Suspect.Transitions {
			if tr.To == f.suspect && tr.Act == "request" && !slices.Contains(tr.From, tr.To) {
				if ks := requestTargetKinds(p, tr, acl.UnitKind(tr.By[0].Agency)); len(ks) > 0 {
					f.susReq = &Request{Seq: 2, Kind: "request", Transition: tr.ID, Suspect: "s1", From: unitOf(acl.UnitKind(tr.By[0].Agency), "own"), To: unitOf(ks[0], "own"), By: "asker"}
					break
				}
			}
		}
	}
	return f
}

// build returns the Case of the fixture, with the approvals t needs granted to
// every unit (so that what is tested is who may act, not whether they asked
// first).
func (f fixture) build(t Transition) *Case {
	c := newCase()
	c.ID, c.Room, c.Procedure, c.Committee, c.Region = "c", "c", f.p.ID, "150102-committee", caseRegion
	c.Stage, c.Holder, c.Head = f.stage, f.holder, 10
	c.Chain, c.Handling = []acl.UnitID{f.holder}, []acl.UnitID{f.holder}
	st, _ := f.p.Stage(f.stage)
	c.Closed = st.Terminal
	for _, k := range AgencyKinds {
		for _, j := range []string{"own", "higher-member", "outside-member"} {
			u := unitOf(acl.UnitKind(k), j)
			c.Units[u] = acl.UnitKind(k)
			if k != "committee" {
				c.Participants = append(c.Participants, u)
			}
		}
	}
	if f.pending != nil {
		p := *f.pending
		c.Pending = &p
	}
	if f.caseReq != nil {
		c.Requests = []Request{*f.caseReq}
	}
	c.Parties = []Party{{ID: "s1", Role: "suspect", Name: "张三"}}
	s := Suspect{Party: "s1", State: f.suspect, Counts: map[string]int{}}
	if f.susReq != nil {
		r := *f.susReq
		s.Request = &r
	}
	c.Suspects = []Suspect{s}
	for u := range c.Units {
		for i := range t.Approvals {
			c.Approvals = append(c.Approvals, ApprovalState{Seq: chat.Seq(100 + len(c.Approvals)), Transition: t.ID, Suspect: f.suspectOf(t), Index: i,
				Unit: u, By: "asker", Target: u, Internal: true, Decided: 9, DecidedBy: "leader", Granted: true})
		}
	}
	return &c
}

func (f fixture) suspectOf(t Transition) string {
	if f.p.isSuspectTransition(t.ID) {
		return "s1"
	}
	return ""
}

// lawAct is what the law says about s attempting t in fixture f. It is written
// from procedure.md §1 and §3 and DESIGN.md's mutual checks:
//
//   - nobody outside the case learns of it (invariant 6);
//   - the committee performs no act (invariant 4), bots perform none, and
//     nobody who is not in the room does (invariant 1);
//   - the act is the agency's and the role's the law names (Transition.By);
//   - it is done by the unit the case is with: the receiver of a transfer
//     answers it, the addressee of a request answers that, and otherwise the
//     holder or, for another agency's act, that agency's unit of the case's
//     county — never a unit higher up or elsewhere that happens to be in the
//     room; and no unit decides its own request (invariant 2);
//   - it is possible at the stage, in a case not closed (unless it reopens),
//     and a unit that sent the case away adds only notices until the receiver
//     answers (invariant 3).
func (f fixture) lawAct(t Transition, s subj, regions *acl.Regions) outcome {
	if !visibleByLaw(s, regions) {
		return notFound
	}
	who := s.who
	if s.role == "" || who.Bot || who.UnitKind == acl.Committee || !mayPerform(t, who) {
		return denied
	}
	sus := f.p.isSuspectTransition(t.ID)
	kinds := byKinds(t)
	if slices.Contains(kinds, who.UnitKind) {
		kinds = []acl.UnitKind{who.UnitKind}
	}
	var want, asker acl.UnitID
	answersPending := !sus && f.pending != nil && slices.Contains(t.From, f.stage) && (t.Act == "accept" || t.Act == "return")
	var req *Request
	if sus {
		req = f.susReq
	} else {
		req = f.caseReq
	}
	switch {
	case answersPending:
		want, asker = f.pending.To, f.pending.From
	case answers(t.Act) && req != nil && slices.Contains(kinds, acl.UnitKind(strings.SplitN(string(req.To), "-", 2)[1])):
		want, asker = req.To, req.From
	case f.pending != nil && slices.Contains(kinds, acl.UnitKind(strings.SplitN(string(f.pending.To), "-", 2)[1])):
		want = f.pending.To
	default:
		want = unitOf(kinds[0], "own")
	}
	if who.Unit != want || who.Unit == asker {
		return denied
	}
	closed := false
	if st, _ := f.p.Stage(f.stage); st.Terminal {
		closed = true
	}
	switch {
	case closed && t.Act != "reopen":
		return denied
	case !sus && !slices.Contains(t.From, f.stage):
		return denied
	case sus && len(t.During) > 0 && !slices.Contains(t.During, f.stage):
		return denied
	case t.Act == "accept" && !answersPending:
		return denied
	case t.Act == "transfer" && f.pending != nil:
		return denied
	case f.pending != nil && who.Unit == f.pending.From && who.Unit != f.pending.To &&
		(sus || t.To != f.stage || (t.Act != "notify" && t.Act != "record")):
		return denied
	}
	return allowed
}

// sysAct runs the real decision path: visibility, the Guard and the
// procedure's actors, then the act replayed on the case.
func (f fixture) sysAct(decide decider, c *Case, t Transition, s subj) outcome {
	if err := checkVisible(decide, s.who, s.role, c); err != nil {
		return notFound
	}
	suspect := f.suspectOf(t)
	res, err := checkPerform(decide, f.p, c, s.who, s.role, t, suspect, "")
	if err != nil {
		return denied
	}
	a := Act{Transition: t.ID, UnitKind: s.who.UnitKind, Suspect: suspect, Reason: "理由", Missing: []string{"x"},
		Approvals: c.grantedFor(t, suspect, res.Unit)}
	for _, d := range t.Documents {
		if d.Required {
			a.Documents = append(a.Documents, DocumentRef{Name: d.NameZH})
		}
	}
	switch {
	case t.Act == "transfer":
		a.TargetKind = acl.UnitKind(t.Receiver)
		a.Target = unitOf(a.TargetKind, "own")
		if a.TargetKind == s.who.UnitKind {
			a.Target = unitOf(a.TargetKind, "higher-member")
		}
	case t.Act == "request":
		if ks := requestTargetKinds(f.p, t, s.who.UnitKind); len(ks) > 0 {
			a.Target, a.TargetKind = unitOf(ks[0], "own"), ks[0]
		}
	}
	kind := KindAct
	if c.Pending != nil && suspect == "" && slices.Contains(t.From, c.Stage) {
		switch t.Act {
		case "accept":
			kind = KindAccept
		case "return":
			kind = KindReturn
		}
	}
	b, _ := json.Marshal(a)
	v := &view{who: s.who, proc: f.p, c: *c}
	if _, err := v.simulate(&chat.Message{Room: "c", Kind: kind, Sender: s.who.User, SenderUnit: s.who.Unit, Payload: b, OccurredAt: time.Now()}); err != nil {
		return denied
	}
	return allowed
}

// guardDecider asks g without auditing.
func guardDecider(g *acl.Guard) decider {
	return func(who acl.Subject, a acl.Action, res acl.Resource) error {
		if d := g.Decide(who, a, res); !d.Allow {
			return &acl.DeniedError{Rule: d.Rule, Reason: d.Reason}
		}
		return nil
	}
}

// world is what the enumerations share.
type world struct {
	procs   map[string]*Procedure
	regions *acl.Regions
	kinds   []acl.UnitKind
	policy  []byte // configs/policy.json
	subs    []subj
}

func mustWorld(t testing.TB) *world {
	t.Helper()
	d, err := Load(os.DirFS(".."), "configs")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := acl.LoadRegions(os.DirFS(".."), "configs/regions.csv")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := acl.LoadUnitKinds(os.DirFS(".."), "configs/unit-kinds.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../configs/policy.json")
	if err != nil {
		t.Fatal(err)
	}
	return &world{procs: d.Procedures, regions: acl.NewRegions(rs), kinds: acl.KindIDs(ks), policy: b, subs: subjects()}
}

// guard returns a Guard on policy (JSON).
func (w *world) guard(t testing.TB, policy []byte) *acl.Guard {
	t.Helper()
	p, err := acl.LoadPolicy(fstest.MapFS{"policy.json": {Data: policy}}, "policy.json", w.kinds)
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return acl.NewGuard(p, w.regions, nil, time.Now)
}

// A mismatch is one combination whose outcome is not the law's.
type mismatch func() string

// enumerate runs every combination against g, calling bad for each mismatch
// until it returns false. It returns how many combinations it tried.
func (w *world) enumerate(g *acl.Guard, bad func(mismatch) bool) int {
	n, _ := w.enumeratePhases(g, bad)
	return n
}

// enumeratePhases is enumerate, also returning how many combinations each
// phase tried: room and directory actions, other case actions, acts.
func (w *world) enumeratePhases(g *acl.Guard, bad func(mismatch) bool) (int, [4]int) {
	var phases [4]int // the fourth: allowed outcomes
	n := 0
	decide := guardDecider(g)
	check := func(got, want outcome, what func() string) bool {
		n++
		if got == allowed {
			phases[3]++
		}
		if got != want {
			return bad(func() string { return fmt.Sprintf("%s: got %s, want %s", what(), got, want) })
		}
		return true
	}
	// The room and directory actions first, then the other case actions, then
	// the acts: a mutation of the policy is usually caught early that way.
	if !w.enumerateChat(g, check) {
		return n, phases
	}
	phases[0] = n
	// The other case actions, on a criminal case under investigation.
	if !w.enumerateOthers(decide, check) {
		return n, phases
	}
	phases[1] = n - phases[0]
	// Acts: every transition of every procedure at every stage.
	var ids []string
	for id := range w.procs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p := w.procs[id]
		var ts []Transition
		ts = append(ts, p.Machine.Transitions...)
		if p.Suspect != nil {
			ts = append(ts, p.Suspect.Transitions...)
		}
		for _, t := range ts {
			for _, st := range p.Stages {
				f := newFixture(p, st.ID, t)
				c := f.build(t)
				for _, s := range w.subs {
					if !check(f.sysAct(decide, c, t, s), f.lawAct(t, s, w.regions), func() string {
						return fmt.Sprintf("%s %s at %s by %s", p.ID, t.ID, st.ID, s)
					}) {
						return n, phases
					}
				}
			}
		}
	}
	phases[2] = n - phases[0] - phases[1]
	return n, phases
}

// enumerateOthers tries the case actions that are not transitions.
func (w *world) enumerateOthers(decide decider, check func(got, want outcome, what func() string) bool) bool {
	p := w.procs["criminal"]
	police := unitOf("police", "own")
	for _, s := range w.subs {
		who := s.who
		vis := visibleByLaw(s, w.regions)
		law := func(ok bool) outcome {
			switch {
			case !vis:
				return notFound
			case ok:
				return allowed
			}
			return denied
		}
		sys := func(f func(c *Case) error) outcome {
			c := f0(w, p)
			if err := checkVisible(decide, who, s.role, c); err != nil {
				return notFound
			}
			if err := f(c); err != nil {
				return denied
			}
			return allowed
		}
		member := s.role != "" && !who.Bot
		handler := who.HasAny(acl.Officer, acl.Clerk, acl.Leader)
		tries := []struct {
			name string
			sys  outcome
			law  outcome
		}{
			// RULE invariant 2: an internal sign-off is a leader's of the asking unit, never the asker's.
			{"sign the police's filing", sys(func(c *Case) error {
				res := c.resource(s.role)
				res.Unit, res.Author = police, "asker"
				return decide(c.withDelegation(who, time.Now()), SignApproval, res)
			}), law(member && who.Unit == police && who.Has(acl.Leader))},
			{"sign one's own request", sys(func(c *Case) error {
				res := c.resource(s.role)
				res.Unit, res.Author = police, who.User
				return decide(who, SignApproval, res)
			}), law(false)},
			// Another organ's approval: the league procuratorate's, asked by the police.
			{"decide the league procuratorate's approval", sys(func(c *Case) error {
				res := c.resource(s.role)
				res.Unit, res.RequestUnit, res.Author = unitOf("procuratorate", "higher-member"), police, "asker"
				if err := decide(who, DecideApproval, res); err != nil {
					return err
				}
				if !who.Has(acl.Leader) {
					return &acl.DeniedError{Rule: "approver-role"}
				}
				return nil
			}), law(member && who.Unit == unitOf("procuratorate", "higher-member") && who.Has(acl.Leader) && who.UnitKind != acl.Committee)},
			// 督办: the committee's supervisors and leaders whose jurisdiction covers the case.
			{"supervise", sys(func(c *Case) error {
				res := c.resource(s.role)
				res.Unit = c.Committee
				return decide(who, Supervise, res)
			}), law(!who.Bot && who.UnitKind == acl.Committee && who.HasAny(acl.Supervisor, acl.Leader) && w.regions.Covers(who.Region, caseRegion))},
			// Leaders name their unit's handlers.
			{"assign the holder's handlers", sys(func(c *Case) error {
				res := c.resource(s.role)
				res.Unit = police
				return decide(who, AssignHandlers, res)
			}), law(member && who.Unit == police && who.Has(acl.Leader))},
			// Handlers of a handling unit record interventions; leaders of one and auditors read them.
			{"record an intervention", sys(func(c *Case) error {
				return decide(who, RecordIntervention, c.registerResource(s.role, who))
			}), law(member && who.Unit == police && handler)},
			{"read the register", sys(func(c *Case) error {
				return decide(who, ReadInterventions, c.registerResource(s.role, who))
			}), law(!who.Bot && ((who.Has(acl.Leader) && who.Unit == police && member) || (who.Has(acl.Auditor) && w.regions.Covers(who.Region, caseRegion))))},
			// Acts are corrected by the unit that did them.
			{"correct the police's act", sys(func(c *Case) error {
				res := c.resource(s.role)
				res.Unit, res.Author = police, "author"
				return decide(who, Correct, res)
			}), law(member && who.Unit == police && who.UnitKind != acl.Committee)},
		}
		for _, typ := range []string{"reconsideration", "correction_notice", "protest", "supplement_notice"} {
			rule := ChallengeRules[typ]
			tries = append(tries, struct {
				name string
				sys  outcome
				law  outcome
			}{"challenge: " + typ, sys(func(c *Case) error {
				if err := decide(who, Challenge, c.challengeResource(s.role, rule, who)); err != nil {
					return err
				}
				if !slices.Contains(rule.By, who.UnitKind) || !who.HasAny(acl.Officer, acl.Leader) {
					return &acl.DeniedError{Rule: "challenge-actor"}
				}
				return nil
			}), law(member && slices.Contains(rule.By, who.UnitKind) && who.HasAny(acl.Officer, acl.Leader) && s.juris == "own" && who.UnitKind != acl.Committee)})
		}
		for _, tr := range tries {
			if !check(tr.sys, tr.law, func() string { return tr.name + " by " + s.String() }) {
				return false
			}
		}
		if !w.checkTimed(decide, s, check) {
			return false
		}
		// Lists and opening need no case.
		listRes := acl.Resource{Kind: "cases", Unit: who.Unit, Region: who.Region}
		if !check(outcomeOf(decide(who, ListJurisdiction, listRes)), boolOutcome(!who.Bot && who.HasAny(acl.Supervisor, acl.Auditor)),
			func() string { return "list the jurisdiction by " + s.String() }) {
			return false
		}
		for _, id := range []string{"criminal", "civil", "public-interest"} {
			proc := w.procs[id]
			openRes := acl.Resource{Kind: "case", Unit: who.Unit, Region: who.Region, Stage: proc.Initial, Holder: who.Unit}
			got := outcomeOf(decide(who, OpenCase, openRes))
			if got == allowed {
				if _, err := (&Service{}).firstTransition(proc, "", who); err != nil {
					got = denied
				}
			}
			// RULE procedure.md §1: police (or a procuratorate, a supervisory
			// commission) open criminal cases, courts open civil ones, the
			// procuratorate public-interest ones; never the committee.
			opens := map[string][]acl.UnitKind{"criminal": {"police", "procuratorate", "supervision", "court"}, "civil": {"court"}, "public-interest": {"procuratorate"}}[id]
			want := !who.Bot && who.UnitKind != acl.Committee && slices.Contains(opens, who.UnitKind) && who.HasAny(acl.Officer, acl.Clerk)
			if id == "public-interest" || (id == "criminal" && who.UnitKind == "supervision") || (id == "criminal" && who.UnitKind == "procuratorate") {
				want = want && who.Has(acl.Officer)
			}
			if !check(got, boolOutcome(want), func() string { return "open a " + id + " case by " + s.String() }) {
				return false
			}
		}
	}
	// The deadline bot need not be a member: committee bots of every
	// jurisdiction, in the room or not.
	for _, j := range jurisdictions {
		bot := subj{juris: j, who: acl.Subject{User: acl.UserID("bot.committee." + j), Unit: unitOf(acl.Committee, j),
			UnitKind: acl.Committee, Region: jurisdictionRegion[j], Roles: []acl.Role{acl.Officer}, Bot: true}}
		if isMember(j) {
			bot.role = chat.Member
		}
		if !w.checkTimed(decide, bot, check) {
			return false
		}
	}
	return true
}

// checkTimed tries a time-driven act (a judgment becoming effective) by s:
// RULE CPL Art. 259, nobody performs it; the deadline bot of a committee
// whose jurisdiction covers the case posts it, member of the room or not.
func (w *world) checkTimed(decide decider, s subj, check func(got, want outcome, what func() string) bool) bool {
	c := f0(w, w.procs["criminal"])
	got := outcomeOf(checkTimedAct(decide, s.who, c.resource(s.role)))
	want := boolOutcome(s.who.Bot && s.who.UnitKind == acl.Committee && w.regions.Covers(s.who.Region, caseRegion))
	return check(got, want, func() string { return "post a timed act by " + s.String() })
}

// f0 is a criminal case under investigation by the police of 新城区, with the
// other units of the county, the league and 150203 in the room.
func f0(w *world, p *Procedure) *Case {
	file, _ := p.Transition("file")
	return newFixture(p, "investigation", file).build(file)
}

func outcomeOf(err error) outcome {
	if err != nil {
		return denied
	}
	return allowed
}

func boolOutcome(ok bool) outcome {
	if ok {
		return allowed
	}
	return denied
}

// enumerateChat tries the directory and room actions of the shipped policy's
// other rules against DESIGN.md ("Who uses it", invariant 1, the DingTalk
// habits), so that the bite test covers every rule of the file.
func (w *world) enumerateChat(g *acl.Guard, check func(got, want outcome, what func() string) bool) bool {
	roomRoles := []chat.RoomRole{chat.Owner, chat.Moderator, chat.Member, chat.Observer, ""}
	actions := []acl.Action{acl.ImportDirectory, acl.ReadDirectory, acl.CreateUnit, acl.DisableUnit, acl.CreateUser, acl.DisableUser,
		acl.ResetPassword, acl.GrantRoles, acl.UnlockUser, acl.ReadAudit, acl.ReadSecurityLog, acl.CreateRoom, acl.ReadRoom,
		acl.PostMessage, acl.RenameRoom, acl.ArchiveRoom, acl.AddMember, acl.RemoveMember, acl.EditMessage, acl.RetractOwn,
		acl.ModerateRoom, acl.MentionAll, acl.ReadVersions, acl.UploadFile, acl.ReadReceipts, acl.ReadUnitRooms}
	for _, k := range w.kinds {
		for _, r := range acl.Roles {
			for _, bot := range []bool{false, true} {
				for _, j := range []string{"own", "outside"} {
					who := acl.Subject{User: "me", Unit: unitOf(k, j), UnitKind: k, Region: jurisdictionRegion[j], Roles: []acl.Role{r}, Bot: bot}
					for _, rr := range roomRoles {
						for _, author := range []acl.UserID{"me", "other"} {
							for _, addedUnit := range []acl.UnitID{who.Unit, "150999-court"} {
								for _, roomKind := range []chat.RoomKind{chat.GroupRoom, chat.CaseRoom} {
									for _, a := range actions {
										res := acl.Resource{Kind: "room", ID: "r", Unit: addedUnit, Region: caseRegion, RoomKind: string(roomKind), RoomRole: string(rr), Author: author}
										if a == acl.ReadUnitRooms {
											res.Kind, res.RoomKind = "unit", "unit"
										}
										want := chatLaw(who, a, rr, roomKind, author == "me", addedUnit == who.Unit, w.regions.Covers(who.Region, caseRegion))
										got := boolOutcome(g.Decide(who, a, res).Allow)
										if !check(got, boolOutcome(want), func() string {
											return fmt.Sprintf("%s by %s %s (bot %v, %s, %s room, room role %q, author %v, own unit %v)", a, k, r, bot, j, roomKind, rr, author == "me", addedUnit == who.Unit)
										}) {
											return false
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
	return true
}

// chatLaw is DESIGN.md on rooms and the directory: the system administrator
// runs the directory, the security administrator roles and accounts, the
// auditor reads the audit record; staff create rooms; members read and post,
// observers only read; supervisors and auditors read the rooms of their
// jurisdiction; authors edit and retract their own; owners and moderators
// moderate; owners archive and @所有人; a participating unit's leader adds the
// unit's own staff; a unit's staff read its unit room. Bots read and post in
// their rooms, nothing else. A case room is archived by closing the case (an
// act), never through the rooms API, so its owner — the committee — cannot.
func chatLaw(who acl.Subject, a acl.Action, rr chat.RoomRole, roomKind chat.RoomKind, author, ownUnit, inJurisdiction bool) bool {
	has := func(rs ...acl.Role) bool { return who.HasAny(rs...) }
	member := rr != ""
	writer := rr == chat.Owner || rr == chat.Moderator || rr == chat.Member
	if who.Bot {
		switch a {
		case acl.ReadRoom, acl.ReadReceipts:
			return member
		case acl.PostMessage, acl.UploadFile:
			return writer
		}
		return false
	}
	switch a {
	case acl.ImportDirectory, acl.CreateUnit, acl.DisableUnit, acl.CreateUser, acl.DisableUser:
		return has(acl.SysAdmin)
	case acl.ResetPassword, acl.GrantRoles, acl.UnlockUser, acl.ReadSecurityLog:
		return has(acl.SecAdmin)
	case acl.ReadAudit:
		return has(acl.Auditor)
	case acl.ReadDirectory:
		return true
	case acl.CreateRoom:
		return has(acl.Officer, acl.Leader, acl.Clerk, acl.Supervisor)
	case acl.ReadRoom, acl.ReadReceipts:
		return member || (has(acl.Supervisor, acl.Auditor) && inJurisdiction)
	case acl.ReadVersions:
		// Every version is for the supervisors and auditors of the jurisdiction;
		// an observer's seat reads the room as members see it.
		return has(acl.Supervisor, acl.Auditor) && inJurisdiction && rr != chat.Observer
	case acl.PostMessage, acl.UploadFile:
		return writer
	case acl.EditMessage, acl.RetractOwn:
		return writer && author
	case acl.ModerateRoom, acl.RenameRoom, acl.RemoveMember:
		return rr == chat.Owner || rr == chat.Moderator
	case acl.ArchiveRoom:
		return rr == chat.Owner && roomKind != chat.CaseRoom
	case acl.MentionAll:
		return rr == chat.Owner
	case acl.AddMember:
		return rr == chat.Owner || rr == chat.Moderator || (rr == chat.Member && has(acl.Leader) && ownUnit)
	case acl.ReadUnitRooms:
		return ownUnit && has(acl.Officer, acl.Leader, acl.Clerk, acl.Supervisor)
	}
	return false
}

func TestACLCombinations(t *testing.T) {
	if testing.Short() {
		t.Skip("the full enumeration takes seconds")
	}
	w := mustWorld(t)
	g := w.guard(t, w.policy)
	var bad []string
	n, phases := w.enumeratePhases(g, func(m mismatch) bool {
		if len(bad) < 40 {
			bad = append(bad, m())
		}
		return true
	})
	for _, b := range bad {
		t.Error(b)
	}
	t.Logf("%d combinations checked: %d acts (agency kind × role × transition × stage × jurisdiction, of %d subjects), %d other case actions, %d room and directory actions; %d of them allowed",
		n, phases[2], len(w.subs), phases[1], phases[0], phases[3])
}

// masked are the mutations of the shipped policy that cannot bite, because an
// invariant in code (acl.Guard.Decide) already forbids what they would allow;
// each says which. The bite test requires every other mutation to make some
// expectation fail, and every one listed here to make none (so the list stays
// true).
var masked = map[string]string{
	"room-post-member/drop room_roles":       "invariant 1 in code: non-members never post, observers only read",
	"message-edit-author/drop room_roles":    "invariant 1 in code: non-members never edit, observers only read",
	"member-add-unit-leader/drop room_roles": "invariant 1 in code: non-members never add members, observers only read",
}

// TestPolicyRulesBite deletes each rule of configs/policy.json, drops each of
// its conditions (roles, unit kinds, room roles, room kinds, relation, stages)
// and flips its bots flag, one mutation at a time, and reruns the
// expectations of TestACLCombinations on the mutated policy: each mutation
// must make at least one of them fail.
func TestPolicyRulesBite(t *testing.T) {
	if testing.Short() {
		t.Skip("reruns the enumeration once per mutation")
	}
	w := mustWorld(t)
	var doc struct {
		Rules []map[string]json.RawMessage `json:"rules"`
	}
	if err := json.Unmarshal(w.policy, &doc); err != nil {
		t.Fatal(err)
	}
	type mutation struct {
		name   string
		policy []byte
	}
	encode := func(rules []map[string]json.RawMessage) []byte {
		b, err := json.Marshal(map[string]any{"rules": rules})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var ms []mutation
	for i, r := range doc.Rules {
		var id string
		json.Unmarshal(r["id"], &id)
		ms = append(ms, mutation{id + "/delete", encode(slices.Delete(slices.Clone(doc.Rules), i, i+1))})
		for _, cond := range []string{"roles", "unit_kinds", "room_roles", "room_kinds", "relation", "stages"} {
			if _, ok := r[cond]; !ok {
				continue
			}
			rules := slices.Clone(doc.Rules)
			m := maps(r)
			delete(m, cond)
			rules[i] = m
			ms = append(ms, mutation{id + "/drop " + cond, encode(rules)})
		}
		var bots bool
		json.Unmarshal(r["bots"], &bots)
		rules := slices.Clone(doc.Rules)
		m := maps(r)
		m["bots"] = json.RawMessage(fmt.Sprint(!bots))
		rules[i] = m
		ms = append(ms, mutation{id + "/flip bots", encode(rules)})
	}
	t.Logf("%d mutations of %d rules; %d masked by invariants in code", len(ms), len(doc.Rules), len(masked))
	for _, m := range ms {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			g := w.guard(t, m.policy)
			var first string
			w.enumerate(g, func(mm mismatch) bool { first = mm(); return false })
			why, isMasked := masked[m.name]
			switch {
			case first == "" && !isMasked:
				t.Errorf("mutation %s of configs/policy.json makes no expectation fail", m.name)
			case first != "" && isMasked:
				t.Errorf("mutation %s is listed as masked (%s) but bites: %s", m.name, why, first)
			case first != "":
				t.Logf("caught by %s", first)
			}
		})
	}
}

// TestProceduresKeepSeparationOfPowers checks the shipped procedures against
// procedure.md §1 "Must NOT do", so that the enumeration above, which takes
// each transition's actors from the procedure, rests on data that respects the
// law: the police never approve an arrest nor decide prosecution, the
// procuratorate never tries a case, the court never investigates or
// prosecutes, and only the agency the law gives a decision to takes it.
func TestProceduresKeepSeparationOfPowers(t *testing.T) {
	w := mustWorld(t)
	only := map[string][]string{ // criminal transition → the only agencies that may perform it
		"approve_arrest": {"procuratorate"}, "deny_arrest": {"procuratorate"}, "indict": {"procuratorate"},
		"decide_non_prosecution": {"procuratorate"}, "return_supplementary": {"procuratorate"},
		"return_supplementary_again": {"procuratorate"}, "protest": {"procuratorate"},
		"judge_first_instance": {"court"}, "decide_second_instance": {"court"}, "remand": {"court"},
		"accept_ordinary": {"court"}, "send_to_correction": {"court", "prison", "detention"},
		"file": {"police", "procuratorate"}, "detain": {"police"}, "execute_arrest": {"police"},
		"transfer_for_prosecution": {"police"}, "accept_correction": {"justice"}, "end_correction": {"justice"},
	}
	p := w.procs["criminal"]
	for id, agencies := range only {
		tr, ok := p.Transition(id)
		if !ok {
			t.Errorf("criminal procedure has no %s", id)
			continue
		}
		for _, k := range byKinds(tr) {
			if !slices.Contains(agencies, string(k)) {
				t.Errorf("criminal %s may be performed by %s; procedure.md §1 gives it to %v", id, k, agencies)
			}
		}
	}
	for _, proc := range w.procs {
		var ts []Transition
		ts = append(ts, proc.Machine.Transitions...)
		if proc.Suspect != nil {
			ts = append(ts, proc.Suspect.Transitions...)
		}
		for _, tr := range ts {
			for _, k := range byKinds(tr) {
				switch {
				case k == acl.Committee:
					t.Errorf("%s %s is performed by the committee (invariant 4)", proc.ID, tr.ID)
				case k == "police" && (tr.Act == "approve" || tr.Act == "deny"):
					t.Errorf("%s %s: the police %s (CPL Art. 87–90: arrest needs the procuratorate's approval)", proc.ID, tr.ID, tr.Act)
				case k == "court" && slices.Contains([]string{"detain", "request_arrest", "request_arrest_detained", "transfer_for_prosecution", "indict"}, tr.ID):
					t.Errorf("%s %s: the court neither investigates nor prosecutes", proc.ID, tr.ID)
				case k == "justice" && slices.Contains([]string{"judge_first_instance", "decide_second_instance", "indict"}, tr.ID):
					t.Errorf("%s %s: justice administration does not decide criminal liability", proc.ID, tr.ID)
				}
			}
		}
	}
}
