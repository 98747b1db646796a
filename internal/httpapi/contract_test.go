package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/rebate-ledger/rebate/docs"
)

var (
	contractOnce   sync.Once
	contractRouter routers.Router
	contractErr    error
)

func contract() (routers.Router, error) {
	contractOnce.Do(func() {
		// Streams and files: their bytes are checked by their own tests (the export verifies).
		for _, ct := range []string{"application/x-ndjson", "application/yaml"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
		}
		loader := openapi3.NewLoader()
		spec, err := loader.LoadFromData(docs.OpenAPI)
		if err != nil {
			contractErr = err
			return
		}
		if err := spec.Validate(context.Background()); err != nil {
			contractErr = err
			return
		}
		spec.Servers = nil // match any host: the tests' servers listen on random ports
		// Answers must hold exactly the documented fields: an object that lists its properties
		// admits no others unless it says so.
		seen := map[*openapi3.Schema]bool{}
		var strict func(s *openapi3.SchemaRef)
		strict = func(ref *openapi3.SchemaRef) {
			if ref == nil || ref.Value == nil || seen[ref.Value] {
				return
			}
			v := ref.Value
			seen[v] = true
			if len(v.Properties) > 0 && v.AdditionalProperties.Has == nil && v.AdditionalProperties.Schema == nil {
				no := false
				v.AdditionalProperties.Has = &no
			}
			for _, p := range v.Properties {
				strict(p)
			}
			strict(v.Items)
			for _, list := range []openapi3.SchemaRefs{v.OneOf, v.AnyOf, v.AllOf} {
				for _, s := range list {
					strict(s)
				}
			}
		}
		for _, path := range spec.Paths.Map() {
			for _, op := range path.Operations() {
				for _, r := range op.Responses.Map() {
					if r.Value == nil {
						continue
					}
					for _, mt := range r.Value.Content {
						strict(mt.Schema)
					}
				}
			}
		}
		contractRouter, contractErr = gorillamux.NewRouter(spec)
	})
	return contractRouter, contractErr
}

// validated wraps the server so that every response of every HTTP test is checked against
// docs/openapi.yaml: a field the code adds, renames or retypes without the spec fails the test
// that caused it.
func validated(t testing.TB, h http.Handler) http.Handler {
	router, err := contract()
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())

		route, params, err := router.FindRoute(r)
		if err != nil {
			return // an unknown path or method: its 404/405 problem is the server's generic answer
		}
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, ExcludeRequestBody: true}}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
		out.SetBodyBytes(rec.Body.Bytes())
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			msg := err.Error()
			if len(msg) > 1500 {
				msg = msg[:1500]
			}
			t.Errorf("%s %s answered %d, which docs/openapi.yaml does not describe: %s\nbody: %.500s", r.Method, r.URL.Path, rec.Code, msg,
				strings.TrimSpace(rec.Body.String()))
		}
	})
}
