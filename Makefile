# husk build, test and demo entry points. Everything here runs as root on Debian 12 (no sudo).

SHELL := /bin/bash

# The runtime that `demo` and `conformance` drive; point it at /usr/sbin/runc to compare with the reference.
RUNTIME ?= $(CURDIR)/target/release/husk
# Extra arguments for `cargo test` in `make test`, e.g. TEST_ARGS='-p husk -- --nocapture'.
TEST_ARGS ?=
# Arguments for the conformance runner: test-name filters and options (--verbose, -j N, --list, --exact).
CONFORMANCE_ARGS ?=
# 1 = after the cargo tests, drive husk through podman, containerd and docker (fails on any failed check).
CLIENTS_SMOKE ?= 1
# Reference runtimes for `make bench`.
BENCH_RUNTIMES ?= runc crun

SHARED_TOOLS := $(CURDIR)/../shared/tools
# Cargo's output directory for the static build (.cargo/config.toml sets the target). `make build` links
# target/release/husk to the binary there: the path the README, the yardsticks and RUNTIME use.
BUILD_DIR := target/x86_64-unknown-linux-gnu/release
ROOTFS_DIR := $(CURDIR)/rootfs/out/busybox
DEB_PACKAGES := pkg-config libseccomp-dev busybox-static runc crun jq tmux strace hyperfine util-linux bsdutils docker-registry skopeo apache2-utils \
	protobuf-compiler containerd openssl
DEMO_SCRIPT := echo "Hello from a container started by $(notdir $(RUNTIME))"; id; hostname; ls /

# rustup's default install location, for shells that have not sourced ~/.cargo/env.
ifneq ($(wildcard $(HOME)/.cargo/bin/cargo),)
export PATH := $(HOME)/.cargo/bin:$(PATH)
endif

.DEFAULT_GOAL := build
.PHONY: deps build probe rootfs demo test lint bench hot-order conformance differential vm test-vm test-vm-clients fuzz clean

# Installs only what is missing. `apt-get update` runs first when the package lists are empty or more than a
# week old, and once more if the install still fails.
deps:
	@missing=(); \
	for pkg in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$$pkg"); \
	done; \
	if [ $${#missing[@]} -eq 0 ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	echo "deps: installing $${missing[*]}"; \
	if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || \
		[ -n "$$(find /var/lib/apt/lists -maxdepth 0 -mtime +7)" ]; then \
		apt-get update; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y "$${missing[@]}" || { apt-get update && apt-get install -y "$${missing[@]}"; }

build:
	@command -v cargo >/dev/null || { echo "build: cargo not found; install Rust with rustup" >&2; exit 1; }
	cargo build --release --workspace
	@mkdir -p target/release && ln -sfn ../x86_64-unknown-linux-gnu/release/husk target/release/husk

# The probe (rootfs/probe, crate husk-probe) runs inside test containers, so it must be a static binary, as every
# binary of the workspace is (.cargo/config.toml). build.sh copies rootfs/out/probe to /usr/bin/probe in the rootfs.
PROBE_BIN := $(BUILD_DIR)/husk-probe
probe:
	cargo build --release -p husk-probe
	@ldd $(PROBE_BIN) 2>&1 | grep -qE 'statically linked|not a dynamic executable' || \
		{ echo "probe: $(PROBE_BIN) is not statically linked:" >&2; ldd $(PROBE_BIN) >&2; exit 1; }
	@mkdir -p rootfs/out
	@cmp -s $(PROBE_BIN) rootfs/out/probe || install -m 0755 $(PROBE_BIN) rootfs/out/probe

rootfs: probe
	rootfs/build.sh

# A bundle in a temp dir holding a copy of the busybox rootfs and the runtime's default spec, edited to print a
# greeting and some facts about the container. The trap removes the container and the bundle however it ends.
demo: deps build rootfs
	@set -euo pipefail; \
	[ -x "$$(command -v $(RUNTIME))" ] || { echo "demo: runtime $(RUNTIME) is not executable" >&2; exit 1; }; \
	bundle=$$(mktemp -d /tmp/husk-demo.XXXXXX); \
	id=demo-$$$$; \
	trap '$(RUNTIME) delete --force "$$id" >/dev/null 2>&1 || true; rm -rf "$$bundle"' EXIT; \
	trap 'exit 130' INT TERM; \
	cp -a $(ROOTFS_DIR) "$$bundle/rootfs"; \
	$(RUNTIME) spec --bundle "$$bundle"; \
	jq --arg script '$(DEMO_SCRIPT)' '.process.terminal = false | .process.args = ["/bin/sh", "-c", $$script]' \
		"$$bundle/config.json" >"$$bundle/config.json.new"; \
	mv "$$bundle/config.json.new" "$$bundle/config.json"; \
	echo "demo: $(RUNTIME) run --bundle $$bundle $$id"; \
	$(RUNTIME) run --bundle "$$bundle" "$$id"

test: export HUSK_ROOTFS := $(ROOTFS_DIR)
test: deps build rootfs
	build/check-hot-list target/release/husk
	cargo test --release --workspace $(TEST_ARGS)
	@if [ "$(DIFFERENTIAL_CI_N)" != 0 ]; then \
		$(MAKE) --no-print-directory differential N=$(DIFFERENTIAL_CI_N) SEED=$(SEED); \
	fi
	@if [ "$(CLIENTS_SMOKE)" = 1 ]; then \
		echo "$(SHARED_TOOLS)/clients-smoke.sh target/release/husk all"; \
		$(SHARED_TOOLS)/clients-smoke.sh target/release/husk all; \
	fi
	@if [ "$(VM_LANE)" = 1 ]; then \
		$(MAKE) --no-print-directory test-vm VM_TESTS="$(VM_TESTS_CI)" && \
		$(MAKE) --no-print-directory test-vm-clients; \
	fi

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: build rootfs
	benches/lifecycle.sh target/release/husk $(BENCH_RUNTIMES)
	benches/images.sh target/release/husk

# build/hot-functions.txt, the hot-first function order for the link step: traces the lifecycle scenarios
# (run, create+start+delete, exec) of an unstripped husk with benches/hotpath. Several minutes.
hot-order:
	benches/hot-order.sh

# The conformance suite (tests/conformance.rs: a test target with its own runner, harness = false) drives $(RUNTIME),
# which may be any runc-compatible runtime. The test binary is run directly, not through `cargo test`, so that its
# summary line `N passed, N failed, N skipped` is the last line printed. CONFORMANCE_ARGS takes test-name filters
# and runner options, e.g. CONFORMANCE_ARGS='--verbose -j 1 seccomp'.
conformance:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory build rootfs
	@bin=$$(cargo test --release --test conformance --no-run --message-format=json 2>/dev/null | \
		jq -r 'select(.reason == "compiler-artifact" and .target.name == "conformance" and .executable != null) | .executable' | \
		tail -n 1); \
	if [ ! -x "$$bin" ]; then \
		echo "conformance: cannot build the conformance test binary:" >&2; \
		cargo test --release --test conformance --no-run; exit 1; \
	fi; \
	echo "HUSK_TEST_RUNTIME=$(RUNTIME) $$bin $(CONFORMANCE_ARGS)"; \
	HUSK_TEST_RUNTIME=$(RUNTIME) HUSK_ROOTFS=$(ROOTFS_DIR) "$$bin" $(CONFORMANCE_ARGS)

# Differential testing (testing/src/bin/differential): N cases generated from SEED run against husk and runc 1.1.5,
# compared by exit codes, error classes, what the probe reports from inside and host leftovers. Exits non-zero on
# any divergence not listed in testing/src/bin/differential/known.txt; a failing case prints its seed and leaves a
# minimal bundle under /tmp/husk-differential. DIFFERENTIAL_ARGS adds options, e.g. '--verbose' or
# '--replay CASE_SEED --features 0,2'.
# `make test` runs DIFFERENTIAL_CI_N cases (0 skips them; 200 take about 5 minutes here). DIFFERENTIAL_HUSK is the
# husk under test, e.g. a dev build: target/x86_64-unknown-linux-gnu/debug/husk.
N ?= 200
SEED ?= 1
DIFFERENTIAL_ARGS ?=
DIFFERENTIAL_CI_N ?= 200
DIFFERENTIAL_HUSK ?= $(CURDIR)/target/release/husk
differential:
	@$(MAKE) --no-print-directory build rootfs
	$(BUILD_DIR)/differential --cases $(N) --seed $(SEED) --husk $(DIFFERENTIAL_HUSK) \
		--reference /usr/sbin/runc --rootfs $(ROOTFS_DIR) $(DIFFERENTIAL_ARGS)

# Fuzzing (fuzz/, cargo-fuzz on nightly, installed here when missing): each of FUZZ_TARGETS runs for FUZZ_SECONDS
# from its checked-in seed corpus (fuzz/corpus/<target>/, read-only); what it learns goes to target/fuzz-corpus/, a
# crash to fuzz/artifacts/<target>/ (then: a regression test, and the fix). Not part of `make test`: a sanitizer build
# on nightly takes minutes.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= config state_file bootstrap layer
fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked
	@set -eo pipefail; for t in $(FUZZ_TARGETS); do \
		mkdir -p target/fuzz-corpus/$$t; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		(cd fuzz && cargo +nightly fuzz run -O $$t ../target/fuzz-corpus/$$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -print_final_stats=1 2>&1 | \
			grep -E '^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY|Done)' ) || \
		{ echo "fuzz: $$t failed (see fuzz/artifacts/$$t)" >&2; exit 1; }; \
	done

# The VM lane (vm/): a Debian 12 guest with systemd as PID 1, pure cgroup v2 and its own kernel (6.1), booted under
# QEMU's TCG. `vm` builds its image with debootstrap, cached under target/vm/ by a hash of its recipe, so it is
# rebuilt only when vm/build-image.sh or vm/guest-boot.sh change. `test-vm` runs the VM_TESTS test targets inside
# it (VM_TEST_ARGS: extra arguments for each test binary).
VM_IMAGE_DIR := target/vm/image-$(shell cat vm/build-image.sh vm/guest-boot.sh 2>/dev/null | sha256sum | cut -c1-16)
VM_TESTS ?= escapes proc_escapes seccomp_hardening hostile_input namespaces resources cgroups_manager systemd_cgroup cri lifecycle
# What `make test` runs in the VM (VM_LANE=0 skips it): the attacks whose defences depend most on the kernel, and
# the cgroup v2, systemd-driver and CRI tests that only a systemd + cgroup v2 host can run; then test-vm-clients.
VM_TESTS_CI ?= escapes proc_escapes namespaces resources cgroups_manager parity_cli systemd_cgroup cri
VM_LANE ?= 1
vm:
	@vm/host-deps.sh
	@if [ -f $(VM_IMAGE_DIR)/disk.raw ]; then echo "vm: image $(VM_IMAGE_DIR) is up to date"; \
	else vm/build-image.sh $(VM_IMAGE_DIR); fi

test-vm: build rootfs vm
	vm/test-lane.sh $(VM_IMAGE_DIR) $(VM_TESTS)

# podman, containerd (ctr) and docker drive husk in the VM at their defaults on a systemd host (the systemd cgroup
# driver); VM_CLIENTS_DRIVERS="systemd cgroupfs" runs the smoke test once per driver.
VM_CLIENTS_DRIVERS ?= systemd
test-vm-clients: build vm
	vm/clients-lane.sh $(VM_IMAGE_DIR) target/release/husk $(VM_CLIENTS_DRIVERS)

clean:
	cargo clean
	rm -rf rootfs/out/busybox rootfs/out/busybox.tar.gz rootfs/out/.busybox.* rootfs/out/probe
