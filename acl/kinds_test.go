package acl_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"caseroom/acl"
	"caseroom/configs"
)

func TestShippedRegionsAre12LeaguesAnd103Counties(t *testing.T) {
	rs, err := acl.LoadRegions(configs.FS, "regions.csv")
	if err != nil {
		t.Fatalf("LoadRegions(shipped) = %v", err)
	}
	levels := map[int]int{}
	for _, r := range rs {
		levels[r.Level]++
	}
	if levels[acl.LevelProvince] != 1 || levels[acl.LevelLeague] != 12 || levels[acl.LevelCounty] != 103 {
		t.Errorf("levels = %v, want 1 root, 12 leagues, 103 counties", levels)
	}
	tree := acl.NewRegions(rs)
	if !tree.Covers("150100", "150102") || !tree.Covers(acl.RootRegion, "150102") || tree.Covers("150200", "150102") || tree.Covers("150102", "150100") {
		t.Error("Covers does not follow the tree")
	}
}

func TestLoadRegionsNamesTheBadLine(t *testing.T) {
	head := "league_code,league_zh,league_pinyin,county_code,county_zh,county_pinyin,kind\n"
	tests := []struct{ body, want string }{
		{"150100,呼和浩特市,H,150202,新城区,X,区\n", "line 2: county_code"},
		{"15010,呼和浩特市,H,150102,新城区,X,区\n", "line 2: league_code"},
		{"150100,呼和浩特市,H,150102,新城区,X,区\n150100,呼和浩特市,H,150102,新城区,X,区\n", "line 3: county_code: duplicate"},
	}
	for _, tt := range tests {
		_, err := acl.LoadRegions(fstest.MapFS{"r.csv": {Data: []byte(head + tt.body)}}, "r.csv")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadRegions(%q) = %v, want an error containing %q", tt.body, err, tt.want)
		}
	}
}

func TestShippedUnitKindsAndPolicyLoad(t *testing.T) {
	kinds, err := acl.LoadUnitKinds(configs.FS, "unit-kinds.json")
	if err != nil {
		t.Fatalf("LoadUnitKinds = %v", err)
	}
	for _, want := range []acl.UnitKind{"committee", "police", "procuratorate", "court", "justice", "supervision", "detention", "prison", "legal_aid"} {
		found := false
		for _, k := range kinds {
			found = found || k.ID == want
		}
		if !found {
			t.Errorf("unit kinds lack %q", want)
		}
	}
	if _, err := acl.LoadPolicy(configs.FS, "policy.json", acl.KindIDs(kinds)); err != nil {
		t.Errorf("LoadPolicy(shipped) = %v", err)
	}
}

func TestLoadPolicyNamesTheBadField(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"rules":[{"id":"a","actions":["room.fly"],"reason":"r"}]}`, `rules[0].actions[0]: unknown action "room.fly"`},
		{`{"rules":[{"id":"a","actions":["room.read"],"roles":["king"],"reason":"r"}]}`, `rules[0].roles[0]: unknown role "king"`},
		{`{"rules":[{"id":"a","actions":["room.read"],"unit_kinds":["navy"],"reason":"r"}]}`, `rules[0].unit_kinds[0]: unknown unit kind "navy"`},
		{`{"rules":[{"id":"a","actions":["room.read"],"reason":"r"},{"id":"a","actions":["room.read"],"reason":"r"}]}`, `rules[1].id: duplicate`},
		{`{"rules":[{"id":"a","actions":["room.read"]}]}`, `rules[0].reason: missing`},
		{`{"rules":[{"id":"a","actions":["room.read"],"reason":"r","colour":"red"}]}`, `unknown field "colour"`},
		{`{"rules":[{"id":"a","actions":["room.read"],"relation":"cousin","reason":"r"}]}`, `rules[0].relation: unknown relation "cousin"`},
	}
	for _, tt := range tests {
		_, err := acl.LoadPolicy(fstest.MapFS{"p.json": {Data: []byte(tt.body)}}, "p.json", []acl.UnitKind{"committee", "police"})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "p.json: ") {
			t.Errorf("LoadPolicy(%s) = %v, want an error naming p.json and containing %q", tt.body, err, tt.want)
		}
	}
}
