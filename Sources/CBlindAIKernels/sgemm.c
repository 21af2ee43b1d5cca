// Blocked single-precision GEMM with packed panels and a 6x16 register micro-kernel.
// The AVX2+FMA variant is compiled with a per-function target attribute and chosen at run time,
// so no compiler flag is needed by users of the package.
#include "CBlindAIKernels.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BLINDAI_X86 1
#endif

#define MR 6
#define NR 16
#define KC 256
#define MC 120
#define NC 2048

static int g_have_avx2 = -1;

int blindai_kernels_have_avx2_fma(void) {
    if (g_have_avx2 < 0) {
#ifdef BLINDAI_X86
        __builtin_cpu_init();
        g_have_avx2 = (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 1 : 0;
#else
        g_have_avx2 = 0;
#endif
    }
    return g_have_avx2;
}

static inline float load_a(int trans, const float *a, ptrdiff_t lda, ptrdiff_t i, ptrdiff_t p) {
    return trans ? a[p * lda + i] : a[i * lda + p];
}

// Packs op(A)[i0:i0+mc, p0:p0+kc] into panels of MR rows: panel-major, then k, then the MR rows.
static void pack_a(int trans, const float *a, ptrdiff_t lda, ptrdiff_t i0, ptrdiff_t mc, ptrdiff_t p0, ptrdiff_t kc, float *dst) {
    for (ptrdiff_t ip = 0; ip < mc; ip += MR) {
        ptrdiff_t rows = mc - ip < MR ? mc - ip : MR;
        if (!trans && rows == MR) {
            const float *r0 = a + (i0 + ip) * lda + p0;
            for (ptrdiff_t p = 0; p < kc; p++) {
                for (int r = 0; r < MR; r++) dst[r] = r0[r * lda + p];
                dst += MR;
            }
        } else {
            for (ptrdiff_t p = 0; p < kc; p++) {
                for (ptrdiff_t r = 0; r < MR; r++)
                    dst[r] = r < rows ? load_a(trans, a, lda, i0 + ip + r, p0 + p) : 0.0f;
                dst += MR;
            }
        }
    }
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] into panels of NR columns: panel-major, then k, then the NR columns.
static void pack_b(int trans, const float *b, ptrdiff_t ldb, ptrdiff_t p0, ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nc, float *dst) {
    for (ptrdiff_t jp = 0; jp < nc; jp += NR) {
        ptrdiff_t cols = nc - jp < NR ? nc - jp : NR;
        if (!trans) {
            for (ptrdiff_t p = 0; p < kc; p++) {
                const float *src = b + (p0 + p) * ldb + j0 + jp;
                if (cols == NR) {
                    memcpy(dst, src, NR * sizeof(float));
                } else {
                    ptrdiff_t c = 0;
                    for (; c < cols; c++) dst[c] = src[c];
                    for (; c < NR; c++) dst[c] = 0.0f;
                }
                dst += NR;
            }
        } else {
            for (ptrdiff_t p = 0; p < kc; p++) {
                ptrdiff_t c = 0;
                for (; c < cols; c++) dst[c] = b[(j0 + jp + c) * ldb + p0 + p];
                for (; c < NR; c++) dst[c] = 0.0f;
                dst += NR;
            }
        }
    }
}

// Portable micro-kernel: acc[MR][NR] = sum_k a[k][r] * b[k][c]; then C += alpha * acc.
static void kernel_portable(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc,
                            ptrdiff_t rows, ptrdiff_t cols, float alpha) {
    float acc[MR][NR];
    memset(acc, 0, sizeof(acc));
    for (ptrdiff_t p = 0; p < kc; p++) {
        for (int r = 0; r < MR; r++) {
            float av = a[p * MR + r];
            for (int col = 0; col < NR; col++) acc[r][col] += av * b[p * NR + col];
        }
    }
    for (ptrdiff_t r = 0; r < rows; r++)
        for (ptrdiff_t col = 0; col < cols; col++) c[r * ldc + col] += alpha * acc[r][col];
}

#ifdef BLINDAI_X86
__attribute__((target("avx2,fma")))
static void kernel_avx2(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc,
                        ptrdiff_t rows, ptrdiff_t cols, float alpha) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (ptrdiff_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b);
        __m256 b1 = _mm256_loadu_ps(b + 8);
        __m256 av;
        av = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);
        a += MR;
        b += NR;
    }
    __m256 va = _mm256_set1_ps(alpha);
    if (rows == MR && cols == NR) {
#define STORE_ROW(r, x0, x1) \
        _mm256_storeu_ps(c + r * ldc, _mm256_fmadd_ps(va, x0, _mm256_loadu_ps(c + r * ldc))); \
        _mm256_storeu_ps(c + r * ldc + 8, _mm256_fmadd_ps(va, x1, _mm256_loadu_ps(c + r * ldc + 8)));
        STORE_ROW(0, c00, c01) STORE_ROW(1, c10, c11) STORE_ROW(2, c20, c21)
        STORE_ROW(3, c30, c31) STORE_ROW(4, c40, c41) STORE_ROW(5, c50, c51)
#undef STORE_ROW
        return;
    }
    float tmp[MR][NR];
    _mm256_storeu_ps(tmp[0], c00); _mm256_storeu_ps(tmp[0] + 8, c01);
    _mm256_storeu_ps(tmp[1], c10); _mm256_storeu_ps(tmp[1] + 8, c11);
    _mm256_storeu_ps(tmp[2], c20); _mm256_storeu_ps(tmp[2] + 8, c21);
    _mm256_storeu_ps(tmp[3], c30); _mm256_storeu_ps(tmp[3] + 8, c31);
    _mm256_storeu_ps(tmp[4], c40); _mm256_storeu_ps(tmp[4] + 8, c41);
    _mm256_storeu_ps(tmp[5], c50); _mm256_storeu_ps(tmp[5] + 8, c51);
    for (ptrdiff_t r = 0; r < rows; r++)
        for (ptrdiff_t col = 0; col < cols; col++) c[r * ldc + col] += alpha * tmp[r][col];
}
#endif

// The blocked loops shared by blindai_sgemm and blindai_sgemm_packed_a. With `packed_a` (the layout of
// blindai_sgemm_pack_a: per K block of KC, MR-row panels of op(A) for every row), A is not packed here and `a`
// is unused; `row0` is the first row of this call's C within the packed rows (a multiple of MR).
static void gemm_blocks(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                        float alpha, const float *a, ptrdiff_t lda, const float *packed_a, ptrdiff_t packed_rows,
                        ptrdiff_t row0, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    if (m <= 0 || n <= 0) return;
    // Scale C by beta first; beta == 0 overwrites (so NaN/garbage in C is ignored).
    for (ptrdiff_t i = 0; i < m; i++) {
        float *row = c + i * ldc;
        if (beta == 0.0f) memset(row, 0, (size_t)n * sizeof(float));
        else if (beta != 1.0f) for (ptrdiff_t j = 0; j < n; j++) row[j] *= beta;
    }
    if (k <= 0 || alpha == 0.0f) return;

    void (*kernel)(ptrdiff_t, const float *, const float *, float *, ptrdiff_t, ptrdiff_t, ptrdiff_t, float) = kernel_portable;
#ifdef BLINDAI_X86
    if (blindai_kernels_have_avx2_fma()) kernel = kernel_avx2;
#endif

    ptrdiff_t nc_max = n < NC ? n : NC;
    ptrdiff_t mc_max = m < MC ? m : MC;
    float *bp = aligned_alloc(64, (size_t)(((KC * ((nc_max + NR - 1) / NR * NR)) * sizeof(float) + 63) / 64 * 64));
    float *ap = packed_a ? NULL : aligned_alloc(64, (size_t)(((KC * ((mc_max + MR - 1) / MR * MR)) * sizeof(float) + 63) / 64 * 64));
    if (!bp || (!packed_a && !ap)) { free(bp); free(ap); abort(); }
    // Rows of the packed A, rounded up to whole panels: the size of one K block's panels is kc * pr.
    ptrdiff_t pr = (packed_rows + MR - 1) / MR * MR;

    for (ptrdiff_t j0 = 0; j0 < n; j0 += NC) {
        ptrdiff_t nc = n - j0 < NC ? n - j0 : NC;
        for (ptrdiff_t p0 = 0; p0 < k; p0 += KC) {
            ptrdiff_t kc = k - p0 < KC ? k - p0 : KC;
            pack_b(trans_b, b, ldb, p0, kc, j0, nc, bp);
            for (ptrdiff_t i0 = 0; i0 < m; i0 += MC) {
                ptrdiff_t mc = m - i0 < MC ? m - i0 : MC;
                const float *apanel;
                if (packed_a) {
                    apanel = packed_a + p0 * pr + (row0 + i0) * kc;
                } else {
                    pack_a(trans_a, a, lda, i0, mc, p0, kc, ap);
                    apanel = ap;
                }
                for (ptrdiff_t jr = 0; jr < nc; jr += NR) {
                    ptrdiff_t cols = nc - jr < NR ? nc - jr : NR;
                    for (ptrdiff_t ir = 0; ir < mc; ir += MR) {
                        ptrdiff_t rows = mc - ir < MR ? mc - ir : MR;
                        kernel(kc, apanel + ir * kc, bp + jr * kc, c + (i0 + ir) * ldc + j0 + jr, ldc, rows, cols, alpha);
                    }
                }
            }
        }
    }
    free(bp);
    free(ap);
}

void blindai_sgemm(int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                   float alpha, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
                   float beta, float *c, ptrdiff_t ldc) {
    gemm_blocks(trans_a, trans_b, m, n, k, alpha, a, lda, NULL, 0, 0, b, ldb, beta, c, ldc);
}

ptrdiff_t blindai_sgemm_packed_a_count(ptrdiff_t m, ptrdiff_t k) {
    if (m <= 0 || k <= 0) return 0;
    return k * ((m + MR - 1) / MR * MR);
}

void blindai_sgemm_pack_a(int trans_a, ptrdiff_t m, ptrdiff_t k, const float *a, ptrdiff_t lda, float *dst) {
    if (m <= 0 || k <= 0) return;
    ptrdiff_t pr = (m + MR - 1) / MR * MR;
    for (ptrdiff_t p0 = 0; p0 < k; p0 += KC) {
        ptrdiff_t kc = k - p0 < KC ? k - p0 : KC;
        // All rows at once: pack_a writes MR-row panels in row order, which is the layout for every MC block.
        pack_a(trans_a, a, lda, 0, m, p0, kc, dst + p0 * pr);
    }
}

void blindai_sgemm_packed_a(const float *packed_a, ptrdiff_t packed_rows, ptrdiff_t row0, ptrdiff_t m,
                            int trans_b, ptrdiff_t n, ptrdiff_t k, float alpha, const float *b, ptrdiff_t ldb,
                            float beta, float *c, ptrdiff_t ldc) {
    gemm_blocks(0, trans_b, m, n, k, alpha, NULL, 0, packed_a, packed_rows, row0, b, ldb, beta, c, ldc);
}
