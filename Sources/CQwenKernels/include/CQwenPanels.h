// Panel micro-kernels: quantized weights repacked at load time into panels of 16 rows, against
// split (~16-bit) activations, with AVX-512 VNNI. See docs/PERFORMANCE.md for the measurements.
//
// Why panels: in a panel the 16 int32 lanes of one register are 16 weight rows, and each
// `vpdpbusd` multiplies 4 consecutive weights of those 16 rows by the same 4 activation bytes,
// broadcast straight from memory. A block of 32 weights then costs 16 `vpdpbusd` (8 for the
// high activation part, 8 for the low) and ~6 instructions to apply its scales, for 16 rows at
// once, where a row-by-row kernel spends ~6 instructions of scale work per row. The weight bytes
// are unpacked once per panel block and reused for every token of the tile (up to 4).
//
// Activation layout, per token, per block of 32 values, QK_ACT_BYTES = 80 bytes:
//   [hi: 32 x i8][lo: 32 x i8][e: f32][es: f32][c: i32][c0: i32]
// A value x is e * (256 hi + lo) (e = d / 256 with d = max|x| / 127 of its block; hi = round(x / d),
// lo = round((x - d hi) * 256 / d), both in -127...127: error <= ~d / 512). With s = Σ(256 hi + lo)
// over the block and s0 the same over its first 16 values: es = e * s, c = -offset * s,
// c0 = -offset * s0, where `offset` is what the weight format subtracts from its unsigned values
// (Q5_0 16, Q6_K 32, Q4_K 0), so c seeds the integer sums.
//
// Q8_0 weights get a third activation part (~24-bit activations), so that Q8_0 models, which are
// chosen for accuracy, stay within float32 noise of the float reference. Per block of 32 values,
// QK_ACT3_BYTES = 112 bytes: [hi: 32 x i8][mid: 32 x i8][lo: 32 x i8][e: f32][ch, cm, cl: i32]
// with x = e * (65536 hi + 256 mid + lo) (e = d / 65536; mid and lo quantize what the previous
// parts miss, each 256 times finer) and c* = -128 * Σ of that part (Q8_0 values are stored + 128).
//
// Panel layouts (row r of the panel, 0...15; q = the unsigned weight value; padding rows are zero):
//   Q8_0, per 32 columns, 544 bytes: [d: 16 x f16][q: chunk c (0...7) at 32 + 64c, byte 4r + k = q[r][4c + k]]
//   Q5_0, per 32 columns, 352 bytes: [d: 16 x f16][bit 4 of chunk c as a 64-bit mask at 32 + 8c, bit 4r + k]
//        [low nibbles: pair p (0...3) at 96 + 64p, byte 4r + k = q[r][8p + k] & 15 | (q[r][8p + 4 + k] & 15) << 4]
//   Q4_K, per 256 columns, 2368 bytes: [d: 16 x f16][dmin: 16 x f16][scale of sub-block j at 64 + 16j + r]
//        [min of sub-block j at 192 + 16j + r][nibbles of sub-block j at 320 + 256j, as Q5_0's low nibbles]
//   Q6_K, per 256 columns, 3360 bytes: [d: 16 x f16][scale (i8) of group g (16 columns) at 32 + 16g + r]
//        [low nibbles of sub-block j at 288 + 256j, as Q5_0's][bits 4-5 of sub-block j at 2336 + 128j + 64h,
//        byte 4r + k = Σ_i ((q[r][32j + 16h + 4i + k] >> 4) & 3) << 2i]
#ifndef CQWENPANELS_H
#define CQWENPANELS_H
#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && defined(__F16C__)
#define QK_HAS_PANELS 1
#else
#define QK_HAS_PANELS 0
#endif

#define QK_PANEL_ROWS 16
#define QK_ACT_BYTES 80
#define QK_ACT3_BYTES 112

enum { QK_PANEL_Q8_0 = 0, QK_PANEL_Q5_0 = 1, QK_PANEL_Q4_K = 2, QK_PANEL_Q6_K = 3 };

/// 1 when this build has the panel kernels (else callers use the row-by-row paths).
static inline int qk_panels_available(void) { return QK_HAS_PANELS; }

/// Quantizes `blocks` blocks of 32 floats at `x` into the activation layout at `dst`
/// (`blocks * QK_ACT_BYTES` bytes), seeding for weights whose unsigned values carry `offset`.
/// Rounding: to nearest, ties to even. Non-finite values are not expected.
static inline void qk_quantize_act(const float *x, void *dst, int blocks, int offset) {
#if QK_HAS_PANELS
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
        const float e = d * (1.0f / 256.0f), es = e * (float)(s0 + s1);
        const int32_t c = -offset * (s0 + s1), c0 = -offset * s0;
        memcpy(o + 64, &e, 4);
        memcpy(o + 68, &es, 4);
        memcpy(o + 72, &c, 4);
        memcpy(o + 76, &c0, 4);
    }
#else
    (void)x; (void)dst; (void)blocks; (void)offset;
#endif
}

/// Quantizes `blocks` blocks of 32 floats at `x` into the three-part (Q8_0) activation layout at
/// `dst` (`blocks * QK_ACT3_BYTES` bytes). Rounding: to nearest, ties to even.
static inline void qk_quantize_act3(const float *x, void *dst, int blocks) {
#if QK_HAS_PANELS
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
        const float e = d * (1.0f / 65536.0f);
        memcpy(o + 96, &e, 4);
        for (int part = 0; part < 3; ++part) {
            const int32_t c = -128 * sums[part];
            memcpy(o + 100 + 4 * part, &c, 4);
        }
    }
#else
    (void)x; (void)dst; (void)blocks;
#endif
}

#if QK_HAS_PANELS
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
#endif

/// out[t * outStride + r] = panel row r · token t, for r < rows (1...16) and t < nt (1...NT, NT <= 4:
/// tiles of 6 and 8 tokens measured no faster on one thread and 5% slower on two, from spills).
/// `panel`: one panel's blocks (`blocks` blocks of 32 columns) in TYPE's layout; token t's
/// activations at `act + t * aStride`. `prefetch` > 0: prefetch the weights that many bytes ahead
/// (decode streams them from memory).
static inline __attribute__((always_inline))
void qk_panel_gemm_impl(const void *panel, int rows, const void *act, long aStride, int nt, int blocks,
                        float *out, long outStride, long prefetch, const int TYPE, const int NT) {
#if QK_HAS_PANELS
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
#else
    (void)panel; (void)rows; (void)act; (void)aStride; (void)nt; (void)blocks; (void)out; (void)outStride;
    (void)prefetch; (void)TYPE; (void)NT;
#endif
}

#define QK_PANEL_KERNEL(NAME, TYPE, NT)                                                                           \
    static inline void NAME(const void *panel, int rows, const void *act, long aStride, int nt, int blocks,       \
                            float *out, long outStride, long prefetch) {                                          \
        qk_panel_gemm_impl(panel, rows, act, aStride, nt, blocks, out, outStride, prefetch, TYPE, NT);            \
    }
QK_PANEL_KERNEL(qk_panel_q8_0_x1, QK_PANEL_Q8_0, 1)
QK_PANEL_KERNEL(qk_panel_q8_0_x2, QK_PANEL_Q8_0, 2)
QK_PANEL_KERNEL(qk_panel_q8_0_x4, QK_PANEL_Q8_0, 4)
QK_PANEL_KERNEL(qk_panel_q5_0_x1, QK_PANEL_Q5_0, 1)
QK_PANEL_KERNEL(qk_panel_q5_0_x2, QK_PANEL_Q5_0, 2)
QK_PANEL_KERNEL(qk_panel_q5_0_x4, QK_PANEL_Q5_0, 4)
QK_PANEL_KERNEL(qk_panel_q4_K_x1, QK_PANEL_Q4_K, 1)
QK_PANEL_KERNEL(qk_panel_q4_K_x2, QK_PANEL_Q4_K, 2)
QK_PANEL_KERNEL(qk_panel_q4_K_x4, QK_PANEL_Q4_K, 4)
QK_PANEL_KERNEL(qk_panel_q6_K_x1, QK_PANEL_Q6_K, 1)
QK_PANEL_KERNEL(qk_panel_q6_K_x2, QK_PANEL_Q6_K, 2)
QK_PANEL_KERNEL(qk_panel_q6_K_x4, QK_PANEL_Q6_K, 4)
#undef QK_PANEL_KERNEL

#endif
