package acl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// A DemoAccount is a user SeedDemo created, with the password it was given. The
// password exists nowhere else: print it once.
type DemoAccount struct {
	Username string
	Password string
	Name     string
	Unit     UnitID
	Roles    []Role
}

// demoSpec is the file SeedDemo reads (configs/demo.json).
type demoSpec struct {
	Doc     string                  `json:"doc"`
	Regions string                  `json:"regions"` // the division list to import when a place is missing
	Places  []demoPlace             `json:"places"`
	Units   []demoUnit              `json:"units"`
	Staff   map[string]map[Role]int `json:"staff"` // kind (or "default") → role → count
	Extra   []struct {
		Unit  UnitID       `json:"unit"`
		Roles map[Role]int `json:"roles"`
	} `json:"extra"`
}

type demoPlace struct {
	Region RegionCode `json:"region"`
	Kinds  []string   `json:"kinds"` // unit kinds, or "*" for every kind
}

type demoUnit struct {
	ID             UnitID     `json:"id"`
	Kind           UnitKind   `json:"kind"`
	Region         RegionCode `json:"region"`
	Name           string     `json:"name"`
	Short          string     `json:"short"` // the name users' display names start with
	NonTerritorial bool       `json:"non_territorial"`
}

// maxDemoCount bounds the users of one role per unit a demo file may ask for.
const maxDemoCount = 20

// SeedDemo creates the demo directory that the file name in fsys describes
// (configs/demo.json): the regions it needs (imported from the division list it
// names when missing), the units of its places and its own units, and users of
// each role per unit with passwords made by gen (the Directory's generator when
// nil). It is idempotent: units and users that exist are left as they are, and
// only the accounts created by this call are returned, so their passwords are
// shown once. Every unit and user is created through CreateUnit and CreateUser
// as the subject in ctx — `caseroomd admin demo` runs it as ConsoleSubject —
// so each is checked and audited like any other. Errors in the file name it and
// the field.
func (d *Directory) SeedDemo(ctx context.Context, fsys fs.FS, name string, gen func() (string, error)) ([]DemoAccount, error) {
	if _, err := subject(ctx); err != nil {
		return nil, err
	}
	if gen == nil {
		gen = d.generate
	}
	spec, err := d.loadDemo(fsys, name)
	if err != nil {
		return nil, err
	}
	regions, err := d.demoRegions(ctx, fsys, name, spec)
	if err != nil {
		return nil, err
	}
	byCode := make(map[RegionCode]Region, len(regions))
	for _, r := range regions {
		byCode[r.Code] = r
	}

	type seeded struct {
		unit  Unit
		short string
	}
	var units []seeded
	for i, p := range spec.Places {
		r, ok := byCode[p.Region]
		if !ok {
			return nil, fmt.Errorf("%s: places[%d].region: unknown region %s", name, i, p.Region)
		}
		kinds, err := d.placeKinds(p.Kinds)
		if err != nil {
			return nil, fmt.Errorf("%s: places[%d].kinds: %w", name, i, err)
		}
		for _, k := range kinds {
			full, short := demoUnitName(k, r, byCode[r.Parent])
			u := Unit{ID: UnitID(string(r.Code) + "-" + string(k.ID)), Kind: k.ID, Region: r.Code, Name: full}
			units = append(units, seeded{u, short})
		}
	}
	for i, du := range spec.Units {
		if _, ok := byCode[du.Region]; !ok {
			return nil, fmt.Errorf("%s: units[%d].region: unknown region %s", name, i, du.Region)
		}
		if du.ID == "" || du.Name == "" || du.Short == "" {
			return nil, fmt.Errorf("%s: units[%d]: id, name and short are required", name, i)
		}
		units = append(units, seeded{Unit{ID: du.ID, Kind: du.Kind, Region: du.Region, Name: du.Name, NonTerritorial: du.NonTerritorial}, du.Short})
	}

	shortOf := map[UnitID]string{}
	for _, s := range units {
		if _, dup := shortOf[s.unit.ID]; dup {
			return nil, fmt.Errorf("%s: unit %s is listed twice", name, s.unit.ID)
		}
		shortOf[s.unit.ID] = s.short
		_, err := d.store.Unit(ctx, s.unit.ID)
		if err == nil {
			continue // seeded before
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("acl: seed demo: unit %s: %w", s.unit.ID, err)
		}
		if _, err := d.CreateUnit(ctx, s.unit); err != nil {
			return nil, fmt.Errorf("acl: seed demo: %w", err)
		}
	}

	type want struct {
		unit Unit
		role Role
		n    int
	}
	var wants []want
	for _, s := range units {
		counts, ok := spec.Staff[string(s.unit.Kind)]
		if !ok {
			counts = spec.Staff["default"]
		}
		for _, role := range Roles {
			for n := 1; n <= counts[role]; n++ {
				wants = append(wants, want{s.unit, role, n})
			}
		}
	}
	for i, x := range spec.Extra {
		u, err := d.store.Unit(ctx, x.Unit)
		if err != nil {
			return nil, fmt.Errorf("%s: extra[%d].unit: %s: %w", name, i, x.Unit, err)
		}
		for _, role := range Roles {
			for n := 1; n <= x.Roles[role]; n++ {
				wants = append(wants, want{u, role, n})
			}
		}
	}

	var out []DemoAccount
	for _, w := range wants {
		username := demoUsername(w.unit, w.role, w.n)
		_, err := d.store.User(ctx, UserID(username))
		if err == nil {
			continue // seeded before: its password was shown then
		}
		if !errors.Is(err, ErrNotFound) {
			return out, fmt.Errorf("acl: seed demo: user %s: %w", username, err)
		}
		password, err := gen()
		if err != nil {
			return out, fmt.Errorf("acl: seed demo: generate password: %w", err)
		}
		short := shortOf[w.unit.ID]
		if short == "" {
			short = w.unit.Name
		}
		nu := NewUser{Username: username, Name: fmt.Sprintf("%s %s%d", short, roleLabel(w.unit.Kind, w.role), w.n),
			Unit: w.unit.ID, Roles: []Role{w.role}, Password: password}
		u, _, err := d.CreateUser(ctx, nu)
		if err != nil {
			return out, fmt.Errorf("acl: seed demo: %w", err)
		}
		out = append(out, DemoAccount{Username: u.Username, Password: password, Name: u.Name, Unit: u.Unit, Roles: u.Roles})
	}
	d.log.InfoContext(ctx, "demo directory seeded", "units", len(units), "users", len(wants), "new_users", len(out))
	return out, nil
}

// loadDemo reads and checks the demo file.
func (d *Directory) loadDemo(fsys fs.FS, name string) (demoSpec, error) {
	var spec demoSpec
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return spec, fmt.Errorf("%s: %w", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return spec, fmt.Errorf("%s: %w", name, err)
	}
	if len(spec.Places) == 0 && len(spec.Units) == 0 {
		return spec, fmt.Errorf("%s: places: nothing to seed", name)
	}
	for i, p := range spec.Places {
		if _, err := d.placeKinds(p.Kinds); err != nil {
			return spec, fmt.Errorf("%s: places[%d].kinds: %w", name, i, err)
		}
	}
	for i, u := range spec.Units {
		if _, ok := d.Kind(u.Kind); !ok {
			return spec, fmt.Errorf("%s: units[%d].kind: unknown unit kind %q", name, i, u.Kind)
		}
	}
	checkCounts := func(at string, counts map[Role]int) error {
		for r, n := range counts {
			if !ValidRole(r) {
				return fmt.Errorf("%s: %s: unknown role %q", name, at, r)
			}
			if n < 0 || n > maxDemoCount {
				return fmt.Errorf("%s: %s.%s: %d is not a count from 0 to %d", name, at, r, n, maxDemoCount)
			}
		}
		return nil
	}
	for k, counts := range spec.Staff {
		if _, ok := d.Kind(UnitKind(k)); !ok && k != "default" {
			return spec, fmt.Errorf("%s: staff.%s: unknown unit kind", name, k)
		}
		if err := checkCounts("staff."+k, counts); err != nil {
			return spec, err
		}
	}
	for i, x := range spec.Extra {
		if err := checkCounts(fmt.Sprintf("extra[%d].roles", i), x.Roles); err != nil {
			return spec, err
		}
	}
	return spec, nil
}

// demoRegions returns the stored regions, importing the division list the spec
// names first when a region the spec needs is not stored.
func (d *Directory) demoRegions(ctx context.Context, fsys fs.FS, name string, spec demoSpec) ([]Region, error) {
	stored, err := d.store.Regions(ctx)
	if err != nil {
		return nil, fmt.Errorf("acl: seed demo: %w", err)
	}
	known := func(c RegionCode) bool {
		return slices.ContainsFunc(stored, func(r Region) bool { return r.Code == c })
	}
	missing := ""
	for i, p := range spec.Places {
		if missing == "" && !known(p.Region) {
			missing = fmt.Sprintf("places[%d].region: region %s", i, p.Region)
		}
	}
	for i, u := range spec.Units {
		if missing == "" && !known(u.Region) {
			missing = fmt.Sprintf("units[%d].region: region %s", i, u.Region)
		}
	}
	if missing == "" {
		return stored, nil
	}
	if spec.Regions == "" {
		return nil, fmt.Errorf("%s: %s is not in the directory, and no division list is named to import", name, missing)
	}
	rs, err := LoadRegions(fsys, spec.Regions)
	if err != nil {
		return nil, err
	}
	if err := d.ImportRegions(ctx, rs); err != nil {
		return nil, fmt.Errorf("acl: seed demo: import %s: %w", spec.Regions, err)
	}
	return d.store.Regions(ctx)
}

// placeKinds resolves a place's kinds list; "*" is every kind.
func (d *Directory) placeKinds(names []string) ([]KindInfo, error) {
	if len(names) == 0 {
		return nil, errors.New("no unit kinds")
	}
	var out []KindInfo
	for _, n := range names {
		if n == "*" {
			return d.Kinds(), nil
		}
		k, ok := d.Kind(UnitKind(n))
		if !ok {
			return nil, fmt.Errorf("unknown unit kind %q", n)
		}
		out = append(out, k)
	}
	return out, nil
}

// demoUsername is <unit tag>.<region>.<role><n>, the tag being the unit id
// without its region prefix: police.150102.officer1, railway-police.150100.leader1.
func demoUsername(u Unit, role Role, n int) string {
	tag := strings.TrimPrefix(string(u.ID), string(u.Region)+"-")
	return fmt.Sprintf("%s.%s.%s%d", tag, u.Region, role, n)
}

// demoUnitName returns the Chinese name of the unit of kind k at region r (whose
// parent is parent) and the short name its users' display names start with.
// Districts (区) of a city are named with the city, as their organs are
// (呼和浩特市新城区人民检察院, 呼和浩特市公安局新城区分局); banners and counties
// stand on their own (土默特左旗人民法院).
func demoUnitName(k KindInfo, r, parent Region) (full, short string) {
	place, own := r.Name, r.Name
	if r.Level == LevelCounty && r.Kind == "区" {
		place = parent.Name + r.Name
	}
	if r.Level == LevelProvince {
		own = "自治区"
	}
	switch k.ID {
	case Committee:
		if r.Level == LevelProvince {
			return "中共" + r.Name + "委员会政法委员会", own + "政法委"
		}
		return "中共" + r.Name + "委政法委员会", own + "政法委"
	case "police":
		switch {
		case r.Level == LevelProvince:
			return r.Name + "公安厅", own + "公安厅"
		case r.Level == LevelCounty && r.Kind == "区":
			return parent.Name + "公安局" + r.Name + "分局", own + "公安分局"
		}
		return r.Name + "公安局", own + "公安局"
	case "court":
		switch r.Level {
		case LevelProvince:
			return r.Name + "高级人民法院", own + "高院"
		case LevelLeague:
			return r.Name + "中级人民法院", own + "中院"
		}
		return place + "人民法院", own + "法院"
	case "procuratorate":
		return place + "人民检察院", own + "检察院"
	case "justice":
		if r.Level == LevelProvince {
			return r.Name + "司法厅", own + "司法厅"
		}
		return place + "司法局", own + "司法局"
	case "supervision":
		return place + "监察委员会", own + "监委"
	case "detention":
		return place + "看守所", own + "看守所"
	case "prison":
		return place + "监狱", own + "监狱"
	case "legal_aid":
		return place + "法律援助中心", own + "法援中心"
	case "state_security":
		if r.Level == LevelProvince {
			return r.Name + "国家安全厅", own + "国安厅"
		}
		return place + "国家安全局", own + "国安局"
	}
	return place + k.ZH, own + k.ZH
}

// roleLabel is how a demo display name calls a user of role at a unit of kind.
func roleLabel(kind UnitKind, role Role) string {
	switch role {
	case Officer:
		switch kind {
		case "police", "detention", "state_security":
			return "民警"
		case "procuratorate":
			return "检察官"
		case "court":
			return "法官"
		case "supervision":
			return "监察员"
		case "prison":
			return "狱警"
		}
		return "承办人"
	case Leader:
		return "负责人"
	case Clerk:
		if kind == "court" || kind == "procuratorate" {
			return "书记员"
		}
		return "内勤"
	case Supervisor:
		return "督查员"
	case Auditor:
		return "审计员"
	case SecAdmin:
		return "安全管理员"
	case SysAdmin:
		return "系统管理员"
	}
	return string(role)
}
