package csvbank_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebate-ledger/rebate/internal/apperr"
	"github.com/rebate-ledger/rebate/internal/money"
	"github.com/rebate-ledger/rebate/internal/wallet"
	"github.com/rebate-ledger/rebate/internal/wallet/csvbank"
)

func TestBankFileQuotesWhatNeedsQuoting(t *testing.T) {
	t.Parallel()
	b := wallet.Batch{ID: "b1", Currency: money.CNY, Items: []wallet.Item{{ID: 7, WithdrawalID: "w,1", MemberID: "m",
		Destination: wallet.Destination{Type: "bank", Account: "62 22", Name: `Li "Lei", Jr.`}, Net: money.MustParse("99.00", money.CNY)}}}
	var buf bytes.Buffer
	require.NoError(t, csvbank.Write(&buf, b))
	require.Equal(t, "item_id,withdrawal_id,member_id,destination_type,account,name,net_amount,currency\n"+
		`7,"w,1",m,bank,62 22,"Li ""Lei"", Jr.",99.00,CNY`+"\n", buf.String())
}

func TestReturnFile(t *testing.T) {
	t.Parallel()
	got, err := csvbank.ReadResults(strings.NewReader("\ufeffItem_ID,net_amount,Status,reference,reason\r\n7,99.00,paid,R1,\r\n8,1.00,failed,,closed\r\n"))
	require.NoError(t, err)
	require.Equal(t, []wallet.ItemResult{{ItemID: 7, Status: "paid", Reference: "R1"}, {ItemID: 8, Status: "failed", Reason: "closed"}}, got)
	for _, bad := range []string{"", "item_id,status\r\n", "id,status\r\n1,paid\r\n", "item_id,reference\r\n1,x\r\n",
		"item_id,status\r\nx,paid\r\n", "item_id,status\r\n\"1,paid\r\n"} {
		_, err := csvbank.ReadResults(strings.NewReader(bad))
		code, ok := apperr.CodeOf(err)
		require.True(t, ok, "%q: %v", bad, err)
		require.Equal(t, apperr.Validation, code, bad)
	}
}
