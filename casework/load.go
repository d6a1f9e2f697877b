package casework

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Domain is everything this layer loads from configs/: clocks, calendar,
// procedures and evidence checklists, validated against each other.
type Domain struct {
	Clocks     *ClockTable
	Calendar   *Calendar
	Procedures map[string]*Procedure // by ID: criminal, civil, …
	Checklists map[string]*Checklist // by ID: theft, …
}

// Load reads root/clocks.json, root/holidays.csv, root/procedures/*.json and
// root/evidence/*.json from fsys. Pass os.DirFS(".") and "configs" to get error
// messages that name "configs/procedures/criminal.json"; an embed.FS works the
// same way.
func Load(fsys fs.FS, root string) (*Domain, error) {
	clocks, err := LoadClocks(fsys, path.Join(root, "clocks.json"))
	if err != nil {
		return nil, err
	}
	cal, err := LoadCalendar(fsys, path.Join(root, "holidays.csv"))
	if err != nil {
		return nil, err
	}
	procs, err := LoadProcedures(fsys, path.Join(root, "procedures"), clocks)
	if err != nil {
		return nil, err
	}
	lists, err := LoadChecklists(fsys, path.Join(root, "evidence"))
	if err != nil {
		return nil, err
	}
	return &Domain{Clocks: clocks, Calendar: cal, Procedures: procs, Checklists: lists}, nil
}

// decodeStrict decodes one JSON value from file into v, rejecting unknown
// fields and trailing data. Errors name the file and, where encoding/json knows
// it, the field.
func decodeStrict(fsys fs.FS, file string, v any) error {
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		return fmt.Errorf("casework: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// encoding/json reports where it stopped reading, which is the end of the
		// value; find the line of the offending field or value instead.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s: line %d: %s: %v", file, lineAt(b, int(te.Offset)), jsonPath(te.Field), err)
		}
		if m := quoted.FindString(err.Error()); m != "" {
			if i := bytes.Index(b, []byte(m)); i >= 0 {
				// A bad value (e.g. a period) sits after its key: name the key too.
				if k := keyBefore.FindSubmatch(b[max(0, i-80):i]); k != nil {
					return fmt.Errorf("%s: line %d: %s: %v", file, lineAt(b, i), k[1], err)
				}
				return fmt.Errorf("%s: line %d: %v", file, lineAt(b, i), err)
			}
		}
		return fmt.Errorf("%s: %v", file, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s: trailing data after the JSON value", file)
	}
	return nil
}

var (
	quoted    = regexp.MustCompile(`"[^"]+"`)
	keyBefore = regexp.MustCompile(`"([a-z_]+)"\s*:\s*$`)
)

// lineAt returns the 1-based line of byte offset off in b.
func lineAt(b []byte, off int) int {
	return 1 + bytes.Count(b[:max(0, min(off, len(b)))], []byte("\n"))
}

// jsonPath drops Go's names of embedded structs (e.g. "Machine.") from a field
// path, leaving the JSON names.
func jsonPath(field string) string {
	var keep []string
	for _, part := range strings.Split(field, ".") {
		if part != "" && !(part[0] >= 'A' && part[0] <= 'Z') {
			keep = append(keep, part)
		}
	}
	return strings.Join(keep, ".")
}

// jsonFiles lists dir's *.json files in name order.
func jsonFiles(fsys fs.FS, dir string) ([]string, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("casework: %w", err)
	}
	var files []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			files = append(files, path.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("casework: %s: no .json files", dir)
	}
	return files, nil
}

// A ClockTable is every statutory period, grouped by the deadline-table rows of
// procedure.md. It is immutable after loading.
type ClockTable struct {
	Comment string     `json:"comment,omitempty"`
	Rows    []ClockRow `json:"rows"`

	byID map[string]*ClockSpec
}

// Spec returns the clock with the given ID.
func (t *ClockTable) Spec(id string) (ClockSpec, bool) {
	if t == nil {
		return ClockSpec{}, false
	}
	s, ok := t.byID[id]
	if !ok {
		return ClockSpec{}, false
	}
	return *s, true
}

// Row returns the row with the given ID.
func (t *ClockTable) Row(id string) (ClockRow, bool) {
	for _, r := range t.Rows {
		if r.ID == id {
			return r, true
		}
	}
	return ClockRow{}, false
}

// IDs returns every clock ID, sorted.
func (t *ClockTable) IDs() []string {
	var ids []string
	for id := range t.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

var (
	rowIDPattern   = regexp.MustCompile(`^[A-Z]{2}-[A-Z]+-[0-9]{2}$`)
	clockIDPattern = regexp.MustCompile(`^[A-Z]{2}-[A-Z]+-[0-9]{2}(\.[a-z0-9-]+)?$`)
)

// LoadClocks reads the clock table (configs/clocks.json) and validates it:
// row and clock IDs well formed and unique, every clock in the row whose ID it
// extends, lengths and units consistent, extensions, pauses and restarts well
// formed, approvers known. Each error names the file and the field.
func LoadClocks(fsys fs.FS, file string) (*ClockTable, error) {
	var t ClockTable
	if err := decodeStrict(fsys, file, &t); err != nil {
		return nil, err
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", file, field, fmt.Sprintf(format, args...)))
	}
	t.byID = map[string]*ClockSpec{}
	rows := map[string]bool{}
	for i := range t.Rows {
		r := &t.Rows[i]
		f := fmt.Sprintf("rows[%d]", i)
		if !rowIDPattern.MatchString(r.ID) {
			bad(f+".id", "row ID %q: want e.g. CR-DET-02", r.ID)
		} else if rows[r.ID] {
			bad(f+".id", "duplicate row %q", r.ID)
		}
		rows[r.ID] = true
		if r.Source == "" {
			bad(f+".source", "row %s: empty", r.ID)
		}
		if r.Section == "" {
			bad(f+".section", "row %s: empty", r.ID)
		}
		if len(r.Clocks) == 0 {
			bad(f+".clocks", "row %s has no clocks", r.ID)
		}
		for j := range r.Clocks {
			c := &r.Clocks[j]
			c.Row = r.ID
			if c.Direction == "" {
				c.Direction = After
			}
			if c.Custody == "" {
				c.Custody = CustodyNever
			}
			cf := fmt.Sprintf("%s.clocks[%d]", f, j)
			if !clockIDPattern.MatchString(c.ID) || (c.ID != r.ID && !strings.HasPrefix(c.ID, r.ID+".")) {
				bad(cf+".id", "clock ID %q: want the row ID %q, or it followed by .suffix", c.ID, r.ID)
			} else if t.byID[c.ID] != nil {
				bad(cf+".id", "duplicate clock %q", c.ID)
			} else {
				t.byID[c.ID] = c
			}
		}
	}
	for i := range t.Rows {
		for j := range t.Rows[i].Clocks {
			validateClock(&t, &t.Rows[i].Clocks[j], fmt.Sprintf("rows[%d].clocks[%d]", i, j), bad)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &t, nil
}

func validateClock(t *ClockTable, c *ClockSpec, f string, bad func(field, format string, args ...any)) {
	if c.NameZH == "" || c.NameEN == "" {
		bad(f+".name_zh", "clock %s needs name_zh and name_en", c.ID)
	}
	if !slices.Contains(AgencyKinds, c.Agency) && c.Agency != HandlingAgency {
		bad(f+".agency", "clock %s: unknown agency kind %q", c.ID, c.Agency)
	}
	if c.Trigger == "" {
		bad(f+".trigger", "clock %s: empty", c.ID)
	}
	if c.Basis == "" {
		bad(f+".basis", "clock %s: empty", c.ID)
	}
	if c.Length.IsZero() {
		bad(f+".length", "clock %s: missing", c.ID)
	}
	switch c.Custody {
	case CustodyNever, CustodyAlways, CustodyIfDetained:
	default:
		bad(f+".custody", "clock %s: unknown value %q (want never, always or if_detained)", c.ID, c.Custody)
	}
	switch c.Direction {
	case After:
		if c.Anchor != "" {
			bad(f+".anchor", "clock %s: only a \"before\" clock has an anchor", c.ID)
		}
	case Before:
		// A minimum-notice clock ("≥10 d before the trial") is the latest day to
		// act; moving it for holidays would shorten the notice, so it never rolls
		// and has no extensions, pauses or restarts.
		if c.Length.unit() != "d" {
			bad(f+".length", "clock %s: a \"before\" clock counts days or months", c.ID)
		}
		if len(c.Extends)+len(c.Pauses)+len(c.Restarts) > 0 || c.Custody != CustodyNever {
			bad(f+".direction", "clock %s: a \"before\" clock has no extensions, pauses, restarts or custody", c.ID)
		}
		if _, ok := t.byID[c.Anchor]; c.Anchor != "" && !ok {
			bad(f+".anchor", "clock %s: unknown clock %q", c.ID, c.Anchor)
		}
	default:
		bad(f+".direction", "clock %s: unknown direction %q (want after or before)", c.ID, c.Direction)
	}
	exts := map[string]bool{}
	for _, x := range c.Extends {
		exts[x.ID] = true
	}
	seen := map[string]bool{}
	for k, x := range c.Extends {
		xf := fmt.Sprintf("%s.extensions[%d]", f, k)
		if x.ID == "" {
			bad(xf+".id", "clock %s: empty", c.ID)
		} else if seen[x.ID] {
			bad(xf+".id", "clock %s: duplicate extension %q", c.ID, x.ID)
		}
		seen[x.ID] = true
		if x.Length.IsZero() || x.Length.unit() != c.Length.unit() {
			bad(xf+".length", "clock %s: extension %s length %s: want the clock's unit (%s)", c.ID, x.ID, x.Length, c.Length)
		}
		if !x.Min.IsZero() && (x.Min.unit() != x.Length.unit() || x.Length.less(x.Min)) {
			bad(xf+".min", "clock %s: extension %s: min %s must not exceed length %s", c.ID, x.ID, x.Min, x.Length)
		}
		if x.Mode != "add" && x.Mode != "total" {
			bad(xf+".mode", "clock %s: extension %s: unknown mode %q (want add or total)", c.ID, x.ID, x.Mode)
		}
		if x.Mode == "total" && !c.Length.less(x.Length) {
			bad(xf+".length", "clock %s: extension %s to %s is not longer than %s", c.ID, x.ID, x.Length, c.Length)
		}
		if x.Approval != nil {
			validateApproval(*x.Approval, xf+".approval", bad)
		} else if x.Condition == "" {
			bad(xf+".condition", "clock %s: extension %s has no approval, so it needs a condition", c.ID, x.ID)
		}
		if x.Basis == "" {
			bad(xf+".basis", "clock %s: extension %s: empty", c.ID, x.ID)
		}
		for n, r := range x.Requires {
			if !exts[r] || r == x.ID {
				bad(fmt.Sprintf("%s.requires[%d]", xf, n), "clock %s: unknown extension %q", c.ID, r)
			}
		}
		for n, r := range x.Excludes {
			if !exts[r] || r == x.ID {
				bad(fmt.Sprintf("%s.excludes[%d]", xf, n), "clock %s: unknown extension %q", c.ID, r)
			}
		}
		for name, p := range map[string]Period{"request_lead": x.RequestLead, "request_within": x.RequestWithin, "answer_lead": x.AnswerLead} {
			if !p.IsZero() && p.unit() == "wd" {
				bad(xf+"."+name, "clock %s: a lead time counts calendar days", c.ID)
			}
		}
	}
	ids := map[string]bool{}
	for k, p := range c.Pauses {
		pf := fmt.Sprintf("%s.pauses[%d]", f, k)
		if p.ID == "" || ids[p.ID] {
			bad(pf+".id", "clock %s: empty or duplicate pause %q", c.ID, p.ID)
		}
		ids[p.ID] = true
		if p.Reason == "" || p.Basis == "" {
			bad(pf+".reason", "clock %s: pause %s needs reason and basis", c.ID, p.ID)
		}
	}
	for k, r := range c.Restarts {
		rf := fmt.Sprintf("%s.restarts[%d]", f, k)
		if r.ID == "" || ids[r.ID] {
			bad(rf+".id", "clock %s: empty or duplicate restart %q", c.ID, r.ID)
		}
		ids[r.ID] = true
		if r.Trigger == "" || r.Basis == "" {
			bad(rf+".trigger", "clock %s: restart %s needs trigger and basis", c.ID, r.ID)
		}
	}
}

// LoadProcedures reads every dir/*.json as a Procedure and validates it
// against itself and clocks: IDs unique and equal to the file name, every stage
// known and reachable from the initial stage, every non-terminal stage with a
// way out, every transition performable by a known agency kind and acting role,
// approvals, act kinds and clock IDs known. The result is keyed by procedure ID.
// Each error names the file and the field, e.g.
// `configs/procedures/criminal.json: transitions[4].to: unknown stage "trail"`;
// all errors are returned together.
func LoadProcedures(fsys fs.FS, dir string, clocks *ClockTable) (map[string]*Procedure, error) {
	files, err := jsonFiles(fsys, dir)
	if err != nil {
		return nil, err
	}
	out := map[string]*Procedure{}
	var errs []error
	for _, file := range files {
		p := &Procedure{file: file}
		if err := decodeStrict(fsys, file, p); err != nil {
			errs = append(errs, err)
			continue
		}
		if want := strings.TrimSuffix(path.Base(file), ".json"); p.ID != want {
			errs = append(errs, fmt.Errorf("%s: id: %q, want the file name %q", file, p.ID, want))
		}
		if _, dup := out[p.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: id: duplicate procedure %q", file, p.ID))
		}
		errs = append(errs, p.validate(clocks)...)
		out[p.ID] = p
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// LoadChecklists reads every dir/*.json as an evidence Checklist and validates
// it: IDs unique and equal to the file name, includes known and acyclic, item
// IDs unique within a checklist with its includes, labels present, stages known.
func LoadChecklists(fsys fs.FS, dir string) (map[string]*Checklist, error) {
	files, err := jsonFiles(fsys, dir)
	if err != nil {
		return nil, err
	}
	out := map[string]*Checklist{}
	var errs []error
	for _, file := range files {
		c := &Checklist{file: file}
		if err := decodeStrict(fsys, file, c); err != nil {
			errs = append(errs, err)
			continue
		}
		if want := strings.TrimSuffix(path.Base(file), ".json"); c.ID != want {
			errs = append(errs, fmt.Errorf("%s: id: %q, want the file name %q", file, c.ID, want))
		}
		if _, dup := out[c.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: id: duplicate checklist %q", file, c.ID))
		}
		out[c.ID] = c
	}
	ids := make([]string, 0, len(out))
	for id := range out {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := out[id]
		bad := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s: %s", c.file, field, fmt.Sprintf(format, args...)))
		}
		c.validate(bad)
		items := c.resolve(out, nil, bad)
		seen := map[string]bool{}
		for _, it := range items {
			if seen[it.ID] {
				bad("items", "duplicate item %q (with includes)", it.ID)
			}
			seen[it.ID] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
