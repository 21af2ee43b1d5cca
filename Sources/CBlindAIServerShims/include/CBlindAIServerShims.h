#ifndef CBLINDAI_SERVER_SHIMS_H
#define CBLINDAI_SERVER_SHIMS_H

/// Returns the allocator's free memory to the operating system (glibc `malloc_trim(0)`: the top of every
/// arena and whole free pages inside them). Returns 1 when memory was released, 0 when none could be or the
/// C library has no such call. Swift's Glibc module does not export <malloc.h>, hence this shim.
int blindai_release_free_memory(void);

/// Makes every thread allocate from at most `arenas` glibc malloc arenas (`mallopt(M_ARENA_MAX, arenas)`).
/// Returns 1 when set, 0 otherwise (or when the C library is not glibc).
int blindai_limit_malloc_arenas(int arenas);

#endif
