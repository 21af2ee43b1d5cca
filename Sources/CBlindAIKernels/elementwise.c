// Element-wise float32 kernels that Swift without target flags does not vectorise well (a data-dependent
// select per element became a branch: Relu took 10 % of a ResNet18 run). AVX2 variants chosen at run time.
#include "CBlindAIKernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BLINDAI_X86 1
#endif

// Relu keeps NaN and -0 as they are: an element is replaced by 0 only when it compares below 0.
static void relu_scalar(const float *src, float *dst, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = src[i];
        dst[i] = v < 0.0f ? 0.0f : v;
    }
}

#ifdef BLINDAI_X86
__attribute__((target("avx2")))
static void relu_avx2(const float *src, float *dst, ptrdiff_t n) {
    const __m256 zero = _mm256_setzero_ps();
    ptrdiff_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_loadu_ps(src + i), b = _mm256_loadu_ps(src + i + 8);
        __m256 c = _mm256_loadu_ps(src + i + 16), d = _mm256_loadu_ps(src + i + 24);
        a = _mm256_blendv_ps(a, zero, _mm256_cmp_ps(a, zero, _CMP_LT_OQ));
        b = _mm256_blendv_ps(b, zero, _mm256_cmp_ps(b, zero, _CMP_LT_OQ));
        c = _mm256_blendv_ps(c, zero, _mm256_cmp_ps(c, zero, _CMP_LT_OQ));
        d = _mm256_blendv_ps(d, zero, _mm256_cmp_ps(d, zero, _CMP_LT_OQ));
        _mm256_storeu_ps(dst + i, a);
        _mm256_storeu_ps(dst + i + 8, b);
        _mm256_storeu_ps(dst + i + 16, c);
        _mm256_storeu_ps(dst + i + 24, d);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_loadu_ps(src + i);
        _mm256_storeu_ps(dst + i, _mm256_blendv_ps(a, zero, _mm256_cmp_ps(a, zero, _CMP_LT_OQ)));
    }
    relu_scalar(src + i, dst + i, n - i);
}
#endif

void blindai_relu_f32(const float *src, float *dst, ptrdiff_t n) {
#ifdef BLINDAI_X86
    if (blindai_kernels_have_avx2_fma()) {
        relu_avx2(src, dst, n);
        return;
    }
#endif
    relu_scalar(src, dst, n);
}
