package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// keyLimiter is a token bucket per caller (API key, or member token's member), so one caller's
// burst cannot starve the others. Buckets unused for ten minutes are dropped.
type keyLimiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

func newKeyLimiter(perSecond float64, burst int) *keyLimiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = int(math.Ceil(perSecond))
	}
	return &keyLimiter{rate: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}, swept: time.Now()}
}

// reserve takes a token for key; when none is left it says how long until one is.
func (k *keyLimiter) reserve(key string, now time.Time) (ok bool, wait time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.swept) > time.Minute {
		for id, b := range k.buckets {
			if now.Sub(b.seen) > 10*time.Minute {
				delete(k.buckets, id)
			}
		}
		k.swept = now
	}
	b, found := k.buckets[key]
	if !found {
		b = &bucket{l: rate.NewLimiter(k.rate, k.burst)}
		k.buckets[key] = b
	}
	b.seen = now
	r := b.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// limit answers 429 with Retry-After (whole seconds, at least 1) to a caller over its rate.
func (s *server) limit(c echo.Context, key string) error {
	if s.limiter == nil {
		return nil
	}
	ok, wait := s.limiter.reserve(key, time.Now())
	if ok {
		return nil
	}
	c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(max(wait.Seconds(), 1)))))
	return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Detail: "too many requests for this key: retry after the time in Retry-After"}
}
