/* check_alloc_begin: from here on, malloc, calloc and realloc are check.h's
 * failing allocator (check_alloc_fail_after). A white-box test includes
 * the module sources it drives between this and check_alloc_end.h, so
 * that their allocations can be made to fail and nothing else's:
 *
 *   #include "check_alloc_begin.h"
 *
 *   #include "../../src/table.c"
 *
 *   #include "check_alloc_end.h"
 *
 * (the blank lines keep clang-format from sorting the three). Include
 * check.h first. No include guard: it may be used more than once. */
#define malloc(n) check_malloc(n)
#define calloc(n, size) check_calloc(n, size)
#define realloc(p, n) check_realloc(p, n)
