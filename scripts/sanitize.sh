#!/usr/bin/env bash
# npm run test:sanitize: the C unit tests, then the addon built with
# AddressSanitizer + UndefinedBehaviorSanitizer under store tests in real
# cluster workers. The instrumented addon is built in a directory of its own
# and loaded through SOCKET_IO_CLUSTER_STORE_ADDON, so the normal build is
# never touched. node itself is not instrumented: the sanitizer runtimes are
# preloaded, and leak checking (which would report node's own allocations)
# is left to the C tests and valgrind. Any memory error or undefined
# behaviour in the addon aborts the process and fails the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

make -s -C test/c sanitize

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r binding.gyp src "$work/"
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
gyp=$(node -e "process.stdout.write(require.resolve('node-gyp/bin/node-gyp.js'))")
nodedir=$(node -e "process.stdout.write(require('./scripts/build').localNodeDir() || '')")
(cd "$work" && CFLAGS="$flags" LDFLAGS="$flags" node "$gyp" rebuild --jobs max ${nodedir:+--nodedir="$nodedir"} >/dev/null)

export SOCKET_IO_CLUSTER_STORE_ADDON="$work/build/Release/cluster_store.node"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
npx mocha --no-config --timeout 60000 --exit \
  ${SANITIZE_SPECS:-test/kv.test.js test/pubsub.test.js test/values.test.js test/shared.test.js test/retained.test.js test/recovery.test.js test/faults/worker-death.test.js test/faults/slow-worker.test.js test/handoff.test.js test/uplink-faults.test.js test/uplink-v4.test.js}
