# The one test command: `make test`. As root it first installs, with apt-get,
# the programs some tests compare tcpunch and the lab with, if missing. The
# lab itself (internal/natlab) needs none: it builds everything over
# netlink. nft: the check of the lab's rules against `nft list ruleset`;
# coturn: the STUN tests; socat, strace: e2e tests and benchmarks; HAProxy:
# the PROXY protocol test; systemd: systemd-analyze, for verify-unit.
GO        ?= go
LAB_TOOLS := nft:nftables turnserver:coturn socat:socat strace:strace \
             haproxy:haproxy systemd-analyze:systemd
FUZZTIME  ?= 20s

.PHONY: test deps vet crossbuild verify-unit unit fuzz bench

test: deps vet crossbuild verify-unit unit fuzz

# Installs those tools when running as root and any is missing. Not root:
# says what is missing; the tests that need them then skip (or fail under
# CI=true).
deps:
	@missing=""; for t in $(LAB_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "not installing (needs root and apt-get):$$missing; the tests that use them will skip"; \
	fi

vet:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || { echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

crossbuild:
	@for os in linux darwin windows freebsd; do for arch in amd64 arm64; do \
		echo "build $$os/$$arch"; GOOS=$$os GOARCH=$$arch $(GO) build ./... || exit 1; \
	done; done

# systemd-analyze verify of deploy/tcpunch.service (from deps' systemd). It
# needs the ExecStart binary to exist: a copy of the unit points at a fresh
# build. Then the unit's exposure score (README, "Running under systemd").
UNIT_TMP := $(or $(TMPDIR),/tmp)/tcpunch-verify-unit
verify-unit:
	@if ! command -v systemd-analyze >/dev/null 2>&1; then \
		if [ "$$CI" = true ]; then echo "verify-unit: systemd-analyze missing (make deps installs systemd)"; exit 1; fi; \
		echo "verify-unit: systemd-analyze missing; skipped (make deps as root installs it)"; exit 0; \
	fi; \
	rm -rf $(UNIT_TMP) && mkdir -p $(UNIT_TMP) && $(GO) build -o $(UNIT_TMP)/tcpunch . || exit 1; \
	sed 's|^ExecStart=/usr/local/bin/tcpunch|ExecStart=$(UNIT_TMP)/tcpunch|' deploy/tcpunch.service > $(UNIT_TMP)/tcpunch.service; \
	grep -q '^ExecStart=$(UNIT_TMP)/tcpunch serve' $(UNIT_TMP)/tcpunch.service || { echo "verify-unit: no ExecStart=/usr/local/bin/tcpunch serve"; exit 1; }; \
	out=$$(systemd-analyze verify $(UNIT_TMP)/tcpunch.service 2>&1); status=$$?; \
	if [ $$status -ne 0 ] || [ -n "$$out" ]; then echo "$$out"; echo "verify-unit: deploy/tcpunch.service has errors or warnings"; rm -rf $(UNIT_TMP); exit 1; fi; \
	echo "verify-unit: deploy/tcpunch.service ok"; \
	systemd-analyze security --offline=true $(UNIT_TMP)/tcpunch.service 2>/dev/null | tail -1; \
	rm -rf $(UNIT_TMP)

# The e2e lab's summary table (scenario, runs, successes, median and max
# time to connect) is printed after the run.
E2E_SUMMARY := $(or $(TMPDIR),/tmp)/tcpunch-e2e-summary.txt
unit:
	@rm -f $(E2E_SUMMARY)
	@status=0; TCPUNCH_E2E_SUMMARY=$(E2E_SUMMARY) $(GO) test -race -count=1 -timeout 20m ./... || status=$$?; \
	if [ -s $(E2E_SUMMARY) ]; then cat $(E2E_SUMMARY); fi; exit $$status

# Bounded fuzzing of the decoders (a fixed time per target; .ci/fuzz runs a
# target once more after the fuzzing coordinator's own deadline race).
FUZZ_PKGS := ./rendezvous/ ./punch/ ./punch/internal/confirm/
fuzz:
	@for p in $(FUZZ_PKGS); do for t in $$($(GO) test -list '^Fuzz' $$p 2>/dev/null | grep '^Fuzz'); do \
		echo "fuzz $$p $$t for $(FUZZTIME)"; \
		GO=$(GO) .ci/fuzz $$p $$t $(FUZZTIME) || exit 1; \
	done; done

# The benchmark suite (BENCHMARKS.md): Go micro-benchmarks, then the hidden
# `tcpunch bench` command (lab, loopback capacity, coturn and socat side by
# side; about 10 minutes; BENCHFLAGS=--quick for about 3). As root it first
# apt-get installs coturn and socat if missing, like deps.
BENCHFLAGS ?=
bench:
	@missing=""; for t in turnserver:coturn socat:socat; do command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	elif [ -n "$$missing" ]; then echo "not installing (needs root and apt-get):$$missing; those benchmarks will fail"; fi
	$(GO) build -o tcpunch .
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./rendezvous/ ./punch/
	./tcpunch bench $(BENCHFLAGS)
