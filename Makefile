# walship - WAL archiving for PostgreSQL.  See README.md.

VERSION := $(shell cat VERSION)

CC       ?= cc
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
SPOOLDIR ?= /var/spool/walship
DESTDIR  ?=
INSTALL  ?= install

BUILD    ?= build
CFLAGS   ?= -O2 -g
# -Werror only when asked for: .ci/run and make lint set WERROR=1; a packager's newer compiler may
# warn where ours does not, and that must not stop a package build.
WERROR   ?= 0
PKG_CONFIG ?= pkg-config
PG_CONFIG  ?= pg_config

# $(call cc_option,FLAG): FLAG if $(CC) accepts it (clang refuses GCC's -Wno-format-truncation).
cc_option = $(shell $(CC) -Werror $(1) -E -x c /dev/null -o /dev/null 2>/dev/null && echo $(1))
WARNINGS := -std=c11 -Wall -Wextra -Wshadow -Wformat=2 -Wconversion $(call cc_option,-Wno-format-truncation) \
	$(if $(filter 1,$(WERROR)),-Werror)

# Compiler and linker flags of the libraries, from pkg-config.  libcurl and libxml2 (S3 only) are
# loaded with dlopen when an S3 store is opened (src/store/s3_lib.h): linked, they and their
# dependencies cost every hook call about 3 ms of start-up.  Their headers are still needed.
# dlopen is in libdl before glibc 2.34 and in libc from 2.34 (libdl is an empty stub there):
# -ldl --as-needed records libdl only where it has dlopen.  libpq: pkg-config's libpq.pc, else
# pg_config (some PostgreSQL packages ship no .pc file).
LINKED_PKGS := libzstd libssh2 libssl libcrypto jansson
DLOPEN_PKGS := libcurl libxml-2.0
PKG_CFLAGS  := $(shell $(PKG_CONFIG) --cflags $(LINKED_PKGS) $(DLOPEN_PKGS))
PKG_LIBS    := $(shell $(PKG_CONFIG) --libs $(LINKED_PKGS))
PQ_CFLAGS   := $(shell $(PKG_CONFIG) --cflags libpq 2>/dev/null || echo "-I$$($(PG_CONFIG) --includedir)")
PQ_LIBS     := $(shell $(PKG_CONFIG) --libs libpq 2>/dev/null || echo "-L$$($(PG_CONFIG) --libdir) -lpq")

CPPFLAGS += -Isrc $(PKG_CFLAGS) $(PQ_CFLAGS) -D_GNU_SOURCE -DWALSHIP_VERSION='"$(VERSION)"'
LDLIBS   := $(PKG_LIBS) -Wl,--push-state,--as-needed -ldl -Wl,--pop-state -lpthread
PYTEST   ?= /usr/bin/python3 -m pytest

LIB_SRC  := $(wildcard src/util/*.c src/pg/*.c src/store/*.c src/repo/*.c src/wal/*.c src/cmd/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
PROGRAMS := walship walship-push walship-fetch
BINS     := $(PROGRAMS:%=$(BUILD)/bin/%)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
# Man pages: man/*.1 and man/*.5 carry @VERSION@ in .TH; $(BUILD)/man/ holds them with VERSION's.
MANS     := $(wildcard man/*.1 man/*.5)
MAN_OUT  := $(MANS:%=$(BUILD)/%)
# LD_PRELOAD shims the integration tests inject faults with (tests/preload/).
PRELOADS := $(patsubst tests/preload/%.c,$(BUILD)/preload/%.so,$(wildcard tests/preload/*.c))

# The test build: the same sources with the test hooks compiled in (-DWALSHIP_TESTING: the
# environment variables WALSHIP_TEST_LOCK_EXPIRY, WALSHIP_TEST_PRUNE_STEP_DELAY,
# WALSHIP_TEST_LIBCURL and WALSHIP_TEST_LIBXML2, and store_local_test_force_link_fallback).
# `make` builds the release programs in $(BUILD)/bin, which `make install` and the packages
# ship; the unit and integration tests run $(TEST_BUILD)'s, the same layout one level down.
TEST_BUILD := $(BUILD)/testing
TEST_OBJ   := $(LIB_SRC:%.c=$(TEST_BUILD)/%.o)
TEST_BINS  := $(PROGRAMS:%=$(TEST_BUILD)/bin/%)
UNITS      := $(UNIT_SRC:tests/unit/%.c=$(TEST_BUILD)/tests/%)
# Evaluated only where used: packagers who skip the tests need no cmocka.
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

.PHONY: all man preload testing objects test test-matrix unit integration asan lint install uninstall demo standby-demo docker bench clean \
	format dist deb rpm fuzz fuzz-build fuzz-replay

# Keep object files of the programs between builds.
.SECONDARY:

all: $(BINS) $(MAN_OUT)

man: $(MAN_OUT)

$(BUILD)/man/%: man/% VERSION
	@mkdir -p $(dir $@)
	sed 's/@VERSION@/$(VERSION)/g' $< >$@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARNINGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(TEST_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DWALSHIP_TESTING $(WARNINGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libwalship.a: $(LIB_OBJ)
$(TEST_BUILD)/libwalship.a: $(TEST_OBJ)
$(BUILD)/libwalship.a $(TEST_BUILD)/libwalship.a:
	@rm -f $@
	$(AR) rcs $@ $^

# Only walship itself talks to the server (libpq): the hooks stay small and start fast.
$(BUILD)/bin/walship $(TEST_BUILD)/bin/walship: LDLIBS += $(PQ_LIBS)
$(TEST_BUILD)/tests/%: LDLIBS += $(PQ_LIBS)

$(BUILD)/bin/%: $(BUILD)/src/bin/%.o $(BUILD)/libwalship.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(TEST_BUILD)/bin/%: $(TEST_BUILD)/src/bin/%.o $(TEST_BUILD)/libwalship.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Plain -O2, never sanitized: a shim is loaded first, before any sanitizer runtime.
preload: $(PRELOADS)

$(BUILD)/preload/%.so: tests/preload/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g $(WARNINGS) -fPIC -shared -o $@ $< -ldl

$(TEST_BUILD)/tests/%: $(TEST_BUILD)/tests/unit/%.o $(TEST_BUILD)/libwalship.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

# What the tests run (see tests/integration/README.md for running them by hand).
testing: $(TEST_BINS) $(UNITS) $(PRELOADS)

# Every object file of both builds, and the shims: what make lint compiles.
objects: $(LIB_OBJ) $(PROGRAMS:%=$(BUILD)/src/bin/%.o) $(TEST_OBJ) $(PROGRAMS:%=$(TEST_BUILD)/src/bin/%.o) \
	$(UNIT_SRC:%.c=$(TEST_BUILD)/%.o) $(PRELOADS)

# The test-only packages (Docker) installed if missing, then unit tests (fast, no services), the
# fuzz corpora replayed, then the integration tests that start a real PostgreSQL as an
# unprivileged user: one after the other also under make -j (prerequisites would run side by
# side), each built with the jobs it is given.
# make test is the developers' and CI's target, so warnings are errors there unless WERROR is given
# (packagers run make and make unit).
TEST_WERROR = $(if $(filter command line environment,$(origin WERROR)),$(WERROR),1)
# Then the version matrix's runs that make integration has not covered: PostgreSQL 13 and 17 in
# Debian roots, and pg_upgrade from 13 to 15 and from 15 to 17 (TEST_MATRIX= skips them).
TEST_MATRIX ?= 13 17 13to15 15to17
test:
	scripts/install-deps --test
	$(MAKE) WERROR=$(TEST_WERROR) unit
	$(MAKE) WERROR=$(TEST_WERROR) fuzz-replay
	$(MAKE) WERROR=$(TEST_WERROR) integration
	$(if $(strip $(TEST_MATRIX)),PYTEST='$(PYTEST)' tests/matrix/run $(TEST_MATRIX))

# The version matrix alone (tests/matrix/README.md): the version-dependent flows against each
# major's real server, walship built in that major's Debian release; PG_MAJORS="13 15 17" selects
# (pg_upgrade between selected neighbours is added).  As root; the first run makes the roots.
PG_MAJORS ?= 13 15 17
test-matrix:
	PYTEST='$(PYTEST)' tests/matrix/run $(PG_MAJORS)

unit: $(UNITS) $(TEST_BINS)
	@set -e; for t in $(UNITS); do echo "== $$t"; WALSHIP_BIN=$(abspath $(TEST_BUILD)/bin) $$t; done

# The S3 test server (s3rver behind the checking proxy), from the committed lockfile.
S3PROXY_DEPS := tests/s3proxy/node_modules/.package-lock.json
$(S3PROXY_DEPS): tests/s3proxy/package-lock.json
	cd tests/s3proxy && npm ci --no-audit --no-fund

# test_stores.py runs the store contract suite against sshd and S3; test_release_build.py checks
# that the release programs ($(BUILD)/bin) carry no test hook.
integration: $(TEST_BINS) $(BINS) $(TEST_BUILD)/tests/test_store_contract $(PRELOADS) $(S3PROXY_DEPS)
	WALSHIP_BIN=$(abspath $(TEST_BUILD)/bin) WALSHIP_RELEASE_BIN=$(abspath $(BUILD)/bin) \
		WALSHIP_PRELOAD=$(abspath $(BUILD)/preload) $(PYTEST) -q -ra tests/integration $(PYTEST_ARGS)

# ---- fuzzing (tests/fuzz/README.md) ----
# One harness per parser of outside input: tests/fuzz/fuzz_<name>.c, seeds in tests/fuzz/corpus/<name>/.
FUZZ_HARNESS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CPPFLAGS = $(CPPFLAGS) -Itests/fuzz -DFUZZ_SOURCE_DIR='"$(CURDIR)/tests/fuzz"'
SAN_FLAGS    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

# make test: each harness linked with replay.c (no libFuzzer) against a sanitized copy of the
# library, run once over its committed corpus.
REPLAY_BUILD := $(BUILD)/fuzz-replay
REPLAY_BINS  := $(FUZZ_HARNESS:%=$(REPLAY_BUILD)/bin/%)

$(REPLAY_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CPPFLAGS) $(WARNINGS) $(SAN_FLAGS) -MMD -MP -c -o $@ $<

$(REPLAY_BUILD)/libwalship.a: $(LIB_SRC:%.c=$(REPLAY_BUILD)/%.o)
	@rm -f $@
	$(AR) rcs $@ $^

$(REPLAY_BUILD)/bin/%: $(REPLAY_BUILD)/tests/fuzz/fuzz_%.o $(REPLAY_BUILD)/tests/fuzz/fuzz.o \
		$(REPLAY_BUILD)/tests/fuzz/replay.o $(REPLAY_BUILD)/libwalship.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS) $(PQ_LIBS)

fuzz-replay: $(REPLAY_BINS)
	@set -e; for h in $(FUZZ_HARNESS); do $(REPLAY_BUILD)/bin/$$h tests/fuzz/corpus/$$h; done

# make fuzz: libFuzzer with clang, FUZZ_SECONDS per harness (FUZZERS="a b" for some of them).
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 30
FUZZERS      ?= $(FUZZ_HARNESS)
FUZZ_BINS    := $(FUZZ_HARNESS:%=$(FUZZ_BUILD)/bin/%)
FUZZ_CFLAGS  := $(SAN_FLAGS) -fsanitize=fuzzer-no-link -Wno-unknown-warning-option

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(WARNINGS) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/libwalship.a: $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
	@rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_BUILD)/bin/%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_BUILD)/tests/fuzz/fuzz.o $(FUZZ_BUILD)/libwalship.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(SAN_FLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS) $(PQ_LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZERS:%=$(FUZZ_BUILD)/bin/%)
	tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZERS)

# AddressSanitizer and UndefinedBehaviorSanitizer build, then every test on it.
asan:
	$(MAKE) BUILD=build-asan CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined' \
		LDFLAGS='-fsanitize=address,undefined' TEST_MATRIX= test

FORMAT_FILES = $(wildcard src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h tests/fuzz/*.c tests/fuzz/*.h tests/preload/*.c)

# The libraries' include directories for cppcheck, without those the compiler searches anyway
# (libcurl's .pc names /usr/include/<multiarch>): cppcheck would check the C library's headers.
CC_INCLUDES    = $(shell $(CC) -E -Wp,-v -x c /dev/null 2>&1 | sed -n 's,^ \(/.*\),-I\1,p')
LINT_INCLUDES  = $(filter-out $(CC_INCLUDES),$(filter -I%,$(PKG_CFLAGS) $(PQ_CFLAGS)))

# make lint compiles every object of both builds with -Werror, in its own directory (make does
# not rebuild on a change of flags), then checks the format and runs cppcheck.
lint:
	scripts/check-layers
	$(MAKE) BUILD=$(BUILD)/lint WERROR=1 objects
	clang-format --dry-run --Werror $(FORMAT_FILES)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance --std=c11 \
		--inline-suppr --suppress=missingIncludeSystem -Isrc -Itests/fuzz $(LINT_INCLUDES) \
		-D_GNU_SOURCE src tests/unit tests/fuzz

format:
	clang-format -i $(FORMAT_FILES)

install: $(BINS) $(MAN_OUT)
	$(INSTALL) -d $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	$(foreach s,1 5,$(if $(filter %.$(s),$(MAN_OUT)),$(INSTALL) -d $(DESTDIR)$(MANDIR)/man$(s) && \
		$(INSTALL) -m 0644 $(filter %.$(s),$(MAN_OUT)) $(DESTDIR)$(MANDIR)/man$(s)/ &&)) :
	$(INSTALL) -d -m 0700 $(DESTDIR)$(SPOOLDIR)
	@if [ -z "$(DESTDIR)" ] && id postgres >/dev/null 2>&1; then chown postgres:postgres $(SPOOLDIR); fi

uninstall:
	rm -f $(PROGRAMS:%=$(DESTDIR)$(BINDIR)/%)
	rm -f $(foreach m,$(notdir $(MANS)),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(m))
	-rmdir $(DESTDIR)$(SPOOLDIR) 2>/dev/null

# The main job on a local-disk repository, installing what it needs (Debian 12).
demo:
	scripts/install-deps
	$(MAKE) all
	scripts/demo

# The primary/standby walkthrough (README, "Primary and standby walkthrough").
standby-demo:
	scripts/install-deps
	$(MAKE) all
	scripts/standby-demo

# The release tarball and the packages, all in $(BUILD)/: walship-$(VERSION).tar.gz,
# walship_$(VERSION)_<arch>.deb (debhelper, lintian) and walship-$(VERSION)-1.<arch>.rpm (rpm).
dist:
	scripts/make-dist $(BUILD)

deb:
	scripts/build-deb $(BUILD)

rpm:
	scripts/build-rpm $(BUILD)

# walship's Docker image (docs/docker.md): the .deb, then the image on the postgres image
# DOCKER_BASE names (postgres:15-bookworm from Docker Hub; "standin" builds a local stand-in of it
# from a Debian 12 root, for machines without Docker Hub).  Needs a running Docker engine.
DOCKER_BASE ?= postgres:15-bookworm
DOCKER_TAG ?= walship:$(VERSION)
docker:
	DOCKER_BASE='$(DOCKER_BASE)' DOCKER_TAG='$(DOCKER_TAG)' scripts/docker-build $(BUILD)

bench: $(BINS)
	scripts/bench

clean:
	rm -rf build build-asan $(FUZZ_BUILD)

-include $(wildcard $(BUILD)/src/*/*.d $(TEST_BUILD)/src/*/*.d $(TEST_BUILD)/tests/unit/*.d)
-include $(wildcard $(REPLAY_BUILD)/*/*/*.d $(FUZZ_BUILD)/*/*/*.d)
