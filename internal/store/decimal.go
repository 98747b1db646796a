package store

import (
	shopspring "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/shopspring/decimal"
)

// registerDecimal maps numeric to decimal.Decimal (pgx-shopspring-decimal) and scans numeric values
// into decimal.Decimal from PostgreSQL's binary numeric. Left alone, pgx prefers a target's
// sql.Scanner over the library's scan plan, and decimal.Decimal's Scanner parses the number from a
// string that pgx first formats: that round trip was ~10% of the process's CPU in batch runs
// (docs/benchmarks.md). The value is the same either way; only its exponent may differ (1230e-2 or
// 123000e-4 for 12.30), which nothing here reads.
func registerDecimal(m *pgtype.Map) {
	shopspring.Register(m)
	m.RegisterType(&pgtype.Type{Name: "numeric", OID: pgtype.NumericOID, Codec: numericCodec{}})
}

type numericCodec struct{ shopspring.NumericCodec }

func (c numericCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*decimal.Decimal); ok {
		if next := c.NumericCodec.PlanScan(m, oid, format, new(shopspring.Decimal)); next != nil {
			return decimalScanPlan{next: next}
		}
	}
	return c.NumericCodec.PlanScan(m, oid, format, target)
}

// decimalScanPlan scans into *decimal.Decimal through the library's Decimal, which reads
// pgtype.Numeric directly.
type decimalScanPlan struct{ next pgtype.ScanPlan }

func (p decimalScanPlan) Scan(src []byte, target any) error {
	return p.next.Scan(src, (*shopspring.Decimal)(target.(*decimal.Decimal)))
}
