// Package configs embeds caseroom's data files — policy, unit kinds, regions,
// procedures, clocks, holidays, evidence checklists — so the binary runs with no
// files beside it. CASEROOM_CONFIGS names a directory that replaces them.
package configs

import "embed"

// FS holds every file of this directory.
//
//go:embed *.json *.csv *.conf all:procedures all:evidence
var FS embed.FS
