// Package page is the one pagination primitive. A list answers at most a page of rows in a fixed
// order and, when more rows follow, a cursor naming the last row's sort key; the client hands the
// cursor back for the next page. A cursor is opaque (base64url), says which list it belongs to, and
// anything else offered as one (another list's cursor included) is validation_failed rather than
// a silently wrong page. Lists read one row more than the page (Trim) so that a next cursor means
// there is a next row.
package page

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/rebate-ledger/rebate/internal/apperr"
)

// Default and Max are the page sizes: an unset limit is Default, and no page holds more than Max.
const (
	Default = 100
	Max     = 500
)

// Limit is the page size for a requested limit: Default for 0 or less, at most Max.
func Limit(n int) int {
	if n <= 0 {
		return Default
	}
	return min(n, Max)
}

// Trim cuts rows read with limit+1 to the page, and reports whether a row follows it.
func Trim[T any](rows []T, limit int) ([]T, bool) {
	if len(rows) > limit {
		return rows[:limit], true
	}
	return rows, false
}

// sep separates a cursor's parts; list names and keys never hold it (client ids refuse control
// characters, and the others are ids and times this service writes).
const sep = "\x00"

// Cursor is the cursor after a row whose sort key is keys, in list.
func Cursor(list string, keys ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(list + sep + strings.Join(keys, sep)))
}

// Parse reads a cursor of list with n keys; "" (the first page) answers nil.
func Parse(list, cursor string, n int) ([]string, error) {
	if cursor == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	parts := strings.Split(string(b), sep)
	if err != nil || len(parts) != n+1 || parts[0] != list {
		return nil, apperr.New(apperr.Validation, "cursor is not one this list gave")
	}
	return parts[1:], nil
}

// IntCursor is the cursor after the row with this id, in a list sorted by an integer id.
func IntCursor(list string, id int64) string { return Cursor(list, strconv.FormatInt(id, 10)) }

// ParseInt reads an IntCursor of list; the first page is 0.
func ParseInt(list, cursor string) (int64, error) {
	keys, err := Parse(list, cursor, 1)
	if err != nil || keys == nil {
		return 0, err
	}
	id, err := strconv.ParseInt(keys[0], 10, 64)
	if err != nil || id < 1 {
		return 0, apperr.New(apperr.Validation, "cursor is not one this list gave")
	}
	return id, nil
}

// StringCursor is the cursor after the row with this id, in a list sorted by a text id.
func StringCursor(list, id string) string { return Cursor(list, id) }

// ParseString reads a StringCursor of list; the first page is "".
func ParseString(list, cursor string) (string, error) {
	keys, err := Parse(list, cursor, 1)
	if err != nil || keys == nil {
		return "", err
	}
	return keys[0], nil
}

// TimeIDCursor is the cursor after a row in a list sorted by (time, id).
func TimeIDCursor(list string, at time.Time, id string) string {
	return Cursor(list, at.UTC().Format(time.RFC3339Nano), id)
}

// ParseTimeID reads a TimeIDCursor of list; the first page is the zero time and "".
func ParseTimeID(list, cursor string) (time.Time, string, error) {
	keys, err := Parse(list, cursor, 2)
	if err != nil || keys == nil {
		return time.Time{}, "", err
	}
	at, err := time.Parse(time.RFC3339Nano, keys[0])
	if err != nil {
		return time.Time{}, "", apperr.New(apperr.Validation, "cursor is not one this list gave")
	}
	return at, keys[1], nil
}
