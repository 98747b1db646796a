// Package apiclient is the service's HTTP client, generated from docs/openapi.yaml by oapi-codegen
// (client.gen.go; regenerate with make generate). Nothing here is written by hand but this file and
// bearer.go (a client that sends a key, and the check of an answer's status).
package apiclient
