// Prefill micro-kernel: Q5_0 weights x "paired" Q8_0 activations, 4 weight rows x 4 tokens at
// a time, two 32-weight blocks per 512-bit integer dot product (AVX-512 VNNI). See
// docs/PERFORMANCE.md for the measurement behind it.
//
// Paired activation layout, per token, per pair of blocks (64 values), 80 bytes:
//   [q: 64 x i8][d0, d1: f32 (the Q8_0 block scales, from their f16)][s0, s1: i32 = -16 * sum(q) of each block]
// Q5_0 weights are unpacked to unsigned 0...31 (the stored value, before its -16 offset), so
// u8 x s8 `vpdpbusd` applies directly; the -16 offset comes back through s0/s1, which seed the
// integer accumulator. Integer sums are exact; only the float summation order differs from
// `qk_dot_q5_0_q8_0`.
#ifndef CQWENGEMM_H
#define CQWENGEMM_H
#include <stdint.h>
#include <string.h>

#define QK_PAIR_BYTES 80

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && defined(__F16C__)
#define QK_HAS_GEMM 1
#else
#define QK_HAS_GEMM 0
#endif

/// 16 x f32 (Swift: SIMD16<Float>).
typedef float qk_v16f __attribute__((__vector_size__(64)));

/// Lane-wise min(max(x, lo), hi): one vmaxps + vminps (Swift's `clamped` on SIMD16 compiles to a
/// per-lane loop through the stack).
static inline qk_v16f qk_clamp16(qk_v16f x, float lo, float hi) {
#if defined(__AVX512F__)
    return (qk_v16f)_mm512_min_ps(_mm512_max_ps((__m512)x, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
#else
    for (int i = 0; i < 16; ++i) x[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
    return x;
#endif
}

/// 1 when this build has the paired-activation kernels (else callers use the per-row path).
static inline int qk_gemm_available(void) { return QK_HAS_GEMM; }

/// Repacks `blocks` (even) Q8_0 activation blocks at `src` into the paired layout at `dst`
/// (`blocks / 2 * QK_PAIR_BYTES` bytes).
static inline void qk_pair_q8_0(const void *src, void *dst, int blocks) {
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    for (int b = 0; b < blocks; b += 2, d += QK_PAIR_BYTES) {
        float scale[2];
        int32_t sum[2];
        for (int k = 0; k < 2; ++k) {
            const uint8_t *blk = s + (size_t)(b + k) * 34;
            uint16_t h; memcpy(&h, blk, 2);
#if QK_HAS_GEMM
            scale[k] = _cvtsh_ss(h);
#else
            scale[k] = 0; (void)h;
#endif
            int32_t t = 0;
            for (int j = 0; j < 32; ++j) t += (int8_t)blk[2 + j];
            sum[k] = -16 * t;
            memcpy(d + 32 * k, blk + 2, 32);
        }
        memcpy(d + 64, scale, 8);
        memcpy(d + 72, sum, 8);
    }
}

#if QK_HAS_GEMM
/// 32 unsigned 5-bit weights (0...31) of one Q5_0 block.
static inline __m256i qk_q5_0_unsigned(const uint8_t *x) {
    const __m128i t = _mm_loadu_si128((const __m128i *)(x + 6));
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    v = _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
    uint32_t qh; memcpy(&qh, x + 2, 4);
    return _mm256_mask_add_epi8(v, (__mmask32)qh, v, _mm256_set1_epi8(16));
}

static inline float qk_hsum16(__m512 v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

/// out[i] = x[i] - (what activation blocks `q` of `type` hold for x[i]): 0 = Q8_0, 1 = Q8_1,
/// 2 = Q8_K, with the scale exactly as the integer dot products read it (f16 or f32). Quantizing
/// this residual again and adding its dot product gives ~16-bit activations.
static inline void qk_q8_residual(const float *x, const void *q, int type, int count, float *out) {
    const uint8_t *b = (const uint8_t *)q;
    const int per = type == 2 ? 256 : 32;
    const int bytes = type == 0 ? 34 : (type == 1 ? 36 : 292);
    const int off = type == 0 ? 2 : 4;
    for (int i = 0; i < count; i += per, b += bytes) {
        float d;
        if (type == 2) { memcpy(&d, b, 4); }
        else {
            uint16_t h; memcpy(&h, b, 2);
#if defined(__F16C__)
            d = _cvtsh_ss(h);
#else
            const uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
            uint32_t bits = e == 0 ? 0 : (e == 31 ? (sign | 0x7f800000u | (m << 13)) : (sign | ((e + 112) << 23) | (m << 13)));
            if (e == 0) { d = (float)m * (1.0f / 16777216.0f); if (sign) d = -d; } else memcpy(&d, &bits, 4);
#endif
        }
        const int8_t *qs = (const int8_t *)(b + off);
        for (int j = 0; j < per; ++j) out[i + j] = x[i + j] - d * (float)qs[j];
    }
}

/// out[t * outStride + r] = row r . (token t's high part + its low part) for r < nr, t < nt
/// (nr, nt in 1...4). Rows: `w + r * rowBytes` (Q5_0, `blocks` blocks, even). Token t's parts:
/// `hi + t * aStride` and `lo + t * aStride` (paired layout). Each weight pair is unpacked once
/// for both parts and all tokens.
static inline __attribute__((always_inline))
void qk_gemm_q5_0_impl(const void *w, long rowBytes, int nr, const void *hi, const void *lo,
                       long aStride, int nt, int blocks, float *out, long outStride, const int NT) {
#if QK_HAS_GEMM
    const uint8_t *wr[4], *ah[4] = {0}, *al[4] = {0};
    for (int r = 0; r < 4; ++r) wr[r] = (const uint8_t *)w + (r < nr ? r : nr - 1) * rowBytes;
    for (int t = 0; t < NT; ++t) {
        ah[t] = (const uint8_t *)hi + (t < nt ? t : nt - 1) * aStride;
        al[t] = (const uint8_t *)lo + (t < nt ? t : nt - 1) * aStride;
    }
    __m512 acc[4][4];
    for (int r = 0; r < 4; ++r)
        for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int b = 0; b < blocks; b += 2) {
        __m512i wq[4];
        __m512 wd[4];
        for (int r = 0; r < 4; ++r) {
            const uint8_t *x0 = wr[r] + (size_t)b * 22, *x1 = x0 + 22;
            wq[r] = _mm512_inserti64x4(_mm512_castsi256_si512(qk_q5_0_unsigned(x0)), qk_q5_0_unsigned(x1), 1);
            uint16_t h0, h1; memcpy(&h0, x0, 2); memcpy(&h1, x1, 2);
            const __m128 d = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | ((uint32_t)h1 << 16))));
            wd[r] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_broadcastss_ps(d)),
                                       _mm256_broadcastss_ps(_mm_movehdup_ps(d)), 1);
        }
        for (int t = 0; t < NT; ++t) {
            for (int part = 0; part < 2; ++part) {
                const uint8_t *p = (part ? al[t] : ah[t]) + (size_t)(b / 2) * QK_PAIR_BYTES;
                const __m512i y = _mm512_loadu_si512((const void *)p);
                float dy[2]; int32_t sy[2];
                memcpy(dy, p + 64, 8); memcpy(sy, p + 72, 8);
                const __m512 yd = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(dy[0])), _mm256_set1_ps(dy[1]), 1);
                const __m512i seed = _mm512_inserti32x4(_mm512_zextsi128_si512(_mm_cvtsi32_si128(sy[0])),
                                                        _mm_cvtsi32_si128(sy[1]), 2);
                for (int r = 0; r < 4; ++r) {
                    const __m512i s = _mm512_dpbusd_epi32(seed, wq[r], y);
                    acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(wd[r], yd), acc[r][t]);
                }
            }
        }
    }
    for (int t = 0; t < nt; ++t)
        for (int r = 0; r < nr; ++r) out[t * outStride + r] = qk_hsum16(acc[r][t]);
#else
    (void)w; (void)rowBytes; (void)nr; (void)hi; (void)lo; (void)aStride; (void)nt; (void)blocks; (void)out;
    (void)outStride; (void)NT;
#endif
}

/// Prefill: 4 rows x 4 tokens (nr, nt in 1...4; missing ones are computed on duplicates and not stored).
static inline void qk_gemm_q5_0_4x4(const void *w, long rowBytes, int nr, const void *hi, const void *lo,
                                    long aStride, int nt, int blocks, float *out, long outStride) {
    qk_gemm_q5_0_impl(w, rowBytes, nr, hi, lo, aStride, nt, blocks, out, outStride, 4);
}


// MARK: - Split activations (decode and prefill of Q5_0)
//
// Split layout, per token, per pair of 32-value blocks (64 values), QK_SPLIT_BYTES = 144 bytes:
//   [hi: 64 x i8][lo: 64 x i8][e0, e1: f32 = d / 256 of each block][s0, s1: i32 = -16 * sum(256 hi + lo) of each block]
// A block of x is d * (hi + lo / 256) = e * (256 hi + lo): hi = round(x / d) with d = max|x| / 127
// (f32), lo = round((x - d hi) * 256 / d), both in -127...127, so ~16-bit activations (error
// <= ~d / 512 per value) in two 8-bit parts whose integer dot products combine exactly as
// (dot(w, hi) << 8) + dot(w, lo). Q5_0 weights are unpacked to unsigned 0...31 for `vpdpbusd`;
// their -16 offset comes back through s0/s1, which seed the integer accumulator.
#define QK_SPLIT_BYTES 144

/// Quantizes `blocks` (even) blocks of 32 floats at `x` into the split layout at `dst`
/// (`blocks / 2 * QK_SPLIT_BYTES` bytes). Rounding: to nearest, ties to even. Non-finite values
/// are not expected.
static inline void qk_quantize_split(const float *x, void *dst, int blocks) {
    uint8_t *o = (uint8_t *)dst;
#if QK_HAS_GEMM
    const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int b = 0; b < blocks; b += 2, o += QK_SPLIT_BYTES) {
        float e[2]; int32_t s[2];
        for (int k = 0; k < 2; ++k) {
            const float *xb = x + (size_t)(b + k) * 32;
            const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(x0, absMask), _mm512_and_ps(x1, absMask)));
            const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
            const __m512 vd = _mm512_set1_ps(d), vid = _mm512_set1_ps(id), vid256 = _mm512_set1_ps(id * 256.0f);
            const __m512 lim = _mm512_set1_ps(127.0f), nlim = _mm512_set1_ps(-127.0f);
            __m512 h0 = _mm512_roundscale_ps(_mm512_mul_ps(x0, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m512 h1 = _mm512_roundscale_ps(_mm512_mul_ps(x1, vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            h0 = _mm512_min_ps(_mm512_max_ps(h0, nlim), lim);
            h1 = _mm512_min_ps(_mm512_max_ps(h1, nlim), lim);
            const __m512 r0 = _mm512_sub_ps(x0, _mm512_mul_ps(h0, vd)), r1 = _mm512_sub_ps(x1, _mm512_mul_ps(h1, vd));
            __m512 l0 = _mm512_roundscale_ps(_mm512_mul_ps(r0, vid256), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m512 l1 = _mm512_roundscale_ps(_mm512_mul_ps(r1, vid256), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            l0 = _mm512_min_ps(_mm512_max_ps(l0, nlim), lim);
            l1 = _mm512_min_ps(_mm512_max_ps(l1, nlim), lim);
            const __m512i ih0 = _mm512_cvtps_epi32(h0), ih1 = _mm512_cvtps_epi32(h1);
            const __m512i il0 = _mm512_cvtps_epi32(l0), il1 = _mm512_cvtps_epi32(l1);
            _mm_storeu_si128((__m128i *)(o + 32 * k), _mm512_cvtepi32_epi8(ih0));
            _mm_storeu_si128((__m128i *)(o + 32 * k + 16), _mm512_cvtepi32_epi8(ih1));
            _mm_storeu_si128((__m128i *)(o + 64 + 32 * k), _mm512_cvtepi32_epi8(il0));
            _mm_storeu_si128((__m128i *)(o + 64 + 32 * k + 16), _mm512_cvtepi32_epi8(il1));
            const int32_t sh = _mm512_reduce_add_epi32(_mm512_add_epi32(ih0, ih1));
            const int32_t sl = _mm512_reduce_add_epi32(_mm512_add_epi32(il0, il1));
            e[k] = d * (1.0f / 256.0f);
            s[k] = -16 * (256 * sh + sl);
        }
        memcpy(o + 128, e, 8);
        memcpy(o + 136, s, 8);
    }
#else
    (void)x; (void)o; (void)blocks;
#endif
}

#if QK_HAS_GEMM
/// 64 unsigned 5-bit weights (0...31) of two consecutive Q5_0 blocks at `x` (the second at x + 22).
static inline __m512i qk_q5_0_unsigned_pair(const uint8_t *x) {
    // Bytes 6..21 (block 0's qs) and 28..43 (block 1's qs), each twice: low nibbles, then high.
    const __m512i idx = _mm512_set_epi8(
        43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28,
        43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28,
        21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6,
        21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6);
    const __m512i raw = _mm512_maskz_loadu_epi8((__mmask64)0xFFFFFFFFFFFull, x);   // 44 bytes
    __m512i v = _mm512_permutexvar_epi8(idx, raw);
    v = _mm512_srlv_epi16(v, _mm512_set_epi32(0x40004, 0x40004, 0x40004, 0x40004, 0, 0, 0, 0,
                                                 0x40004, 0x40004, 0x40004, 0x40004, 0, 0, 0, 0));
    v = _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
    uint32_t q0, q1; memcpy(&q0, x + 2, 4); memcpy(&q1, x + 24, 4);
    const __mmask64 hb = (__mmask64)q0 | ((__mmask64)q1 << 32);
    return _mm512_mask_add_epi8(v, hb, v, _mm512_set1_epi8(16));
}

/// The two f16 scales of a Q5_0 block pair, each broadcast to one 256-bit half.
static inline __m512 qk_q5_0_scale_pair(const uint8_t *x) {
    uint16_t h0, h1; memcpy(&h0, x, 2); memcpy(&h1, x + 22, 2);
    const __m128 d = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | ((uint32_t)h1 << 16))));
    return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                 _mm512_castps128_ps512(d));
}
#endif

/// out[t * outStride + r] = row r . token t for r < nr (1...4), t < nt (1...NT). Rows:
/// `w + r * rowBytes` (Q5_0, `blocks` blocks, even). Token t: `a + t * aStride` (split layout).
static inline __attribute__((always_inline))
void qk_gemm_q5_0_split_impl(const void *w, long rowBytes, int nr, const void *a, long aStride, int nt,
                             int blocks, float *out, long outStride, const int NT) {
#if QK_HAS_GEMM
    const uint8_t *wr[4], *at[4] = {0};
    for (int r = 0; r < 4; ++r) wr[r] = (const uint8_t *)w + (r < nr ? r : nr - 1) * rowBytes;
    for (int t = 0; t < NT; ++t) at[t] = (const uint8_t *)a + (t < nt ? t : nt - 1) * aStride;
    __m512 acc[4][4];
    for (int r = 0; r < 4; ++r)
        for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int b = 0; b < blocks; b += 2) {
        __m512i wq[4];
        __m512 wd[4];
        for (int r = 0; r < 4; ++r) {
            const uint8_t *x0 = wr[r] + (size_t)b * 22;
            wq[r] = qk_q5_0_unsigned_pair(x0);
            wd[r] = qk_q5_0_scale_pair(x0);
        }
        for (int t = 0; t < NT; ++t) {
            const uint8_t *p = at[t] + (size_t)(b / 2) * QK_SPLIT_BYTES;
            const __m512i yh = _mm512_loadu_si512((const void *)p), yl = _mm512_loadu_si512((const void *)(p + 64));
            const __m512 ye = _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                                    _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd((const double *)(p + 128)))));
            const __m512i seed = _mm512_maskz_permutexvar_epi32((__mmask16)0x0101,
                _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(p + 136))));
            for (int r = 0; r < 4; ++r) {
                const __m512i sh = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[r], yh);
                const __m512i sl = _mm512_dpbusd_epi32(seed, wq[r], yl);
                const __m512i s = _mm512_add_epi32(_mm512_slli_epi32(sh, 8), sl);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(wd[r], ye), acc[r][t]);
            }
        }
    }
    for (int t = 0; t < nt; ++t)
        for (int r = 0; r < nr; ++r) out[t * outStride + r] = qk_hsum16(acc[r][t]);
#else
    (void)w; (void)rowBytes; (void)nr; (void)a; (void)aStride; (void)nt; (void)blocks; (void)out;
    (void)outStride; (void)NT;
#endif
}

/// 4 rows x 1 token (decode).
static inline void qk_gemm_q5_0_split_4x1(const void *w, long rowBytes, int nr, const void *a, long aStride, int nt,
                                          int blocks, float *out, long outStride) {
    qk_gemm_q5_0_split_impl(w, rowBytes, nr, a, aStride, nt, blocks, out, outStride, 1);
}
/// 4 rows x 2 tokens.
static inline void qk_gemm_q5_0_split_4x2(const void *w, long rowBytes, int nr, const void *a, long aStride, int nt,
                                          int blocks, float *out, long outStride) {
    qk_gemm_q5_0_split_impl(w, rowBytes, nr, a, aStride, nt, blocks, out, outStride, 2);
}
/// 4 rows x 4 tokens (missing rows and tokens are computed on duplicates and not stored).
static inline void qk_gemm_q5_0_split_4x4(const void *w, long rowBytes, int nr, const void *a, long aStride, int nt,
                                          int blocks, float *out, long outStride) {
    qk_gemm_q5_0_split_impl(w, rowBytes, nr, a, aStride, nt, blocks, out, outStride, 4);
}

#endif
