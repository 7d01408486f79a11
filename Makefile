# preforkd - a preforking HTTP/1.1 server.
#
#   make            build build/preforkd
#   make run        start it in the foreground on etc/dev.conf (127.0.0.1:8080)
#   make check      unit and integration tests, then again under ASan+UBSan
#   make install    PREFIX, DESTDIR, SYSCONFDIR, SBINDIR, MANDIR honoured;
#                   the binary is stripped (INSTALL_STRIP= keeps the symbols)
#   make deps       install the Debian build dependencies (root) or print how
#
# Only `make deps`, `make run` and `make check` install packages (as root,
# with apt-get, once per command); `make` and `make install` never do: they
# stop with the list of what is missing.

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share
# Debian's place for units is /lib/systemd/system; a local install's is
# under its prefix (systemd also reads /usr/local/lib/systemd/system).
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
LOCALSTATEDIR ?= /var
DESTDIR    ?=

VERSION    := 0.1.0
CXX        ?= g++
PKGS       := libconfig++ libseccomp openssl
DEB_DEPS   := g++ make pkg-config libconfig++-dev libseccomp-dev libssl-dev openssl libcriterion-dev libcrypt-dev curl media-types \
              clang mandoc

BUILD      ?= build
SANITIZE   ?=
# CXXFLAGS is the user's (optimisation, debugging); the project's own flags
# are kept apart so that `make CXXFLAGS=-O0` cannot drop -Werror or -Iinclude.
CXXFLAGS   ?= -O2 -g
PF_FLAGS   := -std=c++20 -Wall -Wextra -Werror -Iinclude -MMD -MP \
              -DPREFORKD_VERSION='"$(VERSION)"' -DSYSCONFDIR='"$(SYSCONFDIR)"'
# Full RELRO: every symbol is bound when the master starts, so the GOT is
# read-only before the first fork and no worker writes a copy of it (or
# goes deep into the stack through the lazy resolver) on its first call.
PF_LDFLAGS := -Wl,-z,relro,-z,now
ifneq ($(SANITIZE),)
# g++ 12 reports false maybe-uninitialized warnings inside <regex> and
# <functional> when sanitizers instrument them; the plain build keeps it.
PF_FLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all \
              -Wno-maybe-uninitialized
PF_LDFLAGS += -fsanitize=$(SANITIZE)
endif

# HAVE_BUILD_DEPS: what building preforkd needs; HAVE_DEPS: that and what the
# tests and `make run` need.
HAVE_BUILD_DEPS := command -v $(firstword $(CXX)) >/dev/null && pkg-config --exists $(PKGS) 2>/dev/null \
                   && [ -r /usr/include/crypt.h ]
HAVE_DEPS  := $(HAVE_BUILD_DEPS) && pkg-config --exists criterion 2>/dev/null \
              && command -v curl >/dev/null && command -v clang++ >/dev/null \
              && command -v mandoc >/dev/null && [ -r /etc/mime.types ] && command -v openssl >/dev/null
BUILD_DEPS_OK := $(shell $(HAVE_BUILD_DEPS) && echo yes)
DEPS_OK    := $(shell $(HAVE_DEPS) && echo yes)
MISSING_DEPS = echo "preforkd: missing dependencies for $@; run 'make deps' as root, or:" >&2; \
               echo "  apt-get install -y $(DEB_DEPS)" >&2; exit 1
CONFIG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CONFIG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CRITERION_LIBS := $(shell pkg-config --libs criterion 2>/dev/null)
# crypt_r(3) for Basic authentication (bcrypt, SHA-crypt, yescrypt).
SYS_LIBS   := -lcrypt

SRCS       := $(sort $(wildcard src/*.cpp src/config/*.cpp src/http/*.cpp src/tls/*.cpp))
LIB_SRCS   := $(filter-out src/main.cpp,$(SRCS))
OBJS       := $(SRCS:%.cpp=$(BUILD)/%.o)
LIB_OBJS   := $(LIB_SRCS:%.cpp=$(BUILD)/%.o)
UNIT_SRCS  := $(sort $(wildcard tests/unit/*.cpp))
INTEG_SRCS := $(sort $(wildcard tests/integration/*.cpp))
UNIT_OBJS  := $(UNIT_SRCS:%.cpp=$(BUILD)/%.o)
INTEG_OBJS := $(INTEG_SRCS:%.cpp=$(BUILD)/%.o)

.PHONY: all run check check-unit check-integration check-sanitize deps \
        install uninstall clean

all: $(BUILD)/preforkd

# Installs once and checks the result: a dependency still missing after
# apt-get fails here, with the list, instead of in every later step.
deps:
	@if $(HAVE_DEPS); then \
	    echo "build dependencies present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	    echo "installing build dependencies: $(DEB_DEPS)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_DEPS) \
	        || exit 1; \
	    if ! ($(HAVE_DEPS)); then \
	        echo "preforkd: dependencies still missing after apt-get install $(DEB_DEPS)" >&2; \
	        exit 1; \
	    fi; \
	else \
	    echo "missing build dependencies; as root run:" >&2; \
	    echo "  apt-get install -y $(DEB_DEPS)" >&2; exit 1; \
	fi

# `make deps` first when something is missing, then the rest in a make that
# sees the new pkg-config answers; that make never installs again.
ifneq ($(DEPS_OK),yes)
DEPS_FIRST = $(MAKE) --no-print-directory deps &&
endif

ifeq ($(BUILD_DEPS_OK),yes)
$(BUILD)/preforkd: $(OBJS)
	$(CXX) $(PF_LDFLAGS) $(LDFLAGS) -o $@ $^ $(CONFIG_LIBS) $(SYS_LIBS)

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(PF_FLAGS) $(CPPFLAGS) $(CXXFLAGS) $(CONFIG_CFLAGS) -c -o $@ $<
else
$(BUILD)/preforkd install:
	@$(MISSING_DEPS)
endif

# What the integration and stress suites need to find the daemon and the tree.
TEST_ENV = PREFORKD_BIN=$(abspath $(BUILD)/preforkd) PREFORKD_SRCDIR=$(CURDIR)

ifeq ($(DEPS_OK),yes)
$(BUILD)/unit-tests: $(UNIT_OBJS) $(LIB_OBJS)
	$(CXX) $(PF_LDFLAGS) $(LDFLAGS) -o $@ $^ $(CONFIG_LIBS) $(SYS_LIBS) $(CRITERION_LIBS)

$(BUILD)/integration-tests: $(INTEG_OBJS) $(LIB_OBJS) | $(BUILD)/upgrade-fault.so
	$(CXX) $(PF_LDFLAGS) $(LDFLAGS) -o $@ $^ $(CONFIG_LIBS) $(SYS_LIBS) $(CRITERION_LIBS)

# Preloaded into the new image of an upgrade test, beside the binary under
# test, to make it fail on purpose (tests/preload/upgrade_fault.cpp).  No
# sanitizer: it is a stand-in for a broken build, not code under test.
$(BUILD)/upgrade-fault.so: tests/preload/upgrade_fault.cpp
	@mkdir -p $(dir $@)
	$(CXX) -std=c++20 -Wall -Wextra -Werror -O2 -fPIC -shared -o $@ $< -ldl

# Criterion runs each test in its own process, -j2 on this 2-core target.
check-unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests -j2 --color=never

check-integration: $(BUILD)/preforkd $(BUILD)/integration-tests
	$(TEST_ENV) $(BUILD)/integration-tests -j2 --color=never
else
$(BUILD)/unit-tests $(BUILD)/integration-tests check-unit check-integration:
	@$(MISSING_DEPS)
endif

run:
	@$(DEPS_FIRST) $(MAKE) --no-print-directory $(BUILD)/preforkd
	$(BUILD)/preforkd -f -c etc/dev.conf

# The objects are built in parallel first; the test binaries then run one
# after the other (each runs its tests -j2 itself).
JOBS       := $(shell nproc 2>/dev/null || echo 2)
# The sanitizer build is unoptimised: it compiles in less than half the CPU
# time of -O1, and the tests it runs wait on sockets far more than they
# compute, so the slower code costs less than the compiler saves.
SAN_VARS   := BUILD=build/sanitize SANITIZE=address,undefined CXXFLAGS="-O0 -g"

# Criterion's runner itself leaks a little at exit; only that is suppressed.
check-sanitize:
	$(MAKE) --no-print-directory -j$(JOBS) $(SAN_VARS) build/sanitize/preforkd \
	    build/sanitize/unit-tests build/sanitize/integration-tests
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $(MAKE) --no-print-directory \
	    $(SAN_VARS) check-unit check-integration

check:
	$(DEPS_FIRST) $(MAKE) --no-print-directory -j$(JOBS) $(BUILD)/preforkd $(BUILD)/unit-tests \
	    $(BUILD)/integration-tests
	$(MAKE) --no-print-directory check-unit check-integration
	$(MAKE) --no-print-directory check-sanitize
	$(MAKE) --no-print-directory fuzz-corpus-check

# Installed files name real paths: @SBINDIR@-style placeholders in units,
# scripts and configs, the default paths in the man pages.
SUBST      = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
                 -e 's|@VERSION@|$(VERSION)|g'
MAN_SUBST  = sed -e 's|/usr/local/sbin/preforkd|$(SBINDIR)/preforkd|g' \
                 -e 's|/etc/preforkd/|$(SYSCONFDIR)/preforkd/|g'
STAGE      = $(BUILD)/stage
INSTALL_STRIP ?= -s
# Copies of the init script and logrotate snippet as last installed: what
# tells a file the administrator changed from one an older install left.
SHIPPED    = $(DESTDIR)$(DATADIR)/preforkd

# $(call install_kept,SOURCE,MODE,TARGET,SHIPPED): SOURCE becomes TARGET,
# unless TARGET was changed since it was installed (it is neither SOURCE nor
# the SHIPPED copy of the last install).  A changed TARGET stays, SOURCE goes
# beside it as TARGET.dpkg-dist, a name that logrotate, run-parts and the
# init tools skip (TARGET.default would be read as a second snippet or
# script), and make says so.
define install_kept
	@if [ -e $(3) ] && ! cmp -s $(1) $(3) && ! cmp -s $(4) $(3); then \
	    install -m $(2) $(1) $(3).dpkg-dist; \
	    echo "keeping changed $(3); the new version is $(3).dpkg-dist"; \
	else \
	    install -m $(2) $(1) $(3) && rm -f $(3).dpkg-dist; \
	fi
	install -m 0644 $(1) $(4)
endef

# $(call uninstall_kept,TARGET,SHIPPED): removes TARGET unless it was changed.
define uninstall_kept
	@if [ -e $(1) ] && ! cmp -s $(1) $(2); then \
	    echo "keeping changed $(1)"; \
	else \
	    rm -f $(1); \
	fi
	rm -f $(1).dpkg-dist $(2)
endef

ifeq ($(BUILD_DEPS_OK),yes)
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/preforkd \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSTEMDUNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/init.d $(DESTDIR)$(SYSCONFDIR)/logrotate.d \
	    $(DESTDIR)$(SYSCONFDIR)/default $(SHIPPED) $(STAGE)
	install -d -m 0755 $(DESTDIR)$(LOCALSTATEDIR)/log/preforkd $(DESTDIR)$(LOCALSTATEDIR)/www/html
	install -m 0755 $(INSTALL_STRIP) $(BUILD)/preforkd $(DESTDIR)$(SBINDIR)/preforkd
	$(SUBST) etc/preforkd.conf > $(STAGE)/preforkd.conf
	install -m 0644 $(STAGE)/preforkd.conf $(DESTDIR)$(SYSCONFDIR)/preforkd/preforkd.conf.default
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/preforkd/preforkd.conf ]; then \
	    echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/preforkd/preforkd.conf"; \
	else \
	    install -m 0644 $(STAGE)/preforkd.conf $(DESTDIR)$(SYSCONFDIR)/preforkd/preforkd.conf; \
	fi
	$(MAN_SUBST) man/preforkd.8 > $(STAGE)/preforkd.8
	$(MAN_SUBST) man/preforkd.conf.5 > $(STAGE)/preforkd.conf.5
	install -m 0644 $(STAGE)/preforkd.8 $(DESTDIR)$(MANDIR)/man8/preforkd.8
	install -m 0644 $(STAGE)/preforkd.conf.5 $(DESTDIR)$(MANDIR)/man5/preforkd.conf.5
	$(SUBST) init/preforkd.service > $(STAGE)/preforkd.service
	$(SUBST) init/preforkd.socket > $(STAGE)/preforkd.socket
	install -m 0644 $(STAGE)/preforkd.service $(STAGE)/preforkd.socket $(DESTDIR)$(SYSTEMDUNITDIR)/
	$(SUBST) init/preforkd > $(STAGE)/preforkd.init
	$(call install_kept,$(STAGE)/preforkd.init,0755,$(DESTDIR)$(SYSCONFDIR)/init.d/preforkd,$(SHIPPED)/preforkd.init)
	$(SUBST) etc/preforkd.logrotate > $(STAGE)/preforkd.logrotate
	$(call install_kept,$(STAGE)/preforkd.logrotate,0644,$(DESTDIR)$(SYSCONFDIR)/logrotate.d/preforkd,$(SHIPPED)/preforkd.logrotate)
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/default/preforkd ]; then \
	    install -m 0644 etc/preforkd.default $(DESTDIR)$(SYSCONFDIR)/default/preforkd; \
	fi
endif

# A configuration, init script or logrotate snippet the administrator
# changed is kept; everything else goes.  Never from under a running server:
# while a process runs the installed binary, uninstall refuses.
uninstall:
	@bin=$$(readlink -f $(DESTDIR)$(SBINDIR)/preforkd 2>/dev/null) || exit 0; \
	for exe in /proc/[0-9]*/exe; do \
	    case "$$(readlink $$exe 2>/dev/null)" in \
	    "$$bin" | "$$bin (deleted)") \
	        pid=$${exe#/proc/}; \
	        echo "preforkd: $$bin is running (pid $${pid%/exe}); stop the server first" \
	             "(systemctl stop preforkd, or /etc/init.d/preforkd stop)" >&2; \
	        exit 1 ;; \
	    esac; \
	done
	rm -f $(DESTDIR)$(SBINDIR)/preforkd
	rm -f $(DESTDIR)$(MANDIR)/man8/preforkd.8 $(DESTDIR)$(MANDIR)/man5/preforkd.conf.5
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/preforkd.service $(DESTDIR)$(SYSTEMDUNITDIR)/preforkd.socket
	$(call uninstall_kept,$(DESTDIR)$(SYSCONFDIR)/init.d/preforkd,$(SHIPPED)/preforkd.init)
	$(call uninstall_kept,$(DESTDIR)$(SYSCONFDIR)/logrotate.d/preforkd,$(SHIPPED)/preforkd.logrotate)
	-rmdir $(SHIPPED) 2>/dev/null
	@conf=$(DESTDIR)$(SYSCONFDIR)/preforkd/preforkd.conf; \
	if [ -e $$conf ] && ! cmp -s $$conf $$conf.default; then \
	    echo "keeping modified $$conf"; \
	else \
	    rm -f $$conf; \
	fi
	@if cmp -s etc/preforkd.default $(DESTDIR)$(SYSCONFDIR)/default/preforkd; then \
	    rm -f $(DESTDIR)$(SYSCONFDIR)/default/preforkd; \
	fi
	rm -f $(DESTDIR)$(SYSCONFDIR)/preforkd/preforkd.conf.default
	-rmdir $(DESTDIR)$(SYSCONFDIR)/preforkd 2>/dev/null

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(UNIT_OBJS:.o=.d) $(INTEG_OBJS:.o=.d)

# ---- fuzzing (tests/fuzz; maintained with src/http) -------------------------
# make fuzz                the libFuzzer target for FUZZ_SECONDS (default 60) on
#                          $(BUILD)/fuzz/corpus, a copy of tests/fuzz/corpus that
#                          keeps what the fuzzer finds; crashes land in $(BUILD)/fuzz/
# make fuzz-tls            the same for the TLS front end (tests/fuzz/fuzz_tls.cpp)
# make fuzz-corpus-check   every committed seed through the targets once
# Needs clang++ with libFuzzer and the sanitizer runtimes (Debian 12: clang-14,
# whose libclang-rt-14-dev dependency ships them; `clang` gives the clang++ name).
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -std=c++20 -g -O1 -Wall -Wextra -Werror -Iinclude \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS    := tests/fuzz/fuzz_request.cpp src/http/request.cpp src/http/host.cpp src/http/body.cpp \
                src/http/range.cpp src/http/path.cpp
FUZZ_BIN     := $(BUILD)/fuzz/fuzz_request
# The TLS front end (tests/fuzz/fuzz_tls.cpp): a ClientHello, or anything
# else, handed to tls::Stream over memory BIOs; seeds in tests/fuzz/tls-corpus.
FUZZ_TLS_SRCS := tests/fuzz/fuzz_tls.cpp src/tls/stream.cpp
FUZZ_TLS_BIN := $(BUILD)/fuzz/fuzz_tls

.PHONY: fuzz fuzz-tls fuzz-corpus-check

$(FUZZ_BIN): $(FUZZ_SRCS) $(wildcard include/preforkd/http/*.hpp)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ $(FUZZ_SRCS)

$(FUZZ_TLS_BIN): $(FUZZ_TLS_SRCS) $(wildcard include/preforkd/tls/*.hpp)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ $(FUZZ_TLS_SRCS) -lssl -lcrypto

fuzz-tls: $(FUZZ_TLS_BIN)
	@mkdir -p $(BUILD)/fuzz/tls-corpus
	cp tests/fuzz/tls-corpus/* $(BUILD)/fuzz/tls-corpus/
	$(FUZZ_TLS_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/tls-corpus

fuzz: $(FUZZ_BIN)
	@mkdir -p $(BUILD)/fuzz/corpus
	cp tests/fuzz/corpus/* $(BUILD)/fuzz/corpus/
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus

# Files, not the directory, as arguments: each is run once, and a seed that
# crashes names itself in the output.
fuzz-corpus-check: $(FUZZ_BIN) $(FUZZ_TLS_BIN)
	$(FUZZ_BIN) tests/fuzz/corpus/*
	$(FUZZ_TLS_BIN) tests/fuzz/tls-corpus/*
# ---- end of fuzzing ------------------------------------------------------------

# ---- benchmark (tests/bench; never part of make check) ------------------------
# make bench    preforkd (-O2, build/bench) against nginx, lighttpd and Apache
#               prefork with wrk on 127.0.0.1; installs them as root when missing.
#               BENCH_SECONDS per run (default 5), BENCH_REPS (default 3); tables
#               on stdout and in build/bench/results.txt.  About 8 minutes.
.PHONY: bench

bench:
	tests/bench/run
# ---- end of benchmark ----------------------------------------------------------

# ---- stress (tests/stress; issue 6; never part of make check) -------------------
# make stress   the long reliability scenarios against the real daemon: reload
#               under load for 15 s with log rotation, twenty worker kills,
#               slowloris for 30 s, slowhttptest (Debian package slowhttptest)
#               slowloris/slow body/slow read, 1,000 aborted 32 MiB downloads,
#               a 100,000-request + 20-reload leak soak; issue 11's parking
#               numbers (tests/stress/test_parking.cpp: 1,000 slow clients
#               of each kind with nginx as reference, 10,000 idle keep-alive
#               clients beside wrk, reload under load without keep-alive
#               retries); then the request parser under libFuzzer for
#               STRESS_FUZZ_SECONDS (default 300).
#               Loopback only, every loop bounded; about 13 minutes in all.
#               The quick variants run in make check (tests/integration/
#               test_reliability.cpp).
STRESS_SRCS        := $(sort $(wildcard tests/stress/*.cpp))
STRESS_OBJS        := $(STRESS_SRCS:%.cpp=$(BUILD)/%.o) $(BUILD)/tests/integration/harness.o
STRESS_FUZZ_SECONDS ?= 300

.PHONY: stress stress-scenarios

ifneq ($(DEPS_OK),yes)
$(BUILD)/stress-tests stress-scenarios:
	@$(MISSING_DEPS)
else
$(BUILD)/stress-tests: $(STRESS_OBJS) $(LIB_OBJS)
	$(CXX) $(PF_LDFLAGS) $(LDFLAGS) -o $@ $^ $(CONFIG_LIBS) $(SYS_LIBS) $(CRITERION_LIBS)

# The reliability scenarios two at a time; the parking numbers one at a
# time, since each measures throughput or latency that a scenario running
# beside it would take its share of.  Both parts run even if the first fails.
stress-scenarios: $(BUILD)/preforkd $(BUILD)/stress-tests
	@rc=0; \
	$(TEST_ENV) $(BUILD)/stress-tests -j2 --color=never --verbose --filter 'stress/*' || rc=1; \
	$(TEST_ENV) $(BUILD)/stress-tests -j1 --color=never --verbose --filter 'parking_numbers/*' || rc=1; \
	exit $$rc
endif

stress:
	$(MAKE) --no-print-directory stress-scenarios
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(STRESS_FUZZ_SECONDS)

-include $(STRESS_OBJS:.o=.d)
# ---- end of stress --------------------------------------------------------------
