# Tandem build. `make` builds every binary into build/bin and libraries into build/lib.
# `make test` installs missing Debian packages, builds, and runs every test.
# `make sanitize` does the same under ASan+UBSan in build-san/. See README.md.

BUILD    ?= build
CC       ?= gcc
PKGS     := jansson yaml-0.1 libwebsockets sqlite3 openssl libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

OPT      ?= -O2
CFLAGS   += -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -fno-common \
            -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wformat=2 -Ipkg $(PKG_CFLAGS) $(SAN)
LDFLAGS  += $(SAN)
LDLIBS   += $(PKG_LIBS) -lpthread -lm

PKG_SRCS := $(sort $(wildcard pkg/*/*.c))
PKG_OBJS := $(PKG_SRCS:%.c=$(BUILD)/obj/%.o)
LIBTN    := $(BUILD)/lib/libtn.a

CMDS     := $(notdir $(wildcard cmd/*))
BINS     := $(CMDS:%=$(BUILD)/bin/%)

UNIT_SRCS := $(sort $(wildcard test/unit/*_test.c))
UNIT_BINS := $(UNIT_SRCS:test/unit/%.c=$(BUILD)/test/%)
BENCH_SRCS := $(sort $(wildcard test/bench/*.c))
BENCH_BINS := $(BENCH_SRCS:test/bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test unit conformance sanitize fuzz fuzz-smoke bench format lint clean demo

all: $(BINS) $(LIBTN) $(BENCH_BINS)

deps:
	@bash hack/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIBTN): $(PKG_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/obj/cmd/%/main.o $(LIBTN)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test/%: $(BUILD)/obj/test/unit/%.o $(LIBTN)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/test/bench/%.o $(LIBTN)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests: each suite is its own process (check forks each test too).
unit: $(UNIT_BINS)
	@bash test/run-unit.sh $(UNIT_BINS)

# Conformance: the real tandem-apiserver driven by real kubectl and python3-kubernetes.
conformance: $(BINS)
	@BUILD=$(BUILD) bash test/conformance/run.sh

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) fuzz-smoke
	$(MAKE) conformance

sanitize: deps
	$(MAKE) BUILD=build-san OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) BUILD=build-san OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" unit conformance

# Fuzzing with libFuzzer (clang). fuzz-smoke runs each target briefly over its corpus.
FUZZ_SRCS := $(sort $(wildcard test/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:test/fuzz/%.c=build-fuzz/%)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=address,undefined -Ipkg $(PKG_CFLAGS)
FUZZ_OBJS := $(PKG_SRCS:%.c=build-fuzz/obj/%.o)
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
build-fuzz/libtn-fuzz.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^
build-fuzz/%: test/fuzz/%.c build-fuzz/libtn-fuzz.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libtn-fuzz.a $(PKG_LIBS) -lpthread -lm
fuzz-smoke: $(FUZZ_BINS)
	@bash test/fuzz/run.sh smoke $(FUZZ_BINS)
fuzz: $(FUZZ_BINS)
	@bash test/fuzz/run.sh long $(FUZZ_BINS)

bench: deps
	$(MAKE) all
	@bash test/bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	  --suppress=missingIncludeSystem --suppress=ctuuninitvar --include=/usr/include/jansson.h -Ipkg pkg cmd

clean:
	rm -rf build build-san build-fuzz

-include $(PKG_OBJS:.o=.d)
-include $(FUZZ_OBJS:.o=.d)

# The demo needs tandem-sim, GM, LC and the example workers; until they land, say so plainly.
demo:
	@echo "make demo: the local edge-cloud demo arrives with tandem-sim, GM and LC; not built yet." >&2
	@echo "What runs today: 'make' then build/bin/tandem-apiserver (see README.md and docs/apiserver.md)." >&2
	@exit 1
