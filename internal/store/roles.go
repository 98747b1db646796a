package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ServiceRole is the role `rebate serve` should run as (through a login role that is a member of
// it, such as ServiceLogin): it may read every table, append to the journal, and change only the
// rows that are caches or workflow state. It cannot update, delete or truncate the journal, alter a
// table, disable a trigger, or switch triggers off for its session; those need the owner (who runs
// migrations) or a superuser. docs/operations.md lists the roles.
const ServiceRole = "rebate_app"

// ServiceLogin is the login role the private cluster and the tests create for ServiceRole.
const ServiceLogin = "rebate_service"

// serviceGrants are applied by Migrate, after every migration, when ServiceRole exists: a new table
// is covered as soon as it is migrated.
var serviceGrants = []string{
	`GRANT USAGE ON SCHEMA public TO rebate_app`,
	`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM rebate_app`,
	`GRANT SELECT ON ALL TABLES IN SCHEMA public TO rebate_app`,
	`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO rebate_app`,
	// Append only: the journal, what explains it, and the service's own records.
	`GRANT INSERT ON entries, postings, entry_seals, accounts, events, programs, points_redemptions,
	   audit_checks TO rebate_app`,
	// Caches and workflow state, changed as the journal grows (never deleted).
	`GRANT INSERT, UPDATE ON account_balances, members, orders, rebate_lots, refunds, points_lots,
	   idempotency_keys, withdrawals, payout_batches, payout_items, api_keys, member_tokens,
	   webhook_endpoints, webhook_deliveries, campaigns, campaign_prizes, console_sessions TO rebate_app`,
	// Settled webhook deliveries are pruned after their retention (a trigger keeps pending ones).
	`GRANT DELETE ON webhook_deliveries TO rebate_app`,
}

// riverGrants: River's queue is the service's to manage (it completes, retries and deletes jobs).
const riverGrants = `DO $$
DECLARE t text;
BEGIN
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'river%' LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO rebate_app', t);
  END LOOP;
END $$`

// GrantServiceRole gives ServiceRole exactly its privileges on this database's tables, when the
// role exists (it is a cluster-wide object that an administrator creates; see EnsureServiceRoles).
func GrantServiceRole(ctx context.Context, db DBTX) (bool, error) {
	var exists bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, ServiceRole).Scan(&exists); err != nil {
		return false, err
	}
	if !exists {
		return false, nil
	}
	for _, g := range append(serviceGrants, riverGrants) {
		if _, err := db.Exec(ctx, g); err != nil {
			return true, fmt.Errorf("grant the service role: %w", err)
		}
	}
	return true, nil
}

// EnsureServiceRoles creates ServiceRole and the login ServiceLogin (a member of it, with no other
// rights) when they are missing. It needs CREATEROLE; the private cluster and the tests run it as
// the superuser. Concurrent callers may race on the catalog: one of them wins, the others see it.
func EnsureServiceRoles(ctx context.Context, conn *pgx.Conn) error {
	for _, stmt := range []string{
		`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rebate_app') THEN CREATE ROLE rebate_app NOLOGIN; END IF; END $$`,
		`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rebate_service') THEN CREATE ROLE rebate_service LOGIN IN ROLE rebate_app; END IF; END $$`,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create the service roles: %w", err)
		}
	}
	return nil
}
