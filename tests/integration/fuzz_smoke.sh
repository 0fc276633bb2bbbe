#!/usr/bin/env bash
# The libFuzzer harnesses (tests/fuzz/) build with clang and each runs for a
# few seconds (FUZZ_SMOKE_SECONDS, default 5) on its committed seeds without a
# finding: the config parser, the health checks' HTTP response parser, the
# ClientHello parser, the admin request parser and the BIG-IP configuration
# importer. `make fuzz` runs them for
# minutes; this keeps them building and keeps the seeds passing. The
# harnesses compile the sources themselves with their own sanitizers, so
# `make test` runs this once, with the normal build (tests/run 'build-san:!^fuzz_smoke$').
. "$(dirname "$0")/../lib.sh"
command -v clang >/dev/null 2>&1 || skip "clang is not installed (make deps installs clang and libclang-rt-dev)"
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }\n' >"$T/probe.c"
clang -fsanitize=fuzzer,address,undefined -o "$T/probe" "$T/probe.c" >"$T/probe.log" 2>&1 ||
	skip "clang cannot link -fsanitize=fuzzer: libFuzzer is missing (make deps installs libclang-rt-dev): $(head -1 "$T/probe.log")"
cd "$(dirname "$0")/../.." || fail "no repository"
names=()
for f in tests/fuzz/fuzz_*.c; do
	n=${f#tests/fuzz/fuzz_}
	names+=("${n%.c}")
done
[ ${#names[@]} -ge 5 ] || fail "expected at least 5 harnesses, found: ${names[*]}"
for n in "${names[@]}"; do
	[ -n "$(ls -A "tests/fuzz/corpus/$n" 2>/dev/null)" ] || fail "harness $n has no seeds in tests/fuzz/corpus/$n"
done
info "building ${names[*]}"
# Two runs of the suite side by side would build the same files: one at a time.
mkdir -p build-fuzz
exec 9>build-fuzz/.lock
flock 9
make -s -j2 fuzz-build >"$T/build.log" 2>&1 || { tail -20 "$T/build.log"; fail "make fuzz-build failed"; }
info "each for ${FUZZ_SMOKE_SECONDS:-5}s on its seeds"
FUZZ_WORK="$T/corpus" tests/fuzz/run "${FUZZ_SMOKE_SECONDS:-5}" "${names[@]}" || fail "a harness found something (above)"
flock -u 9
pass "${#names[@]} fuzz harnesses built and ran without a finding"
