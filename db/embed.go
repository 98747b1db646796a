// Package db holds the forward-only SQL migrations, embedded into the binary. The same files are the
// schema sqlc reads to generate internal/store.
package db

import "embed"

// Migrations are the files under migrations/, applied in name order.
//
//go:embed migrations/*.sql
var Migrations embed.FS
