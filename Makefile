# preforkd - a preforking HTTP/1.1 server.
#
#   make            build build/preforkd
#   make run        start it in the foreground on etc/dev.conf (127.0.0.1:8080)
#   make check      unit and integration tests, then again under ASan+UBSan
#   make install    PREFIX, DESTDIR, SYSCONFDIR, SBINDIR, MANDIR honoured
#   make deps       install the Debian build dependencies (root) or print how

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
MANDIR     ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= /lib/systemd/system
LOCALSTATEDIR ?= /var
DESTDIR    ?=

VERSION    := 0.1.0
CXX        ?= g++
PKGS       := libconfig++ libseccomp
DEB_DEPS   := g++ make pkg-config libconfig++-dev libseccomp-dev libcriterion-dev curl media-types \
              clang mandoc

BUILD      ?= build
SANITIZE   ?=
# CXXFLAGS is the user's (optimisation, debugging); the project's own flags
# are kept apart so that `make CXXFLAGS=-O0` cannot drop -Werror or -Iinclude.
CXXFLAGS   ?= -O2 -g
PF_FLAGS   := -std=c++20 -Wall -Wextra -Werror -Iinclude -MMD -MP \
              -DPREFORKD_VERSION='"$(VERSION)"' -DSYSCONFDIR='"$(SYSCONFDIR)"'
PF_LDFLAGS :=
ifneq ($(SANITIZE),)
# g++ 12 reports false maybe-uninitialized warnings inside <regex> and
# <functional> when sanitizers instrument them; the plain build keeps it.
PF_FLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all \
              -Wno-maybe-uninitialized
PF_LDFLAGS += -fsanitize=$(SANITIZE)
endif

HAVE_DEPS  := pkg-config --exists $(PKGS) criterion 2>/dev/null && command -v curl >/dev/null \
              && command -v clang++ >/dev/null && command -v mandoc >/dev/null && [ -r /etc/mime.types ]
DEPS_OK    := $(shell $(HAVE_DEPS) && echo yes)
CONFIG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CONFIG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CRITERION_LIBS := $(shell pkg-config --libs criterion 2>/dev/null)

SRCS       := $(sort $(wildcard src/*.cpp src/http/*.cpp))
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

deps:
	@if $(HAVE_DEPS); then \
	    echo "build dependencies present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	    echo "installing build dependencies: $(DEB_DEPS)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_DEPS); \
	else \
	    echo "missing build dependencies; as root run:" >&2; \
	    echo "  apt-get install -y $(DEB_DEPS)" >&2; exit 1; \
	fi

ifneq ($(DEPS_OK),yes)
# A dependency is missing: install it (or say how), then make the same goal
# again in a fresh make that sees the new pkg-config answers.
$(BUILD)/preforkd run check check-unit check-integration check-sanitize install: deps
	@$(MAKE) --no-print-directory $@
else
$(BUILD)/preforkd: $(OBJS)
	$(CXX) $(PF_LDFLAGS) $(LDFLAGS) -o $@ $^ $(CONFIG_LIBS)

$(BUILD)/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(PF_FLAGS) $(CPPFLAGS) $(CXXFLAGS) $(CONFIG_CFLAGS) -c -o $@ $<

$(BUILD)/unit-tests: $(UNIT_OBJS) $(LIB_OBJS)
	$(CXX) $(PF_LDFLAGS) $(LDFLAGS) -o $@ $^ $(CONFIG_LIBS) $(CRITERION_LIBS)

$(BUILD)/integration-tests: $(INTEG_OBJS) $(LIB_OBJS)
	$(CXX) $(PF_LDFLAGS) $(LDFLAGS) -o $@ $^ $(CONFIG_LIBS) $(CRITERION_LIBS)

run: all
	$(BUILD)/preforkd -f -c etc/dev.conf

# Criterion runs each test in its own process, -j2 on this 2-core target.
check-unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests -j2 --color=never

check-integration: $(BUILD)/preforkd $(BUILD)/integration-tests
	PREFORKD_BIN=$(abspath $(BUILD)/preforkd) PREFORKD_SRCDIR=$(CURDIR) \
	    $(BUILD)/integration-tests -j2 --color=never

# The objects are built in parallel first; the test binaries then run one
# after the other (each runs its tests -j2 itself).
JOBS       := $(shell nproc 2>/dev/null || echo 2)
SAN_VARS   := BUILD=build/sanitize SANITIZE=address,undefined CXXFLAGS="-O1 -g"

# Criterion's runner itself leaks a little at exit; only that is suppressed.
check-sanitize:
	$(MAKE) --no-print-directory -j$(JOBS) $(SAN_VARS) build/sanitize/preforkd \
	    build/sanitize/unit-tests build/sanitize/integration-tests
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $(MAKE) --no-print-directory \
	    $(SAN_VARS) check-unit check-integration

check:
	$(MAKE) --no-print-directory -j$(JOBS) $(BUILD)/preforkd $(BUILD)/unit-tests \
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

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/preforkd \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSTEMDUNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/init.d $(DESTDIR)$(SYSCONFDIR)/logrotate.d \
	    $(DESTDIR)$(SYSCONFDIR)/default $(STAGE)
	install -d -m 0755 $(DESTDIR)$(LOCALSTATEDIR)/log/preforkd $(DESTDIR)$(LOCALSTATEDIR)/www/html
	install -m 0755 $(BUILD)/preforkd $(DESTDIR)$(SBINDIR)/preforkd
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
	install -m 0755 $(STAGE)/preforkd.init $(DESTDIR)$(SYSCONFDIR)/init.d/preforkd
	$(SUBST) etc/preforkd.logrotate > $(STAGE)/preforkd.logrotate
	install -m 0644 $(STAGE)/preforkd.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/preforkd
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/default/preforkd ]; then \
	    install -m 0644 etc/preforkd.default $(DESTDIR)$(SYSCONFDIR)/default/preforkd; \
	fi

endif

# A configuration the administrator changed is kept; everything else goes.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/preforkd
	rm -f $(DESTDIR)$(MANDIR)/man8/preforkd.8 $(DESTDIR)$(MANDIR)/man5/preforkd.conf.5
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/preforkd.service $(DESTDIR)$(SYSTEMDUNITDIR)/preforkd.socket
	rm -f $(DESTDIR)$(SYSCONFDIR)/init.d/preforkd $(DESTDIR)$(SYSCONFDIR)/logrotate.d/preforkd
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
# make fuzz-corpus-check   every committed seed through the target once
# Needs clang++ with libFuzzer and the sanitizer runtimes (Debian 12: clang-14,
# whose libclang-rt-14-dev dependency ships them; `clang` gives the clang++ name).
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -std=c++20 -g -O1 -Wall -Wextra -Werror -Iinclude \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS    := tests/fuzz/fuzz_request.cpp src/http/request.cpp src/http/body.cpp
FUZZ_BIN     := $(BUILD)/fuzz/fuzz_request

.PHONY: fuzz fuzz-corpus-check

$(FUZZ_BIN): $(FUZZ_SRCS) $(wildcard include/preforkd/http/*.hpp)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ $(FUZZ_SRCS)

fuzz: $(FUZZ_BIN)
	@mkdir -p $(BUILD)/fuzz/corpus
	cp tests/fuzz/corpus/* $(BUILD)/fuzz/corpus/
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus

# Files, not the directory, as arguments: each is run once, and a seed that
# crashes names itself in the output.
fuzz-corpus-check: $(FUZZ_BIN)
	$(FUZZ_BIN) tests/fuzz/corpus/*
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
#               a 100,000-request + 20-reload leak soak; then the request
#               parser under libFuzzer for STRESS_FUZZ_SECONDS (default 300).
#               Loopback only, every loop bounded; about 8 minutes in all.
#               The quick variants run in make check (tests/integration/
#               test_reliability.cpp).
STRESS_SRCS        := $(sort $(wildcard tests/stress/*.cpp))
STRESS_OBJS        := $(STRESS_SRCS:%.cpp=$(BUILD)/%.o) $(BUILD)/tests/integration/harness.o
STRESS_FUZZ_SECONDS ?= 300

.PHONY: stress stress-scenarios

ifneq ($(DEPS_OK),yes)
stress-scenarios: deps
	@$(MAKE) --no-print-directory $@
else
$(BUILD)/stress-tests: $(STRESS_OBJS) $(LIB_OBJS)
	$(CXX) $(PF_LDFLAGS) $(LDFLAGS) -o $@ $^ $(CONFIG_LIBS) $(CRITERION_LIBS)

stress-scenarios: $(BUILD)/preforkd $(BUILD)/stress-tests
	PREFORKD_BIN=$(abspath $(BUILD)/preforkd) PREFORKD_SRCDIR=$(CURDIR) \
	    $(BUILD)/stress-tests -j2 --color=never --verbose
endif

stress:
	$(MAKE) --no-print-directory stress-scenarios
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(STRESS_FUZZ_SECONDS)

-include $(STRESS_OBJS:.o=.d)
# ---- end of stress --------------------------------------------------------------
