# snatproxy: `make` builds build/snatproxy; `make SAN=1` builds an
# AddressSanitizer/UBSan variant in build-san/ that the same tests run against;
# `make SAN=thread` a ThreadSanitizer one in build-tsan/.

CC      ?= gcc
PKGS    := liburing inih openssl
VERSION := 0.1.0

ifeq ($(SAN),1)
BUILD   := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(SAN),thread)
BUILD   := build-tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
else
BUILD   := build
SANFLAGS :=
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Iinclude -pthread -D_GNU_SOURCE \
	   -DSNATPROXY_VERSION='"$(VERSION)"' $(PKG_CFLAGS) $(SANFLAGS)
LDFLAGS += -pthread $(SANFLAGS)
LDLIBS  += $(PKG_LIBS)

SRCS    := $(wildcard proxy/*.c)
OBJS    := $(SRCS:proxy/%.c=$(BUILD)/obj/%.o)
LIBOBJS := $(filter-out $(BUILD)/obj/main.o,$(OBJS))
UNITS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
TOOLS   := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(wildcard tests/tools/*.c)) \
	   $(patsubst bench/tools/%.c,$(BUILD)/tools/%,$(wildcard bench/tools/*.c))

PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR  ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share/snatproxy
UNITDIR ?= $(PREFIX)/lib/systemd/system
# The unit reads /etc/snatproxy/snatproxy.ini whatever the PREFIX.
SYSCONFDIR ?= /etc

.PHONY: all deps run test test-san demo ha-demo bench soak check-shell check-format format clean install uninstall
all: $(BUILD)/snatproxy $(UNITS) $(TOOLS)

$(BUILD)/snatproxy: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: proxy/%.c $(wildcard include/*.h) | $(BUILD)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(LIBOBJS) | $(BUILD)/tests
	$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS)

$(BUILD)/tools/%: tests/tools/%.c | $(BUILD)/tools
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

$(BUILD)/tools/%: bench/tools/%.c | $(BUILD)/tools
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

$(BUILD)/obj $(BUILD)/tests $(BUILD)/tools:
	mkdir -p $@

# Installs build and test dependencies from Debian's packages (root only).
deps:
	@scripts/deps

# Proxy in the foreground in front of two local nginx servers.
run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run-local $(BUILD)/snatproxy

# The whole suite against the normal build and the sanitizer build, and the
# tests where threads meet (reloads, the admin endpoint, health checks)
# against the ThreadSanitizer build.
TSAN_TESTS ?= ^(reload|admin|health|ready$$|status_page$$)
NPROC   := $(shell nproc 2>/dev/null || echo 2)
test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all
	@$(MAKE) --no-print-directory -j$(NPROC) SAN=1 all
	@$(MAKE) --no-print-directory -j$(NPROC) SAN=thread all
	@tests/run build 'build-san:!^fuzz_smoke$$' 'build-tsan:$(TSAN_TESTS)'

# Everything at once against the built binary for SOAK_MINUTES (default 10);
# see docs/reliability.md.
SOAK_MINUTES ?= 10
soak: deps
	@$(MAKE) --no-print-directory all
	@tests/soak/soak --minutes $(SOAK_MINUTES)

demo: deps
	@$(MAKE) --no-print-directory all
	@tests/lab/demo build/snatproxy

# A VIP that survives a node: a VRRP pair (keepalived) and an ECMP group
# (BIRD 2 over BGP) in namespaces, measured; see docs/ha.md.
ha-demo: deps
	@$(MAKE) --no-print-directory all
	@tests/lab/ha-demo build/snatproxy

bench: deps
	@$(MAKE) --no-print-directory all
	@bench/run
	@bench/tls

# The binary, example configs (config/tls.ini among them), the docs, the
# systemd unit (with the binary's installed path), the man page, and the
# starter /etc/snatproxy/snatproxy.ini unless one exists (an operator's file
# is never replaced); DESTDIR stages the tree for a package.
install: $(BUILD)/snatproxy
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DATADIR)/examples \
		$(DESTDIR)$(DATADIR)/docs $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/snatproxy
	install -m 755 $(BUILD)/snatproxy $(DESTDIR)$(SBINDIR)/snatproxy
	install -m 644 config/*.ini $(DESTDIR)$(DATADIR)/examples/
	install -m 644 README.md docs/*.md docs/*.svg $(DESTDIR)$(DATADIR)/docs/
	install -m 644 docs/snatproxy.8 $(DESTDIR)$(MANDIR)/man8/snatproxy.8
	sed 's|@SBINDIR@|$(SBINDIR)|g' config/snatproxy.service >$(DESTDIR)$(UNITDIR)/snatproxy.service
	chmod 644 $(DESTDIR)$(UNITDIR)/snatproxy.service
	[ -e $(DESTDIR)$(SYSCONFDIR)/snatproxy/snatproxy.ini ] || \
		install -m 644 config/snatproxy.ini $(DESTDIR)$(SYSCONFDIR)/snatproxy/snatproxy.ini

# The starter configuration stays: it may be the operator's by now.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/snatproxy $(DESTDIR)$(MANDIR)/man8/snatproxy.8 \
		$(DESTDIR)$(UNITDIR)/snatproxy.service
	rm -rf $(DESTDIR)$(DATADIR)

# shellcheck at warning level (following sourced files, -x) over every shell
# script in the tree (tracked, or new and not ignored; deleted ones are passed
# over): a file whose first line is a sh or bash shebang, or named *.sh (one
# without a shebang is then reported, SC2148). Run from the top: the scripts'
# "# shellcheck source=" paths are relative to it.
SHELL_SCRIPTS = git ls-files -z --cached --others --exclude-standard | xargs -0 awk 'BEGIN { \
	for (i = 1; i < ARGC; i++) { f = ARGV[i]; l = ""; \
		if ((getline l <f) >= 0 && (f ~ /\.sh$$/ || l ~ /^\#! *(\/usr)?\/bin\/(env +)?(ba|da)?sh([ \t]|$$)/)) print f; \
		close(f) } }'
check-shell: deps
	@files=$$($(SHELL_SCRIPTS)) && [ -n "$$files" ] || { echo "check-shell: no scripts listed (git ls-files)" >&2; exit 1; }; \
	shellcheck -x -S warning $$files && echo "check-shell: $$(echo "$$files" | wc -l) scripts, no finding"

check-format:
	@clang-format --dry-run --Werror proxy/*.c include/*.h tests/unit/*.c tests/tools/*.c

format:
	clang-format -i proxy/*.c include/*.h tests/unit/*.c tests/tools/*.c

clean:
	rm -rf build build-san build-tsan

# ---- Fuzzing: libFuzzer harnesses (tests/fuzz/fuzz_NAME.c), built with clang
# and AddressSanitizer/UBSan into build-fuzz/. A harness's seeds are in
# tests/fuzz/corpus/NAME/, with optional tests/fuzz/NAME.dict (a dictionary)
# and tests/fuzz/NAME.options (libFuzzer flags): adding a harness is adding
# its file, nothing here. `make fuzz` runs each for FUZZ_SECONDS and fails on
# any finding (the input is kept in build-fuzz/artifacts/NAME/).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_BUILD   := build-fuzz
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS  := -O1 -g -std=gnu11 -Wall -Wextra -Werror -Iinclude -pthread -D_GNU_SOURCE \
		-DSNATPROXY_VERSION='"$(VERSION)"' $(PKG_CFLAGS) -fno-omit-frame-pointer \
		-fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJS    := $(patsubst proxy/%.c,$(FUZZ_BUILD)/obj/%.o,$(filter-out proxy/main.c,$(SRCS)))

.PHONY: fuzz fuzz-build clean-fuzz
# The objects are kept: make would delete them as intermediate files.
.SECONDARY: $(FUZZ_OBJS)
fuzz-build: $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)

fuzz: fuzz-build
	@tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_NAMES)

$(FUZZ_BUILD)/obj/%.o: proxy/%.c $(wildcard include/*.h) | $(FUZZ_BUILD)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Itests/fuzz -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(PKG_LIBS)

$(FUZZ_BUILD)/obj:
	mkdir -p $@

clean-fuzz:
	rm -rf $(FUZZ_BUILD)
