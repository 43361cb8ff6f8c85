# iotsec: plain GNU make over pkg-config.
#   make                 library and programs (build/bin/)
#   make check           unit and integration tests, ending "N passed, N failed"
#   make check SANITIZE=1  the same under ASan and UBSan (objects in build-san/)
#   make demo            the end-to-end story, narrated
#   make fuzz FUZZ_SECONDS=N   every libFuzzer target for N seconds
#   make bench           benchmarks, each beside this machine's ceiling
#   make CROSS=aarch64-linux-gnu   the same for a Raspberry Pi (or CROSS=arm-linux-gnueabihf), with
#                        Debian's cross compiler; objects in build-TRIPLET/. `make CROSS=... unit`
#                        runs the unit tests under qemu-user
#   make install DESTDIR=... PREFIX=...   programs, units, users, man pages, bash completion
#   make uninstall DESTDIR=... PREFIX=...   all of that; the configuration, keys and state stay
#   make deb             Debian packages for amd64, arm64 and armhf in build/deb/ (DEB_ARCHS=...)
# Building needs only the build packages (scripts/deps.sh build); check, demo and bench add the
# broker and the test tools (scripts/deps.sh test).

PREFIX      ?= /usr/local
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/iotsec
COMPDIR     ?= $(PREFIX)/share/bash-completion/completions
WEBDIR      ?= $(PREFIX)/share/iotsec/web
SANITIZE    ?= 0
INTEGRATION ?= 1
FUZZ_SECONDS ?= 30

PKGS = openssl libmosquitto sqlite3 libconfig jansson libsystemd
# The relay and the doctor's tool run in the cloud and on the doctor's machine, not on a Pi:
# only they link these, and a CROSS build leaves them out.
RELAY_PKGS  = libmicrohttpd libpq
DOCTOR_PKGS = libcurl

# CROSS=TRIPLET: Debian's cross compiler and the -dev packages of the matching multiarch
# architecture (scripts/deps.sh cross ARCH), found through the triplet's pkg-config. Build-time
# tools (scdoc) stay native; the unit tests run under qemu-user.
CROSS ?=
CROSS_ARCH_aarch64-linux-gnu   := arm64
CROSS_ARCH_arm-linux-gnueabihf := armhf
CROSS_ARCH_TRIPLETS := aarch64-linux-gnu arm-linux-gnueabihf
ifneq ($(CROSS),)
CROSS_ARCH := $(or $(CROSS_ARCH_$(CROSS)),$(error CROSS=$(CROSS): known triplets are \
	aarch64-linux-gnu and arm-linux-gnueabihf))
ifeq ($(SANITIZE),1)
$(error CROSS and SANITIZE=1 do not go together: the sanitizers run natively)
endif
ifneq ($(filter check demo bench fuzz,$(MAKECMDGOALS)),)
$(error make $(filter check demo bench fuzz,$(MAKECMDGOALS)): native only; for the Pi: make CROSS=$(CROSS) unit)
endif
endif
# qemu-user runs the target's own dynamic loader and libraries, installed by multiarch under
# /lib and /usr/lib/TRIPLET: no -L needed.
QEMU := qemu-$(firstword $(subst -, ,$(CROSS)))

ifneq ($(CROSS),)
B      := build-$(CROSS)
SANFLAGS :=
CC     := $(CROSS)-gcc
AR     := $(CROSS)-ar
PKG_CONFIG := $(CROSS)-pkg-config
DEPS_BUILD := cross $(CROSS_ARCH)
DEPS_TEST  := cross $(CROSS_ARCH)
# A unit test binary is an ARM program: qemu-user runs it (and the programs it starts), and its
# logs stay beside its build.
RUN_UNIT := TEST_RUNNER=$(QEMU) TEST_TIME_SCALE=5 TEST_LOG_DIR=$(CURDIR)/$(B)/test-logs \
	IOTSEC_BIN=$(CURDIR)/$(B)/bin
else ifeq ($(SANITIZE),1)
B      := build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
B      := build
SANFLAGS :=
endif
PKG_CONFIG ?= pkg-config
AR         ?= ar
DEPS_BUILD ?= build
DEPS_TEST  ?= test

# The clock never runs below the build time (SPEC 5.2): take it from the commit, so it is
# reproducible. Outside a git checkout, the time of the first build stays until `make clean`
# (now at every run would rebuild clock.o, the library and every program each time).
BUILD_TIME_SEEN := $(file <$(B)/build-time)
BUILD_TIME := $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null),\
	$(BUILD_TIME_SEEN),$(shell date +%s))

# pkg-config runs once per make, when a recipe first needs its answer: every object waits for
# deps, so scripts/deps.sh has installed the packages by then. Each variable replaces itself
# with its value on first use.
PKG_CFLAGS    = $(eval PKG_CFLAGS := $$(shell $$(PKG_CONFIG) --cflags $$(PKGS)))$(PKG_CFLAGS)
PKG_LIBS      = $(eval PKG_LIBS := $$(shell $$(PKG_CONFIG) --libs $$(PKGS)))$(PKG_LIBS)
RELAY_CFLAGS  = $(eval RELAY_CFLAGS := $$(shell $$(PKG_CONFIG) --cflags $$(RELAY_PKGS)))$(RELAY_CFLAGS)
RELAY_LIBS    = $(eval RELAY_LIBS := $$(shell $$(PKG_CONFIG) --libs $$(RELAY_PKGS)))$(RELAY_LIBS)
DOCTOR_CFLAGS = $(eval DOCTOR_CFLAGS := $$(shell $$(PKG_CONFIG) --cflags $$(DOCTOR_PKGS)))$(DOCTOR_CFLAGS)
DOCTOR_LIBS   = $(eval DOCTOR_LIBS := $$(shell $$(PKG_CONFIG) --libs $$(DOCTOR_PKGS)))$(DOCTOR_LIBS)
CMOCKA_CFLAGS = $(eval CMOCKA_CFLAGS := $$(shell $$(PKG_CONFIG) --cflags cmocka))$(CMOCKA_CFLAGS)
CMOCKA_LIBS   = $(eval CMOCKA_LIBS := $$(shell $$(PKG_CONFIG) --libs cmocka))$(CMOCKA_LIBS)

CC       ?= cc
CFLAGS   ?= -O2 -g
# _FILE_OFFSET_BITS=64: on 32-bit ARM (armhf) stat() and readdir() otherwise fail with EOVERFLOW
# on file systems whose inode numbers or directory offsets need 64 bits (64-bit kernels, btrfs,
# NFS, overlays); no library we link has off_t or ino_t in its interface. 64-bit targets: no-op.
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Ilibiotsec $(SANFLAGS) $(CFLAGS) $(PKG_CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS     = $(PKG_LIBS) -lm -pthread

LIB_SRC  := $(wildcard libiotsec/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
LIB      := $(B)/libiotsec.a

# A daemon is a folder of daemons/ with a main.c.
DAEMONS  := $(patsubst daemons/%/main.c,%,$(wildcard daemons/*/main.c))
ifneq ($(CROSS),)
DAEMONS  := $(filter-out relayd,$(DAEMONS))
endif
PROGS    := $(DAEMONS:%=$(B)/bin/iotsec-%) $(B)/bin/iotsec-pki $(B)/bin/iotsecctl \
	$(if $(CROSS),,$(B)/bin/iotsec-doctor)

# man/NAME.N.scd becomes $(B)/man/NAME.N
MANS     := $(patsubst man/%.scd,$(B)/man/%,$(wildcard man/*.scd))
# What goes with the programs a CROSS build leaves out (a Pi runs neither the relay nor the
# doctor's tool): their pages, unit and completion stay out of its install too.
ifneq ($(CROSS),)
MANS     := $(filter-out $(B)/man/iotsec-relayd.8 $(B)/man/iotsec-doctor.1,$(MANS))
endif

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
ifneq ($(CROSS),)
UNIT_BIN := $(filter-out $(B)/tests/test_relayd_% $(B)/tests/test_doctor_tool,$(UNIT_BIN))
endif
UNIT_LIB := $(patsubst %.c,$(B)/obj/%.o,$(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c)))
INTEG    := $(sort $(wildcard tests/integration/[0-9]*.sh))

# The doctor's page (web/): static files the relay serves (relay.web_dir), with Chart.js from
# npm, pinned by web/package-lock.json. npm ci runs into build/npm, one tree for every build
# (plain or SANITIZE=1: the page has no C), under a lock so two builds do not write it at once;
# its download cache is there too (NPM_CACHE), so once filled it installs offline. Not for a Pi
# (CROSS): the relay runs in the cloud.
NPM_DIR  := build/npm
NPM_CACHE ?= $(CURDIR)/$(NPM_DIR)/cache
NPM_WEB  := $(NPM_DIR)/web/installed
WEB_OUT  := $(if $(CROSS),,$(patsubst web/%,$(B)/web/%,$(wildcard web/*.html web/*.js web/*.svg \
	web/*.css)) $(B)/web/chart.umd.min.js $(B)/web/chart.js-LICENSE.md)

BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)

.PHONY: all deps test-deps check unit demo fuzz bench install uninstall deb clean format FORCE
.DEFAULT_GOAL := all
# Keep objects: they are not throw-away intermediates.
.SECONDARY:

all: $(PROGS) $(MANS) $(WEB_OUT)

deps:
	@scripts/deps.sh $(DEPS_BUILD)
test-deps:
	@scripts/deps.sh $(DEPS_TEST)

# -MMD -MP: each object also depends on the headers it includes (the .d files read below).
$(B)/obj/%.o: %.c | deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<
-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# Only clock.c reads the build time. Its stamp is rewritten only when the value changes, so a
# new commit (or SOURCE_DATE_EPOCH) recompiles clock.o, and no other object, exactly then. Comparing
# here rather than in the recipe keeps `make -n` truthful.
$(B)/obj/libiotsec/clock.o: $(B)/build-time
$(B)/obj/libiotsec/clock.o: ALL_CFLAGS += -DIOTSEC_BUILD_TIME=$(BUILD_TIME)
ifneq ($(BUILD_TIME),$(BUILD_TIME_SEEN))
$(B)/build-time: FORCE
endif
$(B)/build-time:
	@mkdir -p $(@D)
	echo $(BUILD_TIME) > $@
FORCE:

$(NPM_WEB): web/package.json web/package-lock.json | deps
	@echo "iotsec: npm ci for the doctor's page (web/package-lock.json) into $(NPM_DIR)/web"
	@mkdir -p $(@D)
	@flock $(NPM_DIR)/lock sh -c 'cp web/package.json web/package-lock.json $(@D)/ && \
		cd $(@D) && npm ci --prefer-offline --ignore-scripts --no-audit --no-fund \
		--loglevel=error --cache $(NPM_CACHE)' && touch $@
$(B)/web/chart.umd.min.js: $(NPM_WEB)
	@mkdir -p $(@D)
	cp $(NPM_DIR)/web/node_modules/chart.js/dist/chart.umd.min.js $@
$(B)/web/chart.js-LICENSE.md: $(NPM_WEB)
	@mkdir -p $(@D)
	cp $(NPM_DIR)/web/node_modules/chart.js/LICENSE.md $@
$(B)/web/%: web/%
	@mkdir -p $(@D)
	cp $< $@

$(B)/man/%: man/%.scd | deps
	@mkdir -p $(@D)
	scdoc < $< > $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# A daemon is every .c in its folder; main.c stays thin so the rest can be tested.
define daemon_rule
$(B)/bin/iotsec-$(1): $(patsubst %.c,$(B)/obj/%.o,$(wildcard daemons/$(1)/*.c)) $(LIB)
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(LIBS)
endef
$(foreach d,$(DAEMONS),$(eval $(call daemon_rule,$(d))))

$(B)/bin/iotsec-pki: $(patsubst %.c,$(B)/obj/%.o,$(wildcard pki/*.c)) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/bin/iotsecctl: $(patsubst %.c,$(B)/obj/%.o,$(wildcard tools/iotsecctl/*.c)) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/bin/iotsec-doctor: $(patsubst %.c,$(B)/obj/%.o,$(wildcard tools/iotsec-doctor/*.c)) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(DOCTOR_LIBS)
$(B)/obj/tools/iotsec-doctor/%.o: ALL_CFLAGS += $(DOCTOR_CFLAGS)

# The relay's objects (and tests of them, test_relayd_*) see libmicrohttpd's and libpq's headers
# and link them.
$(B)/obj/daemons/relayd/%.o $(B)/obj/tests/unit/test_relayd_%.o: ALL_CFLAGS += $(RELAY_CFLAGS)
$(B)/bin/iotsec-relayd $(B)/tests/test_relayd_%: LIBS += $(RELAY_LIBS)

$(B)/tests/test_%: $(B)/obj/tests/unit/test_%.o $(UNIT_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(CMOCKA_LIBS)

$(B)/obj/tests/unit/%.o: ALL_CFLAGS += $(CMOCKA_CFLAGS)
# cmocka is a test package: the test objects wait for it.
$(UNIT_SRC:tests/unit/%.c=$(B)/obj/tests/unit/%.o): | test-deps

# Daemon code under test: tests/unit/test_<daemon>_<what>.c links every object of
# daemons/<daemon>/ but main.o (main stays thin for this) and sees the daemon's headers. A test
# named after a library module (test_certd_client, for libiotsec/certd_client.c) stays a library
# test.
LIB_TESTS := $(LIB_SRC:libiotsec/%.c=$(B)/tests/test_%)
define daemon_test_rule
$(1)_TESTS := $$(filter-out $$(LIB_TESTS),$$(filter $(B)/tests/test_$(1)_%,$$(UNIT_BIN)))
$$($(1)_TESTS): $(B)/tests/%: $(B)/obj/tests/unit/%.o \
		$(patsubst %.c,$(B)/obj/%.o,$(filter-out daemons/$(1)/main.c,$(wildcard daemons/$(1)/*.c))) \
		$$(UNIT_LIB) $$(LIB)
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(LIBS) $$(CMOCKA_LIBS)
$$($(1)_TESTS:$(B)/tests/%=$(B)/obj/tests/unit/%.o): ALL_CFLAGS += -Idaemons/$(1)
endef
$(foreach d,$(DAEMONS),$(eval $(call daemon_test_rule,$(d))))

# The doctor's tool under test: tests/unit/test_doctor_tool.c links its objects but main.o, as
# a daemon's tests do, and libcurl with them.
DOCTOR_TOOL_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(filter-out tools/iotsec-doctor/main.c,\
	$(wildcard tools/iotsec-doctor/*.c)))
$(B)/tests/test_doctor_tool: $(B)/obj/tests/unit/test_doctor_tool.o $(DOCTOR_TOOL_OBJ) $(UNIT_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(DOCTOR_LIBS) $(CMOCKA_LIBS)
$(B)/obj/tests/unit/test_doctor_tool.o: ALL_CFLAGS += -Itools/iotsec-doctor $(DOCTOR_CFLAGS)

$(B)/bench/bench_%: $(B)/obj/tests/bench/bench_%.o $(B)/obj/tests/bench/timing.o \
		$(B)/obj/tests/unit/fixture.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# The relay's benches (bench_relay_*) link its objects but main.o, as its unit tests do, and its
# libraries (the shorter stem makes make pick this rule over bench_%).
$(B)/bench/bench_relay_%: $(B)/obj/tests/bench/bench_relay_%.o $(B)/obj/tests/bench/timing.o \
		$(B)/obj/tests/unit/fixture.o \
		$(patsubst %.c,$(B)/obj/%.o,$(filter-out daemons/relayd/main.c,$(wildcard daemons/relayd/*.c))) \
		$(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(RELAY_LIBS)
$(B)/obj/tests/bench/bench_relay_%.o: ALL_CFLAGS += $(RELAY_CFLAGS) -Idaemons/relayd
# The PostgreSQL bench starts a server of its own, as test_relayd_store_pg does.
$(B)/bench/bench_relay_pg: $(B)/obj/tests/unit/pg.o

# SANITIZE is passed on so that a test can skip what the sanitizer run need not repeat (the
# Pi builds of 080, which build without sanitizers anyway).
# The page too: the relay's tests serve it, and 074 installs it from inside a network namespace,
# where npm cannot reach its registry.
check: test-deps
	@$(MAKE) --no-print-directory $(PROGS) $(MANS) $(WEB_OUT) $(UNIT_BIN)
	@IOTSEC_BIN=$(CURDIR)/$(B)/bin INTEGRATION=$(INTEGRATION) SANITIZE=$(SANITIZE) \
		tests/run.sh $(UNIT_BIN) $(if $(filter 1,$(INTEGRATION)),$(INTEG))

# The programs too: test_keyd_intake runs the real iotsec-dictd. Under qemu-user the test
# binaries share one test home (tests/unit/fixture.c), made afresh for the run unless the caller
# gives IOTSEC_FIXTURE_CACHE (080 does, for both Pi builds at once).
unit: test-deps
	@$(MAKE) --no-print-directory $(PROGS) $(UNIT_BIN)
ifneq ($(CROSS),)
	@cache=$${IOTSEC_FIXTURE_CACHE:-$$(mktemp -d /tmp/iotsec-fixture-cache.XXXXXX)} && \
		$(RUN_UNIT) IOTSEC_FIXTURE_CACHE=$$cache tests/run.sh $(UNIT_BIN); \
		rc=$$?; [ -n "$$IOTSEC_FIXTURE_CACHE" ] || rm -rf "$$cache"; exit $$rc
else
	@tests/run.sh $(UNIT_BIN)
endif

demo: test-deps
	@$(MAKE) --no-print-directory $(PROGS) $(WEB_OUT)
	@IOTSEC_BIN=$(CURDIR)/$(B)/bin scripts/demo.sh

# The footprint bench measures the arm64 build under qemu-user too, beside an idle arm64 program.
PI_BENCH := aarch64-linux-gnu
bench: test-deps
	@$(MAKE) --no-print-directory $(PROGS) $(BENCH_BIN)
	@$(MAKE) --no-print-directory CROSS=$(PI_BENCH) SANITIZE=0 all build-$(PI_BENCH)/bench/idle || \
		echo "iotsec: no $(PI_BENCH) build: the footprint bench measures natively only" >&2
	@IOTSEC_BIN=$(CURDIR)/$(B)/bin BENCH_DIR=$(CURDIR)/$(B)/bench \
		PI_BIN=$(CURDIR)/build-$(PI_BENCH)/bin PI_IDLE=$(CURDIR)/build-$(PI_BENCH)/bench/idle \
		tests/bench/run.sh

# tests/bench/idle.c: the C library and nothing else.
$(B)/bench/idle: $(B)/obj/tests/bench/idle.o
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^

# libFuzzer needs clang; the library is rebuilt with coverage instrumentation in build-fuzz/.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory B=build-fuzz CC=clang SANITIZE=0 \
		SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined" \
		$(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/fuzz/%)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/fuzz/%)

build-fuzz/fuzz/fuzz_%: build-fuzz/obj/tests/fuzz/fuzz_%.o build-fuzz/obj/tests/fuzz/fuzzlib.o \
		build-fuzz/libiotsec.a
	@mkdir -p $(@D)
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)

# The relay's targets (fuzz_relay_*) link its objects but main.o, see its headers and link
# RELAY_LIBS; make picks this rule over the one above (the shorter stem).
RELAYD_FUZZ_OBJ := $(patsubst %.c,build-fuzz/obj/%.o,$(filter-out daemons/relayd/main.c,\
	$(wildcard daemons/relayd/*.c)))
build-fuzz/obj/tests/fuzz/fuzz_relay_%.o: ALL_CFLAGS += -Idaemons/relayd $(RELAY_CFLAGS)
build-fuzz/fuzz/fuzz_relay_%: build-fuzz/obj/tests/fuzz/fuzz_relay_%.o \
		build-fuzz/obj/tests/fuzz/fuzzlib.o $(RELAYD_FUZZ_OBJ) build-fuzz/libiotsec.a
	@mkdir -p $(@D)
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS) $(RELAY_LIBS)

UNITS := $(wildcard systemd/*.service systemd/*.target)
COMPLETIONS := $(wildcard completions/*)
ifneq ($(CROSS),)
UNITS := $(filter-out systemd/iotsec-relayd.service,$(UNITS))
COMPLETIONS := $(filter-out completions/iotsec-doctor,$(COMPLETIONS))
endif
MQTT_ETC := iotsec-broker.conf iotsec.acl

# No key is made here: a tree staged with DESTDIR (a package) would ship it to every Pi. The
# dictionary key is made on the device at its first start (iotsec-dictd-key.service).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/iotsec \
		$(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) $(DESTDIR)$(COMPDIR)
	install -m 0755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	for u in $(UNITS); do \
		d=$(DESTDIR)$(UNITDIR)/$${u#systemd/}; \
		sed 's|@BINDIR@|$(PREFIX)/bin|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g; s|@DOCDIR@|$(DOCDIR)|g' \
			$$u > $$d; chmod 0644 $$d; done
	install -m 0644 systemd/iotsec.sysusers $(DESTDIR)$(SYSUSERSDIR)/iotsec.conf
	for m in $(MANS); do install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/; done
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(COMPLETIONS) $(DESTDIR)$(COMPDIR)/
	$(if $(WEB_OUT),install -d $(DESTDIR)$(WEBDIR) && install -m 0644 $(WEB_OUT) $(DESTDIR)$(WEBDIR)/)
	# Never overwrite a configuration the household has edited.
	[ -e $(DESTDIR)$(SYSCONFDIR)/iotsec/iotsec.conf ] || \
		install -m 0644 etc/iotsec.conf $(DESTDIR)$(SYSCONFDIR)/iotsec/iotsec.conf
	# The home broker's configuration (README, "The home broker"), for the Pi that runs mosquitto:
	# used only when mosquitto is started with it. The same rule: an edited file stays.
	install -d $(DESTDIR)$(SYSCONFDIR)/iotsec/mosquitto
	for f in $(MQTT_ETC); do \
		[ -e $(DESTDIR)$(SYSCONFDIR)/iotsec/mosquitto/$$f ] || \
			install -m 0644 etc/mosquitto/$$f $(DESTDIR)$(SYSCONFDIR)/iotsec/mosquitto/$$f; done
	# Into this system itself: its users now, not at the next boot.
	if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
		systemd-sysusers $(SYSUSERSDIR)/iotsec.conf; fi

# What install put there, except the configuration: it is the household's, like the keys and
# the state, which install never made. The users stay, as Debian leaves system users.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(notdir $(PROGS)))
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS:systemd/%=%))
	rm -f $(DESTDIR)$(SYSUSERSDIR)/iotsec.conf
	rm -f $(foreach m,$(MANS),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))
	rm -f $(addprefix $(DESTDIR)$(COMPDIR)/,$(notdir $(COMPLETIONS)))
	rm -f $(DESTDIR)$(DOCDIR)/README.md
	rm -f $(addprefix $(DESTDIR)$(WEBDIR)/,$(notdir $(WEB_OUT)))
	-rmdir $(DESTDIR)$(WEBDIR) $(DESTDIR)$(PREFIX)/share/iotsec 2>/dev/null
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null
	@echo "iotsec: kept $(DESTDIR)$(SYSCONFDIR)/iotsec (the configuration, the device's keys)"
	# The broker's files as shipped are ours; edited, they are the household's, like its keys.
	for f in $(MQTT_ETC); do \
		! cmp -s etc/mosquitto/$$f $(DESTDIR)$(SYSCONFDIR)/iotsec/mosquitto/$$f || \
			rm -f $(DESTDIR)$(SYSCONFDIR)/iotsec/mosquitto/$$f; done
	-rmdir $(DESTDIR)$(SYSCONFDIR)/iotsec/mosquitto 2>/dev/null

# Debian packages, built by dpkg-buildpackage from debian/ and checked by lintian (scripts/deb.sh).
# SOURCE_DATE_EPOCH: the packaged programs keep the clock floor a plain build has.
DEB_ARCHS ?= amd64 arm64 armhf
deb:
	@scripts/deps.sh deb
	@SOURCE_DATE_EPOCH=$(BUILD_TIME) scripts/deb.sh $(DEB_ARCHS)

format:
	clang-format -i $(wildcard libiotsec/*.[ch] daemons/*/*.[ch] pki/*.[ch] tools/*/*.[ch] \
		tests/*/*.[ch])

clean:
	rm -rf build build-san build-fuzz $(CROSS_ARCH_TRIPLETS:%=build-%)
