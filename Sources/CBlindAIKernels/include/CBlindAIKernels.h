#ifndef CBLINDAI_KERNELS_H
#define CBLINDAI_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the AVX2+FMA kernels are in use on this CPU (checked once at run time), 0 for the portable ones.
int blindai_kernels_have_avx2_fma(void);

/// Single-precision GEMM, row-major: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
/// op(A) is A (lda >= K) or, with trans_a, A^T where A is [K,M] (lda >= M); likewise for B.
/// When beta == 0, C is not read (NaNs in C do not propagate).
void blindai_sgemm(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                   float alpha, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
                   float beta, float *c, ptrdiff_t ldc);

/// A prepacked left operand: op(A) [M, K] rearranged once (blindai_sgemm_pack_a into a buffer of
/// blindai_sgemm_packed_a_count(M, K) floats) for many products with different right operands, as a
/// convolution's weights are. blindai_sgemm_packed_a then computes rows row0 ..< row0 + m of
/// C = alpha * op(A) * op(B) + beta * C, where row0 is a multiple of 6 (the micro-tile height) and c points at
/// row row0 of C; packed_rows is the M the buffer was packed with.
ptrdiff_t blindai_sgemm_packed_a_count(ptrdiff_t m, ptrdiff_t k);
void blindai_sgemm_pack_a(int trans_a, ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, float *dst);
void blindai_sgemm_packed_a(const float *packed_a, ptrdiff_t packed_rows, ptrdiff_t row0, ptrdiff_t m,
                            int trans_b, ptrdiff_t n, ptrdiff_t k, float alpha, const float *b, ptrdiff_t ldb,
                            float beta, float *c, ptrdiff_t ldc);

/// dst[i] = src[i] < 0 ? 0 : src[i] for i < n (NaN and -0 kept); src may equal dst.
void blindai_relu_f32(const float *src, float *dst, ptrdiff_t n);

/// One plane of a depthwise convolution with k x k taps (dilation 1) and stride s (1 or 2), from a zero-padded
/// copy of the input plane: (oh - 1) * s + k rows of row_stride floats. Stride 1: each row holds the padded
/// columns 0 ..< ow + k - 1. Stride 2: each row holds the padded even columns (ow + (k - 1) / 2 of them) and,
/// from odd_offset, the padded odd columns (ow + (k - 2) / 2). out[oh][ow] = bias + sum of w[kh * k + kw] * tap.
void blindai_depthwise_plane_f32(const float *padded, ptrdiff_t row_stride, ptrdiff_t odd_offset, int k, int s,
                                 const float *w, float bias, float *out, ptrdiff_t oh, ptrdiff_t ow);

/// dst[i] = tanh(src[i]) for i < n, within 1e-6 relative or 1e-7 absolute (NaN kept, +-inf give +-1, -0 kept);
/// src may equal dst.
void blindai_tanh_f32(const float *src, float *dst, ptrdiff_t n);

/// dst[i] = erf(src[i]) for i < n, within 2e-7 absolute (NaN kept, +-inf give +-1); src may equal dst.
void blindai_erf_f32(const float *src, float *dst, ptrdiff_t n);

/// The body of a parallel loop: called once for each index, from any participating thread.
typedef void (*blindai_parallel_body)(void *context, long index);

/// Runs body(context, i) for every i in 0 ..< count on the calling thread and the engine's helper threads, and
/// returns when all are done. One loop uses the helpers at a time (and only as many as
/// blindai_parallel_run_began says are free): a call made while another loop holds them
/// (another inference, or a nested call) runs its indices on the calling thread. Helpers are started on first
/// use: BLINDAI_NUM_THREADS participants (default: the cores this process may run on, at most 16); after a loop
/// they spin BLINDAI_SPIN_MICROSECONDS (default 200) for the next one before they sleep.
void blindai_parallel_for(long count, blindai_parallel_body body, void *context);

/// Count one whole inference in and out. A loop gets only the helpers of cores that no other running inference
/// occupies (threads - running inferences: none with as many concurrent inferences as cores, where each computes
/// inline on its own core). When the last inference ends the helpers sleep at once instead of spinning, leaving
/// the cores to the rest of the process (in the server: sending the answer, reading the next request).
void blindai_parallel_run_began(void);
void blindai_parallel_run_ended(void);

/// The number of threads that take part in a parallel loop (the caller included); starts the helpers.
int blindai_parallel_threads(void);

/// Test instrumentation of the pool's claim protocol (tests only; nil in production, where it costs one relaxed
/// load per claimed index). `point` is one of the BLINDAI_PARALLEL_HOOK_* values; `ticket` the ticket the
/// participant loaded (CLAIM), its compare-and-swap's outcome in bit 0 with the ticket above it (CLAIMED), or the
/// new generation's ticket about to be published (PUBLISH, called by a loop's owner after it wrote the job).
enum {
    BLINDAI_PARALLEL_HOOK_CLAIM = 1,
    BLINDAI_PARALLEL_HOOK_CLAIMED = 2,
    BLINDAI_PARALLEL_HOOK_PUBLISH = 3,
};
typedef void (*blindai_parallel_hook)(void *context, int point, uint64_t ticket);
void blindai_parallel_set_test_hook(blindai_parallel_hook hook, void *context);

#ifdef __cplusplus
}
#endif

#endif
