// Header-only C helpers: one quantized block dot product each (static inline intrinsics),
// called from Swift loops. See docs/PERFORMANCE.md for the measurement behind them.
//
// Every `qk_dot_<weight>_<activation>` helper takes a running accumulator, one weight block
// (or K-quant super-block) and the matching activation block, and returns the accumulator
// plus that block's dot product. The accumulator is an 8-lane float vector (Swift sees
// `SIMD8<Float>`); its lanes hold partial sums in an unspecified split, so reduce it with
// `qk_hsum8` at the end of a row. Block layouts are ggml's (see GGMLType.swift).
//
// Paths, chosen at compile time: AVX2 integer dot products (u8 x s8 via AVX-512 VNNI on
// ymm, AVX-VNNI, or `vpmaddubsw` + `vpmaddwd`), with a few AVX-512 BW/VL mask tricks when
// available; otherwise a portable scalar path. Never uses AMX.
//
// Activation precondition (true of anything `quantizeActivations` writes): Q8 activation
// bytes are in -127...127 (the sign trick used for signed x signed products needs it).
#ifndef CQWENKERNELS_H
#define CQWENKERNELS_H
#include <stdint.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define QK_X86 1
#endif

/// 8 x f32 accumulator (Swift: SIMD8<Float>). Same layout as __m256.
typedef float qk_v8f __attribute__((__vector_size__(32)));

// MARK: - Scalar helpers

static inline float qk_f32(const void *p) { float f; memcpy(&f, p, 4); return f; }

static inline float qk_f16(const void *p) {
    uint16_t h; memcpy(&h, p, 2);
#if defined(__F16C__)
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
#if defined(__F16C__)
    const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)ha | ((uint32_t)hb << 16))));
    return _mm_cvtss_f32(_mm_mul_ss(f, _mm_movehdup_ps(f)));
#else
    return qk_f16(&ha) * qk_f16(&hb);
#endif
}

/// Horizontal sum of an accumulator.
static inline float qk_hsum8(qk_v8f v) {
#if defined(QK_X86)
    __m128 s = _mm_add_ps(_mm256_castps256_ps128((__m256)v), _mm256_extractf128_ps((__m256)v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
#else
    return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
#endif
}

/// Prefetches `bytes` bytes at `p` into the cache, one line at a time (decode streams weight rows
/// from memory; a few rows ahead keeps more memory reads in flight than the hardware prefetcher).
static inline void qk_prefetch(const void *p, long bytes) {
    for (long o = 0; o < bytes; o += 64) __builtin_prefetch((const char *)p + o, 0, 3);
}

/// A spin-wait hint (`pause`): lets the sibling hyper-thread run and saves power while a worker
/// waits a few microseconds for the next job.
static inline void qk_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/// Adds a scalar into lane 0 (used by the scalar path).
static inline qk_v8f qk_add0(qk_v8f acc, float v) { acc[0] += v; return acc; }

#if defined(QK_X86)
// MARK: - x86 integer helpers

static inline __m256i qk_load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i qk_load128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/// acc + sum over groups of 4 of u8(u) * s8(s), per i32 lane.
static inline __m256i qk_dpbusd(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(acc, u, s);
#elif defined(__AVXVNNI__)
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    const __m256i p = _mm256_maddubs_epi16(u, s);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
#endif
}

/// acc + sum over pairs of i16(a) * i16(b), per i32 lane.
static inline __m256i qk_dpwssd(__m256i acc, __m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpwssd_epi32(acc, a, b);
#elif defined(__AVXVNNI__)
    return _mm256_dpwssd_avx_epi32(acc, a, b);
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

#if !(defined(__AVX512BW__) && defined(__AVX512VL__))
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
static inline qk_v8f qk_dot_q8_0_q8_0(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f16_mul(x, y);
#if defined(QK_X86)
    const __m256i s = qk_dot_i8(_mm256_setzero_si256(), qk_load256(x + 2), qk_load256(y + 2));
    return (qk_v8f)_mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), (__m256)acc);
#else
    int s = 0;
    for (int j = 0; j < 32; ++j) s += (int8_t)x[2 + j] * (int8_t)y[2 + j];
    return qk_add0(acc, d * (float)s);
#endif
}

/// Q4_0 weights x Q8_0 activations.
static inline qk_v8f qk_dot_q4_0_q8_0(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f16_mul(x, y);
#if defined(QK_X86)
    const __m256i qx = _mm256_sub_epi8(qk_nibbles32(x + 2), _mm256_set1_epi8(8));
    const __m256i s = qk_dot_i8(_mm256_setzero_si256(), qx, qk_load256(y + 2));
    return (qk_v8f)_mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), (__m256)acc);
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
static inline qk_v8f qk_dot_q5_0_q8_0(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f16_mul(x, y);
#if defined(QK_X86)
    __m256i qx = qk_nibbles32(x + 6);
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    uint32_t qh; memcpy(&qh, x + 2, 4);
    qx = _mm256_mask_sub_epi8(qx, (__mmask32)~qh, qx, _mm256_set1_epi8(16));
#else
    qx = _mm256_or_si256(qx, _mm256_andnot_si256(qk_bytes_from_bits32(x + 2), _mm256_set1_epi8((char)0xF0)));
#endif
    const __m256i s = qk_dot_i8(_mm256_setzero_si256(), qx, qk_load256(y + 2));
    return (qk_v8f)_mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(s), (__m256)acc);
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
static inline qk_v8f qk_dot_q4_1_q8_1(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f16_mul(x, y);
    const float ms = qk_f16_mul(x + 2, y + 2);
#if defined(QK_X86)
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
static inline qk_v8f qk_dot_q5_1_q8_1(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f16_mul(x, y);
    const float ms = qk_f16_mul(x + 2, y + 2);
#if defined(QK_X86)
    __m256i qx = qk_nibbles32(x + 8);
#if defined(__AVX512BW__) && defined(__AVX512VL__)
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
static inline qk_v8f qk_dot_q4_K_q8_K(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float yd = qk_f32(y);
    const float d = yd * qk_f16(x), dmin = -yd * qk_f16(x + 2);
#if defined(QK_X86)
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
        int s = 0;
        for (int l = 0; l < 32; ++l) {
            const int q = (j & 1) ? (qs[32 * (j / 2) + l] >> 4) : (qs[32 * (j / 2) + l] & 0xF);
            s += q * q8[32 * j + l];
        }
        sumi += sc * s;
    }
    return qk_add0(acc, d * (float)sumi + dmin * (float)summ);
#endif
}

/// Q5_K weights x Q8_K activations.
static inline qk_v8f qk_dot_q5_K_q8_K(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float yd = qk_f32(y);
    const float d = yd * qk_f16(x), dmin = -yd * qk_f16(x + 2);
#if defined(QK_X86)
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
#if defined(__AVX512BW__) && defined(__AVX512VL__)
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
static inline qk_v8f qk_dot_q6_K_q8_K(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f32(y) * qk_f16(x + 208);
#if defined(QK_X86)
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
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; ++l) {
                const uint8_t b = ql[64 * h + l + ((k & 1) ? 32 : 0)];
                const int lo = (k < 2) ? (b & 0xF) : (b >> 4);
                const int q = (lo | (((qh[32 * h + l] >> (2 * k)) & 3) << 4)) - 32;
                if (l < 16) s0 += q * q8[32 * v + l]; else s1 += q * q8[32 * v + l];
            }
            sumi += sc[2 * v] * s0 + sc[2 * v + 1] * s1;
        }
    }
    return qk_add0(acc, d * (float)sumi);
#endif
}

/// Q2_K weights x Q8_K activations.
static inline qk_v8f qk_dot_q2_K_q8_K(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float yd = qk_f32(y);
    const float d = yd * qk_f16(x + 80), dmin = -yd * qk_f16(x + 82);
#if defined(QK_X86)
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
static inline qk_v8f qk_dot_q3_K_q8_K(qk_v8f acc, const void *vx, const void *vy) {
    const uint8_t *x = (const uint8_t *)vx, *y = (const uint8_t *)vy;
    const float d = qk_f32(y) * qk_f16(x + 108);
    uint32_t a[4];
    qk_unpack_q3_scales(x + 96, a);
#if defined(QK_X86)
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
#if defined(__AVX512BW__) && defined(__AVX512VL__)
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

// MARK: - Small helpers the Swift kernels call

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

#include "CQwenPanels.h"

#endif
