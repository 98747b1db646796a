package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/auth"
	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/pgtest"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/rebate"
	"github.com/rebate-ledger/rebate/internal/store"
)

// server is the real binary running `rebate serve` as a subprocess.
type server struct {
	t    *testing.T
	bin  string
	args []string
	url  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rebate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func (s *server) start() {
	s.t.Helper()
	s.log = &bytes.Buffer{}
	s.cmd = exec.Command(s.bin, append([]string{"serve"}, s.args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	require.NoError(s.t, s.cmd.Start())
	require.Eventually(s.t, func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 30*time.Second, 50*time.Millisecond, "the server never became ready")
}

func (s *server) kill() {
	s.t.Helper()
	require.NoError(s.t, s.cmd.Process.Signal(syscall.SIGKILL))
	_ = s.cmd.Wait()
}

// send posts body until the server answers something other than a network error or a 5xx, as a
// shop backend that retries every unanswered request does; it returns the answer's status.
func send(ctx context.Context, url, key, body string) (int, error) {
	for {
		req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return resp.StatusCode, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestKill9UnderLoadLosesAndDoublesNothing runs the real binary, posts orders from eight clients
// that retry every unanswered request, kills the server with SIGKILL mid-way, starts it again, and
// then checks: every event applied exactly once (balances equal a fresh replay of the same events
// into a new database), every hold release (due during the outage too) done, and the journal
// verifies.
func TestKill9UnderLoadLosesAndDoublesNothing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url := pgtest.NewDatabase(t)
	pool, err := store.Open(ctx, url, 4)
	require.NoError(t, err)
	defer pool.Close()
	shop, err := auth.CreateKey(ctx, pool, auth.Shop, "crash-test")
	require.NoError(t, err)
	// Holds of two seconds: releases fall due while the server is down.
	rules := func(hold string) []byte {
		b, _ := json.Marshal(program.RulesJSON{Currency: "CNY", HoldPeriod: hold, Rounding: "down", LevelRates: []string{"0.05", "0.02", "0.01"},
			FirstOrderBonus: "1.00", MaxRebateRatio: "0.15", Points: program.PointsJSON{PerUnit: "1", Validity: "8760h"},
			Withdrawal: program.WithdrawalJSON{Min: "10.00", Max: "5000.00", DailyCount: 3, DailyAmount: "10000.00", MonthlyAmount: "50000.00",
				FeeRate: "0.01", FeeMin: "1.00", ReviewAbove: "2000.00"}})
		return b
	}
	_, err = program.Put(ctx, pool, rules("2s"), time.Now().Add(-time.Hour), time.Time{})
	require.NoError(t, err)

	s := &server{t: t, bin: buildBinary(t)}
	addr := freeAddr(t)
	s.url = "http://" + addr
	s.args = []string{"--database-url", url, "--addr", addr, "--seal-every", "200ms", "--check-every", "1s", "--rate-limit", "0"}
	s.start()
	defer func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			_ = s.cmd.Wait()
		}
	}()

	const members, orders = 30, 400
	var regs []string
	for i := range members {
		body := fmt.Sprintf(`{"id":"m%d"}`, i)
		if i > 0 {
			body = fmt.Sprintf(`{"id":"m%d","referrer_id":"m%d"}`, i, (i-1)/2)
		}
		regs = append(regs, body)
		status, err := send(ctx, s.url+"/v1/members", shop, body)
		require.NoError(t, err)
		require.Equal(t, 201, status)
	}
	events := make([]string, orders)
	now := time.Now().UTC()
	for i := range events {
		events[i] = fmt.Sprintf(`{"id":"e%d","type":"order.paid","occurred_at":"%s","data":{"order_id":"o%d","member_id":"m%d","amount":"%d.%02d","currency":"CNY"}}`,
			i, now.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i, 1+i%(members-1), 10+i%90, i%100)
	}
	var answered atomic.Int32
	var wg sync.WaitGroup
	work := make(chan string)
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for ev := range work {
				status, err := send(ctx, s.url+"/v1/events", shop, ev)
				if err == nil && status != 201 {
					err = fmt.Errorf("event answered %d: %s", status, ev)
				}
				if err != nil {
					errs <- err
					return
				}
				answered.Add(1)
			}
		})
	}
	go func() {
		for _, ev := range events {
			work <- ev
		}
		close(work)
	}()
	require.Eventually(t, func() bool { return answered.Load() >= orders/3 }, time.Minute, 10*time.Millisecond)
	s.kill()
	time.Sleep(2500 * time.Millisecond) // the first holds end while nothing runs
	s.start()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, orders, answered.Load())

	// Every order released (by River, after the restart for those due during the outage).
	require.Eventually(t, func() bool {
		var left int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM orders WHERE released_at IS NULL`).Scan(&left))
		return left == 0
	}, time.Minute, 100*time.Millisecond, "hold releases were lost: %s", s.log)
	var applied int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&applied))
	require.Equal(t, orders, applied)

	// The same events into a fresh database, in order, in process: the same balances.
	fresh, err := store.Open(ctx, pgtest.NewDatabase(t), 4)
	require.NoError(t, err)
	defer fresh.Close()
	_, err = program.Put(ctx, fresh, rules("2s"), time.Now().Add(-time.Hour), time.Time{})
	require.NoError(t, err)
	fl := ledger.New(fresh)
	engine := rebate.NewEngine(fresh, fl)
	engine.SetScheduler(func(context.Context, pgx.Tx, []rebate.Release) error { return nil })
	for _, body := range regs {
		var reg rebate.Registration
		var raw struct{ ID, ReferrerID string }
		require.NoError(t, json.Unmarshal([]byte(strings.ReplaceAll(body, "referrer_id", "ReferrerID")), &raw))
		reg.ID, reg.ReferrerID = raw.ID, raw.ReferrerID
		_, _, err := engine.Register(ctx, reg)
		require.NoError(t, err)
	}
	for i, body := range events {
		var ev rebate.Event
		require.NoError(t, json.Unmarshal([]byte(body), &ev))
		_, err := engine.Apply(ctx, ev)
		require.NoError(t, err)
		require.NoError(t, engine.Release(ctx, fmt.Sprintf("o%d", i)))
	}
	l := ledger.New(pool)
	for i := range members {
		for _, bucket := range []string{"held", "available"} {
			for _, cur := range []money.Currency{money.CNY, money.PTS} {
				code := ledger.MemberAccount(fmt.Sprintf("m%d", i), bucket)
				got, err := l.Balance(ctx, code, cur)
				require.NoError(t, err)
				want, err := fl.Balance(ctx, code, cur)
				require.NoError(t, err)
				require.True(t, got.Equal(want), "%s %s: %s after the crash, %s replayed", code, cur, got, want)
			}
		}
	}
	var stdout, stderr bytes.Buffer
	require.Eventually(t, func() bool {
		n, err := l.Unsealed(ctx)
		require.NoError(t, err)
		return n == 0
	}, time.Minute, 100*time.Millisecond)
	require.NoError(t, run(ctx, []string{"verify", "--full", "--seal=false", "--database-url", url}, &stdout, &stderr), stdout.String())
	require.Contains(t, stdout.String(), `"problems": null`)
	require.NotContains(t, s.log.String(), "panic")
}

// TestSIGTERMUnderLoadAnswersWhatItAccepted: a SIGTERM while eight clients post events drains the
// server: every request that got an answer got a 2xx (none a 5xx), each of them is applied, and
// the process exits within its shutdown timeout.
func TestSIGTERMUnderLoadAnswersWhatItAccepted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := pgtest.NewDatabase(t)
	pool, err := store.Open(ctx, url, 4)
	require.NoError(t, err)
	defer pool.Close()
	shop, err := auth.CreateKey(ctx, pool, auth.Shop, "sigterm-test")
	require.NoError(t, err)
	s := &server{t: t, bin: buildBinary(t)}
	addr := freeAddr(t)
	s.url = "http://" + addr
	s.args = []string{"--database-url", url, "--addr", addr, "--shutdown-timeout", "10s", "--rate-limit", "0"}
	s.start()
	for _, body := range []string{`{"id":"a"}`, `{"id":"b","referrer_id":"a"}`} {
		status, err := send(ctx, s.url+"/v1/members", shop, body)
		require.NoError(t, err)
		require.Equal(t, 201, status)
	}
	var ok201 atomic.Int32
	var bad sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"id":"e%d-%d","type":"order.paid","occurred_at":"%s","data":{"order_id":"o%d-%d","member_id":"b","amount":"10.00","currency":"CNY"}}`,
					c, i, time.Now().UTC().Format(time.RFC3339Nano), c, i)
				req, _ := http.NewRequest("POST", s.url+"/v1/events", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+shop)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the server stopped listening: nothing was answered, a client retries later
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
				if resp.StatusCode == 201 {
					ok201.Add(1)
				} else {
					bad.Store(body, resp.StatusCode)
				}
			}
		})
	}
	require.Eventually(t, func() bool { return ok201.Load() >= 200 }, time.Minute, 10*time.Millisecond)
	start := time.Now()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit status after SIGTERM: %s", s.log)
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15 s after SIGTERM")
	}
	close(stop)
	wg.Wait()
	require.Less(t, time.Since(start), 12*time.Second)
	bad.Range(func(k, v any) bool {
		t.Errorf("answered %v during shutdown: %s", v, k)
		return true
	})
	var applied int32
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&applied))
	require.GreaterOrEqual(t, applied, ok201.Load(), "every 201 is applied")
}

// TestTwoAPIAndTwoWorkerProcesses runs `serve --mode api` twice and `serve --mode worker` twice
// against one database: the same events sent to both API processes at once apply once each, the
// hold releases run once, and the sealer's chain has no gap or fork.
func TestTwoAPIAndTwoWorkerProcesses(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := pgtest.NewDatabase(t)
	pool, err := store.Open(ctx, url, 4)
	require.NoError(t, err)
	defer pool.Close()
	shop, err := auth.CreateKey(ctx, pool, auth.Shop, "scale-out-test")
	require.NoError(t, err)
	b, _ := json.Marshal(program.RulesJSON{Currency: "CNY", HoldPeriod: "1s", Rounding: "down", LevelRates: []string{"0.05"},
		FirstOrderBonus: "0.00", MaxRebateRatio: "0.15", Points: program.PointsJSON{PerUnit: "0", Validity: "8760h"},
		Withdrawal: program.WithdrawalJSON{Min: "10.00", Max: "5000.00", DailyCount: 3, DailyAmount: "10000.00", MonthlyAmount: "50000.00",
			FeeRate: "0.01", FeeMin: "1.00", ReviewAbove: "2000.00"}})
	_, err = program.Put(ctx, pool, b, time.Now().Add(-time.Hour), time.Time{})
	require.NoError(t, err)
	bin := buildBinary(t)
	var apis []*server
	for _, mode := range []string{"api", "api", "worker", "worker"} {
		s := &server{t: t, bin: bin}
		addr := freeAddr(t)
		s.url = "http://" + addr
		s.args = []string{"--database-url", url, "--addr", addr, "--mode", mode, "--seal-every", "100ms", "--rate-limit", "0"}
		if mode == "worker" {
			// A worker serves no HTTP: wait for its River client instead of /readyz.
			s.log = &bytes.Buffer{}
			s.cmd = exec.Command(bin, append([]string{"serve"}, s.args...)...)
			s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
			require.NoError(t, s.cmd.Start())
		} else {
			s.start()
			apis = append(apis, s)
		}
		defer func() {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			_ = s.cmd.Wait()
		}()
	}
	for _, body := range []string{`{"id":"a"}`, `{"id":"b","referrer_id":"a"}`} {
		status, err := send(ctx, apis[0].url+"/v1/members", shop, body)
		require.NoError(t, err)
		require.Equal(t, 201, status)
	}
	const orders = 100
	var wg sync.WaitGroup
	statuses := make([][2]int, orders)
	for i := range orders {
		body := fmt.Sprintf(`{"id":"e%d","type":"order.paid","occurred_at":"%s","data":{"order_id":"o%d","member_id":"b","amount":"100.00","currency":"CNY"}}`,
			i, time.Now().UTC().Format(time.RFC3339Nano), i)
		for k, api := range apis {
			wg.Go(func() {
				status, err := send(ctx, api.url+"/v1/events", shop, body)
				if err != nil {
					status = -1 // no answer before the test's deadline
				}
				statuses[i][k] = status
			})
		}
	}
	wg.Wait()
	for i, st := range statuses {
		require.Equal(t, [2]int{201, 201}, st, "event %d: both answer 201, one of them a replay", i)
	}
	require.Eventually(t, func() bool {
		var left int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM orders WHERE released_at IS NULL`).Scan(&left))
		return left == 0
	}, time.Minute, 100*time.Millisecond, "releases did not all run")
	l := ledger.New(pool)
	require.Eventually(t, func() bool {
		n, err := l.Unsealed(ctx)
		require.NoError(t, err)
		return n == 0
	}, time.Minute, 100*time.Millisecond)
	var accruals, releases int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 'accrual'), count(*) FILTER (WHERE kind = 'release') FROM entries`).Scan(&accruals, &releases))
	require.Equal(t, orders, accruals, "one accrual per order")
	require.Equal(t, orders, releases, "one release per order")
	avail, err := l.Balance(ctx, ledger.MemberAccount("a", "available"), money.CNY)
	require.NoError(t, err)
	require.Equal(t, "500.00", avail.String(), "5.00 per order, once")
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, []string{"verify", "--full", "--seal=false", "--database-url", url}, &stdout, &stderr), stdout.String())
	require.Contains(t, stdout.String(), `"problems": null`, "no gap or fork in the chain")
}
