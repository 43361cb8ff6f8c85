# iotsec: plain GNU make over pkg-config.
#   make                 library and programs (build/bin/)
#   make check           unit and integration tests, ending "N passed, N failed"
#   make check SANITIZE=1  the same under ASan and UBSan (objects in build-san/)
#   make demo            the end-to-end story, narrated
#   make fuzz FUZZ_SECONDS=N   every libFuzzer target for N seconds
#   make bench           benchmarks, each beside this machine's ceiling
#   make install DESTDIR=... PREFIX=...

PREFIX      ?= /usr/local
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SANITIZE    ?= 0
INTEGRATION ?= 1
FUZZ_SECONDS ?= 30

PKGS = openssl libmosquitto sqlite3 libconfig jansson libsystemd

ifeq ($(SANITIZE),1)
B      := build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
B      := build
SANFLAGS :=
endif

# The clock never runs below the build time (SPEC 5.2): take it from the commit, so it is
# reproducible, and fall back to now outside a git checkout.
BUILD_TIME = $(or $(SOURCE_DATE_EPOCH),$(shell git log -1 --format=%ct 2>/dev/null),$(shell date +%s))

CC       ?= cc
CFLAGS   ?= -O2 -g
# Recursively expanded on purpose: pkg-config runs only once scripts/deps.sh has installed things.
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Ilibiotsec $(SANFLAGS) $(CFLAGS) $(shell pkg-config --cflags $(PKGS))
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS     = $(shell pkg-config --libs $(PKGS)) -lm

LIB_SRC  := $(wildcard libiotsec/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(B)/obj/%.o)
LIB      := $(B)/libiotsec.a

DAEMONS  := $(notdir $(wildcard daemons/*))
PROGS    := $(DAEMONS:%=$(B)/bin/iotsec-%) $(B)/bin/iotsec-pki $(B)/bin/iotsecctl

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
UNIT_LIB := $(patsubst %.c,$(B)/obj/%.o,$(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c)))
INTEG    := $(sort $(wildcard tests/integration/[0-9]*.sh))

BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)

.PHONY: all deps check unit demo fuzz bench install clean format
.DEFAULT_GOAL := all
# Keep objects: they are not throw-away intermediates.
.SECONDARY:

all: $(PROGS)

deps:
	@scripts/deps.sh

# -MMD -MP: each object also depends on the headers it includes (the .d files read below).
$(B)/obj/%.o: %.c | deps
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -DIOTSEC_BUILD_TIME=$(BUILD_TIME) -c -o $@ $<
-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

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

$(B)/tests/test_%: $(B)/obj/tests/unit/test_%.o $(UNIT_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs cmocka)

$(B)/obj/tests/unit/%.o: ALL_CFLAGS += $(shell pkg-config --cflags cmocka)

$(B)/bench/bench_%: $(B)/obj/tests/bench/bench_%.o $(B)/obj/tests/unit/fixture.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

check: deps
	@$(MAKE) --no-print-directory $(PROGS) $(UNIT_BIN)
	@IOTSEC_BIN=$(CURDIR)/$(B)/bin INTEGRATION=$(INTEGRATION) \
		tests/run.sh $(UNIT_BIN) $(if $(filter 1,$(INTEGRATION)),$(INTEG))

unit: deps
	@$(MAKE) --no-print-directory $(UNIT_BIN)
	@tests/run.sh $(UNIT_BIN)

demo: deps
	@$(MAKE) --no-print-directory $(PROGS)
	@IOTSEC_BIN=$(CURDIR)/$(B)/bin scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory $(PROGS) $(BENCH_BIN)
	@IOTSEC_BIN=$(CURDIR)/$(B)/bin BENCH_DIR=$(CURDIR)/$(B)/bench tests/bench/run.sh

# libFuzzer needs clang; the library is rebuilt with coverage instrumentation in build-fuzz/.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	@scripts/deps.sh --fuzz
	@$(MAKE) --no-print-directory B=build-fuzz CC=clang SANITIZE=0 \
		SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined" \
		$(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/fuzz/%)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/fuzz/%)

build-fuzz/fuzz/fuzz_%: build-fuzz/obj/tests/fuzz/fuzz_%.o build-fuzz/libiotsec.a
	@mkdir -p $(@D)
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/iotsec
	install -m 0755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	for u in systemd/*; do \
		sed 's|@BINDIR@|$(PREFIX)/bin|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' $$u \
			> $(DESTDIR)$(UNITDIR)/$${u##*/}; chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/}; done
	# Never overwrite a configuration the household has edited.
	[ -e $(DESTDIR)$(SYSCONFDIR)/iotsec/iotsec.conf ] || \
		install -m 0644 etc/iotsec.conf $(DESTDIR)$(SYSCONFDIR)/iotsec/iotsec.conf
	# The dictionary key, made once (the daemon runs with /etc read-only).
	[ -e $(DESTDIR)$(SYSCONFDIR)/iotsec/dict.key ] || \
		(umask 077 && head -c 32 /dev/urandom > $(DESTDIR)$(SYSCONFDIR)/iotsec/dict.key)

format:
	clang-format -i $(wildcard libiotsec/*.[ch] daemons/*/*.[ch] pki/*.[ch] tools/*/*.[ch] \
		tests/*/*.[ch])

clean:
	rm -rf build build-san build-fuzz
