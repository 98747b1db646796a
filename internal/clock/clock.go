// Package clock is the one source of "now" for business rules (withdrawal limits per day and month,
// hold releases, points expiry, request times). Production uses System; tests use a Manual clock to
// stand at 23:59:59 in a program's time zone.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// System is the machine's clock, read at PostgreSQL's resolution (microseconds), so that a time
// stored and read back is the time that was answered.
type System struct{}

// Now is the current time, truncated to the microsecond.
func (System) Now() time.Time { return time.Now().Truncate(time.Microsecond) }

// Manual is a clock that moves only when told; safe for concurrent use.
type Manual struct {
	mu sync.Mutex
	t  time.Time
}

// NewManual is a manual clock standing at t.
func NewManual(t time.Time) *Manual { return &Manual{t: t.Truncate(time.Microsecond)} }

// Now is the time the clock was set to.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t
}

// Set moves the clock to t.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = t.Truncate(time.Microsecond)
}

// Advance moves the clock forward by d.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = m.t.Add(d)
}
