// Package auth issues and checks API keys. A key is shown once when created; only its SHA-256 is
// stored, so a database leak does not leak usable keys.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Role is what a key may do (PRODUCT.md §6).
type Role string

// The roles of API keys. Member tokens come with the rebate engine.
const (
	Shop     Role = "shop"
	Operator Role = "operator"
	Auditor  Role = "auditor"
)

// ParseRole accepts shop, operator or auditor.
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case Shop, Operator, Auditor:
		return Role(s), nil
	}
	return "", fmt.Errorf("unknown role %q: want shop, operator or auditor", s)
}

// Principal is who a request acts as.
type Principal struct {
	KeyID int64
	Name  string
	Role  Role
}

// ErrUnknownKey means the key is malformed, unknown or revoked.
var ErrUnknownKey = errors.New("unknown or revoked API key")

const keyPrefix = "rk_"

func hash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// CreateKey makes a new key and returns it; this is the only time the key itself is seen.
func CreateKey(ctx context.Context, db store.DBTX, role Role, name string) (string, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return "", err
	}
	if name == "" || len(name) > 100 {
		return "", errors.New("key name must be 1 to 100 characters")
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	key := keyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	if _, err := store.New(db).APIKeyInsert(ctx, sqlc.APIKeyInsertParams{Name: name, Role: string(role), KeyHash: hash(key)}); err != nil {
		return "", fmt.Errorf("store key: %w", err)
	}
	return key, nil
}

// Lookup finds the principal of a key.
func Lookup(ctx context.Context, db store.DBTX, key string) (Principal, error) {
	if !strings.HasPrefix(key, keyPrefix) || len(key) > 100 {
		return Principal{}, ErrUnknownKey
	}
	row, err := store.New(db).APIKeyGetByHash(ctx, hash(key))
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrUnknownKey
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up key: %w", err)
	}
	return Principal{KeyID: row.ID, Name: row.Name, Role: Role(row.Role)}, nil
}
