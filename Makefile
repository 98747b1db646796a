# rebate ledger. `make run` and `make test` do all set-up on a fresh machine: when DATABASE_URL is not
# set they create (first time) and start a private PostgreSQL cluster under .data/pg.

SHELL := /bin/bash
GO ?= go
SQLC_VERSION := v1.31.1
REDOCLY_VERSION := 2.77.0
OAPI_CODEGEN_VERSION := v2.8.2
BIN := $(CURDIR)/bin
SQLC := $(BIN)/sqlc-$(SQLC_VERSION)
OAPI_CODEGEN := $(BIN)/oapi-codegen-$(OAPI_CODEGEN_VERSION)
DEVDB := scripts/devdb.sh
ADDR ?= $(or $(REBATE_ADDR),127.0.0.1:8080)
# make run pays through the SIMULATED provider (no real money moves) so that the demo's withdrawal is
# paid end to end; `serve` itself defaults to the CSV bank file.
PAYOUT_PROVIDER ?= $(or $(REBATE_PAYOUT_PROVIDER),simulated)

.PHONY: run test fuzz build generate check db db-stop bench bench-batch clean demo

build:
	$(GO) build -o $(BIN)/rebate ./cmd/rebate

## run: build, start the database if needed, migrate (as the owner), and serve (as the serving role,
## least privilege, on the private cluster) with demo keys printed. Local development: webhooks may
## go to a receiver on this machine (--webhook-allow-local), and the console's cookie works over plain
## http on 127.0.0.1 (--console-insecure-cookie).
run: build
	@if [ -n "$$DATABASE_URL" ]; then owner="$$DATABASE_URL"; service="$$DATABASE_URL"; \
	  else owner="$$($(DEVDB) url rebate)"; service="$$($(DEVDB) url rebate service)"; fi && \
	  $(BIN)/rebate migrate --database-url "$$owner" && \
	  $(BIN)/rebate serve --database-url "$$service" --demo --addr "$(ADDR)" --payout-provider "$(PAYOUT_PROVIDER)" --log-format text \
	    --webhook-allow-local --console-insecure-cookie

## demo: play a simulated shop against the service `make run` serves (another terminal): sign-ups,
## orders, refunds, points, withdrawals with reviews, a payout batch and a campaign, through the
## client generated from docs/openapi.yaml. Its keys are made here, on the database make run uses.
DEMO_MEMBERS ?= 1000
DEMO_DAYS ?= 7
demo: build
	@if [ -n "$$DATABASE_URL" ]; then owner="$$DATABASE_URL"; else owner="$$($(DEVDB) url rebate)"; fi && \
	  shop="$$($(BIN)/rebate keys create --database-url "$$owner" --role shop --name demo-shop)" && \
	  operator="$$($(BIN)/rebate keys create --database-url "$$owner" --role operator --name demo-operator)" && \
	  auditor="$$($(BIN)/rebate keys create --database-url "$$owner" --role auditor --name demo-auditor)" && \
	  $(BIN)/rebate demo --url "http://$(ADDR)" --shop-key "$$shop" --operator-key "$$operator" --auditor-key "$$auditor" \
	    --members $(DEMO_MEMBERS) --days $(DEMO_DAYS)

## test: install the tools the tests need (scripts/tools.sh: hledger, chromium), start the database if needed,
## then run every test (real PostgreSQL, real River).
test:
	@scripts/tools.sh
	@if [ -z "$$TEST_DATABASE_URL" ] && ! { [ -n "$$DOCKER_HOST" ] || [ -S /var/run/docker.sock ]; }; then \
	  export TEST_DATABASE_URL="$$($(DEVDB) url postgres)"; fi; \
	$(GO) test -count=1 -timeout 20m ./...

## fuzz: search each fuzz target for FUZZTIME (make test runs only their seeds).
FUZZTIME ?= 60s
fuzz:
	@if [ -z "$$TEST_DATABASE_URL" ]; then export TEST_DATABASE_URL="$$($(DEVDB) url postgres)"; fi; \
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/money && \
	$(GO) test -run '^$$' -fuzz '^FuzzDecoders$$' -fuzztime $(FUZZTIME) ./internal/httpapi

## db: start the private database (created on first use); db-stop: stop it.
db:
	@$(DEVDB) url rebate

db-stop:
	@$(DEVDB) stop

$(SQLC):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)
	mv $(BIN)/sqlc $(SQLC)

$(OAPI_CODEGEN):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@$(OAPI_CODEGEN_VERSION)
	mv $(BIN)/oapi-codegen $(OAPI_CODEGEN)

## generate: regenerate the sqlc code from db/migrations and queries/, and the API client
## (internal/apiclient) from docs/openapi.yaml.
generate: $(SQLC) $(OAPI_CODEGEN)
	$(SQLC) generate
	$(OAPI_CODEGEN) -config internal/apiclient/oapi-codegen.yaml docs/openapi.yaml

## check: go vet, sqlc diff (generated code matches queries and schema), the API client matches
## docs/openapi.yaml, gofmt, and Redocly's
## recommended rules on docs/openapi.yaml (npx, from the npm registry, pinned).
check: $(SQLC) $(OAPI_CODEGEN)
	$(GO) vet ./...
	$(SQLC) diff
	@tmp="$$(mktemp -d)" && sed "s#^output: .*#output: $$tmp/client.gen.go#" internal/apiclient/oapi-codegen.yaml > "$$tmp/config.yaml" && \
	  $(OAPI_CODEGEN) -config "$$tmp/config.yaml" docs/openapi.yaml && \
	  if cmp -s "$$tmp/client.gen.go" internal/apiclient/client.gen.go; then rm -rf "$$tmp"; else rm -rf "$$tmp"; \
	  echo "internal/apiclient/client.gen.go is stale: run make generate"; exit 1; fi
	npx --yes @redocly/cli@$(REDOCLY_VERSION) lint --format stylish docs/openapi.yaml
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

## bench: the journal benchmark beside pgbench's ceiling (see docs/benchmarks.md).
bench: build
	@url="$${DATABASE_URL:-$$($(DEVDB) fresh rebate_bench)}" && \
	  $(BIN)/rebate bench ledger --database-url "$$url" --duration 20s --concurrency 16

bench-batch: build
	@url="$${DATABASE_URL:-$$($(DEVDB) fresh rebate_bench)}" && \
	  $(BIN)/rebate bench ledger --database-url "$$url" --duration 20s --concurrency 16 --batch 100

clean:
	rm -rf $(BIN)
