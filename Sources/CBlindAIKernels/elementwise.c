// Element-wise float32 kernels that Swift without target flags does not vectorise well (a data-dependent
// select per element became a branch: Relu took 10 % of a ResNet18 run). AVX2 variants chosen at run time.
#include "CBlindAIKernels.h"
#include <math.h>

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

// erf for float32: Abramowitz and Stegun 7.1.26, erf(x) = 1 - (a1 t + ... + a5 t^5) exp(-x^2) with t = 1/(1 + p|x|),
// odd in x; absolute error below 2e-7 over the whole line (the library's erff is exact but scalar, 7 % of a BERT
// run). NaN gives NaN, +-inf gives +-1.
#define ERF_P 0.3275911f
#define ERF_A1 0.254829592f
#define ERF_A2 -0.284496736f
#define ERF_A3 1.421413741f
#define ERF_A4 -1.453152027f
#define ERF_A5 1.061405429f

static float erf_scalar(float x) {
    float ax = x < 0 ? -x : x;
    if (ax != ax) return x;
    float t = 1.0f / (1.0f + ERF_P * ax);
    float poly = ((((ERF_A5 * t + ERF_A4) * t + ERF_A3) * t + ERF_A2) * t + ERF_A1) * t;
    float x2 = ax * ax;
    float e = x2 > 88.0f ? 0.0f : __builtin_expf(-x2);
    float r = 1.0f - poly * e;
    return x < 0 ? -r : r;
}

#ifdef BLINDAI_X86
// exp(x) for x in [-88, 0] (Cephes-style range reduction and polynomial), AVX2/FMA.
__attribute__((target("avx2,fma")))
static inline __m256 exp_neg_avx2(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(n));
}

// Applies an odd function 8 floats at a time: core(|x|) for x >= 0, the sign of x copied back (so -0 stays -0),
// NaN in, NaN out; the tail through the scalar function. Inlined into each caller with its core.
__attribute__((target("avx2,fma"), always_inline))
static inline void odd_avx2(const float *src, float *dst, ptrdiff_t n, __m256 (*core)(__m256), float (*scalar)(float)) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    ptrdiff_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(src + i);
        __m256 r = _mm256_or_ps(core(_mm256_andnot_ps(sign, x)), _mm256_and_ps(sign, x));
        _mm256_storeu_ps(dst + i, _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q)));
    }
    for (; i < n; i++) dst[i] = scalar(src[i]);
}

__attribute__((target("avx2,fma"), always_inline))
static inline __m256 erf_core(__m256 ax) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(ERF_P), ax, one));
    __m256 poly = _mm256_set1_ps(ERF_A5);
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(ERF_A4));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(ERF_A3));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(ERF_A2));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(ERF_A1));
    poly = _mm256_mul_ps(poly, t);
    __m256 x2 = _mm256_mul_ps(ax, ax);
    __m256 e = exp_neg_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x2));
    // Past |x| = 9.4 the result is 1 to float precision (and exp is clamped there).
    e = _mm256_andnot_ps(_mm256_cmp_ps(x2, _mm256_set1_ps(87.0f), _CMP_GT_OQ), e);
    return _mm256_fnmadd_ps(poly, e, one);
}

__attribute__((target("avx2,fma")))
static void erf_avx2(const float *src, float *dst, ptrdiff_t n) { odd_avx2(src, dst, n, erf_core, erf_scalar); }
#endif

#ifdef BLINDAI_X86
#define AVX2_VARIANT(f) (f)
#else
#define AVX2_VARIANT(f) NULL
#endif

// Runs the AVX2 variant of a float32 kernel when the CPU has AVX2 and FMA, the scalar function otherwise.
static void dispatch_f32(const float *src, float *dst, ptrdiff_t n, void (*avx2)(const float *, float *, ptrdiff_t),
                         float (*scalar)(float)) {
#ifdef BLINDAI_X86
    if (blindai_kernels_have_avx2_fma()) {
        avx2(src, dst, n);
        return;
    }
#else
    (void)avx2;
#endif
    for (ptrdiff_t i = 0; i < n; i++) dst[i] = scalar(src[i]);
}

void blindai_erf_f32(const float *src, float *dst, ptrdiff_t n) {
    dispatch_f32(src, dst, n, AVX2_VARIANT(erf_avx2), erf_scalar);
}

// tanh: below |x| = 0.625 its Taylor series to x^19 (relative error under 1e-8 there, no cancellation); above,
// (1 - t) / (1 + t) with t = exp(-2|x|) <= 0.29 (no cancellation either). Odd: the sign of x is copied, so -0 stays
// -0; NaN in, NaN out; +-inf give +-1. The C library's tanhf (through expm1f) took 24 % of a GPT-2 run.
#ifdef BLINDAI_X86
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 tanh_core(__m256 ax) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 y = _mm256_mul_ps(ax, ax);
    __m256 q = _mm256_set1_ps(-2.3912911424355248e-4f);
    q = _mm256_fmadd_ps(q, y, _mm256_set1_ps(5.90027440945586e-4f));
    q = _mm256_fmadd_ps(q, y, _mm256_set1_ps(-1.4558343870513183e-3f));
    q = _mm256_fmadd_ps(q, y, _mm256_set1_ps(3.592128036572481e-3f));
    q = _mm256_fmadd_ps(q, y, _mm256_set1_ps(-8.863235529902197e-3f));
    q = _mm256_fmadd_ps(q, y, _mm256_set1_ps(2.1869488536155203e-2f));
    q = _mm256_fmadd_ps(q, y, _mm256_set1_ps(-5.396825396825397e-2f));
    q = _mm256_fmadd_ps(q, y, _mm256_set1_ps(1.3333333333333333e-1f));
    q = _mm256_fmadd_ps(q, y, _mm256_set1_ps(-3.333333333333333e-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(ax, y), q, ax);
    __m256 t = exp_neg_avx2(_mm256_mul_ps(ax, _mm256_set1_ps(-2.0f)));
    __m256 large = _mm256_div_ps(_mm256_sub_ps(one, t), _mm256_add_ps(one, t));
    return _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

__attribute__((target("avx2,fma")))
static void tanh_avx2(const float *src, float *dst, ptrdiff_t n) { odd_avx2(src, dst, n, tanh_core, tanhf); }
#endif

void blindai_tanh_f32(const float *src, float *dst, ptrdiff_t n) {
    dispatch_f32(src, dst, n, AVX2_VARIANT(tanh_avx2), tanhf);
}
