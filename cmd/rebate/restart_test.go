package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/store"
)

// privateCluster starts a PostgreSQL cluster of this test's own (scripts/devdb.sh in a temporary
// directory, on a free port), so that restarting it disturbs no other test.
type privateCluster struct {
	t   *testing.T
	env []string
}

func newPrivateCluster(t *testing.T) (*privateCluster, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "rebate-pg-")
	require.NoError(t, err)
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	c := &privateCluster{t: t, env: append(os.Environ(), "REBATE_PG_DIR="+dir, "REBATE_PG_PORT="+port)}
	url := strings.TrimSpace(c.devdb("url", "rebate"))
	t.Cleanup(func() {
		c.devdb("stop")
		os.RemoveAll(dir) //nolint:errcheck
	})
	return c, url
}

func (c *privateCluster) devdb(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(filepath.Join("..", "..", "scripts", "devdb.sh"), args...)
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(c.t, cmd.Run(), "devdb.sh %v: %s", args, errb.String())
	return out.String()
}

// TestPostgreSQLRestartUnderLoad restarts PostgreSQL (a fast shutdown, then a start) while the
// server keeps running and eight clients post events, retrying what was not answered: during the
// outage requests answer 503 with Retry-After and /readyz says the database is unreachable; the
// server recovers by itself; every event is applied exactly once and the journal verifies.
func TestPostgreSQLRestartUnderLoad(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster, url := newPrivateCluster(t)
	pool, err := store.Open(ctx, url, 2)
	require.NoError(t, err)
	_, err = store.Migrate(ctx, pool)
	require.NoError(t, err)
	shop, err := auth.CreateKey(ctx, pool, auth.Shop, "restart-test")
	require.NoError(t, err)
	pool.Close()

	s := &server{t: t, bin: buildBinary(t)}
	addr := freeAddr(t)
	s.url = "http://" + addr
	s.args = []string{"--database-url", url, "--addr", addr, "--rate-limit", "0"}
	s.start()
	defer func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		_ = s.cmd.Wait()
	}()
	for _, body := range []string{`{"id":"a"}`, `{"id":"b","referrer_id":"a"}`} {
		status, err := send(ctx, s.url+"/v1/members", shop, body)
		require.NoError(t, err)
		require.Equal(t, 201, status)
	}

	const orders = 300
	var answered, unavailable, other atomic.Int32
	var retryAfter atomic.Bool
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				body := fmt.Sprintf(`{"id":"e%d","type":"order.paid","occurred_at":"%s","data":{"order_id":"o%d","member_id":"b","amount":"10.00","currency":"CNY"}}`,
					i, time.Now().UTC().Format(time.RFC3339Nano), i)
				for {
					req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/v1/events", strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+shop)
					resp, err := http.DefaultClient.Do(req)
					if err == nil {
						io.Copy(io.Discard, resp.Body) //nolint:errcheck
						resp.Body.Close()
						if resp.StatusCode == 201 {
							answered.Add(1)
							break
						}
						if resp.StatusCode != 503 {
							other.Add(1) // during the outage: 503, never 500
						}
						unavailable.Add(1)
						retryAfter.Store(resp.Header.Get("Retry-After") != "")
					}
					if ctx.Err() != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	go func() {
		for i := range orders {
			work <- i
		}
		close(work)
	}()
	require.Eventually(t, func() bool { return answered.Load() >= orders/3 }, time.Minute, 10*time.Millisecond)
	cluster.devdb("stop")
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 503 && strings.Contains(string(b), "database unreachable")
	}, 10*time.Second, 50*time.Millisecond, "/readyz did not report the outage")
	time.Sleep(time.Second)
	cluster.devdb("ensure")
	wg.Wait()
	require.EqualValues(t, orders, answered.Load())
	require.Zero(t, other.Load(), "answers other than 201 and 503")
	require.Positive(t, unavailable.Load(), "some requests met the outage")
	require.True(t, retryAfter.Load(), "503s carry Retry-After")
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 30*time.Second, 100*time.Millisecond, "the server did not recover by itself")

	pool, err = store.Open(ctx, url, 2)
	require.NoError(t, err)
	defer pool.Close()
	var applied int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&applied))
	require.Equal(t, orders, applied, "each event once")
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, []string{"verify", "--full", "--database-url", url}, &stdout, &stderr), stdout.String())
	require.Contains(t, stdout.String(), `"problems": null`)
	require.Nil(t, s.cmd.ProcessState, "the server kept running through the outage")
}
