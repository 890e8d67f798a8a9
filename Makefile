# V6 — build, test and demo. `make` builds build/v6; `make test` is the one
# test command (README and .ci/run use it); `make demo` runs the example app.

CC      ?= cc
PYTHON  ?= /usr/bin/python3
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -Isrc
# libcurl, libarchive and libgit2 are not linked: src/lazylib.c loads them at
# their first use (by these sonames, those of the libraries the headers are from).
LIBS     = -lldns -lssl -luv -lhttp_parser -lyaml -ljansson -lsqlite3 -lcrypto -lsodium -lz -lpthread -lm
soname   = $(shell objdump -p $$($(CC) -print-file-name=lib$(1).so) 2>/dev/null | awk '/SONAME/ { print $$2 }')
LAZY_SONAMES := $(foreach l,curl archive git2,$(if $(call soname,$(l)),\
                  -DLAZY_$(shell echo $(l) | tr a-z A-Z)_SONAME='"$(call soname,$(l))"'))

BUILD    = build
ifdef SANITIZE
BUILD    = build-san
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

SRCS     = $(wildcard src/*.c)
OBJS     = $(SRCS:src/%.c=$(BUILD)/obj/%.o)
LIBOBJS  = $(filter-out $(BUILD)/obj/main.o,$(OBJS)) $(BUILD)/obj/ui_assets.o
# The dashboard's files (web/), embedded as a C source (src/ui.h).
UI_FILES = $(wildcard web/*.html web/*.css web/*.js web/*.svg)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%)

.PHONY: bench-soak all deps test unit rules rules-test schemas-check e2e demo fuzz bench bench-store bench-pods bench-proxy bench-rollout bench-convergence bench-containers bench-dashboard bench-gitops bench-alerting clean
all: $(BUILD)/v6

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) $(CFLAGS) -c -o $@ $<
$(BUILD)/obj/lazylib.o: CFLAGS += $(LAZY_SONAMES)

$(BUILD)/gen/ui_assets.c: $(UI_FILES) web/embed.py
	mkdir -p $(@D)
	$(PYTHON) web/embed.py $@ $(UI_FILES)

$(BUILD)/obj/ui_assets.o: $(BUILD)/gen/ui_assets.c src/ui.h | $(BUILD)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libv6.a: $(LIBOBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/v6: $(BUILD)/obj/main.o $(BUILD)/libv6.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libv6.a $(wildcard src/*.h) | $(BUILD)/unit
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libv6.a $(LIBS) $(UNIT_LIBS) -lcmocka
# test_image writes its tar files with libarchive itself; test_lazylib
# includes lazylib.c.
$(BUILD)/unit/test_image: UNIT_LIBS = -larchive
$(BUILD)/unit/test_lazylib: CFLAGS += $(LAZY_SONAMES)

$(BUILD)/obj $(BUILD)/unit:
	mkdir -p $@

deps:
	@scripts/deps.sh

unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

# The default rule pack (contrib/prometheus/v6-rules.yaml, a PrometheusRule)
# as a plain Prometheus rule file, and its promtool tests (tests/rules/,
# which read it from build/rules whatever BUILD is).
RULES_FILE = build/rules/v6-rules.yaml
$(RULES_FILE): contrib/prometheus/v6-rules.yaml
	mkdir -p $(@D)
	sed -n '/^spec:$$/,$$p' $< | tail -n +2 | sed 's/^  //' >$@
rules: $(RULES_FILE)
rules-test: $(RULES_FILE)
	@scripts/rules-test.sh $(RULES_FILE)

# Every manifest V6 ships against the upstream schemas in tests/schemas/ (README there).
schemas-check: $(BUILD)/v6
	V6_BIN=$(CURDIR)/$(BUILD)/v6 $(PYTHON) tests/schemas/check.py

# E2E_JOBS pytest-xdist workers (python3-pytest-xdist): the tests mostly wait
# on servers, so two workers on two cores halve the wall time; every test has
# its own server, ports, address ranges and bridge. E2E_JOBS=0: one process.
E2E_JOBS ?= 2
e2e: $(BUILD)/v6 $(BUILD)/v6-shim $(BUILD)/images/testapp.tar
	V6_BIN=$(CURDIR)/$(BUILD)/v6 $(PYTHON) -m pytest -q -rs --durations=15 -p no:cacheprovider \
	    $(if $(filter-out 0 1,$(E2E_JOBS)),-n $(E2E_JOBS)) tests/e2e

# The suite runs twice, as shipped and under AddressSanitizer and UBSan (with
# LeakSanitizer: the e2e fixtures stop every V6 process gracefully and scan
# its output), then fuzzes each target for FUZZ_CHECK_TIME seconds; a table of
# phase times and passed / failed / skipped counts ends it (scripts/test.sh).
# Under CI=true a skip not in tests/skip-allowlist.txt fails.
FUZZ_CHECK_TIME ?= 30
test:
	@CHECK_TIME=$(FUZZ_CHECK_TIME) scripts/test.sh $(MAKE)

demo: deps
	$(MAKE) all
	@scripts/demo.sh $(BUILD)/v6

# Builds the fuzz targets and runs each for FUZZ_TIME seconds (default 10 min).
FUZZ_TIME ?= 600
fuzz:
	$(MAKE) -k -C tests/fuzz check CHECK_TIME=$(FUZZ_TIME)

# Benchmarks print figures against peers run side by side; they never fail.
bench: bench-store bench-pods bench-proxy bench-rollout bench-convergence bench-containers bench-dashboard bench-gitops bench-alerting

bench-store: all
	@bench/store/run.sh $(BUILD)/v6

bench-containers: all
	@bench/containers/run.sh $(BUILD)/v6
	@bench/containers/start.sh $(BUILD)/v6

bench-pods: all
	@bench/pods/run.sh $(BUILD)/v6

bench-proxy: all
	@bench/proxy/run.sh $(BUILD)/v6

bench-rollout: all
	@bench/rollout/run.sh $(BUILD)/v6

bench-convergence: all
	@bench/convergence/run.sh $(BUILD)/v6

bench-dashboard: all
	@bench/dashboard/run.sh $(BUILD)/v6

bench-gitops: all
	@bench/gitops/run.sh $(BUILD)/v6

bench-alerting: all
	@bench/alerting/run.sh $(BUILD)/v6

# Not part of `bench`: an hour by default (BENCH_SOAK_MIN).
bench-soak: all
	@bench/soak/run.sh $(BUILD)/v6

clean:
	rm -rf build build-san

# ---- v6-shim (issue 3, node runtime) --------------------------------------
# The per-container supervisor (src/node_shim.c) as a small static program:
# rt_start prefers BUILD/v6-shim to `v6 shim`, whose shared libraries (curl,
# openssl, sqlite...) cost ~8 MB RSS and ~1.3 MB private memory per container.
# Always built without sanitizers (a static binary cannot carry them).
# Unused sections are dropped: fewer text pages faulted in (~70 kB of RSS).
SHIM_SRCS = src/node_shim.c src/node_shim_sec.c src/node_cgroup.c src/proc.c src/util.c src/util_utf8.c src/log.c
all: $(BUILD)/v6-shim
$(BUILD)/v6-shim: $(SHIM_SRCS) $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -Isrc -DV6_SHIM_MAIN -static \
	    -ffunction-sections -fdata-sections -Wl,--gc-sections \
	    -o $@ $(SHIM_SRCS) -ljansson
$(BUILD)/unit/test_node_runtime $(BUILD)/unit/test_node_runc: $(BUILD)/v6-shim
# ---- end v6-shim ----------------------------------------------------------

# ---- the test workload as an OCI image (issue 10 part 6) -----------------
# v6-testapp: `v6 testapp` as a static program, so an image of one file runs
# it anywhere. build/images/testapp is an OCI layout (umoci) with the tags the
# examples and the README use; build/images/testapp.tar an oci-archive of it
# named localhost:5000/v6/testapp:0.1 for `v6 image import` (no registry).
# `make demo` pushes the layout to a local registry instead.
TESTAPP_SRCS = src/testapp.c src/http.c src/http_head.c src/net.c src/log.c src/util.c src/util_utf8.c
TESTAPP_TAGS = 0.1 0.2 0.3
all: $(BUILD)/images/testapp.tar
$(BUILD)/v6-testapp: $(TESTAPP_SRCS) $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -Isrc -DV6_TESTAPP_MAIN -static \
	    -ffunction-sections -fdata-sections -Wl,--gc-sections \
	    -Wl,--no-warnings -o $@ $(TESTAPP_SRCS) -luv_a -lhttp_parser -ljansson -lssl -lcrypto -lpthread -ldl
$(BUILD)/images/testapp.tar: $(BUILD)/v6-testapp scripts/testapp-image.sh
	sh scripts/testapp-image.sh $(BUILD)/v6-testapp $(BUILD)/images "$(TESTAPP_TAGS)"
# ---- end test workload image ---------------------------------------------
