# Halcyon: `make run` boots the demo, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
CARGO ?= cargo
KERNEL_TARGET := x86_64-unknown-none
WASM_TARGET := wasm32-wasip1
KERNEL_ELF := target/$(KERNEL_TARGET)/kernel/halcyon-kernel
HALCYON := target/release/halcyon
IMAGE := target/halcyon/halcyon.elf
GUESTS := $(notdir $(wildcard tests/guests/*))
EXAMPLES := $(notdir $(wildcard examples/*))

.PHONY: all toolchain kernel cli image guests examples run test lint bench qemu clean

all: image guests examples

qemu:
	@./.ci/ensure-tools

toolchain:
	@./.ci/ensure-toolchain

kernel: toolchain
	$(CARGO) build -p halcyon-kernel --target $(KERNEL_TARGET) --profile kernel

cli:
	$(CARGO) build --release -p halcyon

image: kernel cli
	$(HALCYON) build --kernel $(KERNEL_ELF) --output $(IMAGE)

guests: toolchain
	$(CARGO) build --release --target $(WASM_TARGET) $(addprefix -p ,$(GUESTS))

examples: toolchain
	$(CARGO) build --release --target $(WASM_TARGET) $(addprefix -p ,$(EXAMPLES))
	@mkdir -p target/examples
	@for e in $(EXAMPLES); do cp target/$(WASM_TARGET)/release/$$e.wasm target/examples/; done

run: qemu image examples
	$(HALCYON) run --image $(IMAGE) target/examples/demo.wasm

test: qemu image guests examples
	@set -o pipefail; $(CARGO) test --release -p halcyon-hal -p halcyon -p halcyon-boot -p halcyon-tests -p halcyon-bench 2>&1 \
	    | tee target/test.log
	@# The TLS provider is behind hal's `tls` feature (only the kernel enables it).
	@set -o pipefail; $(CARGO) test --release -p halcyon-hal --features tls --lib tls:: 2>&1 | tee -a target/test.log
	@awk '/^test result:/ { passed += $$4; failed += $$6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' target/test.log

# Workspace lints deny undocumented unsafe blocks and unsafe ops in unsafe fns (Cargo.toml).
lint: toolchain
	$(CARGO) clippy --release -p halcyon-hal -p halcyon -p halcyon-boot -p halcyon-tests -p halcyon-bench --all-targets -- -D warnings
	$(CARGO) clippy --release -p halcyon-hal --features tls --all-targets -- -D warnings
	$(CARGO) clippy -p halcyon-kernel --target $(KERNEL_TARGET) --profile kernel -- -D warnings

bench: qemu image guests
	$(CARGO) run --release -p halcyon-bench

clean:
	$(CARGO) clean
