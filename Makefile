# dbops — see README.md. `make demo` and `make test` work on a fresh
# Debian/Ubuntu machine with Go: missing server binaries are installed with
# apt when run as root, otherwise the command says what to install.

GO      ?= go
BIN     := bin/dbops
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
CGO_ENABLED ?= 1
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: build demo test test-short bench vet fmt servers clean test-matrix

build:
	CGO_ENABLED=$(CGO_ENABLED) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/dbops

servers:
	@scripts/ensure-servers.sh

# Starts throwaway PostgreSQL and Redis, runs validate, plan, apply and plan
# again on examples/amanat-dev, then stops the servers.
demo: servers build   # servers first: it installs gcc, which the cgo build needs
	$(GO) run ./reconcile/internal/cmd/demo -dbops $(BIN) examples/amanat-dev

# The whole suite, with real throwaway servers (never skipped here).
test: servers
	@scripts/ensure-node.sh
	@scripts/ensure-seaweedfs.sh >/dev/null   # the S3 server of the object-storage tests (built once, cached)
	DBOPS_REQUIRE_SERVERS=1 $(GO) test -count=1 -timeout 30m ./...
	cd examples/monitoring/rulecheck && $(GO) test -count=1 ./...   # alert rules + dashboard (own go.mod: Prometheus' rule parser)

# The version matrix: the server-backed tests on PostgreSQL 18 and Redis 8
# too (toolchains from ../shared, PostgreSQL 18 server from npm; cached
# outside the tree). See scripts/matrix.sh; README "Tested versions".
test-matrix: servers
	scripts/matrix.sh

# Offline tests only: no server is started.
test-short:
	$(GO) test -short -count=1 ./...

bench: servers build
	$(GO) run ./reconcile/internal/cmd/bench -dbops $(BIN)

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

# Fuzz targets kept in the repository (seed corpora in the test files and
# spec/testdata/fuzz). go test fuzzes one target at a time; a failure stores
# its input under spec/testdata/fuzz/ as a new seed. Each target runs a fixed
# number of executions (about 15 s each on 2 cores), not a duration: before
# Go 1.27 a duration races Go's fuzz coordinator (go.dev/issue/75804) and now
# and then fails a run with "context deadline exceeded" and no input.
# FUZZTIME (e.g. 60s or 1000000x) overrides the counts.
FUZZTIME ?=
FUZZ_TARGETS := FuzzLoad:15000x FuzzNormalizeRedis:150000x FuzzRedaction:75000x FuzzGooseParse:50000x
.PHONY: fuzz
fuzz:
	@for tc in $(FUZZ_TARGETS); do \
		t=$${tc%%:*}; n=$(if $(FUZZTIME),$(FUZZTIME),$${tc#*:}); \
		echo "== $$t ($$n)"; \
		$(GO) test ./spec -run '^$$' -fuzz "^$$t\$$" -fuzztime $$n || exit 1; \
	done

# Man pages of every command (cobra's doc package) into man/ (issue 12).
.PHONY: man
man: build
	$(BIN) man man
