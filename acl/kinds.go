package acl

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
)

// A KindInfo describes one agency kind of configs/unit-kinds.json.
type KindInfo struct {
	ID UnitKind `json:"id"`
	ZH string   `json:"zh"`
	EN string   `json:"en"`
}

// LoadUnitKinds reads the agency kinds file. The committee kind must be there.
func LoadUnitKinds(fsys fs.FS, name string) ([]KindInfo, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var f struct {
		Doc   string     `json:"doc"`
		Kinds []KindInfo `json:"kinds"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	seen := map[UnitKind]bool{}
	for i, k := range f.Kinds {
		if k.ID == "" || strings.ContainsAny(string(k.ID), " -") {
			return nil, fmt.Errorf("%s: kinds[%d].id: %q is not a valid id (lowercase, underscores)", name, i, k.ID)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("%s: kinds[%d].id: duplicate kind %q", name, i, k.ID)
		}
		if k.ZH == "" || k.EN == "" {
			return nil, fmt.Errorf("%s: kinds[%d]: both zh and en names are required", name, i)
		}
		seen[k.ID] = true
	}
	if !seen[Committee] {
		return nil, fmt.Errorf("%s: kinds: the %q kind is required", name, Committee)
	}
	return f.Kinds, nil
}

// KindIDs returns the ids of kinds.
func KindIDs(kinds []KindInfo) []UnitKind {
	ids := make([]UnitKind, len(kinds))
	for i, k := range kinds {
		ids[i] = k.ID
	}
	return ids
}

// Root of the region tree the division list hangs from.
const (
	RootRegion     RegionCode = "150000"
	RootRegionName            = "内蒙古自治区"
)

// LoadRegions reads the division list (configs/regions.csv: league_code,
// league_zh, league_pinyin, county_code, county_zh, county_pinyin, kind) into
// the tree root → leagues → counties. Errors name the file, line and column.
func LoadRegions(fsys fs.FS, name string) ([]Region, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	want := []string{"league_code", "league_zh", "league_pinyin", "county_code", "county_zh", "county_pinyin", "kind"}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(want, ",") {
		return nil, fmt.Errorf("%s: line 1: header must be %s", name, strings.Join(want, ","))
	}
	out := []Region{{Code: RootRegion, Name: RootRegionName, Pinyin: "Nei Mongol Zizhiqu", Level: LevelProvince, Kind: "自治区"}}
	leagues := map[RegionCode]bool{}
	counties := map[RegionCode]bool{}
	for i, row := range rows[1:] {
		line := i + 2
		lc, cc := RegionCode(row[0]), RegionCode(row[3])
		if !validCode(lc) || !strings.HasSuffix(string(lc), "00") {
			return nil, fmt.Errorf("%s: line %d: league_code: %q is not a 6-digit league code", name, line, lc)
		}
		if !validCode(cc) || cc[:4] != lc[:4] {
			return nil, fmt.Errorf("%s: line %d: county_code: %q is not a county of league %s", name, line, cc, lc)
		}
		if counties[cc] {
			return nil, fmt.Errorf("%s: line %d: county_code: duplicate %s", name, line, cc)
		}
		if row[1] == "" || row[4] == "" {
			return nil, fmt.Errorf("%s: line %d: names must not be empty", name, line)
		}
		if !leagues[lc] {
			leagues[lc] = true
			out = append(out, Region{Code: lc, Parent: RootRegion, Name: row[1], Pinyin: row[2], Level: LevelLeague, Kind: leagueKind(row[1])})
		}
		counties[cc] = true
		out = append(out, Region{Code: cc, Parent: lc, Name: row[4], Pinyin: row[5], Level: LevelCounty, Kind: row[6]})
	}
	return out, nil
}

func validCode(c RegionCode) bool {
	if len(c) != 6 || !strings.HasPrefix(string(c), "15") {
		return false
	}
	for _, r := range c {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func leagueKind(name string) string {
	if strings.HasSuffix(name, "盟") {
		return "盟"
	}
	return "市"
}
