// The kernels, written once and compiled once per instruction-set level: Generic.c (level 0,
// the architecture's baseline: SSE2 on x86-64, plain C elsewhere), AVX2.c (level 1: AVX2, FMA,
// F16C) and AVX512.c (level 2: AVX-512 F/BW/VL/DQ + VNNI). Each of those files defines QK_LEVEL,
// QK_SUFFIX and (for x86) a `#pragma clang attribute` that gives every function in this file its
// `target(...)`, then includes this file; Dispatch.c picks one level's table at start-up from what
// the CPU reports. Nothing here depends on the flags the package is built with.
//
// Every `qk_dot_<weight>_<activation>` helper takes a running accumulator, one weight block
// (or K-quant super-block) and the matching activation block, and returns the accumulator
// plus that block's dot product. The accumulator is an 8-lane float vector; its lanes hold
// partial sums in an unspecified split, reduced with `qk_hsum8` at the end of a row. Block
// layouts are ggml's (see GGMLType.swift).
//
// Activation precondition (true of anything `quantizeActivations` writes): Q8 activation
// bytes are in -127...127 (the sign trick used for signed x signed products needs it).
// Panels (x86 levels 1 and 2, arm64 with dot products; PanelsAVX2.h, PanelsNEON.h) are described in
// include/CQwenKernels.h.
#include <stdint.h>
#include <math.h>
#include <string.h>
#include "CQwenKernels.h"

#ifndef QK_NEON
#define QK_NEON 0   // 1 in NEON.c: arm64 with the dot-product instructions (level 0's C plus NEON panels)
#endif

#define QK_CAT2(a, b) a##_##b
#define QK_CAT(a, b) QK_CAT2(a, b)
#define QK_NAME(name) QK_CAT(name, QK_SUFFIX)

/// 8 x f32 accumulator. Same layout as __m256.
typedef float qk_v8f __attribute__((__vector_size__(32)));

// MARK: - Scalar helpers

static inline float qk_f32(const void *p) { float f; memcpy(&f, p, 4); return f; }

static inline float qk_f16(const void *p) {
    uint16_t h; memcpy(&h, p, 2);
#if QK_LEVEL >= 1
    return _cvtsh_ss(h);
#else
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        float v = (float)mant * (1.0f / 16777216.0f);   // subnormal or zero: mant * 2^-24
        return sign ? -v : v;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f; memcpy(&f, &bits, 4); return f;
#endif
}

/// f16(a) * f16(b). Both halves go through one 32-bit GPR -> vmovd (upper lanes zeroed):
/// a lone `_cvtsh_ss` compiles to `vpinsrw` into a free register (often the loop's accumulator),
/// a false dependency that serialized the 32-weight block loops.
static inline float qk_f16_mul(const void *a, const void *b) {
    uint16_t ha, hb; memcpy(&ha, a, 2); memcpy(&hb, b, 2);
#if QK_LEVEL >= 1
    const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)ha | ((uint32_t)hb << 16))));
    return _mm_cvtss_f32(_mm_mul_ss(f, _mm_movehdup_ps(f)));
#else
    return qk_f16(&ha) * qk_f16(&hb);
#endif
}

/// Horizontal sum of an accumulator.
static inline float qk_hsum8(qk_v8f v) {
#if QK_LEVEL >= 1
    __m128 s = _mm_add_ps(_mm256_castps256_ps128((__m256)v), _mm256_extractf128_ps((__m256)v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
#else
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
#endif
}


/// Adds a scalar into lane 0 (used by the scalar path).
static inline qk_v8f qk_add0(qk_v8f acc, float v) { acc[0] += v; return acc; }

#if QK_NEON
// MARK: - arm64 dot-product helpers (the same integer sums as the scalar code, with `sdot`)

/// Σ a[i] b[i] over 16 signed bytes.
static inline __attribute__((always_inline)) int32_t qk_sdot16(int8x16_t a, int8x16_t b) {
    return vaddvq_s32(vdotq_s32(vdupq_n_s32(0), a, b));
}
/// Σ a[i] b[i] over 32 signed bytes: a in two registers, b at p.
static inline __attribute__((always_inline)) int32_t qk_sdot32(int8x16_t a0, int8x16_t a1, const void *p) {
    const int8_t *b = (const int8_t *)p;
    return vaddvq_s32(vdotq_s32(vdotq_s32(vdupq_n_s32(0), a0, vld1q_s8(b)), a1, vld1q_s8(b + 16)));
}
/// Bit i of the 16-bit word at p, as byte i = 16 or 0.
static inline __attribute__((always_inline)) uint8x16_t qk_bits16_x16(const uint8_t *p) {
    const uint8x16_t spread = vcombine_u8(vdup_n_u8(p[0]), vdup_n_u8(p[1]));
    const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ULL));
    return vandq_u8(vtstq_u8(spread, bit), vdupq_n_u8(16));
}
#endif

#if QK_LEVEL >= 1
// MARK: - x86 integer helpers

static inline __m256i qk_load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i qk_load128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/// acc + sum over groups of 4 of u8(u) * s8(s), per i32 lane.
static inline __m256i qk_dpbusd(__m256i acc, __m256i u, __m256i s) {
#if QK_LEVEL >= 2
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    const __m256i p = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/// acc + sum over pairs of i16(a) * i16(b), per i32 lane.
static inline __m256i qk_dpwssd(__m256i acc, __m256i a, __m256i b) {
#if QK_LEVEL >= 2
    return _mm256_dpwssd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

/// acc + s8(x) . s8(y) per i32 lane (groups of 4); y must not contain -128.
static inline __m256i qk_dot_i8(__m256i acc, __m256i x, __m256i y) {
    return qk_dpbusd(acc, _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/// 16 packed bytes -> 32 nibbles: low nibbles in bytes 0..15, high nibbles in bytes 16..31.
static inline __m256i qk_nibbles32(const void *p) {
    const __m128i t = qk_load128(p);
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

#if QK_LEVEL < 2
/// Bit i of the 32-bit word at p -> byte i = 0xFF or 0x00.
static inline __m256i qk_bytes_from_bits32(const void *p) {
    uint32_t x32; memcpy(&x32, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                           0x0101010101010101LL, 0x0000000000000000LL);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x32), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfeLL));
    return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}
#endif

/// 16 x i16: lanes 0..7 = s[a], lanes 8..15 = s[b] (s: 16 bytes, signed or unsigned per `sgn`).
static inline __m256i qk_scale_pair_i8(__m128i s, int a, int b) {
    const __m128i m = _mm_set_epi64x((long long)(0x0101010101010101ULL * (uint64_t)b),
                                     (long long)(0x0101010101010101ULL * (uint64_t)a));
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s, m));
}

/// Broadcast i16 lane e of each 128-bit half to all lanes of that half.
static inline __m256i qk_bcast_i16(__m256i v, int e) {
    const short w = (short)(((2 * e + 1) << 8) | (2 * e));
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16(w));
}

/// Unpacks the 12-byte K-quant 6-bit scales/mins (Q4_K, Q5_K) into 8 scales then 8 mins.
static inline void qk_unpack_k4_scales(const uint8_t *q, uint32_t u[4]) {
    const uint32_t km1 = 0x3f3f3f3f, km2 = 0x0f0f0f0f, km3 = 0x03030303;
    memcpy(u, q, 12);
    u[3] = ((u[2] >> 4) & km2) | (((u[1] >> 6) & km3) << 4);
    const uint32_t ua = u[1] & km1;
    u[1] = (u[2] & km2) | (((u[0] >> 6) & km3) << 4);
    u[2] = ua;
    u[0] &= km1;
}
#endif

/// Scalar 6-bit scale/min of sub-block j (ggml's get_scale_min_k4).
static inline void qk_scale_min_k4(int j, const uint8_t *q, int *d, int *m) {
    if (j < 4) {
        *d = q[j] & 63; *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

// MARK: - 32-weight blocks (activations Q8_0: [d f16][32 x i8], Q8_1: [d f16][s f16][32 x i8])

/// Q8_0 weights x Q8_0 activations.
static inline __attribute__((always_inline)) qk_v8f qk_dot_q8_0_q8_0(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f16_mul(x, y);
#if QK_LEVEL >= 1
    const __m256i s = qk_dot_i8(_mm256_setzero_si256(), qk_load256(x + 2), qk_load256(y + 2));
    return (qk_v8f)_mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), (__m256)acc);
#elif QK_NEON
    const int s = qk_sdot32(vld1q_s8((const int8_t *)x + 2), vld1q_s8((const int8_t *)x + 18), y + 2);
    return qk_add0(acc, d * (float)s);
#else
    int s = 0;
    for (int j = 0; j < 32; ++j) s += (int8_t)x[2 + j] * (int8_t)y[2 + j];
    return qk_add0(acc, d * (float)s);
#endif
}

/// Q4_0 weights x Q8_0 activations.
static inline __attribute__((always_inline)) qk_v8f qk_dot_q4_0_q8_0(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f16_mul(x, y);
#if QK_LEVEL >= 1
    const __m256i qx = _mm256_sub_epi8(qk_nibbles32(x + 2), _mm256_set1_epi8(8));
    const __m256i s = qk_dot_i8(_mm256_setzero_si256(), qx, qk_load256(y + 2));
    return (qk_v8f)_mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), (__m256)acc);
#elif QK_NEON
    const uint8x16_t q = vld1q_u8(x + 2);
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), vdupq_n_s8(8));
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), vdupq_n_s8(8));
    return qk_add0(acc, d * (float)qk_sdot32(lo, hi, y + 2));
#else
    int s = 0;
    for (int j = 0; j < 16; ++j) {
        s += ((x[2 + j] & 0xF) - 8) * (int8_t)y[2 + j];
        s += ((x[2 + j] >> 4) - 8) * (int8_t)y[2 + 16 + j];
    }
    return qk_add0(acc, d * (float)s);
#endif
}

/// Q5_0 weights x Q8_0 activations.
static inline __attribute__((always_inline)) qk_v8f qk_dot_q5_0_q8_0(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f16_mul(x, y);
#if QK_LEVEL >= 1
    __m256i qx = qk_nibbles32(x + 6);
#if QK_LEVEL >= 2
    uint32_t qh; memcpy(&qh, x + 2, 4);
    qx = _mm256_mask_sub_epi8(qx, (__mmask32)~qh, qx, _mm256_set1_epi8(16));
#else
    qx = _mm256_or_si256(qx, _mm256_andnot_si256(qk_bytes_from_bits32(x + 2), _mm256_set1_epi8((char)0xF0)));
#endif
    const __m256i s = qk_dot_i8(_mm256_setzero_si256(), qx, qk_load256(y + 2));
    return (qk_v8f)_mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), (__m256)acc);
#elif QK_NEON
    const uint8x16_t q = vld1q_u8(x + 6);
    const uint8x16_t l = vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), qk_bits16_x16(x + 2));
    const uint8x16_t h = vorrq_u8(vshrq_n_u8(q, 4), qk_bits16_x16(x + 4));
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(l), vdupq_n_s8(16)), hi = vsubq_s8(vreinterpretq_s8_u8(h), vdupq_n_s8(16));
    return qk_add0(acc, d * (float)qk_sdot32(lo, hi, y + 2));
#else
    uint32_t qh; memcpy(&qh, x + 2, 4);
    int s = 0;
    for (int j = 0; j < 16; ++j) {
        const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
        s += (((x[6 + j] & 0xF) | h0) - 16) * (int8_t)y[2 + j];
        s += (((x[6 + j] >> 4) | h1) - 16) * (int8_t)y[2 + 16 + j];
    }
    return qk_add0(acc, d * (float)s);
#endif
}

/// Q4_1 weights x Q8_1 activations.
static inline __attribute__((always_inline)) qk_v8f qk_dot_q4_1_q8_1(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f16_mul(x, y);
    const float ms = qk_f16_mul(x + 2, y + 2);
#if QK_LEVEL >= 1
    const __m256i s = qk_dpbusd(_mm256_setzero_si256(), qk_nibbles32(x + 4), qk_load256(y + 4));
    // Off the accumulator's dependency chain: one add per block on acc.
    const __m256 t = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), _mm256_set_ps(0, 0, 0, 0, 0, 0, 0, ms));
    return (qk_v8f)_mm256_add_ps((__m256)acc, t);
#else
    int s = 0;
    for (int j = 0; j < 16; ++j) {
        s += (x[4 + j] & 0xF) * (int8_t)y[4 + j];
        s += (x[4 + j] >> 4) * (int8_t)y[4 + 16 + j];
    }
    return qk_add0(acc, d * (float)s + ms);
#endif
}

/// Q5_1 weights x Q8_1 activations.
static inline __attribute__((always_inline)) qk_v8f qk_dot_q5_1_q8_1(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f16_mul(x, y);
    const float ms = qk_f16_mul(x + 2, y + 2);
#if QK_LEVEL >= 1
    __m256i qx = qk_nibbles32(x + 8);
#if QK_LEVEL >= 2
    uint32_t qh; memcpy(&qh, x + 4, 4);
    qx = _mm256_mask_add_epi8(qx, (__mmask32)qh, qx, _mm256_set1_epi8(16));
#else
    qx = _mm256_or_si256(qx, _mm256_and_si256(qk_bytes_from_bits32(x + 4), _mm256_set1_epi8(0x10)));
#endif
    const __m256i s = qk_dpbusd(_mm256_setzero_si256(), qx, qk_load256(y + 4));
    // Off the accumulator's dependency chain: one add per block on acc.
    const __m256 t = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), _mm256_set_ps(0, 0, 0, 0, 0, 0, 0, ms));
    return (qk_v8f)_mm256_add_ps((__m256)acc, t);
#else
    uint32_t qh; memcpy(&qh, x + 4, 4);
    int s = 0;
    for (int j = 0; j < 16; ++j) {
        const int h0 = ((qh >> j) & 1) << 4, h1 = ((qh >> (j + 16)) & 1) << 4;
        s += ((x[8 + j] & 0xF) | h0) * (int8_t)y[4 + j];
        s += ((x[8 + j] >> 4) | h1) * (int8_t)y[4 + 16 + j];
    }
    return qk_add0(acc, d * (float)s + ms);
#endif
}

// MARK: - K-quant super-blocks (activations Q8_K: [d f32][256 x i8][16 x i16 bsums])

#define QK_Y8(y) ((const int8_t *)((const uint8_t *)(y) + 4))
#define QK_YSUMS 260

/// Q4_K weights x Q8_K activations.
static inline __attribute__((always_inline)) qk_v8f qk_dot_q4_K_q8_K(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float yd = qk_f32(y);
    const float d = yd * qk_f16(x), dmin = -yd * qk_f16(x + 2);
#if QK_LEVEL >= 1
    uint32_t u[4];
    qk_unpack_k4_scales(x + 4, u);
    const __m256i ms = _mm256_cvtepu8_epi16(qk_load128(u));          // 8 scales, 8 mins (i16)
    const __m256i bs = qk_load256(y + QK_YSUMS);
    const __m128i bsp = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i pm = _mm_madd_epi16(_mm256_extracti128_si256(ms, 1), bsp);
    const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const uint8_t *qs = x + 16;
    const int8_t *q8 = QK_Y8(y);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
        const __m256i q4 = qk_load256(qs + 32 * j);
        const __m256i pl = _mm256_maddubs_epi16(_mm256_and_si256(q4, m4), qk_load256(q8 + 64 * j));
        const __m256i ph = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q4, 4), m4),
                                                qk_load256(q8 + 64 * j + 32));
        sumi = qk_dpwssd(sumi, pl, qk_bcast_i16(sc, 2 * j));
        sumi = qk_dpwssd(sumi, ph, qk_bcast_i16(sc, 2 * j + 1));
    }
    __m256 a = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), (__m256)acc);
    a = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_zextsi128_si256(pm)), a);
    return (qk_v8f)a;
#else
    const uint8_t *qs = x + 16;
    const int8_t *q8 = QK_Y8(y);
    const int16_t *bs = (const int16_t *)(y + QK_YSUMS);
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
        int sc, m; qk_scale_min_k4(j, x + 4, &sc, &m);
        summ += m * (bs[2 * j] + bs[2 * j + 1]);
#if QK_NEON
        const uint8x16_t b0 = vld1q_u8(qs + 32 * (j / 2)), b1 = vld1q_u8(qs + 32 * (j / 2) + 16);
        const uint8x16_t q0 = (j & 1) ? vshrq_n_u8(b0, 4) : vandq_u8(b0, vdupq_n_u8(0x0F));
        const uint8x16_t q1 = (j & 1) ? vshrq_n_u8(b1, 4) : vandq_u8(b1, vdupq_n_u8(0x0F));
        const int s = qk_sdot32(vreinterpretq_s8_u8(q0), vreinterpretq_s8_u8(q1), q8 + 32 * j);
#else
        int s = 0;
        for (int l = 0; l < 32; ++l) {
            const int q = (j & 1) ? (qs[32 * (j / 2) + l] >> 4) : (qs[32 * (j / 2) + l] & 0xF);
            s += q * q8[32 * j + l];
        }
#endif
        sumi += sc * s;
    }
    return qk_add0(acc, d * (float)sumi + dmin * (float)summ);
#endif
}

/// Q5_K weights x Q8_K activations.
static inline __attribute__((always_inline)) qk_v8f qk_dot_q5_K_q8_K(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float yd = qk_f32(y);
    const float d = yd * qk_f16(x), dmin = -yd * qk_f16(x + 2);
#if QK_LEVEL >= 1
    uint32_t u[4];
    qk_unpack_k4_scales(x + 4, u);
    const __m256i ms = _mm256_cvtepu8_epi16(qk_load128(u));
    const __m256i bs = qk_load256(y + QK_YSUMS);
    const __m128i bsp = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    const __m128i pm = _mm_madd_epi16(_mm256_extracti128_si256(ms, 1), bsp);
    const __m256i sc = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(ms));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i qh = qk_load256(x + 16);
    const uint8_t *qs = x + 48;
    const int8_t *q8 = QK_Y8(y);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
        const __m256i q4 = qk_load256(qs + 32 * j);
        __m256i lo = _mm256_and_si256(q4, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
#if QK_LEVEL >= 2
        const __m256i b16 = _mm256_set1_epi8(16);
        lo = _mm256_mask_add_epi8(lo, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * j)))), lo, b16);
        hi = _mm256_mask_add_epi8(hi, _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(2 << (2 * j)))), hi, b16);
#else
        const __m256i one = _mm256_set1_epi8(1);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one), 4));
#endif
        const __m256i pl = _mm256_maddubs_epi16(lo, qk_load256(q8 + 64 * j));
        const __m256i ph = _mm256_maddubs_epi16(hi, qk_load256(q8 + 64 * j + 32));
        sumi = qk_dpwssd(sumi, pl, qk_bcast_i16(sc, 2 * j));
        sumi = qk_dpwssd(sumi, ph, qk_bcast_i16(sc, 2 * j + 1));
    }
    __m256 a = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), (__m256)acc);
    a = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_zextsi128_si256(pm)), a);
    return (qk_v8f)a;
#else
    const uint8_t *qh = x + 16, *qs = x + 48;
    const int8_t *q8 = QK_Y8(y);
    const int16_t *bs = (const int16_t *)(y + QK_YSUMS);
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
        int sc, m; qk_scale_min_k4(j, x + 4, &sc, &m);
        summ += m * (bs[2 * j] + bs[2 * j + 1]);
        int s = 0;
        for (int l = 0; l < 32; ++l) {
            int q = (j & 1) ? (qs[32 * (j / 2) + l] >> 4) : (qs[32 * (j / 2) + l] & 0xF);
            q += ((qh[l] >> j) & 1) << 4;
            s += q * q8[32 * j + l];
        }
        sumi += sc * s;
    }
    return qk_add0(acc, d * (float)sumi + dmin * (float)summ);
#endif
}

/// Q6_K weights x Q8_K activations.
static inline __attribute__((always_inline)) qk_v8f qk_dot_q6_K_q8_K(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f32(y) * qk_f16(x + 208);
#if QK_LEVEL >= 1
    const __m128i sc8 = qk_load128(x + 192);
    const __m256i msum = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), qk_load256(y + QK_YSUMS));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const int8_t *q8 = QK_Y8(y);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
        const __m256i ql0 = qk_load256(x + 64 * h), ql1 = qk_load256(x + 64 * h + 32);
        const __m256i qh = qk_load256(x + 128 + 32 * h);
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                               _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                               _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x0C)), 2));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                               _mm256_and_si256(qh, _mm256_set1_epi8(0x30)));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                               _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8((char)0xC0)), 2));
        for (int k = 0; k < 4; ++k) {
            const int v = 4 * h + k;
            const __m256i p = _mm256_maddubs_epi16(q[k], qk_load256(q8 + 32 * v));
            sumi = qk_dpwssd(sumi, p, qk_scale_pair_i8(sc8, 2 * v, 2 * v + 1));
        }
    }
    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(msum, 5));
    return (qk_v8f)_mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), (__m256)acc);
#else
    const uint8_t *ql = x, *qh = x + 128;
    const int8_t *sc = (const int8_t *)(x + 192);
    const int8_t *q8 = QK_Y8(y);
    int sumi = 0;
    for (int h = 0; h < 2; ++h) {
        for (int k = 0; k < 4; ++k) {
            const int v = 4 * h + k;
#if QK_NEON
            int8x16_t q[2];
            for (int i = 0; i < 2; ++i) {
                const uint8x16_t b = vld1q_u8(ql + 64 * h + 16 * i + ((k & 1) ? 32 : 0));
                const uint8x16_t lo = (k < 2) ? vandq_u8(b, vdupq_n_u8(0x0F)) : vshrq_n_u8(b, 4);
                const uint8x16_t hb = vandq_u8(vshlq_u8(vld1q_u8(qh + 32 * h + 16 * i), vdupq_n_s8((int8_t)(-2 * k))), vdupq_n_u8(3));
                q[i] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, vshlq_n_u8(hb, 4))), vdupq_n_s8(32));
            }
            const int s0 = qk_sdot16(q[0], vld1q_s8(q8 + 32 * v)), s1 = qk_sdot16(q[1], vld1q_s8(q8 + 32 * v + 16));
#else
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; ++l) {
                const uint8_t b = ql[64 * h + l + ((k & 1) ? 32 : 0)];
                const int lo = (k < 2) ? (b & 0xF) : (b >> 4);
                const int q = (lo | (((qh[32 * h + l] >> (2 * k)) & 3) << 4)) - 32;
                if (l < 16) s0 += q * q8[32 * v + l]; else s1 += q * q8[32 * v + l];
            }
#endif
            sumi += sc[2 * v] * s0 + sc[2 * v + 1] * s1;
        }
    }
    return qk_add0(acc, d * (float)sumi);
#endif
}

/// Q2_K weights x Q8_K activations.
static inline __attribute__((always_inline)) qk_v8f qk_dot_q2_K_q8_K(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float yd = qk_f32(y);
    const float d = yd * qk_f16(x + 80), dmin = -yd * qk_f16(x + 82);
#if QK_LEVEL >= 1
    const __m128i sc8 = qk_load128(x);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m128i scl = _mm_and_si128(sc8, m4);
    const __m128i mins = _mm_and_si128(_mm_srli_epi16(sc8, 4), m4);
    const __m256i msum = _mm256_madd_epi16(_mm256_cvtepu8_epi16(mins), qk_load256(y + QK_YSUMS));
    const __m256i m3 = _mm256_set1_epi8(3);
    const int8_t *q8 = QK_Y8(y);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
        const __m256i q2 = qk_load256(x + 16 + 32 * h);
        for (int k = 0; k < 4; ++k) {
            const int v = 4 * h + k;
            const __m256i qv = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * k), m3);
            const __m256i p = _mm256_maddubs_epi16(qv, qk_load256(q8 + 32 * v));
            sumi = qk_dpwssd(sumi, p, qk_scale_pair_i8(scl, 2 * v, 2 * v + 1));
        }
    }
    __m256 a = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), (__m256)acc);
    a = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(msum), a);
    return (qk_v8f)a;
#else
    const uint8_t *sc = x, *q2 = x + 16;
    const int8_t *q8 = QK_Y8(y);
    const int16_t *bs = (const int16_t *)(y + QK_YSUMS);
    int summ = 0, sumi = 0;
    for (int j = 0; j < 16; ++j) summ += bs[j] * (sc[j] >> 4);
    for (int h = 0; h < 2; ++h) {
        for (int k = 0; k < 4; ++k) {
            const int v = 4 * h + k;
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; ++l) {
                const int q = (q2[32 * h + l] >> (2 * k)) & 3;
                if (l < 16) s0 += q * q8[32 * v + l]; else s1 += q * q8[32 * v + l];
            }
            sumi += (sc[2 * v] & 0xF) * s0 + (sc[2 * v + 1] & 0xF) * s1;
        }
    }
    return qk_add0(acc, d * (float)sumi + dmin * (float)summ);
#endif
}

/// Unpacks Q3_K's 12-byte 6-bit scales into 16 unsigned bytes (subtract 32 for the scale).
static inline void qk_unpack_q3_scales(const uint8_t *q, uint32_t a[4]) {
    const uint32_t km1 = 0x03030303, km2 = 0x0f0f0f0f;
    memcpy(a, q, 12);
    const uint32_t tmp = a[2];
    a[2] = ((a[0] >> 4) & km2) | (((tmp >> 4) & km1) << 4);
    a[3] = ((a[1] >> 4) & km2) | (((tmp >> 6) & km1) << 4);
    a[0] = (a[0] & km2) | (((tmp >> 0) & km1) << 4);
    a[1] = (a[1] & km2) | (((tmp >> 2) & km1) << 4);
}

/// Q3_K weights x Q8_K activations.
static inline __attribute__((always_inline)) qk_v8f qk_dot_q3_K_q8_K(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f32(y) * qk_f16(x + 108);
    uint32_t a[4];
    qk_unpack_q3_scales(x + 96, a);
#if QK_LEVEL >= 1
    const __m128i sc8 = _mm_sub_epi8(qk_load128(a), _mm_set1_epi8(32));
    const __m256i msum = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), qk_load256(y + QK_YSUMS));
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i hm = qk_load256(x);
    const int8_t *q8 = QK_Y8(y);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
        const __m256i q3 = qk_load256(x + 32 + 32 * h);
        for (int k = 0; k < 4; ++k) {
            const int v = 4 * h + k;
            __m256i qv = _mm256_and_si256(_mm256_srli_epi16(q3, 2 * k), m3);
#if QK_LEVEL >= 2
            qv = _mm256_mask_add_epi8(qv, _mm256_test_epi8_mask(hm, _mm256_set1_epi8((char)(1 << v))), qv,
                                      _mm256_set1_epi8(4));
#else
            qv = _mm256_or_si256(qv, _mm256_slli_epi16(
                     _mm256_and_si256(_mm256_srli_epi16(hm, v), _mm256_set1_epi8(1)), 2));
#endif
            const __m256i p = _mm256_maddubs_epi16(qv, qk_load256(q8 + 32 * v));
            sumi = qk_dpwssd(sumi, p, qk_scale_pair_i8(sc8, 2 * v, 2 * v + 1));
        }
    }
    sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(msum, 2));
    return (qk_v8f)_mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), (__m256)acc);
#else
    const uint8_t *hm = x, *q3 = x + 32, *sc = (const uint8_t *)a;
    const int8_t *q8 = QK_Y8(y);
    int sumi = 0;
    for (int h = 0; h < 2; ++h) {
        for (int k = 0; k < 4; ++k) {
            const int v = 4 * h + k;
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; ++l) {
                const int q = ((q3[32 * h + l] >> (2 * k)) & 3) - (((hm[l] >> v) & 1) ? 0 : 4);
                if (l < 16) s0 += q * q8[32 * v + l]; else s1 += q * q8[32 * v + l];
            }
            sumi += ((int)sc[2 * v] - 32) * s0 + ((int)sc[2 * v + 1] - 32) * s1;
        }
    }
    return qk_add0(acc, d * (float)sumi);
#endif
}


// MARK: - Float kernels (attention, gates, small products, the DeltaNet rule)
//
// 16-lane float vectors: one zmm at level 2, two ymm at level 1, four xmm at level 0. Fused
// multiply-adds where the level has FMA; a multiply and an add at level 0 (a libm `fmaf` call per
// lane would be 20x slower), so level 0 rounds differently by an ulp here and there.

typedef float qk_v16f __attribute__((__vector_size__(64)));
typedef uint32_t qk_v16u __attribute__((__vector_size__(64)));
typedef int32_t qk_v16i __attribute__((__vector_size__(64)));

#if QK_LEVEL >= 1 || QK_NEON
#define QK_FMA(a, b, c) __builtin_elementwise_fma((a), (b), (c))
#define QK_FMAF(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define QK_FMA(a, b, c) ((a) * (b) + (c))
#define QK_FMAF(a, b, c) ((a) * (b) + (c))
#endif

static inline __attribute__((always_inline)) qk_v16f ld16(const float *p) {
    qk_v16f v; memcpy(&v, p, sizeof v); return v;
}
static inline __attribute__((always_inline)) void st16(float *p, qk_v16f v) { memcpy(p, &v, sizeof v); }
static inline __attribute__((always_inline)) qk_v16f splat16(float x) {
    return (qk_v16f){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
}
static inline __attribute__((always_inline)) float hsum16(qk_v16f v) {
    float s = 0;
    for (int i = 0; i < 16; ++i) s += v[i];
    return s;
}

/// e^x per lane: Cephes' expf polynomial after range reduction by ln 2; inputs clamped to ±88, so
/// large negative inputs give ~1e-38 rather than 0 and no lane overflows to inf. Within ~2 ulp of expf.
static inline __attribute__((always_inline)) qk_v16f exp16(qk_v16f x) {
    const qk_v16f lo = splat16(-87.33f), hi = splat16(88.37f);
    x = __builtin_elementwise_min(__builtin_elementwise_max(x, lo), hi);
    // n = round(x / ln 2) by the magic-number trick: the float's low mantissa bits hold n + 127.
    const qk_v16f magic = splat16(12582912.0f + 127.0f);
    const qk_v16f t = QK_FMA(x, splat16(1.44269504f), magic);
    const qk_v16f n = t - magic;
    qk_v16f r = QK_FMA(n, splat16(-0.693359375f), x);
    r = QK_FMA(n, splat16(2.1219444e-4f), r);
    qk_v16f p = splat16(1.98756915e-4f);
    p = QK_FMA(p, r, splat16(1.39819995e-3f));
    p = QK_FMA(p, r, splat16(8.3334519e-3f));
    p = QK_FMA(p, r, splat16(4.16657959e-2f));
    p = QK_FMA(p, r, splat16(1.66666655e-1f));
    p = QK_FMA(p, r, splat16(5.00000012e-1f));
    const qk_v16f y = QK_FMA(p, r * r, r + 1);
    const qk_v16u bits = (qk_v16u)t << 23;
    return y * (qk_v16f)bits;
}

static float QK_NAME(qk_dot_f32)(const float *a, const float *b, long n) {
    // Four independent chains of 16 lanes hide the FMA latency.
    qk_v16f acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0};
    long i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = QK_FMA(ld16(a + i), ld16(b + i), acc0);
        acc1 = QK_FMA(ld16(a + i + 16), ld16(b + i + 16), acc1);
        acc2 = QK_FMA(ld16(a + i + 32), ld16(b + i + 32), acc2);
        acc3 = QK_FMA(ld16(a + i + 48), ld16(b + i + 48), acc3);
    }
    for (; i + 16 <= n; i += 16) acc0 = QK_FMA(ld16(a + i), ld16(b + i), acc0);
    float sum = hsum16((acc0 + acc1) + (acc2 + acc3));
    for (; i < n; ++i) sum = QK_FMAF(a[i], b[i], sum);
    return sum;
}

static void QK_NAME(qk_gate)(int kind, float *v, const float *g, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const qk_v16f x = ld16(v + i);
        switch (kind) {
        case QK_GATE_SWIGLU: st16(v + i, x / (1 + exp16(-x)) * ld16(g + i)); break;
        case QK_GATE_SILU: st16(v + i, x / (1 + exp16(-x))); break;
        case QK_GATE_SILU_OF_GATE: { const qk_v16f y = ld16(g + i); st16(v + i, x * (y / (1 + exp16(-y)))); break; }
        default: st16(v + i, x / (1 + exp16(-ld16(g + i)))); break;
        }
    }
    for (; i < n; ++i) {
        const float x = v[i];
        switch (kind) {
        case QK_GATE_SWIGLU: v[i] = x / (1 + expf(-x)) * g[i]; break;
        case QK_GATE_SILU: v[i] = x / (1 + expf(-x)); break;
        case QK_GATE_SILU_OF_GATE: v[i] = x * (g[i] / (1 + expf(-g[i]))); break;
        default: v[i] = x / (1 + expf(-g[i])); break;
        }
    }
}

static void QK_NAME(qk_axpy)(float a, const float *x, float *y, long n) {
    const qk_v16f s = splat16(a);
    long i = 0;
    for (; i + 16 <= n; i += 16) st16(y + i, QK_FMA(s, ld16(x + i), ld16(y + i)));
    for (; i < n; ++i) y[i] = QK_FMAF(a, x[i], y[i]);
}

static void QK_NAME(qk_mul_add)(const float *w, const float *x, float *y, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) st16(y + i, QK_FMA(ld16(w + i), ld16(x + i), ld16(y + i)));
    for (; i < n; ++i) y[i] = QK_FMAF(w[i], x[i], y[i]);
}

static void QK_NAME(qk_attend)(float *score, int length, const float *values, long stride, int d, float *out) {
    float maximum = -__builtin_inff();
    for (int p = 0; p < length; ++p) maximum = score[p] > maximum ? score[p] : maximum;
    const qk_v16f m = splat16(maximum);
    qk_v16f sums = {0};
    int p = 0;
    for (; p + 16 <= length; p += 16) {
        const qk_v16f e = exp16(ld16(score + p) - m);
        st16(score + p, e);
        sums += e;
    }
    float sum = hsum16(sums);
    for (; p < length; ++p) {
        const float e = expf(score[p] - maximum);
        score[p] = e;
        sum += e;
    }
    const float inverse = 1 / sum;
    if (d % 16 == 0 && d <= 64) {
        // Accumulate in registers, one pass over the value rows.
        const int chunks = d / 16;
        qk_v16f acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0};
        for (p = 0; p < length; ++p) {
            const qk_v16f w = splat16(score[p] * inverse);
            const float *value = values + p * stride;
            acc0 = QK_FMA(w, ld16(value), acc0);
            if (chunks > 1) acc1 = QK_FMA(w, ld16(value + 16), acc1);
            if (chunks > 2) acc2 = QK_FMA(w, ld16(value + 32), acc2);
            if (chunks > 3) acc3 = QK_FMA(w, ld16(value + 48), acc3);
        }
        st16(out, acc0);
        if (chunks > 1) st16(out + 16, acc1);
        if (chunks > 2) st16(out + 32, acc2);
        if (chunks > 3) st16(out + 48, acc3);
        return;
    }
    for (int i = 0; i < d; ++i) out[i] = 0;
    for (p = 0; p < length; ++p) QK_NAME(qk_axpy)(score[p] * inverse, values + p * stride, out, d);
}

static void QK_NAME(qk_small_product)(int rows, int inner, int triangular, const float *a, long aStride,
                                      const float *b, long bStride, float *y, long yStride, int cols,
                                      float sign, int accumulate) {
#define QK_INNER(i) (triangular ? (i) + 1 : inner)
    if (cols % 16 != 0) {
        for (int i = 0; i < rows; ++i) {
            float *yi = y + i * yStride;
            if (!accumulate) for (int c = 0; c < cols; ++c) yi[c] = 0;
            for (int k = 0; k < QK_INNER(i); ++k) QK_NAME(qk_axpy)(sign * a[i * aStride + k], b + k * bStride, yi, cols);
        }
        return;
    }
    // Tiles of four rows x 16 columns: each loaded row of b feeds four accumulators.
    for (int column = 0; column < cols; column += 16) {
        for (int i = 0; i < rows; i += 4) {
            const int height = rows - i < 4 ? rows - i : 4;
            qk_v16f acc[4] = {{0}, {0}, {0}, {0}};
            float *y0 = y + i * yStride + column;
            if (accumulate)
                for (int r = 0; r < height; ++r) acc[r] = ld16(y0 + r * yStride);
            const float *a0 = a + i * aStride;
            // The inner range all rows of the tile share; then each row's own tail.
            const int shared = QK_INNER(i);
            for (int k = 0; k < shared; ++k) {
                const qk_v16f bk = ld16(b + k * bStride + column);
                acc[0] = QK_FMA(splat16(sign * a0[k]), bk, acc[0]);
                if (height > 1) acc[1] = QK_FMA(splat16(sign * a0[aStride + k]), bk, acc[1]);
                if (height > 2) acc[2] = QK_FMA(splat16(sign * a0[2 * aStride + k]), bk, acc[2]);
                if (height > 3) acc[3] = QK_FMA(splat16(sign * a0[3 * aStride + k]), bk, acc[3]);
            }
            for (int r = 1; r < height; ++r) {
                qk_v16f tail = {0};
                for (int k = shared; k < QK_INNER(i + r); ++k)
                    tail = QK_FMA(splat16(sign * a0[r * aStride + k]), ld16(b + k * bStride + column), tail);
                acc[r] += tail;
            }
            for (int r = 0; r < height; ++r) st16(y0 + r * yStride, acc[r]);
        }
    }
#undef QK_INNER
}

/// Weight row (F16 1, BF16 30 or Q8_0 8) · float activations: `count` values (Q8_0: a multiple of 32).
static float QK_NAME(qk_dot_float_row)(int type, long count, const void *w, const float *x) {
    const uint8_t *p = (const uint8_t *)w;
    qk_v16f acc0 = {0};
    long i = 0;
    if (type == 8) {   // Q8_0: [d f16][32 x i8]
        qk_v16f acc1 = {0};
        typedef int8_t v16b __attribute__((__vector_size__(16)));
        for (; i + 32 <= count; i += 32, p += 34) {
            v16b q0, q1;
            memcpy(&q0, p + 2, 16);
            memcpy(&q1, p + 18, 16);
            const qk_v16f d = splat16(qk_f16(p));
            acc0 = QK_FMA(d * __builtin_convertvector(q0, qk_v16f), ld16(x + i), acc0);
            acc1 = QK_FMA(d * __builtin_convertvector(q1, qk_v16f), ld16(x + i + 16), acc1);
        }
        return hsum16(acc0 + acc1);
    }
    typedef uint16_t v16h __attribute__((__vector_size__(32)));
    for (; i + 16 <= count; i += 16) {
        v16h h;
        memcpy(&h, p + 2 * i, 32);
        qk_v16f wv;
        if (type == 30) {
            wv = (qk_v16f)(__builtin_convertvector(h, qk_v16u) << 16);
        } else {
#if QK_LEVEL >= 1
            __m128i lo, hi;
            memcpy(&lo, p + 2 * i, 16);
            memcpy(&hi, p + 2 * i + 16, 16);
            const __m256 a = _mm256_cvtph_ps(lo), b = _mm256_cvtph_ps(hi);
            memcpy(&wv, &a, 32);
            memcpy((char *)&wv + 32, &b, 32);
#else
            for (int k = 0; k < 16; ++k) wv[k] = qk_f16(p + 2 * (i + k));
#endif
        }
        acc0 = QK_FMA(wv, ld16(x + i), acc0);
    }
    float sum = hsum16(acc0);
    for (; i < count; ++i) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        float v;
        if (type == 30) { const uint32_t bits = (uint32_t)h << 16; memcpy(&v, &bits, 4); } else { v = qk_f16(&h); }
        sum = QK_FMAF(v, x[i], sum);
    }
    return sum;
}

// MARK: - Rows

// One function per weight type, so each block helper inlines into its loop.
#define QK_ROW_FUNCS(T, F, WS, XS)                                                                   \
    static float row_##T(int nb, const uint8_t *w, const uint8_t *x) {                                \
        /* Two accumulators hide the FMA latency of the short (32-weight) blocks. */                  \
        qk_v8f a0 = {0}, a1 = {0};                                                                     \
        int n = nb;                                                                                    \
        for (; n >= 2; n -= 2, w += 2 * (WS), x += 2 * (XS)) {                                         \
            a0 = F(a0, w, x);                                                                          \
            a1 = F(a1, w + (WS), x + (XS));                                                            \
        }                                                                                              \
        if (n > 0) a0 = F(a0, w, x);                                                                   \
        return qk_hsum8(a0 + a1);                                                                      \
    }                                                                                                  \
    /* Each weight block is loaded once and dotted against 4 activation rows. */                       \
    static void rows_##T(int nb, const uint8_t *w, const uint8_t *x, long xq, int n, float *out,        \
                         long os) {                                                                    \
        int r = 0;                                                                                     \
        for (; r + 4 <= n; r += 4) {                                                                   \
            qk_v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                             \
            const uint8_t *wp = w, *xp = x + r * xq;                                                   \
            for (int b = 0; b < nb; ++b, wp += (WS), xp += (XS)) {                                     \
                a0 = F(a0, wp, xp);                                                                    \
                a1 = F(a1, wp, xp + xq);                                                               \
                a2 = F(a2, wp, xp + 2 * xq);                                                           \
                a3 = F(a3, wp, xp + 3 * xq);                                                           \
            }                                                                                          \
            out[r * os] = qk_hsum8(a0);                                                                \
            out[(r + 1) * os] = qk_hsum8(a1);                                                          \
            out[(r + 2) * os] = qk_hsum8(a2);                                                          \
            out[(r + 3) * os] = qk_hsum8(a3);                                                          \
        }                                                                                              \
        for (; r < n; ++r) out[r * os] = row_##T(nb, w, x + r * xq);                                   \
    }

QK_ROW_FUNCS(q4_0, qk_dot_q4_0_q8_0, 18, 34)
QK_ROW_FUNCS(q4_1, qk_dot_q4_1_q8_1, 20, 36)
QK_ROW_FUNCS(q5_0, qk_dot_q5_0_q8_0, 22, 34)
QK_ROW_FUNCS(q5_1, qk_dot_q5_1_q8_1, 24, 36)
QK_ROW_FUNCS(q8_0, qk_dot_q8_0_q8_0, 34, 34)
QK_ROW_FUNCS(q2_K, qk_dot_q2_K_q8_K, 84, 292)
QK_ROW_FUNCS(q3_K, qk_dot_q3_K_q8_K, 110, 292)
QK_ROW_FUNCS(q4_K, qk_dot_q4_K_q8_K, 144, 292)
QK_ROW_FUNCS(q5_K, qk_dot_q5_K_q8_K, 176, 292)
QK_ROW_FUNCS(q6_K, qk_dot_q6_K_q8_K, 210, 292)
#undef QK_ROW_FUNCS

#define QK_EACH_ROW_TYPE(X) X(q4_0, 2) X(q4_1, 3) X(q5_0, 6) X(q5_1, 7) X(q8_0, 8) \
                            X(q2_K, 10) X(q3_K, 11) X(q4_K, 12) X(q5_K, 13) X(q6_K, 14)

static float QK_NAME(qk_dot_row)(int type, int blocks, const void *w, const void *x) {
    switch (type) {
#define X(T, CODE) case CODE: return row_##T(blocks, (const uint8_t *)w, (const uint8_t *)x);
    QK_EACH_ROW_TYPE(X)
#undef X
    default: return 0;
    }
}

static void QK_NAME(qk_dot_rows)(int type, int blocks, const void *w, const void *x, long xStride, int n,
                                 float *out, long outStride) {
    switch (type) {
#define X(T, CODE) case CODE: rows_##T(blocks, (const uint8_t *)w, (const uint8_t *)x, xStride, n, out, outStride); return;
    QK_EACH_ROW_TYPE(X)
#undef X
    default: return;
    }
}

#if QK_LEVEL >= 1 || QK_NEON
// MARK: - Panels

/// The trailer of a two-part activation block (CQwenKernels.h): e, es, c and c0 from the
/// block's scale d and the sums s0, s1 of (256 hi + lo) over its two halves.
static inline __attribute__((always_inline)) void qk_act_trailer(uint8_t *o, float d, int32_t s0, int32_t s1, int offset) {
    const float e = d * (1.0f / 256.0f), es = e * (float)(s0 + s1);
    const int32_t c = -offset * (s0 + s1), c0 = -offset * s0;
    memcpy(o + 64, &e, 4);
    memcpy(o + 68, &es, 4);
    memcpy(o + 72, &c, 4);
    memcpy(o + 76, &c0, 4);
}

/// The trailer of a three-part (Q8_0) activation block: e and the seeds -128 Σ of each part.
static inline __attribute__((always_inline)) void qk_act3_trailer(uint8_t *o, float d, const int32_t sums[3]) {
    const float e = d * (1.0f / 65536.0f);
    memcpy(o + 96, &e, 4);
    for (int part = 0; part < 3; ++part) {
        const int32_t c = -128 * sums[part];
        memcpy(o + 100 + 4 * part, &c, 4);
    }
}

#if QK_LEVEL >= 2
/// Quantizes `blocks` blocks of 32 floats at `x` into the activation layout at `dst`
/// (`blocks * QK_ACT_BYTES` bytes), seeding for weights whose unsigned values carry `offset`.
/// Rounding: to nearest, ties to even. Non-finite values are not expected.
static inline void quantize_act(const float *x, void *dst, int blocks, int offset) {
    uint8_t *o = (uint8_t *)dst;
    const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    const __m512 lim = _mm512_set1_ps(127.0f), nlim = _mm512_set1_ps(-127.0f);
    for (int b = 0; b < blocks; ++b, o += QK_ACT_BYTES, x += 32) {
        const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(x0, absMask), _mm512_and_ps(x1, absMask)));
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        const __m512 vd = _mm512_set1_ps(d), vid = _mm512_set1_ps(id), vid256 = _mm512_set1_ps(id * 256.0f);
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
        _mm_storeu_si128((__m128i *)o, _mm512_cvtepi32_epi8(ih0));
        _mm_storeu_si128((__m128i *)(o + 16), _mm512_cvtepi32_epi8(ih1));
        _mm_storeu_si128((__m128i *)(o + 32), _mm512_cvtepi32_epi8(il0));
        _mm_storeu_si128((__m128i *)(o + 48), _mm512_cvtepi32_epi8(il1));
        const int32_t s0 = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(ih0, 8), il0));
        const int32_t s1 = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(ih1, 8), il1));
        qk_act_trailer(o, d, s0, s1, offset);
    }
}

/// Quantizes `blocks` blocks of 32 floats at `x` into the three-part (Q8_0) activation layout at
/// `dst` (`blocks * QK_ACT3_BYTES` bytes). Rounding: to nearest, ties to even.
static inline void quantize_act3(const float *x, void *dst, int blocks) {
    uint8_t *o = (uint8_t *)dst;
    const __m512 absMask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    const __m512 lim = _mm512_set1_ps(127.0f), nlim = _mm512_set1_ps(-127.0f);
    for (int b = 0; b < blocks; ++b, o += QK_ACT3_BYTES, x += 32) {
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(x), absMask),
                                                              _mm512_and_ps(_mm512_loadu_ps(x + 16), absMask)));
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        int32_t sums[3] = {0, 0, 0};
        for (int half = 0; half < 2; ++half) {
            __m512 r = _mm512_loadu_ps(x + 16 * half);
            float step = d, inv = id;
            for (int part = 0; part < 3; ++part, step *= (1.0f / 256.0f), inv *= 256.0f) {
                __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(r, _mm512_set1_ps(inv)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q = _mm512_min_ps(_mm512_max_ps(q, nlim), lim);
                r = _mm512_sub_ps(r, _mm512_mul_ps(q, _mm512_set1_ps(step)));
                const __m512i iq = _mm512_cvtps_epi32(q);
                _mm_storeu_si128((__m128i *)(o + 32 * part + 16 * half), _mm512_cvtepi32_epi8(iq));
                sums[part] += _mm512_reduce_add_epi32(iq);
            }
        }
        qk_act3_trailer(o, d, sums);
    }
}

/// The unsigned weights of chunk `c` (0...7: columns 4c...4c+3 of a 32-column block, 16 rows x 4
/// bytes) of the panel block at `p`.
static inline __attribute__((always_inline)) __m512i qk_panel_chunk(const uint8_t *p, int c, const int TYPE) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    if (TYPE == QK_PANEL_Q8_0) return _mm512_loadu_si512((const void *)(p + 32 + 64 * c));
    // Q5_0, Q4_K and Q6_K keep two chunks' low nibbles per 64 bytes; `p` points at those nibbles.
    const __m512i v = _mm512_loadu_si512((const void *)(p + 64 * (c >> 1)));
    const __m512i n = (c & 1) ? _mm512_and_si512(_mm512_srli_epi16(v, 4), low4) : _mm512_and_si512(v, low4);
    return n;
}

/// out[t * outStride + r] = panel row r · token t, for r < rows (1...16) and t < nt (1...NT, NT <= 4:
/// tiles of 6 and 8 tokens measured no faster on one thread and 5% slower on two, from spills).
/// `panel`: one panel's blocks (`blocks` blocks of 32 columns) in TYPE's layout; token t's
/// activations at `act + t * aStride`. `prefetch` > 0: prefetch the weights that many bytes ahead
/// (decode streams them from memory).
static inline __attribute__((always_inline))
void qk_panel_gemm_impl(const void *panel, int rows, const void *act, long aStride, int nt, int blocks,
                        float *out, long outStride, long prefetch, const int TYPE, const int NT) {
    const long actBytes = TYPE == QK_PANEL_Q8_0 ? QK_ACT3_BYTES : QK_ACT_BYTES;
    const uint8_t *at0[4];
    for (int t = 0; t < NT; ++t) at0[t] = (const uint8_t *)act + (t < nt ? t : nt - 1) * aStride;
    __m512 acc[4];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    const int superBlock = TYPE == QK_PANEL_Q4_K || TYPE == QK_PANEL_Q6_K;
    const long blockBytes = TYPE == QK_PANEL_Q8_0 ? 544 : (TYPE == QK_PANEL_Q5_0 ? 352 : (TYPE == QK_PANEL_Q4_K ? 2368 : 3360));
    const uint8_t *w = (const uint8_t *)panel;
    __m512 dv = _mm512_setzero_ps(), dminv = _mm512_setzero_ps();
    for (int b = 0; b < blocks; ++b) {
        const int j = superBlock ? (b & 7) : 0;          // sub-block within the super-block
        const uint8_t *sb = superBlock ? w + (long)(b >> 3) * blockBytes : w + (long)b * blockBytes;
        if (prefetch > 0 && (!superBlock || j == 0))
            for (long i = 0; i < blockBytes; i += 64) _mm_prefetch((const char *)(sb + prefetch + i), _MM_HINT_T0);
        if (!superBlock || j == 0) dv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sb));
        if (TYPE == QK_PANEL_Q4_K && j == 0) dminv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sb + 32)));
        const uint8_t *a[4];
        for (int t = 0; t < NT; ++t) a[t] = at0[t] + (long)b * actBytes;
        const uint8_t *nib = TYPE == QK_PANEL_Q8_0 ? sb
                           : TYPE == QK_PANEL_Q5_0 ? sb + 96
                           : TYPE == QK_PANEL_Q4_K ? sb + 320 + 256 * j
                           : sb + 288 + 256 * j;
        __m512i hacc[4], lacc[4], macc[4];
        for (int t = 0; t < NT; ++t) {
            hacc[t] = _mm512_setzero_si512(); lacc[t] = _mm512_setzero_si512(); macc[t] = _mm512_setzero_si512();
        }
        for (int half = 0; half < 2; ++half) {
            __m512i hb = _mm512_setzero_si512();
            if (TYPE == QK_PANEL_Q6_K) hb = _mm512_loadu_si512((const void *)(sb + 2336 + 128 * j + 64 * half));
            for (int c = 4 * half; c < 4 * half + 4; ++c) {
                __m512i q = qk_panel_chunk(nib, c, TYPE);
                if (TYPE == QK_PANEL_Q5_0) {
                    uint64_t m; memcpy(&m, sb + 32 + 8 * c, 8);
                    q = _mm512_mask_add_epi8(q, (__mmask64)m, q, _mm512_set1_epi8(16));
                } else if (TYPE == QK_PANEL_Q6_K) {
                    const int i = c & 3;
                    const __m512i s = i == 0 ? _mm512_slli_epi16(hb, 4) : i == 1 ? _mm512_slli_epi16(hb, 2)
                                    : i == 2 ? hb : _mm512_srli_epi16(hb, 2);
                    q = _mm512_ternarylogic_epi32(q, s, _mm512_set1_epi8(0x30), 0xF8);   // q | (s & 0x30)
                }
                // Token t's 4 activation bytes of this chunk, broadcast: hi at 0, then lo at 32
                // (two parts) or mid at 32 and lo at 64 (Q8_0's three).
                for (int t = 0; t < NT; ++t) {
                    int32_t hh, ll;
                    memcpy(&hh, a[t] + 4 * c, 4);
                    memcpy(&ll, a[t] + (TYPE == QK_PANEL_Q8_0 ? 64 : 32) + 4 * c, 4);
                    hacc[t] = _mm512_dpbusd_epi32(hacc[t], q, _mm512_set1_epi32(hh));
                    lacc[t] = _mm512_dpbusd_epi32(lacc[t], q, _mm512_set1_epi32(ll));
                    if (TYPE == QK_PANEL_Q8_0) {
                        int32_t mm;
                        memcpy(&mm, a[t] + 32 + 4 * c, 4);
                        macc[t] = _mm512_dpbusd_epi32(macc[t], q, _mm512_set1_epi32(mm));
                    }
                }
            }
            if (TYPE == QK_PANEL_Q6_K) {
                // One 16-column group done: its own int8 scale.
                const __m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                    _mm_loadu_si128((const __m128i *)(sb + 32 + 16 * (2 * j + half))))), dv);
                for (int t = 0; t < NT; ++t) {
                    int32_t c, c0; float e;
                    memcpy(&e, a[t] + 64, 4); memcpy(&c, a[t] + 72, 4); memcpy(&c0, a[t] + 76, 4);
                    const __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(hacc[t], 8), lacc[t]),
                                                       _mm512_set1_epi32(half ? c - c0 : c0));
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(sc, _mm512_set1_ps(e)), acc[t]);
                    hacc[t] = _mm512_setzero_si512(); lacc[t] = _mm512_setzero_si512();
                }
            }
        }
        if (TYPE == QK_PANEL_Q8_0) {
            const __m512 f256 = _mm512_set1_ps(256.0f);
            for (int t = 0; t < NT; ++t) {
                int32_t ch, cm, cl; float e;
                memcpy(&e, a[t] + 96, 4); memcpy(&ch, a[t] + 100, 4); memcpy(&cm, a[t] + 104, 4); memcpy(&cl, a[t] + 108, 4);
                const __m512 h = _mm512_cvtepi32_ps(_mm512_add_epi32(hacc[t], _mm512_set1_epi32(ch)));
                const __m512 m = _mm512_cvtepi32_ps(_mm512_add_epi32(macc[t], _mm512_set1_epi32(cm)));
                const __m512 l = _mm512_cvtepi32_ps(_mm512_add_epi32(lacc[t], _mm512_set1_epi32(cl)));
                const __m512 f = _mm512_fmadd_ps(_mm512_fmadd_ps(h, f256, m), f256, l);
                acc[t] = _mm512_fmadd_ps(f, _mm512_mul_ps(dv, _mm512_set1_ps(e)), acc[t]);
            }
        } else if (TYPE == QK_PANEL_Q5_0) {
            for (int t = 0; t < NT; ++t) {
                int32_t c; float e;
                memcpy(&e, a[t] + 64, 4); memcpy(&c, a[t] + 72, 4);
                const __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(hacc[t], 8), lacc[t]),
                                                   _mm512_set1_epi32(c));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dv, _mm512_set1_ps(e)), acc[t]);
            }
        } else if (TYPE == QK_PANEL_Q4_K) {
            const __m512 sc = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                _mm_loadu_si128((const __m128i *)(sb + 64 + 16 * j)))), dv);
            const __m512 mn = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                _mm_loadu_si128((const __m128i *)(sb + 192 + 16 * j)))), dminv);
            for (int t = 0; t < NT; ++t) {
                float e, es;
                memcpy(&e, a[t] + 64, 4); memcpy(&es, a[t] + 68, 4);
                const __m512i s = _mm512_add_epi32(_mm512_slli_epi32(hacc[t], 8), lacc[t]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(sc, _mm512_set1_ps(e)), acc[t]);
                acc[t] = _mm512_fnmadd_ps(mn, _mm512_set1_ps(es), acc[t]);
            }
        }
    }
    const __mmask16 keep = (__mmask16)((1u << rows) - 1u);
    for (int t = 0; t < nt; ++t) _mm512_mask_storeu_ps(out + t * outStride, keep, acc[t]);
}
#elif QK_LEVEL == 1
#include "PanelsAVX2.h"
#else
#include "PanelsNEON.h"
#endif


static void QK_NAME(qk_panel_gemm)(int type, const void *panel, int rows, const void *act, long aStride, int nt,
                                   int blocks, float *out, long outStride, long prefetch) {
    // One always-inline specialisation per type x tile (1, 2 or 4 tokens).
#define QK_TILES(TYPE)                                                                                          \
    if (nt == 1) qk_panel_gemm_impl(panel, rows, act, aStride, nt, blocks, out, outStride, prefetch, TYPE, 1);   \
    else if (nt == 2) qk_panel_gemm_impl(panel, rows, act, aStride, nt, blocks, out, outStride, prefetch, TYPE, 2); \
    else qk_panel_gemm_impl(panel, rows, act, aStride, nt, blocks, out, outStride, prefetch, TYPE, 4);
    switch (type) {
    case QK_PANEL_Q8_0: QK_TILES(QK_PANEL_Q8_0) break;
    case QK_PANEL_Q5_0: QK_TILES(QK_PANEL_Q5_0) break;
    case QK_PANEL_Q4_K: QK_TILES(QK_PANEL_Q4_K) break;
    case QK_PANEL_Q6_K: QK_TILES(QK_PANEL_Q6_K) break;
    default: break;
    }
#undef QK_TILES
}
#endif

// MARK: - This level's table

const qk_kernel_table QK_NAME(qk_table) = {
    .dot_row = QK_NAME(qk_dot_row),
    .dot_rows = QK_NAME(qk_dot_rows),
    .dot_f32 = QK_NAME(qk_dot_f32),
    .dot_float_row = QK_NAME(qk_dot_float_row),
    .gate = QK_NAME(qk_gate),
    .axpy = QK_NAME(qk_axpy),
    .mul_add = QK_NAME(qk_mul_add),
    .attend = QK_NAME(qk_attend),
    .small_product = QK_NAME(qk_small_product),
#if QK_LEVEL >= 1 || QK_NEON
    .quantize_act = quantize_act,
    .quantize_act3 = quantize_act3,
    .panel_gemm = QK_NAME(qk_panel_gemm),
#endif
};
