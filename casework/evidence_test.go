package casework

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestShippedChecklists(t *testing.T) {
	d := mustLoadShipped(t)
	for _, id := range []string{"theft", "dangerous-driving", "fraud", "private-loan"} {
		c := d.Checklists[id]
		if len(c.All()) == 0 || c.NameZH == "" {
			t.Errorf("checklist %s is empty", id)
		}
	}
	theft := d.Checklists["theft"]
	if got := theft.All()[0].ID; got != "case-source" {
		t.Errorf("theft.All()[0] = %s, want case-source (the included common block first)", got)
	}
	ids := func(items []EvidenceItem) string {
		var s []string
		for _, it := range items {
			s = append(s, it.ID)
		}
		return strings.Join(s, ",")
	}
	// Arrest needs less than prosecution (CPL Art. 81 vs Art. 176).
	arrest, prosecution := theft.RequiredAt("arrest"), theft.RequiredAt("prosecution")
	if len(arrest) == 0 || len(arrest) >= len(prosecution) {
		t.Errorf("theft RequiredAt(arrest) = %d items, RequiredAt(prosecution) = %d; want 0 < arrest < prosecution", len(arrest), len(prosecution))
	}
	for _, it := range prosecution {
		if !it.Required || it.Condition != "" {
			t.Errorf("theft RequiredAt(prosecution) includes %s (required %v, condition %q)", it.ID, it.Required, it.Condition)
		}
	}
	have := map[string]bool{}
	for _, it := range arrest {
		have[it.ID] = true
	}
	if got := theft.Missing("arrest", have); len(got) != 0 {
		t.Errorf("theft Missing(arrest, all arrest items) = %s, want none", ids(got))
	}
	missing := ids(theft.Missing("prosecution", have))
	if !strings.Contains(missing, "price-determination") || strings.Contains(missing, "victim-statement") {
		t.Errorf("theft Missing(prosecution, arrest items) = %s, want price-determination and not victim-statement", missing)
	}
	if got := theft.Missing("verdict", nil); got != nil {
		t.Errorf("Missing(unknown stage) = %s, want nil", ids(got))
	}
	loan := d.Checklists["private-loan"]
	if got := ids(loan.RequiredAt("filing")); got != "identity,loan-agreement,delivery" {
		t.Errorf("private-loan RequiredAt(filing) = %s, want identity,loan-agreement,delivery", got)
	}
}

func TestLoadChecklistsErrors(t *testing.T) {
	const base = `{"id": "%s", "name_zh": "清单", "name_en": "list", "procedure": "criminal", "basis": "x", %s
  "items": [{"id": "a", "label_zh": "甲", "required": true, "stages": ["arrest"]}]}`
	file := func(id, extra string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(strings.Replace(strings.Replace(base, "%s", id, 1), "%s", extra, 1))}
	}
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"unknown include", fstest.MapFS{"ev/x.json": file("x", `"includes": ["common"],`)}, `ev/x.json: includes[0]: unknown checklist "common"`},
		{"duplicate item through include", fstest.MapFS{"ev/x.json": file("x", `"includes": ["y"],`), "ev/y.json": file("y", "")}, `ev/x.json: items: duplicate item "a" (with includes)`},
		{"include cycle", fstest.MapFS{"ev/x.json": file("x", `"includes": ["y"],`), "ev/y.json": file("y", `"includes": ["x"],`)}, `include cycle`},
		{"unknown stage", fstest.MapFS{"ev/x.json": {Data: []byte(strings.Replace(string(file("x", "").Data), `["arrest"]`, `["verdict"]`, 1))}}, `ev/x.json: items[0].stages[0]: unknown evidence stage "verdict"`},
		{"id is not the file name", fstest.MapFS{"ev/x.json": file("z", "")}, `ev/x.json: id: "z", want the file name "x"`},
		{"unknown field", fstest.MapFS{"ev/x.json": file("x", `"owner": "police",`)}, `ev/x.json: line 1: json: unknown field "owner"`},
		{"empty label", fstest.MapFS{"ev/x.json": {Data: []byte(strings.Replace(string(file("x", "").Data), `"甲"`, `""`, 1))}}, `ev/x.json: items[0].label_zh: empty`},
		{"no files", fstest.MapFS{"ev/readme.txt": {Data: []byte("x")}}, `ev: no .json files`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadChecklists(tt.fsys, "ev")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadChecklists(%s) error = %v, want it to contain %q", tt.name, err, tt.want)
			}
		})
	}
}
