package main

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"caseroom/acl/aclhttp"
	"caseroom/casework/bots"
	"caseroom/casework/casehttp"
	"caseroom/chat/chathttp"
	"caseroom/docs"
)

// opsRoutes are the routes routes.go registers itself.
var opsRoutes = [][2]string{
	{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"},
	{"GET", "/api/v1/openapi.json"}, {"GET", "/api/v1/ws"},
}

// registeredRoutes lists every method and pattern the server serves.
func registeredRoutes() map[string]bool {
	out := map[string]bool{}
	for _, r := range opsRoutes {
		out[r[0]+" "+r[1]] = true
	}
	for _, r := range aclhttp.Routes() {
		out[r.Method+" "+r.Pattern] = true
	}
	for _, r := range chathttp.Routes() {
		out[r.Method+" "+r.Pattern] = true
	}
	for _, r := range casehttp.Routes() {
		out[r.Method+" "+r.Pattern] = true
	}
	for _, r := range append(bots.Routes(), bots.BotRoutes()...) {
		out[r.Method+" "+r.Pattern] = true
	}
	return out
}

// TestOpenAPICoversEveryRoute fails when a registered route is missing from
// docs/openapi.json, or the document describes a route nobody serves.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(docs.OpenAPI, &doc); err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	var missing, extra []string
	for r := range registeredRoutes() {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for r := range documented {
		if !registeredRoutes()[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes missing from docs/openapi.json:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("docs/openapi.json describes routes nobody serves:\n  %s", strings.Join(extra, "\n  "))
	}
}
