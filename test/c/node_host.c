/* node_host.c: runs a C test inside node, for machines without libuv's
 * development files.
 *
 * The broker and channel tests need libuv. Where Debian's libuv1-dev is not installed,
 * the Makefile builds that test as a shared object that includes node's
 * own uv.h (the headers node-gyp builds the addon with) and leaves libuv's
 * symbols to be resolved from the node binary that loads it, so the test
 * runs against the very libuv the addon runs on. This file is that shared
 * object's entry point: node_host.js loads it with process.dlopen, its
 * init runs the test's main (renamed test_main by the Makefile) and hands
 * the exit status back as the module's exports. */
#include <node_api.h>
#include <stdio.h>

int test_main(void);

NAPI_MODULE_INIT() {
  (void)exports;
  int status = test_main();
  fflush(stdout);
  fflush(stderr);
  napi_value result;
  if (napi_create_int32(env, status, &result) != napi_ok) return NULL;
  return result;
}
