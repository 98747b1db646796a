package page_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/page"
)

func TestCursorsComeBackAsTheyWereGiven(t *testing.T) {
	t.Parallel()
	id, err := page.ParseInt("statement", page.IntCursor("statement", 42))
	require.NoError(t, err)
	require.EqualValues(t, 42, id)

	s, err := page.ParseString("webhooks", page.StringCursor("webhooks", "wh_1"))
	require.NoError(t, err)
	require.Equal(t, "wh_1", s)

	at := time.Date(2026, 12, 6, 23, 59, 59, 123456000, time.FixedZone("CST", 8*3600))
	got, wid, err := page.ParseTimeID("withdrawals", page.TimeIDCursor("withdrawals", at, "w|1"))
	require.NoError(t, err)
	require.True(t, at.Equal(got))
	require.Equal(t, "w|1", wid)
}

func TestTheFirstPageHasNoCursor(t *testing.T) {
	t.Parallel()
	id, err := page.ParseInt("statement", "")
	require.NoError(t, err)
	require.Zero(t, id)
	at, wid, err := page.ParseTimeID("withdrawals", "")
	require.NoError(t, err)
	require.True(t, at.IsZero())
	require.Empty(t, wid)
}

func TestAnythingElseIsRefused(t *testing.T) {
	t.Parallel()
	for name, cursor := range map[string]string{
		"not base64":         "%%%",
		"a plain id":         "42",
		"another list's":     page.IntCursor("audit_checks", 42),
		"too many keys":      page.Cursor("statement", "1", "2"),
		"not a number":       page.Cursor("statement", "x"),
		"not a positive id":  page.Cursor("statement", "-3"),
		"a time that is not": page.Cursor("withdrawals", "yesterday", "w1"),
	} {
		_, err := page.ParseInt("statement", cursor)
		if name == "a time that is not" {
			_, _, err = page.ParseTimeID("withdrawals", cursor)
		}
		require.True(t, apperr.Is(err, apperr.Validation), "%s: %v", name, err)
	}
}

func TestLimitAndTrim(t *testing.T) {
	t.Parallel()
	require.Equal(t, page.Default, page.Limit(0))
	require.Equal(t, 7, page.Limit(7))
	require.Equal(t, page.Max, page.Limit(10_000))

	rows, more := page.Trim([]int{1, 2, 3}, 2)
	require.Equal(t, []int{1, 2}, rows)
	require.True(t, more)
	rows, more = page.Trim([]int{1, 2}, 2)
	require.Equal(t, []int{1, 2}, rows)
	require.False(t, more)
}
