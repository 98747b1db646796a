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
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Role is what a key may do (PRODUCT.md §6).
type Role string

// The roles: three for API keys, and member for member tokens.
const (
	Shop     Role = "shop"
	Operator Role = "operator"
	Auditor  Role = "auditor"
	Member   Role = "member"
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
	// MemberID is the member a member token is scoped to.
	MemberID string
}

// ErrUnknownKey means the key is malformed, unknown or revoked.
var ErrUnknownKey = errors.New("unknown, revoked or expired API key or member token")

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

// KeyInfo describes a key without the key itself, which is never stored.
type KeyInfo struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// ErrNoSuchKey: no key has that id.
var ErrNoSuchKey = errors.New("no API key has that id")

// ListKeys lists every key, revoked ones included, oldest first.
func ListKeys(ctx context.Context, db store.DBTX) ([]KeyInfo, error) {
	rows, err := store.New(db).APIKeyList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]KeyInfo, len(rows))
	for i, r := range rows {
		out[i] = keyInfo(r)
	}
	return out, nil
}

func keyInfo(r sqlc.APIKeyListRow) KeyInfo {
	return KeyInfo{ID: r.ID, Name: r.Name, Role: Role(r.Role), CreatedAt: r.CreatedAt, RevokedAt: r.RevokedAt}
}

// RevokeKey revokes key id, and with it the member tokens it issued. Revoking a revoked key changes
// nothing and returns it as it is. A process that used the key in the last KeyCache ttl may accept
// it until that ttl has passed.
func RevokeKey(ctx context.Context, db store.DBTX, id int64) (KeyInfo, error) {
	r, err := store.New(db).APIKeyRevoke(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return KeyInfo{}, fmt.Errorf("%w: %d", ErrNoSuchKey, id)
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("revoke key: %w", err)
	}
	return keyInfo(sqlc.APIKeyListRow(r)), nil
}

// MemberTokenTTL is how long a member token lives unless the shop asks for less.
const MemberTokenTTL = time.Hour

const tokenPrefix = "mt_"

// CreateMemberToken issues a token that acts as one member until it expires; the member must exist.
func CreateMemberToken(ctx context.Context, db store.DBTX, issuer Principal, memberID string, ttl time.Duration) (string, time.Time, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", time.Time{}, err
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	expires := time.Now().Add(ttl).UTC().Truncate(time.Microsecond)
	err := store.New(db).MemberTokenInsert(ctx, sqlc.MemberTokenInsertParams{TokenHash: hash(token), MemberID: memberID, IssuedBy: issuer.KeyID, ExpiresAt: expires})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("store member token: %w", err)
	}
	return token, expires, nil
}

// Lookup finds the principal of a key or a member token.
func Lookup(ctx context.Context, db store.DBTX, key string) (Principal, error) {
	if strings.HasPrefix(key, tokenPrefix) && len(key) <= 100 {
		row, err := store.New(db).MemberTokenGet(ctx, hash(key))
		if errors.Is(err, pgx.ErrNoRows) {
			return Principal{}, ErrUnknownKey
		}
		if err != nil {
			return Principal{}, fmt.Errorf("look up member token: %w", err)
		}
		return Principal{Name: "member:" + row.MemberID, Role: Member, MemberID: row.MemberID}, nil
	}
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

// KeyCache remembers API keys that were found, for ttl, so that a busy client's requests do not
// each cost a database round trip. A key revoked in the database keeps working for at most ttl in
// a process that saw it within ttl. Unknown keys and member tokens are always looked up.
type KeyCache struct {
	ttl  time.Duration
	mu   sync.Mutex
	seen map[[32]byte]cachedKey
}

type cachedKey struct {
	p  Principal
	at time.Time
}

// maxCachedKeys bounds the cache; past it the cache starts again empty.
const maxCachedKeys = 10_000

// NewKeyCache returns a cache that keeps keys for ttl (0 disables it).
func NewKeyCache(ttl time.Duration) *KeyCache {
	return &KeyCache{ttl: ttl, seen: map[[32]byte]cachedKey{}}
}

// Lookup is Lookup with the cache in front for API keys.
func (c *KeyCache) Lookup(ctx context.Context, db store.DBTX, key string) (Principal, error) {
	if c == nil || c.ttl <= 0 || !strings.HasPrefix(key, keyPrefix) || len(key) > 100 {
		return Lookup(ctx, db, key)
	}
	h := sha256.Sum256([]byte(key))
	now := time.Now()
	c.mu.Lock()
	k, ok := c.seen[h]
	c.mu.Unlock()
	if ok && now.Sub(k.at) < c.ttl {
		return k.p, nil
	}
	p, err := Lookup(ctx, db, key)
	if err != nil {
		return p, err
	}
	c.mu.Lock()
	if len(c.seen) >= maxCachedKeys {
		c.seen = map[[32]byte]cachedKey{}
	}
	c.seen[h] = cachedKey{p: p, at: now}
	c.mu.Unlock()
	return p, nil
}
