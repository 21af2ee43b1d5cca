// The engine's intra-operator thread pool: one parallel loop at a time runs on the calling thread plus
// (cores - 1) helper threads that stay awake (spinning) for a short while after each loop before they sleep.
//
// Why not DispatchQueue.concurrentPerform (which the engine used before): a ResNet18 inference runs about 40
// parallel loops of 0.1 to 2 ms separated by short serial operators. With libdispatch every loop woke a sleeping
// worker (a futex wake and, in a VM, an inter-processor interrupt: tens of microseconds before it starts), and
// in the server, whose process has more threads (event loops, the Swift concurrency pool, which on Linux shares
// libdispatch's root queues), the scheduler placed the woken worker beside the caller and then moved it: 1.3 CPU
// migrations per inference against 0.03 in `blindai bench`, and about 1.5 ms more per inference. Here the helper
// is usually still spinning when the next loop starts, so it neither sleeps nor moves. onnxruntime's pool spins
// the same way.
//
// A loop takes as many helpers as there are cores that no other inference occupies (runs are counted by
// blindai_parallel_run_began/ended): under a server's full load every run computes on its own core, inline, and
// the helpers sleep; a lone run gets every core.
//
// Protocol: the owner of a loop (whoever wins `busy`; anyone else, including a nested call, runs its loop inline)
// writes the job, then publishes it by storing `ticket` = generation << 32 | next index 0. Every participant
// claims indices by compare-and-swap on `ticket`; a claim succeeds only while the ticket still names that
// generation with an index below the count, so a helper that read the job fields of a generation can only run
// them while that generation's loop is unfinished (the owner writes the next job only after every index is done).
//
// Closing a generation before rewriting the job. A participant loads the ticket, then the job fields, then
// claims by compare-and-swap from the ticket it loaded. Suppose it loaded generation G's ticket when every index
// was already claimed (index == count_G) and was then delayed. G ends, and the next owner writes the job of the
// next loop (a larger count) before it stores the new ticket. The delayed participant now reads the new count,
// finds its index below it, and its swap succeeds (the ticket still holds G's final value): it runs index count_G
// of the new job, which is claimed again once the new ticket is published, so that index runs twice and `done`
// over-counts, letting the owner return while an index still runs. So an owner first stores a closed ticket
// (generation + 1, index UINT32_MAX: nothing to claim) with release order, then writes the job (release), then
// publishes generation + 2 at index 0. A participant reads the job with acquire order: if it saw any field of the
// new job, the closed ticket happens-before its swap, which then cannot find G's value. The generation after
// the closed one is the one helpers run; a helper that sees only the closed one returns and keeps watching.
// ParallelPoolTests parks a helper in that window through blindai_parallel_set_test_hook.
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1   // sched_getaffinity, CPU_COUNT
#endif
#include "CBlindAIKernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16

static struct {
    pthread_once_t once;
    int threads;                       // participants: the caller plus threads - 1 helpers
    long spin_ns;                      // how long a helper spins for the next loop before sleeping
    _Atomic uint64_t ticket;           // generation << 32 | next index to claim
    _Atomic long done;                 // indices finished in the current generation
    _Atomic int busy;                  // a loop owns the helpers
    _Atomic(blindai_parallel_body) body;
    _Atomic(void *) context;
    _Atomic long count;
    _Atomic int sleepers;              // helpers waiting on `wake`
    _Atomic int resting;               // no run is active: spinning helpers sleep at once
    _Atomic int active_runs;           // inferences running (blindai_parallel_run_began/ended)
    _Atomic int helpers_wanted;        // helpers 1 ... helpers_wanted take part in the current loop
    _Atomic(blindai_parallel_hook) hook; // tests only
    _Atomic(void *) hook_context;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
} pool = { .once = PTHREAD_ONCE_INIT, .mutex = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static long env_long(const char *name, long fallback, long lo, long hi) {
    const char *s = getenv(name);
    if (!s || !*s) return fallback;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!end || *end != '\0') return fallback;
    return v < lo ? lo : (v > hi ? hi : v);
}

static int cores(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void blindai_parallel_set_test_hook(blindai_parallel_hook hook, void *context) {
    atomic_store(&pool.hook_context, context);
    atomic_store(&pool.hook, hook);
}

static inline void call_hook(int point, uint64_t ticket) {
    blindai_parallel_hook hook = atomic_load_explicit(&pool.hook, memory_order_relaxed);
    if (__builtin_expect(hook != NULL, 0)) hook(atomic_load(&pool.hook_context), point, ticket);
}

// Claims and runs indices of generation `gen` until none is left (or the generation is over).
static void run_indices(uint32_t gen) {
    for (;;) {
        uint64_t t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
        if ((uint32_t)(t >> 32) != gen) return;
        call_hook(BLINDAI_PARALLEL_HOOK_CLAIM, t);
        long count = atomic_load_explicit(&pool.count, memory_order_acquire);
        blindai_parallel_body body = atomic_load_explicit(&pool.body, memory_order_acquire);
        void *context = atomic_load_explicit(&pool.context, memory_order_acquire);
        long i = (long)(uint32_t)t;
        if (i >= count) return;
        uint64_t expected = t;
        int claimed = atomic_compare_exchange_weak_explicit(&pool.ticket, &expected, t + 1, memory_order_acq_rel,
                                                            memory_order_acquire);
        call_hook(BLINDAI_PARALLEL_HOOK_CLAIMED, (t << 1) | (uint64_t)(claimed != 0));
        if (claimed) {
            body(context, i);
            atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
        }
    }
}

static void *helper_main(void *arg) {
    int id = (int)(intptr_t)arg;   // 1 ... threads - 1
    uint32_t seen = (uint32_t)(atomic_load_explicit(&pool.ticket, memory_order_acquire) >> 32);
    int wanted = 1;
    for (;;) {
        // Spin for the next generation, then sleep until one is published. A helper the last loop did not want
        // (other inferences occupy the cores) sleeps at once instead of spinning beside them.
        long start = now_ns();
        uint32_t gen;
        for (unsigned spins = wanted ? 0 : 255;; spins++) {
            gen = (uint32_t)(atomic_load_explicit(&pool.ticket, memory_order_acquire) >> 32);
            if (gen != seen) break;
            if ((spins & 255) == 255 && (!wanted || now_ns() - start > pool.spin_ns ||
                                         atomic_load_explicit(&pool.resting, memory_order_relaxed))) {
                pthread_mutex_lock(&pool.mutex);
                atomic_fetch_add(&pool.sleepers, 1);
                while ((gen = (uint32_t)(atomic_load(&pool.ticket) >> 32)) == seen) {
                    pthread_cond_wait(&pool.wake, &pool.mutex);
                }
                atomic_fetch_sub(&pool.sleepers, 1);
                pthread_mutex_unlock(&pool.mutex);
                break;
            }
            cpu_relax();
        }
        wanted = id <= atomic_load_explicit(&pool.helpers_wanted, memory_order_relaxed);
        if (wanted) run_indices(gen);
        seen = gen;
    }
    return NULL;
}

static void start_pool(void) {
    int available = cores();
    int n = (int)env_long("BLINDAI_NUM_THREADS", available < MAX_THREADS ? available : MAX_THREADS, 1, MAX_THREADS);
    pool.spin_ns = env_long("BLINDAI_SPIN_MICROSECONDS", 200, 0, 1000000) * 1000L;
    int started = 1;
    for (int i = 1; i < n; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, (size_t)8 << 20);
        pthread_t thread;
        // Helper ids are 1 ... started - 1 with no gap, even if a thread could not be created.
        if (pthread_create(&thread, &attr, helper_main, (void *)(intptr_t)started) == 0) started++;
        pthread_attr_destroy(&attr);
    }
    pool.threads = started;
}

int blindai_parallel_threads(void) {
    pthread_once(&pool.once, start_pool);
    return pool.threads;
}

void blindai_parallel_for(long count, blindai_parallel_body body, void *context) {
    if (count <= 0) return;
    pthread_once(&pool.once, start_pool);
    // With several inferences running, each already keeps a core busy: a loop takes only the cores that no
    // other run occupies (on 2 cores, 2 concurrent runs both run inline instead of 3 threads sharing 2 cores).
    int active = atomic_load_explicit(&pool.active_runs, memory_order_relaxed);
    int helpers = pool.threads - (active > 1 ? active : 1);
    int expected = 0;
    if (count == 1 || helpers <= 0 || count > (long)UINT32_MAX ||
        !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        for (long i = 0; i < count; i++) body(context, i);
        return;
    }
    // Close the finished generation before the job changes (see "Closing a generation" above).
    uint32_t closed = (uint32_t)(atomic_load_explicit(&pool.ticket, memory_order_relaxed) >> 32) + 1;
    atomic_store_explicit(&pool.ticket, ((uint64_t)closed << 32) | UINT32_MAX, memory_order_seq_cst);
    atomic_store_explicit(&pool.body, body, memory_order_release);
    atomic_store_explicit(&pool.context, context, memory_order_release);
    atomic_store_explicit(&pool.count, count, memory_order_release);
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.helpers_wanted, helpers, memory_order_relaxed);
    atomic_store_explicit(&pool.resting, 0, memory_order_relaxed);
    uint32_t gen = closed + 1;
    call_hook(BLINDAI_PARALLEL_HOOK_PUBLISH, (uint64_t)gen << 32);
    // Sequentially consistent with the helpers' `sleepers` increment: either this store is seen by a helper
    // about to sleep, or that helper is counted here and woken.
    atomic_store(&pool.ticket, (uint64_t)gen << 32);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mutex);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mutex);
    }
    run_indices(gen);
    // Wait for indices that helpers claimed. Spinning first: the last index usually ends within microseconds.
    for (unsigned spins = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < count; spins++) {
        if (spins < 4096) cpu_relax();
        else sched_yield();
    }
    atomic_store_explicit(&pool.busy, 0, memory_order_release);
}

void blindai_parallel_run_began(void) {
    atomic_fetch_add_explicit(&pool.active_runs, 1, memory_order_relaxed);
}

void blindai_parallel_run_ended(void) {
    if (atomic_fetch_sub_explicit(&pool.active_runs, 1, memory_order_relaxed) == 1) {
        atomic_store_explicit(&pool.resting, 1, memory_order_relaxed);
    }
}
