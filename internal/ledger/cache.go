package ledger

import (
	"context"
	"fmt"
	"sync"

	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/store"
)

// accountCache keeps committed accounts by (code, currency) and their codes by id. Accounts are
// never deleted or changed (append-only), so an entry never goes stale; only accounts seen
// committed are added (see resolveAccounts).
type accountCache struct {
	mu     sync.RWMutex
	byKey  map[accountKey]*account
	codeOf map[int64]string
}

// fill sets every nil value of out whose key the cache holds, under one read lock: every writer
// shares the cache, and taking the lock once per posting added about a fifth to the lookups
// (0.42 → 0.33 s of CPU in a 20 s --batch 100 run). It returns the keys still nil.
func (c *accountCache) fill(out map[accountKey]*account) (missing []accountKey) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k, a := range out {
		if a != nil {
			continue
		}
		if a, ok := c.byKey[k]; ok {
			out[k] = a
			continue
		}
		missing = append(missing, k)
	}
	return missing
}

func (c *accountCache) put(a *account) {
	c.mu.Lock()
	if c.byKey == nil {
		c.byKey, c.codeOf = map[accountKey]*account{}, map[int64]string{}
	}
	c.byKey[accountKey{a.code, a.cur}] = a
	c.codeOf[a.id] = a.code
	c.mu.Unlock()
}

// codes returns the code of each id, "" for ids the cache does not hold, under one read lock (as fill).
func (c *accountCache) codes(ids []int64) []string {
	out := make([]string, len(ids))
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i, id := range ids {
		out[i] = c.codeOf[id]
	}
	return out
}

func (c *accountCache) putCode(id int64, code string) {
	c.mu.Lock()
	if c.codeOf == nil {
		c.byKey, c.codeOf = map[accountKey]*account{}, map[int64]string{}
	}
	c.codeOf[id] = code
	c.mu.Unlock()
}

// WarmCache loads up to limit accounts, newest first, into the ledger's account cache, so a
// restarted process does not pay one lookup per account on its first entries. It returns how many
// it loaded.
func (l *Ledger) WarmCache(ctx context.Context, limit int) (int, error) {
	rows, err := store.New(l.pool).AccountListNewest(ctx, int32(limit))
	if err != nil {
		return 0, fmt.Errorf("warm account cache: %w", err)
	}
	for _, r := range rows {
		l.cache.put(&account{id: r.ID, code: r.Code, cur: money.Currency(r.Currency),
			spec: AccountSpec{Kind: AccountKind(r.Kind), AllowNegative: r.AllowNegative, Shards: r.Shards}})
	}
	return len(rows), nil
}
