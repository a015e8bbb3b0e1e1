/* check_alloc_end: malloc, calloc and realloc are the C library's again
 * (see check_alloc_begin.h). No include guard. */
#undef malloc
#undef calloc
#undef realloc
