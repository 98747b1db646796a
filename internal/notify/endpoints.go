package notify

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/clock"
	"github.com/rebate-ledger/rebate/internal/idem"
	"github.com/rebate-ledger/rebate/internal/page"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Webhooks keeps the operator's endpoints and reads their deliveries.
type Webhooks struct {
	pool  *pgxpool.Pool
	clock clock.Clock
	// allowLocal lets endpoints be plain http and on loopback, private and link-local addresses
	// (tests and local development); the sender must be built with the same choice.
	allowLocal bool
}

// NewWebhooks returns the endpoints' keeper.
func NewWebhooks(pool *pgxpool.Pool, c clock.Clock, allowLocal bool) *Webhooks {
	if c == nil {
		c = clock.System{}
	}
	return &Webhooks{pool: pool, clock: c, allowLocal: allowLocal}
}

// Endpoint is a registered receiver. Secret is set only in the answer to its registration: it is
// shown once.
type Endpoint struct {
	ID        string     `json:"id"`
	URL       string     `json:"url"`
	Events    []string   `json:"events"`
	Secret    string     `json:"secret,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

// Registration asks for an endpoint. ID is optional: with one, the registration is idempotent (the
// same body replays the first answer, secret included); without, each call registers another.
// Secret is optional: without one, a random secret is generated.
type Registration struct {
	ID     string
	URL    string
	Events []string
	Secret string
}

func (r *Registration) validate(allowLocal bool) error {
	if r.ID != "" {
		if len(r.ID) > 200 || !utf8.ValidString(r.ID) || strings.ContainsRune(r.ID, 0) {
			return apperr.New(apperr.Validation, "id must be 1 to 200 characters of UTF-8 text without NUL")
		}
	}
	if err := CheckURL(r.URL, allowLocal); err != nil {
		return err
	}
	if len(r.Events) == 0 {
		return apperr.New(apperr.Validation, "events must name at least one event type (%s)", strings.Join(Types, ", "))
	}
	seen := map[string]bool{}
	var events []string
	for _, t := range r.Events {
		if !KnownType(t) {
			return apperr.New(apperr.Validation, "events: unknown event type %q (known: %s)", t, strings.Join(Types, ", "))
		}
		if !seen[t] {
			seen[t] = true
			events = append(events, t)
		}
	}
	r.Events = events
	if r.Secret != "" && (len(r.Secret) < 16 || len(r.Secret) > 200 || !utf8.ValidString(r.Secret) || strings.ContainsRune(r.Secret, 0)) {
		return apperr.New(apperr.Validation, "secret must be 16 to 200 characters (or absent, and one is generated)")
	}
	return nil
}

// CheckURL refuses what the sender would refuse: anything but an absolute http(s) URL without
// credentials or fragment, plain http and addresses a public endpoint cannot have (loopback, private,
// link-local, unspecified, multicast) unless allowLocal. A host name is checked again, address by
// address, when the sender connects (so DNS cannot point it inward later).
func CheckURL(raw string, allowLocal bool) error {
	if raw == "" || len(raw) > 2000 || !utf8.ValidString(raw) || strings.ContainsAny(raw, "\x00\r\n\t ") {
		return apperr.New(apperr.Validation, "url must be an absolute https URL of at most 2,000 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return apperr.New(apperr.Validation, "url must be an absolute https URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowLocal:
	default:
		return apperr.New(apperr.Validation, "url must use https")
	}
	if u.User != nil {
		return apperr.New(apperr.Validation, "url must not carry credentials: the receiver checks the signature instead")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return apperr.New(apperr.Validation, "url must not have a fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return apperr.New(apperr.Validation, "url has an invalid port")
		}
	}
	host := strings.ToLower(u.Hostname())
	if allowLocal {
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return apperr.New(apperr.Validation, "url must not point at this machine (localhost)")
	}
	if addr, err := netip.ParseAddr(host); err == nil && !publicAddr(addr) {
		return apperr.New(apperr.Validation, "url must not point at a loopback, private or link-local address (%s)", addr)
	}
	return nil
}

// publicAddr is false for the addresses an outbound webhook must never reach: a request there
// would let whoever registers an endpoint probe the service's own network.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() &&
		!a.IsInterfaceLocalMulticast() && !a.IsMulticast() && !a.IsUnspecified() &&
		!cgnat.Contains(a) && !a.Is4In6()
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598), private in all but name.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("notify: no randomness: %v", err))
	}
	if prefix == "whsec_" {
		return prefix + base64.RawURLEncoding.EncodeToString(b)
	}
	return prefix + hex.EncodeToString(b)
}

// Register stores an endpoint and answers it with its secret (the only time the secret is shown).
func (w *Webhooks) Register(ctx context.Context, r Registration) (Endpoint, bool, error) {
	if err := r.validate(w.allowLocal); err != nil {
		return Endpoint{}, false, err
	}
	generated := r.Secret == ""
	now := w.clock.Now()
	register := func(tx pgx.Tx) (Endpoint, error) {
		ep := Endpoint{ID: r.ID, URL: r.URL, Events: r.Events, Secret: r.Secret, CreatedAt: now.UTC().Truncate(time.Microsecond)}
		if ep.ID == "" {
			ep.ID = randomToken("wh_", 12)
		}
		if generated {
			ep.Secret = randomToken("whsec_", 32)
		}
		err := store.New(tx).WebhookEndpointInsert(ctx, sqlc.WebhookEndpointInsertParams{ID: ep.ID, Url: ep.URL,
			Events: ep.Events, Secret: ep.Secret, CreatedAt: ep.CreatedAt})
		if store.IsUniqueViolation(err) {
			return ep, apperr.New(apperr.IdempotencyConflict, "webhook %q exists", ep.ID)
		}
		return ep, err
	}
	var out Endpoint
	var replayed bool
	err := store.WithTx(ctx, w.pool, func(tx pgx.Tx) error {
		var err error
		if r.ID == "" {
			out, err = register(tx)
			return err
		}
		// The hash leaves out a generated secret (absent in the request); the replay answers the
		// secret generated the first time.
		req := idem.Request{Scope: "webhook", Key: r.ID, Hash: idem.HashOf(struct {
			URL, Secret string
			Events      []string
		}{r.URL, r.Secret, r.Events})}
		out, replayed, err = idem.Do(ctx, tx, req, func() (Endpoint, error) { return register(tx) })
		return err
	})
	return out, replayed, err
}

// Get answers a live or deleted endpoint, without its secret.
func (w *Webhooks) Get(ctx context.Context, id string) (Endpoint, error) {
	row, err := store.New(w.pool).WebhookEndpointGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Endpoint{}, apperr.New(apperr.NotFound, "no webhook %q", id)
	}
	if err != nil {
		return Endpoint{}, err
	}
	return endpointFromRow(row), nil
}

func endpointFromRow(row sqlc.WebhookEndpoint) Endpoint {
	return Endpoint{ID: row.ID, URL: row.Url, Events: row.Events, CreatedAt: row.CreatedAt, DeletedAt: row.DeletedAt}
}

// List answers live endpoints by id, after the cursor ("" for the first page).
func (w *Webhooks) List(ctx context.Context, cursor string, limit int) ([]Endpoint, string, error) {
	after, err := page.ParseString("webhooks", cursor)
	if err != nil {
		return nil, "", err
	}
	limit = page.Limit(limit)
	rows, err := store.New(w.pool).WebhookEndpointList(ctx, sqlc.WebhookEndpointListParams{AfterID: after, MaxRows: int32(limit + 1)})
	if err != nil {
		return nil, "", err
	}
	next := ""
	rows, more := page.Trim(rows, limit)
	if more {
		next = page.StringCursor("webhooks", rows[len(rows)-1].ID)
	}
	out := make([]Endpoint, len(rows))
	for i, r := range rows {
		out[i] = endpointFromRow(r)
	}
	return out, next, nil
}

// Delete stops an endpoint: nothing new is written for it, and its pending deliveries are
// cancelled. Deleting it again is a no-op; an unknown id is not_found.
func (w *Webhooks) Delete(ctx context.Context, id string) error {
	if _, err := w.Get(ctx, id); err != nil {
		return err
	}
	_, err := store.New(w.pool).WebhookEndpointDelete(ctx, sqlc.WebhookEndpointDeleteParams{ID: id, Now: w.clock.Now()})
	return err
}

// Delivery is one event's delivery to one endpoint, as the operator sees it.
type Delivery struct {
	ID            int64      `json:"id"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	Status        string     `json:"status"`
	Attempts      int32      `json:"attempts"`
	CreatedAt     time.Time  `json:"created_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	LastStatus    *int32     `json:"last_status"`
	LastError     string     `json:"last_error"`
	DeliveredAt   *time.Time `json:"delivered_at"`
	Body          []byte     `json:"-"`
}

// Deliveries answers an endpoint's deliveries, newest first, optionally of one status, after the
// cursor ("" for the first page).
func (w *Webhooks) Deliveries(ctx context.Context, endpointID, status, cursor string, limit int) ([]Delivery, string, error) {
	if _, err := w.Get(ctx, endpointID); err != nil {
		return nil, "", err
	}
	switch status {
	case "", "pending", "delivered", "dead", "cancelled":
	default:
		return nil, "", apperr.New(apperr.Validation, "status must be pending, delivered, dead or cancelled")
	}
	before, err := page.ParseInt("webhook_deliveries", cursor)
	if err != nil {
		return nil, "", err
	}
	limit = page.Limit(limit)
	rows, err := store.New(w.pool).WebhookDeliveryList(ctx, sqlc.WebhookDeliveryListParams{EndpointID: endpointID,
		Status: status, BeforeID: before, MaxRows: int32(limit + 1)})
	if err != nil {
		return nil, "", err
	}
	next := ""
	rows, more := page.Trim(rows, limit)
	if more {
		next = page.IntCursor("webhook_deliveries", rows[len(rows)-1].ID)
	}
	out := make([]Delivery, len(rows))
	for i, r := range rows {
		d := Delivery{ID: r.ID, EventID: r.EventID, EventType: r.EventType, Status: r.Status, Attempts: r.Attempts,
			CreatedAt: r.CreatedAt, LastAttemptAt: r.LastAttemptAt, LastError: r.LastError, DeliveredAt: r.DeliveredAt,
			LastStatus: int4(r.LastStatus)}
		if r.Status == "pending" {
			at := r.NextAttemptAt
			d.NextAttemptAt = &at
		}
		d.Body = body(r.EventID, r.EventType, r.CreatedAt, r.Data)
		out[i] = d
	}
	return out, next, nil
}

func int4(v pgtype.Int4) *int32 {
	if !v.Valid {
		return nil
	}
	return &v.Int32
}
