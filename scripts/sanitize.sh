#!/usr/bin/env bash
# npm run test:sanitize: the C unit tests, then the addon built with
# AddressSanitizer + UndefinedBehaviorSanitizer under the store tests in
# real cluster workers. node itself is not instrumented, so the sanitizer
# runtime is preloaded and leak checking (which would report node's own
# allocations) is left to the C tests and valgrind; every memory error or
# undefined behaviour in the addon aborts the process and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

make -s -C test/c sanitize

asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
restore() { node scripts/build.js --force >/dev/null; }
trap restore EXIT

CFLAGS="$flags" LDFLAGS="$flags" node scripts/build.js --force >/dev/null
export LD_PRELOAD="$asan $ubsan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
npx mocha --no-config --timeout 60000 --exit ${SANITIZE_SPECS:-test/kv.test.js test/pubsub.test.js test/values.test.js test/faults/worker-death.test.js test/faults/slow-worker.test.js}
