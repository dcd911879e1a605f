#!/bin/bash
# The one test command (README, CI): installs what is missing, runs fmt/clippy/unit tests,
# then the lab's end-to-end scenarios in real QEMU guests.
#   scripts/test.sh          unit tests + the core lab tier (what CI runs)
#   scripts/test.sh --full   unit tests + every lab scenario (the full matrix)
#   scripts/test.sh --unit   unit tests only
#   scripts/test.sh --package  unit tests + the packages built and checked (no lab)
# Env: XENRAID_LAB_DIR (image cache, default /var/tmp/xenraid-lab), XENRAID_LAB_KEEP=1
# (keep a failed run's disk images), XENRAID_LAB_ACCEL=tcg|kvm (override detection).
set -euo pipefail
cd "$(dirname "$0")/.."
tier=core
case ${1:-} in --full) tier=full ;; --unit) tier=none ;; --package) tier=package ;; "") ;; *) echo "usage: $0 [--full|--unit|--package]" >&2; exit 2 ;; esac

T0=$(date +%s)
scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
echo "unit tests: $(( $(date +%s) - T0 )) s"
if [ "$tier" != none ]; then
  # the binary the guests run: static, as shipped to CentOS 7 dom0 (glibc 2.17); package.sh
  # builds it, proves it static and packages it (tarball, RPM, .deb), checked with rpm,
  # dpkg-deb, tar, man, bash and systemd-analyze; the lab's `package` scenario installs the RPM
  T1=$(date +%s)
  scripts/package.sh
  scripts/check-package.sh
  echo "packages: $(( $(date +%s) - T1 )) s"
fi
if [ "$tier" = core ] || [ "$tier" = full ]; then
  cargo build -p xenraid-lab
  target/debug/xenraid-lab run "$tier"
fi
echo "total: $(( $(date +%s) - T0 )) s"
