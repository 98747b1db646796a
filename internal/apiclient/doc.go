// Package apiclient is the service's HTTP client, generated from docs/openapi.yaml by oapi-codegen
// (client.gen.go; regenerate with make generate). Nothing here is written by hand but this file.
package apiclient
