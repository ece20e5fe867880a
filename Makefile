# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# weir: one Makefile, out-of-tree objects under build/.
#   make            build build/weir
#   make deps       install the Debian packages the build, tests and demo need
#   make deps-build only those the build needs (the GitHub Action, on a runner)
#   make test       deps + build + every test tier (root)
#   make demo       deps + build + the self-contained demo (root)
#   make fuzz       the libFuzzer harnesses of tests/fuzz/, FUZZ_SECONDS (60) each
#   make test-kernels  the test tiers under Debian's 6.1 and 6.12 kernels (qemu;
#                   docs/kernels.md); make kernels fetches them into build/kernels
#   make vmlinux    regenerate vmlinux/$(ARCH)/vmlinux.h from the running kernel
#   make install    PREFIX=/usr/local DESTDIR=: the binary, weir(8), bash and
#                   zsh completion, the shipped policies, the docs, the
#                   systemd unit, the example Prometheus alerts, and the OCI
#                   hooks (OCIHOOKSDIR=/usr/share/containers/oci/hooks.d)
#   make uninstall  the same PREFIX and DESTDIR: remove what install put there
#   make man        re-render docs/man/weir.8 from weir.8.scd (needs scdoc)
#   V=1             show the commands
#
# Under sudo, in a checkout that belongs to the user who ran sudo, everything
# made in the tree is made as that user (see "sudo" below).

.DELETE_ON_ERROR:
.SECONDARY:
.SUFFIXES:

# --- sudo: build as the checkout's owner ------------------------------------
# `sudo make demo` used to leave build/ to root, and the user's next `make`
# failed on it. When root runs make for the user who owns the checkout
# (SUDO_UID), every recipe runs as that user (SHELL), so whatever is made in
# the tree is theirs, even when a recipe fails half-way. The recipes that
# need root (deps, the tests, demo, bench, install) say so with a private
# SHELL: private, so their prerequisites are still built as the user. A
# build/ that an older root make left behind is given back first.
ifeq ($(shell id -u),0)
ifneq ($(filter-out 0,$(SUDO_UID)),)
ifeq ($(shell stat -c %u .),$(SUDO_UID))
OWNER := $(SUDO_UID):$(shell stat -c %g .)
$(shell chown -R $(OWNER) build bench/results 2>/dev/null)
SHELL := setpriv --reuid=$(SUDO_UID) --regid=$(shell stat -c %g .) --clear-groups -- /bin/sh
endif
endif
endif
ROOT_TARGETS := deps deps-build test test-unit test-bpf test-e2e test-adversarial test-build test-daemon test-action \
	test-kubernetes test-kernels kernels test-containers \
	demo bench \
	install uninstall clean
$(ROOT_TARGETS): private SHELL := /bin/sh

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/weir
POLICYDIR ?= $(DATADIR)/weir/policies
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
# Debian's zsh looks in /usr/share/zsh/vendor-completions for PREFIX=/usr.
ZSHCOMPDIR ?= $(DATADIR)/zsh/site-functions
# systemd reads /usr/local/lib/systemd/system too.
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
ALERTSDIR ?= $(DATADIR)/weir/prometheus
# podman and CRI-O read OCI hooks from here by default, whatever weir's
# prefix: the hook files name $(BINDIR)/weir (docs/containers.md).
OCIHOOKSDIR ?= /usr/share/containers/oci/hooks.d
OCIHOOKS := $(wildcard deploy/oci/*.json)
OUT := build
CLANG ?= clang
CC ?= cc
BPFTOOL ?= bpftool
LLVM_STRIP ?= llvm-strip
PKG_CONFIG ?= pkg-config

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' -e 's/s390x/s390/')
VMLINUX := vmlinux/$(ARCH)/vmlinux.h

# libpsl: the Public Suffix List, so weir policy suggest never makes a wildcard
# of a public suffix (*.co.uk, *.github.io). libcrypto (OpenSSL, already
# under ldns): SHA-256 of cidr_list files with the CPU's SHA extensions.
PKGS := libbpf yaml-0.1 ldns libseccomp json-c libpsl libprotobuf-c libcrypto
# protobuf-c: the NRI plugin's messages (user/nri/nri.proto), generated into
# $(OUT)/nri/ by protoc-c.
PROTOC_C ?= protoc-c
# libhttp-parser: the daemon's answers read by its clients (user/client/); one
# small library on libc alone (no .pc file in Debian: -lhttp_parser).
HTTP_PARSER_LIBS := -lhttp_parser
# Loaded with dlopen() when first used (user/common/lazylib.h): their headers
# only, and the name to load, from the library the build would have linked.
LAZY_PKGS := libmicrohttpd
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) $(LAZY_PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null || echo -lbpf -lyaml -lldns -lseccomp -ljson-c -lpsl -lprotobuf-c)
soname = $(shell readelf -d $$($(PKG_CONFIG) --variable=libdir $(1) 2>/dev/null)/$(2).so 2>/dev/null | \
	sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
LAZY_CFLAGS := $(foreach l,WEIR_MHD_SONAME=$(call soname,libmicrohttpd,libmicrohttpd),\
	$(if $(word 2,$(subst =, ,$(l))),-D$(subst =,='"',$(l))'"'))

# user/<component>/: cli (the commands), policy, kernel (maps, cgroups, pins),
# dns, sandbox (the command's identity, filter, spawn), events, common (log).
USER_DIRS := $(sort $(dir $(wildcard user/*/*.c)))

CFLAGS ?= -O2 -g
WEIR_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow \
	-Wmissing-prototypes -Wstrict-prototypes -D_GNU_SOURCE -MMD -MP \
	-Iinclude $(addprefix -I,$(USER_DIRS)) -I$(OUT) -I$(OUT)/nri $(PKG_CFLAGS) $(LAZY_CFLAGS)
LDLIBS := $(PKG_LIBS) $(HTTP_PARSER_LIBS) -lelf -lz -lpthread -ldl
# weir itself takes these libraries from their .a (the same -dev packages):
# at exec the dynamic loader then maps and relocates 6 shared objects, not
# 17, which halves what every `weir run` spends before main() (a client of
# the daemon most of all; docs/performance.md, "Start-up"). In this order:
# each before what it needs (ldns: libssl, libcrypto; libbpf: libelf, libz).
# libc stays shared, and so does libpsl (its libunistring has no .a).
# WEIR_STATIC_LIBS= links them all shared; a security update of one of these
# (OpenSSL, ldns) then reaches weir without rebuilding it.
WEIR_STATIC_LIBS ?= bpf yaml ldns seccomp json-c protobuf-c http_parser elf z ssl crypto
LINK_STATIC := -Wl,-Bstatic
LINK_SHARED := -Wl,-Bdynamic
WEIR_LDLIBS = $(if $(strip $(WEIR_STATIC_LIBS)),$(LINK_STATIC) $(addprefix -l,$(WEIR_STATIC_LIBS)) \
	$(LINK_SHARED)) $(filter-out $(addprefix -l,$(WEIR_STATIC_LIBS)),$(LDLIBS))
# The static libraries' pointers (OpenSSL's tables most) are ~19k relative
# relocations in a position-independent weir: packed (DT_RELR: binutils
# 2.38+, glibc 2.36+) their table is ~4 KiB, not 440, read at every exec.
WEIR_RELR := $(shell printf 'int main(void){return 0;}' | $(CC) -x c - -pie -fPIE \
	-Wl,-z,pack-relative-relocs -Wl,--fatal-warnings -o /dev/null 2>/dev/null && \
	echo -Wl,-z,pack-relative-relocs)

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I$(dir $(VMLINUX)) -Iinclude -Ibpf -MMD -MP

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))

LIB_SRCS := $(filter-out user/cli/main.c,$(wildcard user/*/*.c))
LIB_OBJS := $(patsubst user/%.c,$(OUT)/user/%.o,$(LIB_SRCS)) $(OUT)/user/policy/builtin_policy.o \
	$(OUT)/nri/nri.pb-c.o
LIB := $(OUT)/libweir.a

UNIT_SRCS := $(wildcard tests/unit/*.c)
# The daemon's API layer against a stand-in core: a binary of its own, so its
# daemon_* never meet the real core's in libweir.a (only api.o, metrics.o,
# notify.o and client.o are taken from it).
API_TEST_SRCS := $(wildcard tests/unit/api/*.c)
BPFT_SRCS := $(wildcard tests/bpf/*.c)
TOOL_SRCS := $(wildcard tests/tools/*.c)
ADV_SRCS := $(wildcard tests/adversarial/*.c)
TOOLS := $(patsubst tests/tools/%.c,$(OUT)/bin/%,$(TOOL_SRCS)) \
	$(patsubst tests/adversarial/%.c,$(OUT)/bin/%,$(ADV_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_TOOLS := $(patsubst bench/%.c,$(OUT)/bin/%,$(BENCH_SRCS))

.PHONY: all
all: $(OUT)/weir

# --- BPF objects and skeletons -------------------------------------------
$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(VMLINUX) | $(OUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@ # DWARF is not needed; BTF stays

$(OUT)/%.skel.h: $(OUT)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

# --- userspace ------------------------------------------------------------
$(OUT)/user/%.o: user/%.c $(SKELS) | $(OUT)/user
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(WEIR_CFLAGS) -c $< -o $@

# NRI's messages (the part weir speaks), C from protoc-c; user/nri/ needs them.
$(OUT)/nri/nri.pb-c.c $(OUT)/nri/nri.pb-c.h &: user/nri/nri.proto
	$(call msg,PROTOC-C,$@)
	$(Q)mkdir -p $(OUT)/nri
	$(Q)$(PROTOC_C) --c_out=$(OUT)/nri -Iuser/nri $<
$(OUT)/nri/nri.pb-c.o: $(OUT)/nri/nri.pb-c.c
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(WEIR_CFLAGS) -Wno-missing-prototypes -c $< -o $@
$(patsubst user/%.c,$(OUT)/user/%.o,$(wildcard user/nri/*.c)) \
	$(patsubst user/%.c,$(OUT)/fuzz/user/%.o,$(wildcard user/nri/*.c)): $(OUT)/nri/nri.pb-c.h

# The shipped policies are the YAML files themselves, embedded with .incbin.
$(OUT)/user/policy/builtin_policy.o: user/policy/builtin_policy.S $(wildcard policy/*.yaml policy/presets/*.yaml) | $(OUT)/user
	$(call msg,AS,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) -Wa,-I,$(abspath policy) -c $< -o $@

# The version string: `git describe` of the checkout, rewritten only when it
# changes. GIT_OPTIONAL_LOCKS=0: under sudo, git must not rewrite the index
# as root; safe.directory: nor refuse a checkout that is not root's.
GIT_DESCRIBE := $(shell GIT_OPTIONAL_LOCKS=0 git -c safe.directory='$(CURDIR)' -C '$(CURDIR)' \
	describe --always --dirty 2>/dev/null)
$(OUT)/version.h: FORCE | $(OUT)/user
	$(Q)printf '#define WEIR_GIT_DESCRIBE "%s"\n' '$(GIT_DESCRIBE)' >$@.tmp && \
		{ cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@; }
$(OUT)/user/common/version.o $(OUT)/fuzz/user/common/version.o: $(OUT)/version.h

.PHONY: FORCE
FORCE:

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUT)/weir: $(OUT)/user/cli/main.o $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $(WEIR_RELR) $^ $(WEIR_LDLIBS) -o $@

# --- tests ----------------------------------------------------------------
# Tests use positional initialisers for short probe tables.
$(OUT)/tests/%.o: tests/%.c $(SKELS) | $(OUT)/tests/unit $(OUT)/tests/bpf $(OUT)/tests/tools \
		$(OUT)/tests/adversarial $(OUT)/tests/unit/api
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(WEIR_CFLAGS) -Wno-missing-field-initializers -c $< -o $@

$(OUT)/tests/unit-tests: $(patsubst tests/%.c,$(OUT)/tests/%.o,$(UNIT_SRCS)) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -lcriterion -o $@

$(OUT)/tests/api-tests: $(patsubst tests/%.c,$(OUT)/tests/%.o,$(API_TEST_SRCS)) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -lcriterion -o $@

$(OUT)/tests/bpf-tests: $(patsubst tests/%.c,$(OUT)/tests/%.o,$(BPFT_SRCS)) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -lcriterion -o $@

# callbench drives the real loader: it links libweir.
$(OUT)/bin/callbench: bench/callbench.c $(LIB) $(SKELS) | $(OUT)/bin
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(WEIR_CFLAGS) -Wno-missing-field-initializers $< $(LIB) $(LDLIBS) -o $@

$(OUT)/bin/%: bench/%.c | $(OUT)/bin
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Wall -Wextra -Werror -D_GNU_SOURCE $< -o $@

$(OUT)/bin/%: $(OUT)/tests/adversarial/%.o | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ -o $@

# The containers' probe: static, so that a busybox root file system runs it.
$(OUT)/bin/netprobe-static: tests/tools/netprobe.c | $(OUT)/bin
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Wall -Wextra -Werror -D_GNU_SOURCE -static $< -o $@

$(OUT)/bin/%: $(OUT)/tests/tools/%.o | $(OUT)/bin
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ -o $@

.PHONY: tests-build test test-unit test-bpf test-e2e test-adversarial test-build test-daemon test-action \
	test-kubernetes test-kernels test-containers
tests-build: $(OUT)/weir $(OUT)/tests/unit-tests $(OUT)/tests/api-tests $(OUT)/tests/bpf-tests \
	$(TOOLS) $(OUT)/bin/netprobe-static $(OUT)/bin/eventgen

test: deps
	$(Q)$(MAKE) --no-print-directory tests-build
	$(Q)$(MAKE) --no-print-directory test-unit test-bpf test-e2e test-adversarial test-build \
		test-daemon test-action test-kubernetes test-containers

test-unit: $(OUT)/tests/unit-tests $(OUT)/tests/api-tests
	$(Q)echo "== tier 1: unit tests (no privileges)"
	$(Q)$< --jobs 2
	$(Q)$(OUT)/tests/api-tests --jobs 2

test-bpf: $(OUT)/tests/bpf-tests $(TOOLS)
	$(Q)echo "== tier 2: BPF tests (root, real cgroups, private network namespaces)"
	$(Q)WEIR_BUILD=$(abspath $(OUT)) $< --jobs 1

test-e2e: $(OUT)/weir $(TOOLS) $(OUT)/bin/eventgen
	$(Q)echo "== tier 3: end to end (build/weir, real servers, dnsmasq)"
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/run.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/dns.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/runs.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/env.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/inbound.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/lifecycle.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/tiers.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/biglists.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/flows.sh

# A real nscd from Debian for tests/adversarial/unix.sh, unpacked here and
# never installed: its package starts a machine-wide nscd that would answer
# every other test's lookups (and weir's own dns.static: auto).
$(OUT)/nscd/usr/sbin/nscd:
	$(call msg,GET,$@)
	$(Q)rm -rf $(OUT)/nscd && mkdir -p $(OUT)/nscd && cd $(OUT)/nscd && \
		apt-get download -q nscd >/dev/null && dpkg-deb -x nscd_*.deb . && rm -f nscd_*.deb

test-adversarial: $(OUT)/weir $(TOOLS) $(OUT)/nscd/usr/sbin/nscd
	$(Q)echo "== tier 4: adversarial (escape attempts from inside weir run)"
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/adversarial/run.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/adversarial/waysout.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/adversarial/unix.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/adversarial/outside.sh

test-daemon: $(OUT)/weir $(TOOLS) $(OUT)/bin/eventgen $(OUT)/nscd/usr/sbin/nscd
	$(Q)echo "== tier 6: weir daemon (many cgroups, reloads, restarts and adoption, DNS per netns)"
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/daemon/run.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/daemon/api.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/daemon/attack.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/daemon/biglists.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/daemon/budgets.sh
	$(Q)echo "== tier 6: weir run through the daemon (its own checks, then tiers 3 and 4's run, dns, adversarial)"
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/daemon/run-client.sh
	$(Q)WEIR_E2E_DAEMON=1 WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/run.sh
	$(Q)WEIR_E2E_DAEMON=1 WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/dns.sh
	$(Q)WEIR_E2E_DAEMON=1 WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/flows.sh
	$(Q)WEIR_E2E_DAEMON=1 WEIR_BUILD=$(abspath $(OUT)) bash tests/adversarial/run.sh
	$(Q)WEIR_E2E_DAEMON=1 WEIR_BUILD=$(abspath $(OUT)) bash tests/adversarial/waysout.sh
	$(Q)WEIR_E2E_DAEMON=1 WEIR_BUILD=$(abspath $(OUT)) bash tests/adversarial/unix.sh
	$(Q)WEIR_E2E_DAEMON=1 WEIR_BUILD=$(abspath $(OUT)) bash tests/adversarial/outside.sh

# The GitHub Action (deploy/github-action/, action.yml): its pure parts with
# node's test runner (golden summaries from tests/action/fixtures/), then its
# entry points run as the runner runs them, against a private daemon.
test-action: $(OUT)/weir $(TOOLS)
	$(Q)echo "== tier 7: the GitHub Action (node --test; entry points under a stand-in runner worker)"
	$(Q)node --test tests/action/unit.test.js
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/action/run.sh

# Kubernetes (deploy/kubernetes/, weir nri): the manifests and the Helm chart
# checked offline against the API types; a ConfigMap volume's updates reach a
# real daemon; the NRI plugin against a stand-in runtime (no NRI runtime runs
# on Debian 12) with a real daemon, real cgroups and a pod network namespace.
test-kubernetes: $(OUT)/weir $(TOOLS)
	$(Q)echo "== tier 8: Kubernetes (manifests and chart offline, ConfigMap reloads, the NRI plugin against a stand-in runtime)"
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/kubernetes/run.sh
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/containers/nri/nri.sh

# The kernel matrix (docs/kernels.md): Debian's kernels, from Debian's apt
# (apt-get download + dpkg-deb -x into build/kernels: nothing is installed,
# /boot is not touched), each booted under qemu with this checkout, running
# the tiers. Which kernels: tests/kernels/fetch.sh.
.PHONY: kernels
kernels:
	$(Q)bash tests/kernels/fetch.sh $(OUT)/kernels

# Exit 77 from run.sh: no VM can run here (it said why): a skip, unless
# WEIR_KERNELS_REQUIRED=1 (CI) makes it a failure.
test-kernels: tests-build kernels $(OUT)/nscd/usr/sbin/nscd
	$(Q)echo "== kernels: the tiers under Debian's kernels (qemu; docs/kernels.md)"
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/kernels/run.sh; st=$$?; \
		if [ $$st = 77 ] && [ "$(WEIR_KERNELS_REQUIRED)" != 1 ]; then st=0; fi; exit $$st

test-containers: $(OUT)/weir $(TOOLS) $(OUT)/bin/netprobe-static
	$(Q)echo "== tier 9: containers (weir oci-hook with runc bundles and podman, pods, the safety net)"
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/containers/run.sh

test-build: $(OUT)/weir
	$(Q)echo "== tier 5: build and install (sudo make as a user, make install, uninstall)"
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/build/run.sh

# Benchmarks (root): ratios against a baseline of the same run. BENCH_QUICK=1.
.PHONY: bench
bench: deps
	$(Q)$(MAKE) --no-print-directory all $(TOOLS) $(BENCH_TOOLS)
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash bench/run.sh; st=$$?; \
		[ -z "$(OWNER)" ] || chown -R $(OWNER) bench/results; exit $$st

# --- fuzzing (libFuzzer, clang; ASan and UBSan) ------------------------------
# tests/fuzz/fuzz_NAME.c against libweir built again with the sanitizers,
# under $(OUT)/fuzz. `make fuzz` runs each for FUZZ_SECONDS from its seed
# corpus tests/fuzz/corpus/NAME (new inputs go to $(OUT)/fuzz/corpus/NAME,
# crashes to $(OUT)/fuzz/crash-NAME-*).
FUZZ_SECONDS ?= 60
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_BINS := $(addprefix $(OUT)/fuzz/fuzz_,$(FUZZ_NAMES))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link $(filter-out -Werror,$(WEIR_CFLAGS))
FUZZ_OBJS := $(patsubst user/%.c,$(OUT)/fuzz/user/%.o,$(LIB_SRCS)) $(OUT)/user/policy/builtin_policy.o \
	$(OUT)/nri/nri.pb-c.o

$(OUT)/fuzz/user/%.o: user/%.c $(SKELS)
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -c $< -o $@

$(OUT)/fuzz/libweir-fuzz.a: $(FUZZ_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(OUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(OUT)/fuzz/libweir-fuzz.a
	$(call msg,FUZZ-LD,$@)
	$(Q)$(CLANG) -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer $(filter-out -Werror -MMD -MP,$(WEIR_CFLAGS)) \
		$< $(OUT)/fuzz/libweir-fuzz.a $(LDLIBS) -o $@

$(OUT)/fuzz/fuzz_nri: $(OUT)/nri/nri.pb-c.h

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	$(Q)for n in $(FUZZ_NAMES); do \
		echo "== fuzz $$n ($(FUZZ_SECONDS) s)"; \
		mkdir -p $(OUT)/fuzz/corpus/$$n; \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(OUT)/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
			-rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix=$(OUT)/fuzz/crash-$$n- \
			$(OUT)/fuzz/corpus/$$n tests/fuzz/corpus/$$n >$(OUT)/fuzz/$$n.log 2>&1; st=$$?; \
		grep -E '^stat::number_of_executed_units|^SUMMARY|ERROR' $(OUT)/fuzz/$$n.log; \
		[ $$st = 0 ] || { echo "fuzz $$n: failed (exit $$st; $(OUT)/fuzz/$$n.log)"; exit 1; }; \
	done

# --- demo, deps, install, vmlinux ------------------------------------------
.PHONY: demo deps install uninstall man vmlinux clean
demo: deps
	$(Q)$(MAKE) --no-print-directory all $(TOOLS)
	$(Q)WEIR_BUILD=$(abspath $(OUT)) bash tests/e2e/demo.sh

DEB_PKGS := clang llvm libclang-rt-14-dev libbpf-dev bpftool libelf-dev zlib1g-dev libcriterion-dev \
	libyaml-dev libldns-dev libseccomp-dev libmicrohttpd-dev libjson-c-dev \
	libhttp-parser-dev libpsl-dev libssl-dev pkg-config iproute2 dnsmasq-base curl jq dnsutils iptables ipset nftables util-linux make gcc sudo \
	python3 python3-yaml nodejs protobuf-c-compiler libprotobuf-c-dev python3-kubernetes \
	qemu-system-x86 busybox-static kmod xz-utils podman runc
# make deps-build: the packages building weir takes, not those only the
# tests, the demo and the fuzzers use (the GitHub Action, on a runner).
DEB_TEST_ONLY := libclang-rt-14-dev libcriterion-dev dnsmasq-base curl jq dnsutils iptables ipset \
	nftables python3 python3-yaml python3-kubernetes nodejs podman runc busybox-static \
	qemu-system-x86 kmod xz-utils
.PHONY: deps-build
deps-build: DEB_PKGS := $(filter-out $(DEB_TEST_ONLY),$(DEB_PKGS))
deps-build: deps
deps:
	$(Q)missing=$$(for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "deps: need root to install packages (sudo make deps)"; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi

DOCS := README.md LICENSE $(wildcard docs/*.md)
POLICIES := $(wildcard policy/*.yaml)
PRESETS := $(wildcard policy/presets/*.yaml)

install: $(OUT)/weir
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(POLICYDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0755 $(OUT)/weir $(DESTDIR)$(BINDIR)/weir
	install -m 0644 docs/man/weir.8 $(DESTDIR)$(MANDIR)/man8/weir.8
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(POLICIES) $(DESTDIR)$(POLICYDIR)/
	install -d $(DESTDIR)$(POLICYDIR)/presets
	install -m 0644 $(PRESETS) $(DESTDIR)$(POLICYDIR)/presets/
	install -m 0644 deploy/completion/weir.bash $(DESTDIR)$(BASHCOMPDIR)/weir
	install -m 0644 deploy/completion/_weir $(DESTDIR)$(ZSHCOMPDIR)/_weir
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(ALERTSDIR)
	sed 's|/usr/local/bin/weir|$(BINDIR)/weir|g' deploy/systemd/weir.service \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/weir.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/weir.service
	install -m 0644 deploy/prometheus/weir-alerts.yml $(DESTDIR)$(ALERTSDIR)/
	install -d $(DESTDIR)$(OCIHOOKSDIR)
	for f in $(OCIHOOKS); do \
		sed 's|"/usr/local/bin/weir"|"$(BINDIR)/weir"|' $$f >$(DESTDIR)$(OCIHOOKSDIR)/$${f##*/} && \
		chmod 0644 $(DESTDIR)$(OCIHOOKSDIR)/$${f##*/} || exit 1; \
	done

# Only what install put there, and the directories that are weir's own.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/weir $(DESTDIR)$(MANDIR)/man8/weir.8 \
		$(DESTDIR)$(BASHCOMPDIR)/weir $(DESTDIR)$(ZSHCOMPDIR)/_weir \
		$(DESTDIR)$(SYSTEMDUNITDIR)/weir.service $(DESTDIR)$(ALERTSDIR)/weir-alerts.yml \
		$(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCS))) \
		$(addprefix $(DESTDIR)$(POLICYDIR)/,$(notdir $(POLICIES))) \
		$(addprefix $(DESTDIR)$(POLICYDIR)/presets/,$(notdir $(PRESETS))) \
		$(addprefix $(DESTDIR)$(OCIHOOKSDIR)/,$(notdir $(OCIHOOKS)))
	-rmdir $(DESTDIR)$(DOCDIR) $(DESTDIR)$(POLICYDIR)/presets $(DESTDIR)$(POLICYDIR) $(DESTDIR)$(ALERTSDIR) \
		$(dir $(DESTDIR)$(POLICYDIR)) 2>/dev/null

# The rendered page is checked in: building weir needs no scdoc. The date in
# it is the source's last commit, so re-rendering changes nothing else.
man:
	$(call msg,SCDOC,docs/man/weir.8)
	$(Q)command -v scdoc >/dev/null || { echo "make man: scdoc not found (apt-get install scdoc)"; exit 1; }
	$(Q)SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct -- docs/man/weir.8.scd 2>/dev/null | grep . || \
		date +%s) scdoc <docs/man/weir.8.scd >docs/man/weir.8

vmlinux:
	$(Q)mkdir -p $(dir $(VMLINUX))
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $(VMLINUX)

clean:
	rm -rf $(OUT)

$(OUT)/bpf $(OUT)/bin $(OUT)/user $(OUT)/tests/unit $(OUT)/tests/bpf $(OUT)/tests/tools \
		$(OUT)/tests/adversarial $(OUT)/tests/unit/api:
	$(Q)mkdir -p $@

-include $(wildcard $(OUT)/bpf/*.d $(OUT)/user/*/*.d $(OUT)/tests/*/*.d $(OUT)/tests/*/*/*.d)
