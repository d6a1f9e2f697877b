package casework

import (
	"strings"
	"testing"
	"testing/fstest"
)

const fixtureClocks = `{"rows": [{"id": "CR-DET-02", "owner": "police", "trigger": "detention", "source": "CPL 91", "section": "3.4",
  "clocks": [{"id": "CR-DET-02", "name_zh": "提请批准逮捕", "name_en": "request arrest", "agency": "police",
    "trigger": "detention", "length": "3d", "custody": "always", "basis": "CPL 91",
    "extensions": [{"id": "special", "length": "4d", "min": "1d", "mode": "add", "condition": "special",
      "approval": {"agency": "police", "role": "leader", "level": "same"}, "basis": "CPL 91"}]}]}]}`

const fixtureProcedure = `{"id": "criminal", "name_zh": "刑事", "name_en": "criminal", "initial": "open",
 "stages": [
  {"id": "open", "name_zh": "开", "name_en": "open", "terminal": false, "read_only": false},
  {"id": "review", "name_zh": "审查", "name_en": "review", "terminal": false, "read_only": false},
  {"id": "trial", "name_zh": "审", "name_en": "trial", "terminal": false, "read_only": false},
  {"id": "done", "name_zh": "结", "name_en": "done", "terminal": true, "read_only": true}],
 "transitions": [
  {"id": "t0", "name_zh": "受案", "name_en": "receive", "from": ["open"], "to": "review", "act": "receive",
   "by": [{"agency": "police", "roles": ["officer"]}], "clocks": {"start": ["CR-DET-02"]}, "basis": "x"},
  {"id": "t1", "name_zh": "移送", "name_en": "transfer", "from": ["review"], "to": "review", "act": "transfer", "receiver": "court",
   "by": [{"agency": "police", "roles": ["officer"]}], "clocks": {}, "basis": "x",
   "approvals": [{"agency": "police", "role": "leader", "level": "same"}]},
  {"id": "t2", "name_zh": "退回", "name_en": "return", "from": ["review"], "to": "open", "act": "return", "reason_required": true,
   "by": [{"agency": "court", "roles": ["officer"]}], "clocks": {}, "basis": "x"},
  {"id": "t3", "name_zh": "受理", "name_en": "accept", "from": ["review"], "to": "trial", "act": "accept",
   "by": [{"agency": "court", "roles": ["officer", "clerk"]}], "clocks": {"stop": ["CR-DET-02"]}, "basis": "x"},
  {"id": "t4", "name_zh": "判决", "name_en": "judge", "from": ["trial"], "to": "done", "act": "decide",
   "by": [{"agency": "court", "roles": ["officer"]}], "clocks": {}, "basis": "x"}],
 "case_numbers": [{"agency": "court", "stage": "trial", "code": "刑初", "format": "({year}){court}{code}{serial}号"}]}`

// loadFixture loads the fixture procedure as configs/procedures/criminal.json
// after replacing old with new in it (old must occur).
func loadFixture(t *testing.T, old, new string) error {
	t.Helper()
	proc := fixtureProcedure
	if old != "" {
		if !strings.Contains(proc, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		proc = strings.Replace(proc, old, new, 1)
	}
	fsys := fstest.MapFS{
		"configs/clocks.json":              {Data: []byte(fixtureClocks)},
		"configs/procedures/criminal.json": {Data: []byte(proc)},
	}
	clocks, err := LoadClocks(fsys, "configs/clocks.json")
	if err != nil {
		t.Fatalf("fixture clocks: %v", err)
	}
	_, err = LoadProcedures(fsys, "configs/procedures", clocks)
	return err
}

func TestLoadProceduresFixtureIsValid(t *testing.T) {
	if err := loadFixture(t, "", ""); err != nil {
		t.Fatalf("LoadProcedures(fixture) = %v, want nil", err)
	}
}

func TestLoadProceduresErrors(t *testing.T) {
	const f = "configs/procedures/criminal.json: "
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown to stage", `"to": "done"`, `"to": "trail"`, f + `transitions[4].to: unknown stage "trail"`},
		{"unknown from stage", `"from": ["trial"]`, `"from": ["trail"]`, f + `transitions[4].from[0]: unknown stage "trail"`},
		{"unknown initial", `"initial": "open"`, `"initial": "opne"`, f + `initial: unknown stage "opne"`},
		{"unreachable stage", `{"id": "done"`, `{"id": "limbo", "name_zh": "悬", "name_en": "limbo", "terminal": true, "read_only": false}, {"id": "done"`,
			f + `stages[3]: stage "limbo" is unreachable from the initial stage "open"`},
		{"dead end", `"terminal": true, "read_only": true`, `"terminal": false, "read_only": true`, f + `stages[3]: stage "done" is not terminal but no transition leaves it`},
		{"nobody may perform", `"by": [{"agency": "court", "roles": ["officer"]}], "clocks": {}, "basis": "x"}]`, `"by": [], "clocks": {}, "basis": "x"}]`,
			f + `transitions[4].by: transition "t4": nobody may perform it`},
		{"no roles", `"by": [{"agency": "court", "roles": ["officer"]}], "clocks": {}, "basis": "x"}]`, `"by": [{"agency": "court", "roles": []}], "clocks": {}, "basis": "x"}]`,
			f + `transitions[4].by[0].roles: transition "t4": nobody may perform it (no roles)`},
		{"unknown agency kind", `"agency": "court", "roles": ["officer", "clerk"]`, `"agency": "courts", "roles": ["officer", "clerk"]`,
			f + `transitions[3].by[0].agency: unknown agency kind "courts"`},
		{"unknown role", `"roles": ["officer", "clerk"]`, `"roles": ["officer", "judge"]`, f + `transitions[3].by[0].roles[1]: unknown role "judge"`},
		{"role that may not act", `"roles": ["officer", "clerk"]`, `"roles": ["officer", "auditor"]`, f + `transitions[3].by[0].roles[1]: role "auditor" may not perform case acts`},
		{"committee acts", `"agency": "court", "roles": ["officer", "clerk"]`, `"agency": "committee", "roles": ["officer", "clerk"]`,
			f + `transitions[3].by[0].agency: the committee may not perform case acts`},
		{"unknown clock", `"start": ["CR-DET-02"]`, `"start": ["CR-DET-99"]`, f + `transitions[0].clocks.start[0]: unknown clock "CR-DET-99"`},
		{"duplicate stage", `{"id": "trial", "name_zh": "审"`, `{"id": "review", "name_zh": "审"`, f + `stages[2].id: duplicate stage "review"`},
		{"duplicate transition", `{"id": "t4"`, `{"id": "t3"`, f + `transitions[4].id: duplicate transition "t3" (also transitions[3])`},
		{"unknown field", `"initial": "open",`, `"initial": "open", "colour": "red",`, `configs/procedures/criminal.json: line 1: json: unknown field "colour"`},
		{"wrong type", `"reason_required": true`, `"reason_required": "yes"`, f + `line 13: transitions.reason_required: json: cannot unmarshal`},
		{"unknown act", `"act": "decide"`, `"act": "judge"`, f + `transitions[4].act: unknown act kind "judge"`},
		{"id is not the file name", `"id": "criminal"`, `"id": "crminal"`, f + `id: "crminal", want the file name "criminal"`},
		{"return without reason", `"reason_required": true`, `"reason_required": false`, f + `transitions[2].reason_required: a return must require a reason`},
		{"transfer without receiver", `"receiver": "court",`, ``, f + `transitions[1].receiver: a transfer needs a known receiving agency kind, got ""`},
		{"receiver on a non-transfer", `"act": "decide"`, `"act": "decide", "receiver": "court"`, f + `transitions[4].receiver: only a transfer has a receiver`},
		{"terminal stage left", `"from": ["trial"]`, `"from": ["trial", "done"]`, f + `transitions[4].from[1]: stage "done" is terminal: only a "reopen" act may leave it, not "decide"`},
		{"approval level", `"level": "same"}]`, `"level": "county"}]`, f + `transitions[1].approvals[0].level: unknown level "county"`},
		{"approval by committee", `"approvals": [{"agency": "police"`, `"approvals": [{"agency": "committee"`, f + `transitions[1].approvals[0].agency: the committee may not approve case decisions`},
		{"case number format", `{code}{serial}号`, `{code}号`, f + `case_numbers[0].format: "({year}){court}{code}号" lacks {serial}`},
		{"case number stage", `"stage": "trial", "code"`, `"stage": "trail", "code"`, f + `case_numbers[0].stage: unknown stage "trail"`},
		{"evidence stage", `"act": "accept",`, `"act": "accept", "evidence": "verdict",`, f + `transitions[3].evidence: unknown evidence stage "verdict"`},
		{"during outside suspect machine", `"act": "accept",`, `"act": "accept", "during": ["trial"],`, f + `transitions[3].during: only suspect transitions have "during"`},
		{"occurrences beyond max_count", `"act": "accept",`, `"act": "accept", "max_count": 1, "occurrences": [{}, {}],`, f + `transitions[3].occurrences: transition "t3" has 2 occurrences but max_count 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := loadFixture(t, tt.old, tt.new)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadProcedures(fixture with %s → %s) error =\n%v\nwant it to contain\n%s", tt.old, tt.new, err, tt.want)
			}
		})
	}
}

func TestLoadClocksErrors(t *testing.T) {
	const f = "clocks.json: "
	tests := []struct {
		name, old, new, want string
	}{
		{"bad row ID", `"id": "CR-DET-02", "owner"`, `"id": "CR-DET-2", "owner"`, f + `rows[0].id: row ID "CR-DET-2": want e.g. CR-DET-02`},
		{"clock outside its row", `"clocks": [{"id": "CR-DET-02"`, `"clocks": [{"id": "CR-DET-03"`, f + `rows[0].clocks[0].id: clock ID "CR-DET-03": want the row ID "CR-DET-02"`},
		{"bad length", `"length": "3d"`, `"length": "3days"`, `clocks.json: line 3: length: bad period "3days"`},
		{"unknown custody", `"custody": "always"`, `"custody": "sometimes"`, f + `rows[0].clocks[0].custody: clock CR-DET-02: unknown value "sometimes"`},
		{"unknown agency", `"agency": "police",`, `"agency": "army",`, f + `rows[0].clocks[0].agency: clock CR-DET-02: unknown agency kind "army"`},
		{"extension unit", `"length": "4d"`, `"length": "4h"`, f + `rows[0].clocks[0].extensions[0].length: clock CR-DET-02: extension special length 4h: want the clock's unit (3d)`},
		{"extension mode", `"mode": "add"`, `"mode": "plus"`, f + `rows[0].clocks[0].extensions[0].mode: clock CR-DET-02: extension special: unknown mode "plus"`},
		{"extension requires unknown", `"mode": "add",`, `"mode": "add", "requires": ["first"],`, f + `rows[0].clocks[0].extensions[0].requires[0]: clock CR-DET-02: unknown extension "first"`},
		{"no approval, no condition", `"condition": "special",
      "approval": {"agency": "police", "role": "leader", "level": "same"},`, `"condition": "", "approval": null,`,
			f + `rows[0].clocks[0].extensions[0].condition: clock CR-DET-02: extension special has no approval, so it needs a condition`},
		{"approval role", `"role": "leader"`, `"role": "sysadmin"`, f + `rows[0].clocks[0].extensions[0].approval.role: role "sysadmin" may not approve case acts`},
		{"before clock with extension", `"custody": "always",`, `"direction": "before",`, f + `rows[0].clocks[0].direction: clock CR-DET-02: a "before" clock has no extensions, pauses, restarts or custody`},
		{"unknown field", `"basis": "CPL 91",`, `"basis": "CPL 91", "article": 91,`, `json: unknown field "article"`},
		{"duplicate row", `]}]}`, `]}]}, {"id": "CR-DET-02", "owner": "x", "trigger": "x", "source": "x", "section": "3.4", "clocks": []}`, f + `rows[1].id: duplicate row "CR-DET-02"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(fixtureClocks, tt.old) {
				t.Fatalf("fixture lacks %q", tt.old)
			}
			data := strings.Replace(fixtureClocks, tt.old, tt.new, 1)
			if tt.name == "duplicate row" {
				data = strings.TrimSuffix(fixtureClocks, "]}") + `, {"id": "CR-DET-02", "owner": "x", "trigger": "x", "source": "x", "section": "3.4", "clocks": []}]}`
			}
			_, err := LoadClocks(fstest.MapFS{"clocks.json": {Data: []byte(data)}}, "clocks.json")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadClocks(fixture with %s → %s) error =\n%v\nwant it to contain\n%s", tt.old, tt.new, err, tt.want)
			}
		})
	}
}

func TestCaseNumbers(t *testing.T) {
	tests := []struct {
		division, want string
	}{
		{"150102", "内0102"}, // 新城区 basic court
		{"150100", "内01"},   // Hohhot intermediate court
		{"150000", "内"},     // high court
		{"152921", "内2921"}, // 阿拉善左旗
	}
	for _, tt := range tests {
		if got, err := CourtCode(tt.division); err != nil || got != tt.want {
			t.Errorf("CourtCode(%s) = %q, %v; want %q", tt.division, got, err, tt.want)
		}
	}
	for _, bad := range []string{"1501", "15010x", "990102"} {
		if got, err := CourtCode(bad); err == nil {
			t.Errorf("CourtCode(%s) = %q, nil; want an error", bad, got)
		}
	}
	d := mustLoadShipped(t)
	rule := func(proc, agency, stage string) CaseNumberRule {
		for _, r := range d.Procedures[proc].CaseNumbers {
			if r.Agency == agency && r.Stage == stage {
				return r
			}
		}
		t.Fatalf("%s has no case-number rule for %s at %s", proc, agency, stage)
		return CaseNumberRule{}
	}
	cases := []struct {
		proc, agency, stage string
		in                  CaseNumberInput
		want                string
	}{
		{"criminal", "court", "trial_ordinary", CaseNumberInput{Year: 2026, Division: "150102", Serial: 123}, "(2026)内0102刑初123号"},
		{"criminal", "court", "trial_2nd", CaseNumberInput{Year: 2026, Division: "150100", Serial: 7}, "(2026)内01刑终7号"},
		{"civil", "court", "trial_simple", CaseNumberInput{Year: 2025, Division: "150603", Serial: 88}, "(2025)内0603民初88号"},
		{"civil", "court", "enforcement", CaseNumberInput{Year: 2025, Division: "150603", Serial: 9}, "(2025)内0603执9号"},
		{"enforcement", "court", "enforcement", CaseNumberInput{Year: 2026, Division: "150102", Serial: 1}, "(2026)内0102执1号"},
		{"administrative", "court", "trial_ordinary", CaseNumberInput{Year: 2026, Division: "150100", Serial: 3}, "(2026)内01行初3号"},
		{"criminal", "police", "investigation", CaseNumberInput{Year: 2026, Unit: "呼新", Serial: 12}, "呼新公（刑）立字〔2026〕12号"},
	}
	for _, c := range cases {
		got, err := rule(c.proc, c.agency, c.stage).Format(c.in)
		if err != nil || got != c.want {
			t.Errorf("Format(%s %s %s, %+v) = %q, %v; want %q", c.proc, c.agency, c.stage, c.in, got, err, c.want)
		}
	}
	if _, err := rule("criminal", "police", "investigation").Format(CaseNumberInput{Year: 2026, Serial: 1}); err == nil {
		t.Errorf("Format(police rule without unit name) = nil error, want one")
	}
	if _, err := rule("criminal", "court", "trial_ordinary").Format(CaseNumberInput{Year: 2026, Division: "150102"}); err == nil {
		t.Errorf("Format(serial 0) = nil error, want one")
	}
}

// TestShippedCriminalProcedure checks the rules procedure.md states as limits
// against the shipped data, so that a data edit cannot silently drop them.
func TestShippedCriminalProcedure(t *testing.T) {
	p := mustLoadShipped(t).Procedures["criminal"]
	tr := func(id string) Transition {
		t.Helper()
		x, ok := p.Transition(id)
		if !ok {
			t.Fatalf("criminal has no transition %q", id)
		}
		return x
	}
	// RULE: CPL Art. 175 ¶3 — at most two returns for supplementary investigation.
	returns := 0
	for _, x := range p.Transitions {
		if x.Act == "return" && x.From[0] == "prosecution_review" && strings.HasPrefix(x.To, "supp_investigation") {
			returns += x.MaxCount
			if x.MaxCount == 0 {
				t.Errorf("%s: a return for supplementary investigation without max_count", x.ID)
			}
		}
	}
	if returns != 2 {
		t.Errorf("returns for supplementary investigation allowed = %d, want 2", returns)
	}
	if got := tr("postpone_for_supplementary").MaxCount; got != 2 {
		t.Errorf("postpone_for_supplementary max_count = %d, want 2 (SPC-CI Art. 274)", got)
	}
	if got := tr("remand").MaxCount; got != 1 {
		t.Errorf("remand max_count = %d, want 1 (CPL Art. 236)", got)
	}
	// RULE: DESIGN invariant 2 — arrest is approved by the procuratorate, never by the police who asked.
	ap := tr("approve_arrest")
	if ap.MayPerform("police", "leader") || !ap.MayPerform("procuratorate", "officer") {
		t.Errorf("approve_arrest: police may perform = %v, procuratorate officer = %v; want false, true",
			ap.MayPerform("police", "leader"), ap.MayPerform("procuratorate", "officer"))
	}
	// Cross-agency approval: special withdrawal needs the SPP (CPL Art. 182).
	ws := tr("withdraw_special")
	found := false
	for _, a := range ws.Approvals {
		found = found || (a.Agency == "procuratorate" && a.Level == "supreme")
	}
	if !found {
		t.Errorf("withdraw_special approvals = %+v, want one by the supreme procuratorate", ws.Approvals)
	}
	if got := tr("return_supplementary").ClocksFor(1).Start; len(got) != 1 || got[0] != "CR-SUPP-01" {
		t.Errorf("return_supplementary.ClocksFor(1).Start = %v, want [CR-SUPP-01]", got)
	}
	if got := len(p.From("prosecution_review")); got < 4 {
		t.Errorf("From(prosecution_review) has %d transitions, want at least 4", got)
	}
	if s, ok := p.Stage("arrested"); !ok || s.NameZH != "逮捕" {
		t.Errorf("Stage(arrested) = %+v, %v; want the suspect stage 逮捕", s, ok)
	}
	for _, x := range p.Transitions {
		if x.Act == "transfer" && x.Receiver == "" {
			t.Errorf("%s: transfer without receiver", x.ID)
		}
	}
}
