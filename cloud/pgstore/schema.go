package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions, in order; version n is migrations[n-1]. A change is a
// new entry, never an edit of one a database may already have.
var migrations = []string{
	// 1: the records, their order per gateway and per kind.
	`CREATE TABLE records (
	id          text PRIMARY KEY,        -- <gateway>-<incarnation>-<seq> (docs/wire-format.md)
	gateway     text NOT NULL,
	incarnation text NOT NULL,           -- '' for ids of the form <gateway>-<seq>
	seq         bigint NOT NULL,
	kind        text NOT NULL,
	digest      bytea NOT NULL,          -- SHA-256 of the envelope as compact JSON
	payload     jsonb NOT NULL,          -- the envelope
	received_at timestamptz NOT NULL,
	receiver    text NOT NULL            -- the MQTT client id of the receiver that stored it
);
CREATE INDEX records_order ON records (gateway, incarnation, seq);
CREATE INDEX records_kind ON records (gateway, kind, incarnation, seq);
CREATE INDEX records_received ON records (received_at);`,
}

// lockKey is the advisory lock receivers take while migrating ("obdgw" in ASCII).
const lockKey = 0x6f62646777

// SchemaVersion is the schema version this receiver creates.
func SchemaVersion() int { return len(migrations) }

// migrate brings the schema to SchemaVersion in one transaction, serialised between receivers
// by an advisory lock; applied versions are kept in obdgw_schema.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKey)); err != nil {
			return fmt.Errorf("schema lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS obdgw_schema (
	version    integer PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
			return fmt.Errorf("schema table: %w", err)
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM obdgw_schema`).Scan(&have); err != nil {
			return fmt.Errorf("schema version: %w", err)
		}
		if have > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this receiver's %d: upgrade the receiver", have, len(migrations))
		}
		for v := have + 1; v <= len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("schema version %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO obdgw_schema (version) VALUES ($1)`, v); err != nil {
				return fmt.Errorf("schema version %d: %w", v, err)
			}
		}
		return nil
	})
}
