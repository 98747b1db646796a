// Package docs embeds the API contract so the service can serve it at /openapi.yaml.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml, the exact HTTP contract (kept true by a test in internal/httpapi).
//
//go:embed openapi.yaml
var OpenAPI []byte
