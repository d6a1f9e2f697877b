package casework

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// AgencyKinds are the kinds of unit that take part in cases (see
// configs/unit-kinds.json). A procedure naming any other kind is rejected.
var AgencyKinds = []string{
	"committee", "police", "procuratorate", "court", "justice",
	"supervision", "detention", "prison", "legal_aid",
}

// Roles are the roles a user holds at a unit.
var Roles = []string{"officer", "leader", "clerk", "supervisor", "auditor", "secadmin", "sysadmin"}

// actingRoles are the roles that may perform or approve a case act. The others
// read (supervisor, auditor) or administer (secadmin, sysadmin) but never act.
var actingRoles = []string{"officer", "leader", "clerk"}

// ActKinds are the kinds of act a transition can be.
var ActKinds = []string{
	"receive",  // a report or complaint comes in
	"file",     // the case is filed (立案) or registered (登记立案)
	"decline",  // a decision not to file or not to accept
	"request",  // asking another organ (or one's leader) for a decision
	"decide",   // a decision of the handling organ
	"approve",  // a decision the law gives to another organ or a higher level
	"deny",     // the negative of approve
	"execute",  // carrying out a decision (arrest, delivery to prison)
	"transfer", // handing the case over; the receiver must accept
	"accept",   // the receiver takes the case over
	"return",   // the receiver (or a reviewer) sends it back, with a reason
	"convert",  // a change of procedure (fast-track → ordinary)
	"record",   // recording a party's act (appeal lodged, report in person)
	"notify",   // a formal notice to another organ
	"close",    // the case ends here
	"reopen",   // a closed case comes back (retrial, revocation)
}

// Approval levels, relative to the unit that asks.
var approvalLevels = []string{"same", "higher", "provincial", "supreme"}

// EvidenceStages are the points at which an evidence standard applies
// (procedure.md §4.3 "Stage thresholds").
var EvidenceStages = []string{"filing", "arrest", "prosecution", "trial", "enforcement"}

// A Procedure is one kind of case process as data: the stages of the case, the
// transitions between them, and, for criminal cases, a per-suspect machine of
// coercive measures (custody). It is immutable after loading.
type Procedure struct {
	ID      string `json:"id"` // equals the file name without ".json"
	NameZH  string `json:"name_zh"`
	NameEN  string `json:"name_en"`
	Comment string `json:"comment,omitempty"`
	Machine
	// Suspect, if set, is the machine each suspect goes through (custody
	// sub-states); its transitions say in which case stages they may happen.
	Suspect     *Machine         `json:"suspect,omitempty"`
	CaseNumbers []CaseNumberRule `json:"case_numbers"`

	file string
}

// A Machine is a set of stages and the transitions between them, entered at
// Initial.
type Machine struct {
	Initial     string       `json:"initial"`
	Stages      []Stage      `json:"stages"`
	Transitions []Transition `json:"transitions"`
}

// A Stage is a state of a case (or of a suspect).
type Stage struct {
	ID       string `json:"id"`
	NameZH   string `json:"name_zh"`
	NameEN   string `json:"name_en"`
	Terminal bool   `json:"terminal"`  // the case ends here; only "reopen" acts leave it
	ReadOnly bool   `json:"read_only"` // on entering it the case room becomes read-only
}

// An Actor is who may perform a transition: an agency kind and the roles there.
type Actor struct {
	Agency string   `json:"agency"`
	Roles  []string `json:"roles"`
}

// A Document is a paper a hand-over must (or may) carry.
type Document struct {
	NameZH   string `json:"name_zh"`
	Required bool   `json:"required"`
}

// ClockActions are what a transition does to clocks (ClockSpec IDs).
type ClockActions struct {
	Start   []string `json:"start,omitempty"`
	Stop    []string `json:"stop,omitempty"`
	Pause   []string `json:"pause,omitempty"`
	Resume  []string `json:"resume,omitempty"`
	Restart []string `json:"restart,omitempty"`
}

// A Transition is an act that moves a case (or suspect) from one of From to To.
type Transition struct {
	ID     string   `json:"id"`
	NameZH string   `json:"name_zh"`
	NameEN string   `json:"name_en"`
	From   []string `json:"from"`
	To     string   `json:"to"`
	Act    string   `json:"act"` // one of ActKinds
	By     []Actor  `json:"by"`  // who may perform it; never empty
	// Receiver is the agency kind a "transfer" hands the case to; the holder
	// changes only when that agency performs the matching "accept".
	Receiver  string     `json:"receiver,omitempty"`
	Approvals []Approval `json:"approvals,omitempty"` // all are needed before the act
	Documents []Document `json:"documents,omitempty"`
	// Evidence names the evidence stage (EvidenceStages) whose checklist items
	// the act must carry, e.g. "prosecution" for the transfer for prosecution.
	Evidence string `json:"evidence,omitempty"`
	// MaxCount limits how often the transition may happen in one case (per
	// suspect in a Suspect machine); 0 means no limit.
	MaxCount       int          `json:"max_count,omitempty"`
	ReasonRequired bool         `json:"reason_required,omitempty"`
	During         []string     `json:"during,omitempty"` // Suspect machine only: case stages in which it may happen
	Clocks         ClockActions `json:"clocks"`
	// Occurrences, if set, replaces Clocks for the n-th time (from 1) the
	// transition happens in a case: the first return for supplementary
	// investigation starts CR-SUPP-01, the second CR-SUPP-02. Use ClocksFor.
	Occurrences []ClockActions `json:"occurrences,omitempty"`
	// Timed marks a transition that the passing of time performs: when one of
	// these clocks expires while still running (the appeal period passes
	// unused), the deadline bot posts it as a system act (KindSystem, see
	// Service.TimedAct). Each must be a clock the transition stops.
	Timed []string `json:"timed,omitempty"`
	Basis string   `json:"basis"`
	Note  string   `json:"note,omitempty"`
}

// A CaseNumberRule says how an agency numbers a case it takes at a stage:
// e.g. the court at first instance of a criminal case, "({year}){court}{code}{serial}号"
// with code "刑初" gives "(2026)内0102刑初123号".
type CaseNumberRule struct {
	Agency string `json:"agency"`
	Stage  string `json:"stage"` // the stage on entering which the number is given
	Code   string `json:"code"`  // 类型代字, e.g. 刑初, 民初, 执
	// Pattern (JSON "format") has the placeholders {year}, {court} (the court code derived from
	// the unit's division code: 内 / 内01 / 内0102), {unit} (the unit's short name,
	// e.g. 新城公), {code} and {serial}.
	Pattern string `json:"format"`
}

// File returns the file it was loaded from.
func (p *Procedure) File() string { return p.file }

// Stage returns the stage with the given ID in the case machine or the suspect
// machine.
func (p *Procedure) Stage(id string) (Stage, bool) {
	for _, m := range p.machines() {
		for _, s := range m.Stages {
			if s.ID == id {
				return s, true
			}
		}
	}
	return Stage{}, false
}

// Transition returns the transition with the given ID, in either machine.
func (p *Procedure) Transition(id string) (Transition, bool) {
	for _, m := range p.machines() {
		for _, t := range m.Transitions {
			if t.ID == id {
				return t, true
			}
		}
	}
	return Transition{}, false
}

// From returns the transitions that may leave stage (of either machine), in
// file order.
func (p *Procedure) From(stage string) []Transition {
	var out []Transition
	for _, m := range p.machines() {
		for _, t := range m.Transitions {
			if slices.Contains(t.From, stage) {
				out = append(out, t)
			}
		}
	}
	return out
}

func (p *Procedure) machines() []*Machine {
	if p.Suspect != nil {
		return []*Machine{&p.Machine, p.Suspect}
	}
	return []*Machine{&p.Machine}
}

// ClocksFor returns what the n-th occurrence (from 1) of t does to clocks.
func (t Transition) ClocksFor(n int) ClockActions {
	if n >= 1 && n <= len(t.Occurrences) {
		return t.Occurrences[n-1]
	}
	return t.Clocks
}

// MayPerform reports whether a user of agency kind holding role may perform t.
func (t Transition) MayPerform(agency, role string) bool {
	for _, a := range t.By {
		if a.Agency == agency && slices.Contains(a.Roles, role) {
			return true
		}
	}
	return false
}

// provinceAbbr maps GB/T 2260 province codes to the one-character abbreviation
// courts use in case numbers (最高人民法院《关于人民法院案件案号的若干规定》).
// It is a fixed national table, not configuration.
var provinceAbbr = map[string]string{
	"11": "京", "12": "津", "13": "冀", "14": "晋", "15": "内", "21": "辽", "22": "吉", "23": "黑",
	"31": "沪", "32": "苏", "33": "浙", "34": "皖", "35": "闽", "36": "赣", "37": "鲁", "41": "豫",
	"42": "鄂", "43": "湘", "44": "粤", "45": "桂", "46": "琼", "50": "渝", "51": "川", "52": "贵",
	"53": "云", "54": "藏", "61": "陕", "62": "甘", "63": "青", "64": "宁", "65": "新",
}

// CourtCode derives a court's code from its division code: 150000 → 内 (high
// court), 150100 → 内01 (intermediate court), 150102 → 内0102 (basic court).
func CourtCode(division string) (string, error) {
	if len(division) != 6 || strings.Trim(division, "0123456789") != "" {
		return "", fmt.Errorf("casework: division code %q: want 6 digits", division)
	}
	abbr, ok := provinceAbbr[division[:2]]
	if !ok {
		return "", fmt.Errorf("casework: division code %q: unknown province %s", division, division[:2])
	}
	switch {
	case division[2:] == "0000":
		return abbr, nil
	case division[4:] == "00":
		return abbr + division[2:4], nil
	}
	return abbr + division[2:], nil
}

// CaseNumberInput is what a case number is made of.
type CaseNumberInput struct {
	Year     int    // the year the case is taken, Beijing time
	Division string // the unit's GB/T 2260 division code, e.g. 150102
	Unit     string // the unit's short name for agencies that number by it, e.g. 新城公
	Serial   int    // the unit's running number for the year and code, from 1
}

// Format makes a case number by the rule, e.g. "(2026)内0102刑初123号".
func (r CaseNumberRule) Format(in CaseNumberInput) (string, error) {
	if in.Year < 1949 || in.Serial < 1 {
		return "", fmt.Errorf("casework: case number needs a year and a serial from 1, got %d and %d", in.Year, in.Serial)
	}
	court := ""
	if strings.Contains(r.Pattern, "{court}") {
		c, err := CourtCode(in.Division)
		if err != nil {
			return "", err
		}
		court = c
	}
	if strings.Contains(r.Pattern, "{unit}") && in.Unit == "" {
		return "", fmt.Errorf("casework: case number format %q needs the unit's short name", r.Pattern)
	}
	return strings.NewReplacer(
		"{year}", strconv.Itoa(in.Year), "{court}", court, "{unit}", in.Unit,
		"{code}", r.Code, "{serial}", strconv.Itoa(in.Serial),
	).Replace(r.Pattern), nil
}

// validate checks p against itself and the clocks and returns one error per
// problem, each naming the file and the field.
func (p *Procedure) validate(clocks *ClockTable) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", p.file, field, fmt.Sprintf(format, args...)))
	}
	if p.NameZH == "" || p.NameEN == "" {
		bad("name_zh", "a procedure needs name_zh and name_en")
	}
	mainStages := map[string]Stage{}
	for _, s := range p.Stages {
		mainStages[s.ID] = s
	}
	seenT := map[string]string{}
	p.validateMachine(&p.Machine, "", nil, clocks, seenT, bad)
	if p.Suspect != nil {
		p.validateMachine(p.Suspect, "suspect.", mainStages, clocks, seenT, bad)
	}
	for i, r := range p.CaseNumbers {
		f := fmt.Sprintf("case_numbers[%d]", i)
		if !slices.Contains(AgencyKinds, r.Agency) {
			bad(f+".agency", "unknown agency kind %q", r.Agency)
		}
		if _, ok := mainStages[r.Stage]; !ok {
			bad(f+".stage", "unknown stage %q", r.Stage)
		}
		if r.Code == "" {
			bad(f+".code", "empty")
		}
		for _, ph := range []string{"{year}", "{serial}", "{code}"} {
			if !strings.Contains(r.Pattern, ph) {
				bad(f+".format", "%q lacks %s", r.Pattern, ph)
			}
		}
	}
	return errs
}

// validateMachine checks one machine. main is nil for the case machine and
// holds the case stages for the suspect machine (whose transitions name them in
// "during").
func (p *Procedure) validateMachine(m *Machine, prefix string, main map[string]Stage, clocks *ClockTable,
	seenT map[string]string, bad func(field, format string, args ...any)) {
	stages := map[string]Stage{}
	for i, s := range m.Stages {
		f := fmt.Sprintf("%sstages[%d]", prefix, i)
		switch {
		case s.ID == "":
			bad(f+".id", "empty")
		case stages[s.ID].ID != "":
			bad(f+".id", "duplicate stage %q", s.ID)
		}
		if s.NameZH == "" || s.NameEN == "" {
			bad(f+".name_zh", "stage %q needs name_zh and name_en", s.ID)
		}
		stages[s.ID] = s
	}
	if _, ok := stages[m.Initial]; !ok {
		bad(prefix+"initial", "unknown stage %q", m.Initial)
	}
	out := map[string][]string{} // stage → stages reachable in one step
	for i, t := range m.Transitions {
		f := fmt.Sprintf("%stransitions[%d]", prefix, i)
		if t.ID == "" {
			bad(f+".id", "empty")
		} else if prev, dup := seenT[t.ID]; dup {
			bad(f+".id", "duplicate transition %q (also %s)", t.ID, prev)
		} else {
			seenT[t.ID] = f
		}
		if t.NameZH == "" || t.NameEN == "" {
			bad(f+".name_zh", "transition %q needs name_zh and name_en", t.ID)
		}
		if len(t.From) == 0 {
			bad(f+".from", "empty")
		}
		for j, s := range t.From {
			st, ok := stages[s]
			if !ok {
				bad(fmt.Sprintf("%s.from[%d]", f, j), "unknown stage %q", s)
				continue
			}
			// RULE: a terminal stage ends the case; only a reopening act (retrial,
			// revocation) may leave it.
			if st.Terminal && t.Act != "reopen" {
				bad(fmt.Sprintf("%s.from[%d]", f, j), "stage %q is terminal: only a \"reopen\" act may leave it, not %q", s, t.Act)
			}
			out[s] = append(out[s], t.To)
		}
		if _, ok := stages[t.To]; !ok {
			bad(f+".to", "unknown stage %q", t.To)
		}
		if !slices.Contains(ActKinds, t.Act) {
			bad(f+".act", "unknown act kind %q", t.Act)
		}
		if len(t.By) == 0 {
			bad(f+".by", "transition %q: nobody may perform it", t.ID)
		}
		for j, a := range t.By {
			af := fmt.Sprintf("%s.by[%d]", f, j)
			if !slices.Contains(AgencyKinds, a.Agency) {
				bad(af+".agency", "unknown agency kind %q", a.Agency)
			}
			// RULE: DESIGN invariant 4 — the committee supervises but never performs a
			// judicial or procedural act (三个规定 No.1 Art. 3).
			if a.Agency == "committee" {
				bad(af+".agency", "the committee may not perform case acts")
			}
			if len(a.Roles) == 0 {
				bad(af+".roles", "transition %q: nobody may perform it (no roles)", t.ID)
			}
			for k, r := range a.Roles {
				if !slices.Contains(Roles, r) {
					bad(fmt.Sprintf("%s.roles[%d]", af, k), "unknown role %q", r)
				} else if !slices.Contains(actingRoles, r) {
					bad(fmt.Sprintf("%s.roles[%d]", af, k), "role %q may not perform case acts", r)
				}
			}
		}
		if t.Act == "transfer" {
			if !slices.Contains(AgencyKinds, t.Receiver) {
				bad(f+".receiver", "a transfer needs a known receiving agency kind, got %q", t.Receiver)
			}
		} else if t.Receiver != "" {
			bad(f+".receiver", "only a transfer has a receiver")
		}
		// RULE: DESIGN invariant 3 — a return must carry a reason.
		if t.Act == "return" && !t.ReasonRequired {
			bad(f+".reason_required", "a return must require a reason")
		}
		for j, a := range t.Approvals {
			validateApproval(a, fmt.Sprintf("%s.approvals[%d]", f, j), bad)
		}
		for j, d := range t.Documents {
			if d.NameZH == "" {
				bad(fmt.Sprintf("%s.documents[%d].name_zh", f, j), "empty")
			}
		}
		if t.Evidence != "" && !slices.Contains(EvidenceStages, t.Evidence) {
			bad(f+".evidence", "unknown evidence stage %q", t.Evidence)
		}
		if t.MaxCount < 0 {
			bad(f+".max_count", "negative")
		}
		if main == nil && len(t.During) > 0 {
			bad(f+".during", "only suspect transitions have \"during\"")
		}
		for j, s := range t.During {
			if _, ok := main[s]; !ok {
				bad(fmt.Sprintf("%s.during[%d]", f, j), "unknown case stage %q", s)
			}
		}
		if len(t.Occurrences) > 0 && (t.MaxCount == 0 || len(t.Occurrences) > t.MaxCount) {
			bad(f+".occurrences", "transition %q has %d occurrences but max_count %d", t.ID, len(t.Occurrences), t.MaxCount)
		}
		validateClockActions(t.Clocks, f+".clocks", clocks, bad)
		for j, o := range t.Occurrences {
			validateClockActions(o, fmt.Sprintf("%s.occurrences[%d]", f, j), clocks, bad)
		}
		validateTimed(t, f, clocks, bad)
	}
	// RULE: every stage must be reachable from the initial stage, and every
	// non-terminal stage must have a way out; otherwise the data has a typo.
	seen := map[string]bool{m.Initial: true}
	queue := []string{m.Initial}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, n := range out[s] {
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	for i, s := range m.Stages {
		f := fmt.Sprintf("%sstages[%d]", prefix, i)
		if !seen[s.ID] {
			bad(f, "stage %q is unreachable from the initial stage %q", s.ID, m.Initial)
		}
		if !s.Terminal && len(out[s.ID]) == 0 {
			bad(f, "stage %q is not terminal but no transition leaves it", s.ID)
		}
	}
}

func validateClockActions(ca ClockActions, f string, clocks *ClockTable, bad func(field, format string, args ...any)) {
	for _, l := range []struct {
		name string
		ids  []string
	}{{"start", ca.Start}, {"stop", ca.Stop}, {"pause", ca.Pause}, {"resume", ca.Resume}, {"restart", ca.Restart}} {
		for j, id := range l.ids {
			if _, ok := clocks.Spec(id); !ok {
				bad(fmt.Sprintf("%s.%s[%d]", f, l.name, j), "unknown clock %q", id)
			}
		}
	}
}

func validateApproval(a Approval, f string, bad func(field, format string, args ...any)) {
	if !slices.Contains(AgencyKinds, a.Agency) && a.Agency != SelfAgency {
		bad(f+".agency", "unknown agency kind %q", a.Agency)
	}
	if a.Agency == SelfAgency && a.Level != "same" {
		bad(f+".level", "an approval by the performer's own agency (%q) has level \"same\"", SelfAgency)
	}
	// RULE: DESIGN invariant 4 — the committee never approves a legal decision.
	if a.Agency == "committee" {
		bad(f+".agency", "the committee may not approve case decisions")
	}
	if !slices.Contains(Roles, a.Role) {
		bad(f+".role", "unknown role %q", a.Role)
	} else if !slices.Contains(actingRoles, a.Role) {
		bad(f+".role", "role %q may not approve case acts", a.Role)
	}
	if !slices.Contains(approvalLevels, a.Level) {
		bad(f+".level", "unknown level %q (want same, higher, provincial or supreme)", a.Level)
	}
}

// validateTimed checks a time-driven transition: its clocks exist and are
// stopped by it, and it needs nothing a bot cannot give — no approval, no
// document, no reason, no unit to address or answer.
func validateTimed(t Transition, f string, clocks *ClockTable, bad func(field, format string, args ...any)) {
	if len(t.Timed) == 0 {
		return
	}
	for j, id := range t.Timed {
		if _, ok := clocks.Spec(id); !ok {
			bad(fmt.Sprintf("%s.timed[%d]", f, j), "unknown clock %q", id)
		} else if !slices.Contains(t.ClocksFor(1).Stop, id) {
			bad(fmt.Sprintf("%s.timed[%d]", f, j), "transition %q does not stop clock %s, so its expiry cannot be what performs it", t.ID, id)
		}
	}
	switch t.Act {
	case "transfer", "accept", "return", "reopen", "request":
		bad(f+".timed", "a %q act is never performed by the passing of time", t.Act)
	}
	if len(t.Approvals) > 0 || t.ReasonRequired || slices.ContainsFunc(t.Documents, func(d Document) bool { return d.Required }) {
		bad(f+".timed", "a time-driven transition cannot need approvals, a reason or documents")
	}
}
