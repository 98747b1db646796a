package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/pgtest"
)

// lockedBuffer is a bytes.Buffer the server and the test may use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeDemoPaysAWithdrawal runs `serve --demo` as `make run` does, with the SIMULATED provider:
// the walkthrough goes through the generated client from sign-up to a paid withdrawal, and a second
// start on the same database replays the same story instead of repeating it.
func TestServeDemoPaysAWithdrawal(t *testing.T) {
	t.Parallel()
	url := pgtest.EmptyDatabase(t)
	for start := 1; start <= 2; start++ {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout lockedBuffer
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"serve", "--database-url", url, "--migrate", "--demo", "--addr", "127.0.0.1:0",
				"--payout-provider", "simulated", "--simulated-delay", "100ms", "--log-format", "text"}, &stdout, io.Discard)
		}()
		require.Eventually(t, func() bool {
			out := stdout.String()
			return strings.Contains(out, "demo: 8.") || strings.Contains(out, "demo: stopped")
		}, 90*time.Second, 50*time.Millisecond, "start %d: %s", start, stdout.String())
		cancel()
		require.NoError(t, <-done)
		out := stdout.String()
		require.NotContains(t, out, "demo: stopped", "start %d", start)
		require.Contains(t, out, "withdrawal demo-withdrawal-1 is paid", "start %d", start)
		require.Contains(t, out, "demo-alice's CNY now: available 415.00, held 0.00, withdrawing 0.00, paid out 2100.00", "start %d", start)
		require.Regexp(t, `listening on http://127\.0\.0\.1:[1-9][0-9]*\n`, out, "the address it listens on, not the flag's :0")
		if start == 1 {
			require.Contains(t, out, "demo: 2. demo-bob pays order demo-order-1")
		} else {
			require.NotContains(t, out, "demo: 2.", "the order is not paid twice")
			require.Contains(t, out, "withdraw 2100.00 CNY (fee 21.00, net 2079.00): pending_review", "the request replays its first answer")
		}
	}
}
