// Package pgtest gives each test its own migrated PostgreSQL database in a few tens of
// milliseconds: the schema is migrated once into a template database named after the schema's hash,
// and every test clones it (CREATE DATABASE ... TEMPLATE). The server is, in order of preference:
// TEST_DATABASE_URL (any database on it; we create our own), a throwaway container through
// testcontainers when a Docker daemon is reachable, or the project's private local cluster
// (scripts/devdb.sh), started if needed.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/rebate-ledger/rebate/internal/store"
)

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error

	templateMu   sync.Mutex
	templateName string
)

// ServerURL is a URL of the test server's maintenance database (where we may CREATE DATABASE).
func ServerURL(tb testing.TB) string {
	tb.Helper()
	serverOnce.Do(func() { serverURL, serverErr = findServer() })
	if serverErr != nil {
		tb.Fatalf("pgtest: no PostgreSQL for tests: %v", serverErr)
	}
	return serverURL
}

func findServer() (string, error) {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u, nil
	}
	if dockerReachable() {
		u, err := startContainer()
		if err == nil {
			return u, nil
		}
		fmt.Fprintf(os.Stderr, "pgtest: Docker is there but the container did not start (%v); using the local cluster\n", err)
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(filepath.Join(root, "scripts", "devdb.sh"), "url", "postgres").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("scripts/devdb.sh: %s", strings.TrimSpace(string(ee.Stderr)))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

func dockerReachable() bool {
	if os.Getenv("DOCKER_HOST") != "" {
		return true
	}
	_, err := os.Stat("/var/run/docker.sock")
	return err == nil
}

func startContainer() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := tcpostgres.Run(ctx, "postgres:15-alpine",
		tcpostgres.WithDatabase("postgres"), tcpostgres.WithUsername("postgres"), tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies())
	if err != nil {
		return "", err
	}
	_ = testcontainers.Container(c) // the reaper removes it when the test process exits
	return c.ConnectionString(ctx, "sslmode=disable")
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// withDatabase replaces the database name in a URL.
func withDatabase(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	return u.String()
}

// template makes sure the migrated template database for the current schema exists. An advisory
// lock serialises the test binaries of different packages, which go test runs in parallel.
func template(tb testing.TB, admin *pgx.Conn) string {
	tb.Helper()
	templateMu.Lock()
	defer templateMu.Unlock()
	if templateName != "" {
		return templateName
	}
	ctx := context.Background()
	hash, err := store.SchemaHash()
	if err != nil {
		tb.Fatalf("pgtest: schema hash: %v", err)
	}
	name := "rebate_tmpl_" + hash
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(7234999)"); err != nil {
		tb.Fatalf("pgtest: lock: %v", err)
	}
	defer admin.Exec(ctx, "SELECT pg_advisory_unlock(7234999)") //nolint:errcheck
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	// The serving role (cluster-wide) exists before the template is migrated, so that the
	// migration grants it its privileges in every test database.
	if err := store.EnsureServiceRoles(ctx, admin); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	if !exists {
		building := name + "_building"
		mustExec(tb, admin, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)")
		mustExec(tb, admin, "CREATE DATABASE "+building)
		pool, err := store.Open(ctx, withDatabase(ServerURL(tb), building), 4)
		if err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
		_, err = store.Migrate(ctx, pool)
		pool.Close()
		if err != nil {
			tb.Fatalf("pgtest: migrate template: %v", err)
		}
		mustExec(tb, admin, "ALTER DATABASE "+building+" RENAME TO "+name)
	}
	templateName = name
	return name
}

func mustExec(tb testing.TB, c *pgx.Conn, sql string) {
	tb.Helper()
	if _, err := c.Exec(context.Background(), sql); err != nil {
		tb.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// NewDatabase creates a fresh, migrated database for this test and returns its URL; it is dropped
// when the test ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return createDatabase(tb, "rebate_test_", true)
}

// EmptyDatabase creates a database with no schema at all (for migration tests) and returns its URL;
// it is dropped when the test ends.
func EmptyDatabase(tb testing.TB) string {
	tb.Helper()
	return createDatabase(tb, "rebate_empty_", false)
}

func createDatabase(tb testing.TB, prefix string, migrated bool) string {
	tb.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, ServerURL(tb))
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer admin.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	create := "CREATE DATABASE " + name
	if migrated {
		create += " TEMPLATE " + template(tb, admin)
	}
	mustExec(tb, admin, create)
	tb.Cleanup(func() {
		c, err := pgx.Connect(ctx, ServerURL(tb))
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return withDatabase(ServerURL(tb), name)
}

// New creates a fresh migrated database and returns a pool on it, closed when the test ends.
func New(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	pool, err := store.Open(context.Background(), NewDatabase(tb), 40)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// AsService is url with the user changed to the serving login role (store.ServiceLogin), which
// has only the serving role's privileges.
func AsService(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.User = url.User(store.ServiceLogin)
	return u.String()
}
