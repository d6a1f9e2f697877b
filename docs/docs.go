// Package docs embeds the documents the server serves: the OpenAPI description
// of its HTTP API (checked against the registered routes by a test in cmd/caseroomd).
package docs

import _ "embed"

// OpenAPI is openapi.json, served at /api/v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte
