package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"time"
)

// NewBearer is a client that sends key (an API key or a member token) with every request.
func NewBearer(url, key string, timeout time.Duration) (*ClientWithResponses, error) {
	return NewClientWithResponses(url, WithHTTPClient(&http.Client{Timeout: timeout}),
		WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+key)
			return nil
		}))
}

// Response is what every generated ...WithResponse call answers.
type Response interface{ StatusCode() int }

// Expect checks a call's answer against the statuses wanted; otherwise its error, or its status and
// the start of its body, go in the error, named by what.
func Expect(what string, resp Response, err error, want ...int) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	v := reflect.ValueOf(resp)
	if v.IsNil() {
		return fmt.Errorf("%s: no response", what)
	}
	status := resp.StatusCode()
	for _, w := range want {
		if status == w {
			return nil
		}
	}
	b := v.Elem().FieldByName("Body").Bytes()
	if len(b) > 400 {
		b = b[:400]
	}
	return fmt.Errorf("%s: answered %d: %s", what, status, b)
}
