package casework

import (
	"fmt"
	"slices"
)

// A Checklist is an evidence standard (基本证据标准) for one charge or cause of
// action, procedure.md §4.3: the items a case file should hold, and at which
// evidence stages each is required. It may include other checklists (the common
// block every criminal case carries). It is immutable after loading.
type Checklist struct {
	ID        string         `json:"id"` // equals the file name without ".json"
	NameZH    string         `json:"name_zh"`
	NameEN    string         `json:"name_en"`
	Procedure string         `json:"procedure"` // the procedure it applies to, e.g. "criminal"
	Basis     string         `json:"basis"`
	Comment   string         `json:"comment,omitempty"`
	Includes  []string       `json:"includes,omitempty"` // other checklists whose items come first
	Items     []EvidenceItem `json:"items"`

	file     string
	resolved []EvidenceItem // own items after included ones, set at load
}

// An EvidenceItem is one piece (or kind) of evidence.
type EvidenceItem struct {
	ID       string `json:"id"` // unique within the resolved checklist
	LabelZH  string `json:"label_zh"`
	LabelEN  string `json:"label_en,omitempty"`
	Group    string `json:"group,omitempty"` // e.g. "act", "amount" — the element it proves
	Required bool   `json:"required"`
	// Stages are the evidence stages from which a required item must be present
	// (an item required for "arrest" is required for the later stages too). Empty
	// with Required means from "prosecution" on.
	Stages []string `json:"stages,omitempty"`
	// Condition says when the item applies at all (e.g. "if the amount is below
	// the threshold"); such items are never reported missing automatically.
	Condition string `json:"condition,omitempty"`
}

// File returns the file the checklist was loaded from.
func (c *Checklist) File() string { return c.file }

// All returns every item, included ones first.
func (c *Checklist) All() []EvidenceItem { return append([]EvidenceItem(nil), c.resolved...) }

// RequiredAt returns the items that must be present at evidence stage (one of
// EvidenceStages): required, unconditional items whose first stage is at or
// before it.
func (c *Checklist) RequiredAt(stage string) []EvidenceItem {
	at := slices.Index(EvidenceStages, stage)
	var out []EvidenceItem
	for _, it := range c.resolved {
		if !it.Required || it.Condition != "" {
			continue
		}
		from := slices.Index(EvidenceStages, "prosecution")
		if len(it.Stages) > 0 {
			from = len(EvidenceStages)
			for _, s := range it.Stages {
				from = min(from, slices.Index(EvidenceStages, s))
			}
		}
		if from <= at {
			out = append(out, it)
		}
	}
	return out
}

// Missing returns the items required at stage that are not in have (item IDs),
// in checklist order. An unknown stage requires nothing.
func (c *Checklist) Missing(stage string, have map[string]bool) []EvidenceItem {
	if !slices.Contains(EvidenceStages, stage) {
		return nil
	}
	var out []EvidenceItem
	for _, it := range c.RequiredAt(stage) {
		if !have[it.ID] {
			out = append(out, it)
		}
	}
	return out
}

// resolve sets c.resolved from its includes, which must be resolvable in all;
// it reports unknown includes, cycles and duplicate item IDs.
func (c *Checklist) resolve(all map[string]*Checklist, path []string, bad func(field, format string, args ...any)) []EvidenceItem {
	if c.resolved != nil {
		return c.resolved
	}
	if slices.Contains(path, c.ID) {
		bad("includes", "include cycle %v", append(path, c.ID))
		return nil
	}
	var items []EvidenceItem
	for i, inc := range c.Includes {
		o, ok := all[inc]
		if !ok {
			bad(fmt.Sprintf("includes[%d]", i), "unknown checklist %q", inc)
			continue
		}
		items = append(items, o.resolve(all, append(path, c.ID), bad)...)
	}
	items = append(items, c.Items...)
	c.resolved = items
	return items
}

func (c *Checklist) validate(bad func(field, format string, args ...any)) {
	if c.NameZH == "" {
		bad("name_zh", "empty")
	}
	if c.Procedure == "" {
		bad("procedure", "empty")
	}
	if len(c.Items) == 0 {
		bad("items", "a checklist needs items")
	}
	for i, it := range c.Items {
		f := fmt.Sprintf("items[%d]", i)
		if it.ID == "" {
			bad(f+".id", "empty")
		}
		if it.LabelZH == "" {
			bad(f+".label_zh", "empty")
		}
		for j, s := range it.Stages {
			if !slices.Contains(EvidenceStages, s) {
				bad(fmt.Sprintf("%s.stages[%d]", f, j), "unknown evidence stage %q", s)
			}
		}
	}
}
