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

// Depthwise convolution of one plane, k x k taps, stride 1 or 2, from a zero-padded copy of the input plane
// (see the header). Stride 1: padded column of output column ow and tap kw is ow + kw. Stride 2: the padded
// row holds its even columns first and its odd columns from `odd_offset`, so that every tap reads contiguous
// memory: tap kw of output ow is even[ow + kw / 2] for even kw, odd[ow + kw / 2] for odd kw.
static inline const float *dw_tap(const float *row, int s, ptrdiff_t odd_offset, int kw) {
    if (s == 1) return row + kw;
    return (kw & 1) ? row + odd_offset + kw / 2 : row + kw / 2;
}

static void depthwise_scalar(const float *padded, ptrdiff_t row_stride, ptrdiff_t odd_offset, int k, int s,
                             const float *w, float bias, float *out, ptrdiff_t oh_count, ptrdiff_t ow_begin, ptrdiff_t ow_count) {
    for (ptrdiff_t oh = 0; oh < oh_count; oh++) {
        float *d = out + oh * ow_count;
        for (ptrdiff_t ow = ow_begin; ow < ow_count; ow++) d[ow] = bias;
        for (int kh = 0; kh < k; kh++) {
            const float *row = padded + (oh * s + kh) * row_stride;
            for (int kw = 0; kw < k; kw++) {
                const float *src = dw_tap(row, s, odd_offset, kw);
                float wv = w[kh * k + kw];
                for (ptrdiff_t ow = ow_begin; ow < ow_count; ow++) d[ow] += wv * src[ow];
            }
        }
    }
}

#ifdef BLINDAI_X86
__attribute__((target("avx2,fma")))
static void depthwise_avx2(const float *padded, ptrdiff_t row_stride, ptrdiff_t odd_offset, int k, int s,
                           const float *w, float bias, float *out, ptrdiff_t oh_count, ptrdiff_t ow_count) {
    ptrdiff_t vec_end = ow_count - ow_count % 8;
    for (ptrdiff_t oh = 0; oh < oh_count; oh++) {
        float *d = out + oh * ow_count;
        const float *rows = padded + oh * s * row_stride;
        ptrdiff_t ow = 0;
        for (; ow + 16 <= vec_end; ow += 16) {
            __m256 a0 = _mm256_set1_ps(bias), a1 = a0;
            for (int kh = 0; kh < k; kh++) {
                const float *row = rows + kh * row_stride;
                for (int kw = 0; kw < k; kw++) {
                    const float *src = dw_tap(row, s, odd_offset, kw) + ow;
                    __m256 wv = _mm256_broadcast_ss(w + kh * k + kw);
                    a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src), a0);
                    a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(src + 8), a1);
                }
            }
            _mm256_storeu_ps(d + ow, a0);
            _mm256_storeu_ps(d + ow + 8, a1);
        }
        for (; ow < vec_end; ow += 8) {
            __m256 a0 = _mm256_set1_ps(bias);
            for (int kh = 0; kh < k; kh++) {
                const float *row = rows + kh * row_stride;
                for (int kw = 0; kw < k; kw++) {
                    a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + kh * k + kw), _mm256_loadu_ps(dw_tap(row, s, odd_offset, kw) + ow), a0);
                }
            }
            _mm256_storeu_ps(d + ow, a0);
        }
        if (ow < ow_count) {
            // The last 1 to 7 columns with masked loads and stores (small planes, 7x7 and 14x14, are common).
            __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(ow_count - ow)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            __m256 a0 = _mm256_set1_ps(bias);
            for (int kh = 0; kh < k; kh++) {
                const float *row = rows + kh * row_stride;
                for (int kw = 0; kw < k; kw++) {
                    a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + kh * k + kw), _mm256_maskload_ps(dw_tap(row, s, odd_offset, kw) + ow, mask), a0);
                }
            }
            _mm256_maskstore_ps(d + ow, mask, a0);
        }
    }
}
#endif

void blindai_depthwise_plane_f32(const float *padded, ptrdiff_t row_stride, ptrdiff_t odd_offset, int k, int s,
                                 const float *w, float bias, float *out, ptrdiff_t oh, ptrdiff_t ow) {
#ifdef BLINDAI_X86
    if (blindai_kernels_have_avx2_fma()) {
        depthwise_avx2(padded, row_stride, odd_offset, k, s, w, bias, out, oh, ow);
        return;
    }
#endif
    depthwise_scalar(padded, row_stride, odd_offset, k, s, w, bias, out, oh, 0, ow);
}
