package casework

import (
	"os"
	"testing"
)

// mustLoadShipped loads the real configs/ directory, as the server does.
func mustLoadShipped(t *testing.T) *Domain {
	t.Helper()
	d, err := Load(os.DirFS(".."), "configs")
	if err != nil {
		t.Fatalf("Load(configs) failed:\n%v", err)
	}
	return d
}

func TestLoadShippedConfigs(t *testing.T) {
	d := mustLoadShipped(t)
	for _, id := range []string{"criminal", "civil", "administrative", "public-interest", "enforcement"} {
		if d.Procedures[id] == nil {
			t.Errorf("Load(configs): procedure %q missing", id)
		}
	}
	for _, id := range []string{"theft", "dangerous-driving", "fraud", "private-loan"} {
		if d.Checklists[id] == nil {
			t.Errorf("Load(configs): evidence checklist %q missing", id)
		}
	}
	if got := d.Calendar.Years(); len(got) != 2 || got[0] != 2025 || got[1] != 2026 {
		t.Errorf("Load(configs): calendar years = %v, want [2025 2026]", got)
	}
}
