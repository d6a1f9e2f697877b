// Package configs embeds caseroom's data files — policy, unit kinds, regions,
// procedures, clocks, holidays, evidence checklists — so the binary runs with no
// files beside it. CASEROOM_CONFIGS names a directory that replaces them.
package configs

import (
	"embed"

	// policy.json names casework's actions (case.*); acl knows only the actions
	// registered before it loads a policy, so whoever has this file has them.
	_ "caseroom/casework"
)

// FS holds every file of this directory.
//
//go:embed *.json *.csv *.conf all:procedures all:evidence
var FS embed.FS
