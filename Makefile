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
WARNINGS := -std=c11 -Wall -Wextra -Wshadow -Wformat=2 -Wconversion -Wno-format-truncation -Werror
CPPFLAGS += -Isrc -I/usr/include/postgresql -I/usr/include/libxml2 -D_GNU_SOURCE -DWALSHIP_VERSION='"$(VERSION)"'
# libcurl and libxml2 (S3 only) are loaded with dlopen when an S3 store is opened
# (src/store/s3_lib.h): linked, they and their dependencies cost every hook call
# about 3 ms of start-up.  Their headers are still needed; dlopen is in glibc's libc.
LDLIBS   := -lzstd -lssh2 -lssl -lcrypto -ljansson -lpthread
PYTEST   ?= /usr/bin/python3 -m pytest

LIB_SRC  := $(wildcard src/util/*.c src/pg/*.c src/store/*.c src/repo/*.c src/wal/*.c src/cmd/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
PROGRAMS := walship walship-push walship-fetch
BINS     := $(PROGRAMS:%=$(BUILD)/bin/%)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Man pages: man/*.1 and man/*.5 carry @VERSION@ in .TH; $(BUILD)/man/ holds them with VERSION's.
MANS     := $(wildcard man/*.1 man/*.5)
MAN_OUT  := $(MANS:%=$(BUILD)/%)
# LD_PRELOAD shims the integration tests inject faults with (tests/preload/).
PRELOADS := $(patsubst tests/preload/%.c,$(BUILD)/preload/%.so,$(wildcard tests/preload/*.c))

.PHONY: all man preload test unit integration asan lint install uninstall demo standby-demo bench clean format dist deb \
	rpm fuzz fuzz-build fuzz-replay

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

$(BUILD)/libwalship.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# Only walship itself talks to the server (libpq): the hooks stay small and start fast.
$(BUILD)/bin/walship: LDLIBS += -lpq
$(BUILD)/tests/%: LDLIBS += -lpq

$(BUILD)/bin/%: $(BUILD)/src/bin/%.o $(BUILD)/libwalship.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Plain -O2, never sanitized: a shim is loaded first, before any sanitizer runtime.
preload: $(PRELOADS)

$(BUILD)/preload/%.so: tests/preload/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=c11 -Wall -Wextra -Wshadow -Wconversion -Wno-format-truncation -Werror -fPIC -shared \
		-o $@ $< -ldl

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libwalship.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

# Unit tests first (fast, no services), the fuzz corpora replayed, then the
# integration tests that start a real PostgreSQL as an unprivileged user.
test: unit fuzz-replay integration

unit: $(UNITS) $(BINS)
	@set -e; for t in $(UNITS); do echo "== $$t"; WALSHIP_BIN=$(abspath $(BUILD)/bin) $$t; done

# The S3 test server (s3rver behind the checking proxy), from the committed lockfile.
S3PROXY_DEPS := tests/s3proxy/node_modules/.package-lock.json
$(S3PROXY_DEPS): tests/s3proxy/package-lock.json
	cd tests/s3proxy && npm ci --no-audit --no-fund

# test_stores.py runs the store contract suite against sshd and S3.
integration: $(BINS) $(BUILD)/tests/test_store_contract $(PRELOADS) $(S3PROXY_DEPS)
	WALSHIP_BIN=$(abspath $(BUILD)/bin) WALSHIP_PRELOAD=$(abspath $(BUILD)/preload) $(PYTEST) -q -ra tests/integration $(PYTEST_ARGS)

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
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS) -lpq

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
	$(FUZZ_CC) $(SAN_FLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS) -lpq

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZERS:%=$(FUZZ_BUILD)/bin/%)
	tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZERS)

# AddressSanitizer and UndefinedBehaviorSanitizer build, then every test on it.
asan:
	$(MAKE) BUILD=build-asan CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined' \
		LDFLAGS='-fsanitize=address,undefined' test

FORMAT_FILES = $(wildcard src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h tests/fuzz/*.c tests/fuzz/*.h tests/preload/*.c)

lint:
	scripts/check-layers
	clang-format --dry-run --Werror $(FORMAT_FILES)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance --std=c11 \
		--inline-suppr --suppress=missingIncludeSystem -Isrc -Itests/fuzz -I/usr/include/postgresql \
		-I/usr/include/libxml2 -D_GNU_SOURCE src tests/unit tests/fuzz

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

bench: $(BINS)
	scripts/bench

clean:
	rm -rf build build-asan $(FUZZ_BUILD)

-include $(LIB_OBJ:.o=.d) $(UNITS:$(BUILD)/tests/%=$(BUILD)/tests/unit/%.d)
-include $(wildcard $(REPLAY_BUILD)/*/*/*.d $(FUZZ_BUILD)/*/*/*.d)
