#include "CBlindAIServerShims.h"

// Any C library header defines __GLIBC__ on glibc (through <features.h>); test it only after one.
#include <stdlib.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int blindai_release_free_memory(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

int blindai_limit_malloc_arenas(int arenas) {
#if defined(__GLIBC__)
    return mallopt(M_ARENA_MAX, arenas);
#else
    (void)arenas;
    return 0;
#endif
}
