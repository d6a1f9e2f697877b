// Package storetest checks a casework.Store against its contract. Each backend
// (casework/sqlite, casework/postgres) runs Run on fresh stores.
package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"caseroom/acl"
	"caseroom/acl/audit"
	"caseroom/casework"
	"caseroom/chat"
)

// A Harness is what the suite needs of a backend.
type Harness struct {
	// New returns a fresh, migrated store.
	New func(t *testing.T) casework.Store
	// Exec runs a statement on s past the store and returns its error; the
	// statements the suite sends are the same in every dialect.
	Exec func(t *testing.T, s casework.Store, query string) error
	// Tamper rewrites the JSON data of register entry seq past every protection
	// the database has, as an attacker with the database's owner role could.
	Tamper func(t *testing.T, s casework.Store, seq int64, data string)
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("PutCaseRoundTrips", func(t *testing.T) { putRoundTrips(t, h) })
	t.Run("PutCaseNeverGoesBack", func(t *testing.T) { neverGoesBack(t, h) })
	t.Run("MissingCaseIsNotFound", func(t *testing.T) { missing(t, h) })
	t.Run("CasesFilters", func(t *testing.T) { filters(t, h) })
	t.Run("CasesOrderAndLimit", func(t *testing.T) { orderAndLimit(t, h) })
	t.Run("ConcurrentSerialsAreDistinct", func(t *testing.T) { serials(t, h) })
	t.Run("InterventionsChainAndDedupe", func(t *testing.T) { interventions(t, h) })
	t.Run("ConcurrentInterventionsFormOneChain", func(t *testing.T) { concurrentInterventions(t, h) })
	t.Run("RegisterIsAppendOnly", func(t *testing.T) { appendOnly(t, h) })
	t.Run("TamperedRegisterFailsVerification", func(t *testing.T) { tampered(t, h) })
}

var t0 = time.Date(2026, time.March, 2, 9, 30, 0, 123456000, time.UTC)

func projection(id string, mod func(*casework.Projection)) casework.Projection {
	p := casework.Projection{
		ID: casework.CaseID(id), Room: chat.RoomID(id), Procedure: "criminal", Title: "张某盗窃案", Cause: "theft",
		Stage: "investigation", Holder: "150102-police", Region: "150102", Committee: "150102-committee",
		Units: []acl.UnitID{"150102-police"}, Handlers: []acl.UserID{"u_p1"}, Numbers: []string{"新城公（刑）立字〔2026〕1号"},
		Parties: []casework.Party{{ID: "s1", Role: "suspect", Name: "张三", IDNumber: "150102199001011234"}},
		Open:    []casework.OpenItem{}, Head: 5, Scanned: 5, OpenedAt: t0, UpdatedAt: t0,
	}
	if mod != nil {
		mod(&p)
	}
	return p
}

func mustPut(t *testing.T, s casework.Store, p casework.Projection) {
	t.Helper()
	if err := s.PutCase(t.Context(), p); err != nil {
		t.Fatalf("PutCase(%s) = %v", p.ID, err)
	}
}

func putRoundTrips(t *testing.T, h Harness) {
	s := h.New(t)
	p := projection("c1", func(p *casework.Projection) {
		p.PendingTo = "150102-procuratorate"
		p.NextDue = t0.Add(72 * time.Hour)
		p.Open = []casework.OpenItem{{Kind: "transfer", Seq: 9, Unit: "150102-procuratorate", From: "150102-police", By: "u_p1", Transition: "transfer_for_prosecution"}}
	})
	mustPut(t, s, p)
	got, err := s.Case(t.Context(), "c1")
	if err != nil {
		t.Fatalf("Case(c1) = %v", err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("Case(c1) after PutCase:\n got %+v\nwant %+v", got, p)
	}
	p2 := projection("c1", func(p *casework.Projection) {
		p.Head, p.Stage, p.Units = 7, "prosecution_review", []acl.UnitID{"150102-police", "150102-procuratorate"}
	})
	mustPut(t, s, p2)
	got, _ = s.Case(t.Context(), "c1")
	if !reflect.DeepEqual(got, p2) {
		t.Errorf("Case(c1) after a newer PutCase:\n got %+v\nwant %+v", got, p2)
	}
	ps, err := s.Cases(t.Context(), casework.Filter{Unit: "150102-procuratorate"})
	if err != nil || len(ps) != 1 {
		t.Errorf("Cases(unit procuratorate) = %d cases, %v; want 1 (the unit index follows the projection)", len(ps), err)
	}
}

func neverGoesBack(t *testing.T, h Harness) {
	s := h.New(t)
	newer := projection("c1", func(p *casework.Projection) { p.Head, p.Stage = 9, "prosecution_intake" })
	mustPut(t, s, newer)
	mustPut(t, s, projection("c1", nil)) // head 5: a slow writer
	got, _ := s.Case(t.Context(), "c1")
	if got.Head != 9 || got.Stage != "prosecution_intake" {
		t.Errorf("after PutCase(head 9) then PutCase(head 5): stored head %d stage %s, want 9 prosecution_intake", got.Head, got.Stage)
	}
}

func missing(t *testing.T, h Harness) {
	s := h.New(t)
	if _, err := s.Case(t.Context(), "nope"); !errors.Is(err, casework.ErrCaseNotFound) {
		t.Errorf("Case(nope) = %v, want ErrCaseNotFound", err)
	}
	ps, err := s.Cases(t.Context(), casework.Filter{})
	if err != nil || len(ps) != 0 {
		t.Errorf("Cases() on an empty store = %v, %v; want none", ps, err)
	}
}

func ids(ps []casework.Projection) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, string(p.ID))
	}
	slices.Sort(out)
	return out
}

func filters(t *testing.T, h Harness) {
	s := h.New(t)
	closed := true
	mustPut(t, s, projection("a", nil))
	mustPut(t, s, projection("b", func(p *casework.Projection) {
		p.Procedure, p.Stage, p.Holder, p.Region = "civil", "trial_simple", "150105-court", "150105"
		p.Units, p.Handlers, p.Numbers = []acl.UnitID{"150105-court"}, []acl.UserID{"u_c1"}, []string{"(2026)内0105民初7号"}
		p.NextDue = t0.Add(time.Hour)
	}))
	mustPut(t, s, projection("c", func(p *casework.Projection) {
		p.Stage, p.Closed, p.Region = "closed", true, "150203"
		p.Units, p.Handlers, p.Numbers = []acl.UnitID{"150203-police", "150203-court"}, []acl.UserID{"u_p1", "u_c2"}, []string{"(2026)内0203刑初3号"}
		p.NextDue = t0.Add(-time.Hour)
	}))
	for _, tt := range []struct {
		name string
		f    casework.Filter
		want []string
	}{
		{"all", casework.Filter{}, []string{"a", "b", "c"}},
		{"handler", casework.Filter{Handler: "u_p1"}, []string{"a", "c"}},
		{"unit", casework.Filter{Unit: "150203-court"}, []string{"c"}},
		{"regions", casework.Filter{Regions: []acl.RegionCode{"150102", "150105"}}, []string{"a", "b"}},
		{"stage", casework.Filter{Stage: "trial_simple"}, []string{"b"}},
		{"procedure", casework.Filter{Procedure: "criminal"}, []string{"a", "c"}},
		{"holder", casework.Filter{Holder: "150105-court"}, []string{"b"}},
		{"number exact", casework.Filter{Number: "(2026)内0105民初7号"}, []string{"b"}},
		{"number part", casework.Filter{Number: "刑初"}, []string{"c"}},
		{"number of police", casework.Filter{Number: "立字"}, []string{"a"}},
		{"due before", casework.Filter{DueBefore: t0}, []string{"c"}},
		{"due before, open", casework.Filter{DueBefore: t0.Add(2 * time.Hour), Closed: new(bool)}, []string{"b"}},
		{"closed", casework.Filter{Closed: &closed}, []string{"c"}},
		{"two conditions", casework.Filter{Handler: "u_p1", Procedure: "criminal", Stage: "investigation"}, []string{"a"}},
		{"nothing", casework.Filter{Unit: "150999-court"}, []string{}},
	} {
		ps, err := s.Cases(t.Context(), tt.f)
		if err != nil {
			t.Errorf("Cases(%s) = %v", tt.name, err)
			continue
		}
		if got := ids(ps); !slices.Equal(got, tt.want) {
			t.Errorf("Cases(%s %+v) = %v, want %v", tt.name, tt.f, got, tt.want)
		}
	}
}

func orderAndLimit(t *testing.T, h Harness) {
	s := h.New(t)
	for i := range 5 {
		mustPut(t, s, projection(fmt.Sprintf("c%d", i), func(p *casework.Projection) { p.UpdatedAt = t0.Add(time.Duration(i) * time.Minute) }))
	}
	ps, err := s.Cases(t.Context(), casework.Filter{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, string(p.ID))
	}
	if want := []string{"c4", "c3", "c2"}; !slices.Equal(got, want) {
		t.Errorf("Cases(limit 3) = %v, want the three most recently updated %v", got, want)
	}
}

func serials(t *testing.T, h Harness) {
	s := h.New(t)
	const n = 40
	var mu sync.Mutex
	got := map[int]bool{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			v, err := s.NextSerial(t.Context(), "150102-court", 2026, "刑初")
			if err != nil {
				t.Errorf("NextSerial = %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if got[v] {
				t.Errorf("NextSerial gave %d twice", v)
			}
			got[v] = true
		})
	}
	wg.Wait()
	for i := 1; i <= n; i++ {
		if !got[i] {
			t.Errorf("after %d concurrent NextSerial calls, serial %d was never given (want exactly 1..%d)", n, i, n)
		}
	}
	for _, k := range []struct {
		unit acl.UnitID
		year int
		code string
	}{{"150102-court", 2027, "刑初"}, {"150102-court", 2026, "民初"}, {"150105-court", 2026, "刑初"}} {
		if v, err := s.NextSerial(t.Context(), k.unit, k.year, k.code); err != nil || v != 1 {
			t.Errorf("NextSerial(%s, %d, %s) = %d, %v; want 1 (serials are per unit, year and code)", k.unit, k.year, k.code, v, err)
		}
	}
}

func entry(c string, source chat.Seq, summary string) *casework.Intervention {
	return &casework.Intervention{Case: casework.CaseID(c), SourceSeq: source, Auto: source != 0, At: t0, Recorder: "system",
		Units: []acl.UnitID{"150102-police"}, Region: "150102", Regulation: casework.RegLeader, IntervenorUser: "u_sup",
		IntervenorName: "政法委 督导员", Channel: "in_system", OccurredAt: t0, Summary: summary, Impact: "none"}
}

func interventions(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := t.Context()
	var all []casework.Intervention
	for i, e := range []*casework.Intervention{entry("c1", 7, "请尽快办理"), entry("c2", 3, "关注此案"), entry("c1", 0, "电话过问"), entry("c1", 9, "再次过问")} {
		dup, err := s.AppendIntervention(ctx, e)
		if err != nil || dup {
			t.Fatalf("AppendIntervention(#%d) = %v, %v", i, dup, err)
		}
		if e.Seq != int64(i+1) || len(e.Hash) != 32 {
			t.Errorf("AppendIntervention(#%d): seq %d, hash %x; want seq %d and a SHA-256", i, e.Seq, e.Hash, i+1)
		}
		all = append(all, *e)
	}
	again := entry("c1", 7, "请尽快办理")
	if dup, err := s.AppendIntervention(ctx, again); err != nil || !dup || again.Seq != 0 {
		t.Errorf("AppendIntervention(same case and source seq again) = dup %v, %v, seq %d; want dup true and nothing appended", dup, err, again.Seq)
	}
	got, err := s.Interventions(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, e := range got {
		seqs = append(seqs, e.Seq)
	}
	if !slices.Equal(seqs, []int64{1, 3, 4}) {
		t.Errorf("Interventions(c1) seqs = %v, want [1 3 4]", seqs)
	}
	if len(got) == 3 && !reflect.DeepEqual(got[0], all[0]) {
		t.Errorf("Interventions(c1)[0] =\n %+v\nwant %+v", got[0], all[0])
	}
	if err := casework.VerifyInterventions(ctx, s); err != nil {
		t.Errorf("VerifyInterventions = %v, want nil", err)
	}
	chain, err := s.InterventionChain(ctx, 2, 10)
	if err != nil || len(chain) != 2 || chain[0].Seq != 3 {
		t.Errorf("InterventionChain(after 2) = %d entries, %v; want seqs 3 and 4", len(chain), err)
	}
}

func concurrentInterventions(t *testing.T, h Harness) {
	s := h.New(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := s.AppendIntervention(t.Context(), entry(fmt.Sprintf("c%d", i%3), chat.Seq(i+1), "过问")); err != nil {
				t.Errorf("AppendIntervention = %v", err)
			}
		})
	}
	wg.Wait()
	chain, err := s.InterventionChain(t.Context(), 0, 100)
	if err != nil || len(chain) != 20 {
		t.Fatalf("InterventionChain = %d entries, %v; want 20", len(chain), err)
	}
	if err := casework.VerifyInterventions(t.Context(), s); err != nil {
		t.Errorf("VerifyInterventions after concurrent appends = %v, want one unbroken chain", err)
	}
}

func appendOnly(t *testing.T, h Harness) {
	s := h.New(t)
	if _, err := s.AppendIntervention(t.Context(), entry("c1", 1, "过问")); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE casework_interventions SET case_id = 'c2' WHERE seq = 1`,
		`DELETE FROM casework_interventions WHERE seq = 1`,
	} {
		if err := h.Exec(t, s, q); err == nil {
			t.Errorf("%s succeeded; the register must refuse changes", q)
		}
	}
	if got, _ := s.Interventions(t.Context(), "c1"); len(got) != 1 {
		t.Errorf("the entry is gone after refused changes: %d entries", len(got))
	}
}

func tampered(t *testing.T, h Harness) {
	s := h.New(t)
	for i := range 3 {
		if _, err := s.AppendIntervention(t.Context(), entry("c1", chat.Seq(i+1), "过问")); err != nil {
			t.Fatal(err)
		}
	}
	es, _ := s.Interventions(t.Context(), "c1")
	forged := es[1]
	forged.Summary = "无"
	b := marshal(t, forged)
	h.Tamper(t, s, 2, b)
	err := casework.VerifyInterventions(t.Context(), s)
	var ce *audit.ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 {
		t.Errorf("VerifyInterventions after rewriting entry 2 = %v, want a chain error at seq 2", err)
	}
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
