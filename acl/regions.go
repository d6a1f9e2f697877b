package acl

// Regions is the region tree, for jurisdiction checks. The zero value knows no
// regions, so it covers nothing but equal codes.
type Regions struct {
	parent map[RegionCode]RegionCode
}

// NewRegions builds the tree from rs (as the directory stores them).
func NewRegions(rs []Region) *Regions {
	t := &Regions{parent: make(map[RegionCode]RegionCode, len(rs))}
	for _, r := range rs {
		t.parent[r.Code] = r.Parent
	}
	return t
}

// Covers reports whether a jurisdiction at region covers code: code is region
// itself or lies below it. An empty code is covered by nothing.
func (t *Regions) Covers(region, code RegionCode) bool {
	if region == "" || code == "" {
		return false
	}
	for depth := 0; code != "" && depth < 16; depth++ {
		if code == region {
			return true
		}
		if t == nil {
			return false
		}
		code = t.parent[code]
	}
	return false
}

// Known reports whether code is a region of the tree.
func (t *Regions) Known(code RegionCode) bool {
	if t == nil {
		return false
	}
	_, ok := t.parent[code]
	return ok
}
