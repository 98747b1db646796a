package rebate

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rebate-ledger/rebate/internal/ledger"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/notify"
	"github.com/rebate-ledger/rebate/internal/program"
	"github.com/rebate-ledger/rebate/internal/store"
	"github.com/rebate-ledger/rebate/internal/store/sqlc"
)

// Member is a registered member.
type Member struct {
	ID                string
	ReferralCode      string
	ReferrerID        string
	Upline            []string
	PaidOrders        int
	ConvertedInvitees int
	CreatedAt         time.Time
}

// Registration is a POST /v1/members body.
type Registration struct {
	ID           string
	ReferrerID   string
	ReferralCode string
}

// codeAlphabet has no 0/O/1/I, so codes read aloud or copied by hand are unambiguous.
const codeAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

func newReferralCode() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = codeAlphabet[int(c)%len(codeAlphabet)]
	}
	return string(out)
}

func memberFromRow(m sqlc.Member) Member {
	return Member{ID: m.ID, ReferralCode: m.ReferralCode, ReferrerID: m.ReferrerID.String, Upline: m.Upline,
		PaidOrders: int(m.PaidOrders), ConvertedInvitees: int(m.ConvertedInvitees), CreatedAt: m.CreatedAt}
}

// Register adds a member with its inviter (by id or referral code); the upline is fixed here for good.
// The same id with the same body replays (replayed = true); with another body it is a conflict.
// Sign-up points, when the program in force gives them, are credited to the new member and the
// inviter in one entry in the same transaction.
func (e *Engine) Register(ctx context.Context, reg Registration) (Member, bool, error) {
	if !ledger.MemberIDPattern.MatchString(reg.ID) {
		return Member{}, false, fmt.Errorf("%w: id must be 1 to 64 letters, digits or _.@-", ErrValidation)
	}
	if reg.ReferrerID != "" && reg.ReferralCode != "" {
		return Member{}, false, fmt.Errorf("%w: give referrer_id or referral_code, not both", ErrValidation)
	}
	if reg.ReferrerID == reg.ID {
		return Member{}, false, ErrSelfReferral
	}
	if err := validText("referrer_id", reg.ReferrerID); err != nil {
		return Member{}, false, err
	}
	if err := validText("referral_code", reg.ReferralCode); err != nil {
		return Member{}, false, err
	}
	h := RegistrationHash(reg)
	var out Member
	var replayed bool
	err := e.ledger.Transact(ctx, func(tx pgx.Tx) error {
		q := store.New(tx)
		// A registration is the member and its inviter: a retry that names the same inviter another
		// way (its id instead of its referral code) is the same request, and replays.
		replay := func(existing sqlc.Member) error {
			if !bytes.Equal(existing.RequestHash, h[:]) {
				inviter := reg.ReferrerID
				if reg.ReferralCode != "" {
					if m, err := q.MemberGetByCode(ctx, reg.ReferralCode); err == nil {
						inviter = m.ID
					} else if !errors.Is(err, pgx.ErrNoRows) {
						return err
					} else {
						inviter = "\x00unknown"
					}
				}
				if inviter != existing.ReferrerID.String {
					return fmt.Errorf("%w: member %q is registered with another inviter", ErrIdempotencyConflict, reg.ID)
				}
			}
			out, replayed = memberFromRow(existing), true
			return nil
		}
		if existing, err := q.MemberGet(ctx, reg.ID); err == nil {
			return replay(existing)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var referrer *sqlc.Member
		switch {
		case reg.ReferrerID != "":
			m, err := q.MemberGet(ctx, reg.ReferrerID)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("%w: %q", ErrUnknownReferrer, reg.ReferrerID)
			}
			if err != nil {
				return err
			}
			referrer = &m
		case reg.ReferralCode != "":
			m, err := q.MemberGetByCode(ctx, reg.ReferralCode)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("%w: no member has referral code %q", ErrUnknownReferrer, reg.ReferralCode)
			}
			if err != nil {
				return err
			}
			if m.ID == reg.ID {
				return ErrSelfReferral
			}
			referrer = &m
		}
		var upline []string
		// Registered at the engine's now: leaderboards count sign-ups by it.
		params := sqlc.MemberInsertParams{ID: reg.ID, RequestHash: h[:], CreatedAt: e.clock.Now()}
		if referrer != nil {
			upline = append([]string{referrer.ID}, referrer.Upline...)
			if len(upline) > program.MaxLevels {
				upline = upline[:program.MaxLevels]
			}
			params.ReferrerID = pgtype.Text{String: referrer.ID, Valid: true}
		}
		params.Upline = upline
		if params.Upline == nil {
			params.Upline = []string{}
		}
		for attempt := 0; ; attempt++ {
			params.ReferralCode = newReferralCode()
			row, err := insertMember(ctx, tx, params)
			if errors.Is(err, errCodeTaken) && attempt < 5 {
				continue
			}
			if errors.Is(err, pgx.ErrNoRows) { // registered concurrently, after our first look
				existing, err := q.MemberGet(ctx, reg.ID)
				if err != nil {
					return err
				}
				return replay(existing)
			}
			if err != nil {
				return err
			}
			out = memberFromRow(row)
			break
		}
		if err := notify.Write(ctx, tx, notify.Note{Type: notify.MemberRegistered, Data: RegisteredNote{MemberID: out.ID,
			ReferrerID: out.ReferrerID, Upline: nonNil(out.Upline), ReferralCode: out.ReferralCode}}); err != nil {
			return err
		}
		return e.signupPoints(ctx, tx, out)
	})
	return out, replayed, err
}

var errCodeTaken = errors.New("referral code taken")

// RegistrationHash is the request hash a registration is stored with: the same body replays.
func RegistrationHash(reg Registration) [32]byte {
	return sha256.Sum256([]byte("member\x00" + reg.ID + "\x00" + reg.ReferrerID + "\x00" + reg.ReferralCode))
}

// ReferralCodeFor is a deterministic, unique code for a number (bulk imports and benchmarks); it
// has 7 characters, so it never equals a random 6-character code.
func ReferralCodeFor(n int) string {
	out := make([]byte, 7)
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = codeAlphabet[n%len(codeAlphabet)]
		n /= len(codeAlphabet)
	}
	return string(out)
}

// insertMember inserts in a savepoint, so a referral code collision can be retried.
func insertMember(ctx context.Context, tx pgx.Tx, p sqlc.MemberInsertParams) (sqlc.Member, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return sqlc.Member{}, err
	}
	row, err := store.New(sp).MemberInsert(ctx, p)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.ConstraintName == "members_referral_code_key" {
		_ = sp.Rollback(ctx)
		return row, errCodeTaken
	}
	if err != nil {
		_ = sp.Rollback(ctx)
		return row, err
	}
	return sqlc.Member(row), sp.Commit(ctx)
}

func (e *Engine) signupPoints(ctx context.Context, tx pgx.Tx, m Member) error {
	if m.ReferrerID == "" {
		// Sign-up points reward a referral, for both of its parties: a member who joined without an
		// inviter gets none.
		return nil
	}
	p, err := program.At(ctx, tx, m.CreatedAt)
	if err != nil {
		return err
	}
	req := ledger.EntryRequest{Key: "signup:" + m.ID, Kind: "signup_reward", OccurredAt: m.CreatedAt,
		Metadata: map[string]any{"member_id": m.ID, "program_version": p.Version}}
	total := int64(0)
	credit := func(member string, pts int64) {
		if pts <= 0 {
			return
		}
		total += pts
		req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.MemberAccount(member, "available"),
			Side: ledger.Credit, Amount: points(pts)})
	}
	credit(m.ID, p.Rules.SignupReferee)
	credit(m.ReferrerID, p.Rules.SignupReferrer)
	if total == 0 {
		return nil
	}
	req.Postings = append(req.Postings, ledger.PostingRequest{Account: ledger.RebateExpense, Side: ledger.Debit, Amount: points(total)})
	if _, err = e.ledger.Post(ctx, tx, req); err != nil {
		return err
	}
	// Each credited member gets a points lot, valid from now for the program's validity.
	q := store.New(tx)
	if err := grantPointsLot(ctx, q, m.ID, "signup", m.ID, p.Rules.SignupReferee, m.CreatedAt, p.Rules.PointsValidity); err != nil {
		return err
	}
	return grantPointsLot(ctx, q, m.ReferrerID, "signup", m.ID, p.Rules.SignupReferrer, m.CreatedAt, p.Rules.PointsValidity)
}

func points(n int64) money.Amount {
	a, _ := money.New(decimalFromInt(n), money.PTS)
	return a
}

// GetMember reads a member.
func (e *Engine) GetMember(ctx context.Context, id string) (Member, error) {
	row, err := store.New(e.pool).MemberGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Member{}, fmt.Errorf("%w: member %q", ErrNotFound, id)
	}
	if err != nil {
		return Member{}, err
	}
	return memberFromRow(row), nil
}

// InvitedCount is how many members this member invited directly.
func (e *Engine) InvitedCount(ctx context.Context, id string) (int64, error) {
	return store.New(e.pool).MemberInvitedCount(ctx, pgtype.Text{String: id, Valid: true})
}
