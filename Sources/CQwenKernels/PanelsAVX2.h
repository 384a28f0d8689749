// The panel kernels at level 1 (AVX2, FMA, F16C; no VNNI), included by KernelsImpl.h.
//
// Same panel and activation layouts as level 2 (CQwenKernels.h), same integer sums and the same
// float operations per row in the same order, so the results are bit for bit those of level 2
// and of the scalar twins (Panels.gemmReference). A ymm holds 8 rows instead of 16: a panel is
// computed as two halves, rows 0-7 then rows 8-15 (the second half reads the panel again, from
// the cache; a half with no rows left is skipped).
//
// Without `vpdpbusd`, the 4-bit, 5-bit and 6-bit weights use `vpmaddubsw` (u8 weight x s8
// activation, pairs summed into i16): with weights below 64 and activation parts in -127...127 a
// pair stays below 2^15, and several chunks are summed in i16 before `vpmaddwd` by ones widens
// them (8 chunks for Q4_K, 4 for Q5_0, 2 for Q6_K: 8 x 2 x 15 x 127, 4 x 2 x 31 x 127 and
// 2 x 2 x 63 x 127 are all below 2^15). Q8_0's weights (0...255) would saturate that pair, so
// they are widened to i16 and multiplied by `vpmaddwd` against two i16 activation parts,
// A = 256 hi + mid and B = lo: Σ q A + 256 ch + cm is exactly 256 p_hi + p_mid, so converting
// it to float rounds once, as level 2's fma(p_hi, 256, p_mid) does.

/// Rounds to nearest (ties to even) and clamps to -127...127.
static inline __attribute__((always_inline)) __m256 qk_round_clamp8(__m256 v) {
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
}

static inline __attribute__((always_inline)) float qk_hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline __attribute__((always_inline)) int32_t qk_hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/// Stores 8 i32 lanes (each in -127...127) as 8 bytes.
static inline __attribute__((always_inline)) void qk_store8_i8(uint8_t *o, __m256i v) {
    __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64((__m128i *)o, _mm_packs_epi16(p, p));
}

/// The max of |x| over 32 floats.
static inline __attribute__((always_inline)) float qk_amax32(const float *x) {
    const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 m01 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x), absMask), _mm256_and_ps(_mm256_loadu_ps(x + 8), absMask));
    const __m256 m23 = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + 16), absMask), _mm256_and_ps(_mm256_loadu_ps(x + 24), absMask));
    return qk_hmax8(_mm256_max_ps(m01, m23));
}

static inline void quantize_act(const float *x, void *dst, int blocks, int offset) {
    uint8_t *o = (uint8_t *)dst;
    for (int b = 0; b < blocks; ++b, o += QK_ACT_BYTES, x += 32) {
        const float amax = qk_amax32(x);
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        const __m256 vd = _mm256_set1_ps(d), vid = _mm256_set1_ps(id), vid256 = _mm256_set1_ps(id * 256.0f);
        __m256i sum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int i = 0; i < 4; ++i) {
            const __m256 xv = _mm256_loadu_ps(x + 8 * i);
            const __m256 h = qk_round_clamp8(_mm256_mul_ps(xv, vid));
            const __m256 r = _mm256_sub_ps(xv, _mm256_mul_ps(h, vd));
            const __m256 l = qk_round_clamp8(_mm256_mul_ps(r, vid256));
            const __m256i ih = _mm256_cvtps_epi32(h), il = _mm256_cvtps_epi32(l);
            qk_store8_i8(o + 8 * i, ih);
            qk_store8_i8(o + 32 + 8 * i, il);
            sum[i >> 1] = _mm256_add_epi32(sum[i >> 1], _mm256_add_epi32(_mm256_slli_epi32(ih, 8), il));
        }
        const int32_t s0 = qk_hsum8i(sum[0]), s1 = qk_hsum8i(sum[1]);
        qk_act_trailer(o, d, s0, s1, offset);
    }
}

static inline void quantize_act3(const float *x, void *dst, int blocks) {
    uint8_t *o = (uint8_t *)dst;
    for (int b = 0; b < blocks; ++b, o += QK_ACT3_BYTES, x += 32) {
        const float amax = qk_amax32(x);
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        __m256i sums[3] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int i = 0; i < 4; ++i) {
            __m256 r = _mm256_loadu_ps(x + 8 * i);
            float step = d, inv = id;
            for (int part = 0; part < 3; ++part, step *= (1.0f / 256.0f), inv *= 256.0f) {
                const __m256 q = qk_round_clamp8(_mm256_mul_ps(r, _mm256_set1_ps(inv)));
                r = _mm256_sub_ps(r, _mm256_mul_ps(q, _mm256_set1_ps(step)));
                const __m256i iq = _mm256_cvtps_epi32(q);
                qk_store8_i8(o + 32 * part + 8 * i, iq);
                sums[part] = _mm256_add_epi32(sums[part], iq);
            }
        }
        const int32_t total[3] = {qk_hsum8i(sums[0]), qk_hsum8i(sums[1]), qk_hsum8i(sums[2])};
        qk_act3_trailer(o, d, total);
    }
}

static inline __attribute__((always_inline)) __m256i qk_bcast32(const uint8_t *p) {
    int32_t v; memcpy(&v, p, 4); return _mm256_set1_epi32(v);
}
static inline __attribute__((always_inline)) __m256i qk_bcast64(const void *p) {
    long long v; memcpy(&v, p, 8); return _mm256_set1_epi64x(v);
}
static inline __attribute__((always_inline)) __m256 qk_f16x8(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
/// 8 bytes at p, unsigned or signed, as 8 floats.
static inline __attribute__((always_inline)) __m256 qk_u8x8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
static inline __attribute__((always_inline)) __m256 qk_i8x8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/// Rows 8h...8h+7 of one Q8_0 panel block (544 bytes at `sb`) times NT tokens' three-part
/// activation blocks `a[t]`, added into acc[t].
static inline __attribute__((always_inline))
void qk_panel8_q8_0(const uint8_t *sb, int h, const uint8_t *const *a, __m256 *acc, const int NT) {
    // Per token: A = 256 hi + mid and B = lo as i16 (column k at lane k).
    int16_t A[4][32] __attribute__((aligned(32))), B[4][32] __attribute__((aligned(32)));
    #pragma clang loop unroll(full)
    for (int t = 0; t < NT; ++t) {
        #pragma clang loop unroll(full)
        for (int k = 0; k < 32; k += 16) {
            const __m256i hi = _mm256_cvtepi8_epi16(qk_load128(a[t] + k));
            const __m256i mid = _mm256_cvtepi8_epi16(qk_load128(a[t] + 32 + k));
            _mm256_store_si256((__m256i *)(A[t] + k), _mm256_add_epi16(_mm256_slli_epi16(hi, 8), mid));
            _mm256_store_si256((__m256i *)(B[t] + k), _mm256_cvtepi8_epi16(qk_load128(a[t] + 64 + k)));
        }
    }
    // Lanes 2r, 2r+1 of the *0 sums: columns (0,1) and (2,3) of row r (0...3); *1: rows 4...7.
    __m256i sa0[4], sa1[4], sb0[4], sb1[4];
    #pragma clang loop unroll(full)
    for (int t = 0; t < NT; ++t)
        sa0[t] = sa1[t] = sb0[t] = sb1[t] = _mm256_setzero_si256();
    #pragma clang loop unroll(full)
    for (int c = 0; c < 8; ++c) {
        const uint8_t *q = sb + 32 + 64 * c + 32 * h;
        const __m256i w0 = _mm256_cvtepu8_epi16(qk_load128(q)), w1 = _mm256_cvtepu8_epi16(qk_load128(q + 16));
        #pragma clang loop unroll(full)
        for (int t = 0; t < NT; ++t) {
            const __m256i xa = qk_bcast64(A[t] + 4 * c), xb = qk_bcast64(B[t] + 4 * c);
            sa0[t] = _mm256_add_epi32(sa0[t], _mm256_madd_epi16(w0, xa));
            sa1[t] = _mm256_add_epi32(sa1[t], _mm256_madd_epi16(w1, xa));
            sb0[t] = _mm256_add_epi32(sb0[t], _mm256_madd_epi16(w0, xb));
            sb1[t] = _mm256_add_epi32(sb1[t], _mm256_madd_epi16(w1, xb));
        }
    }
    const __m256 d = qk_f16x8(sb + 16 * h), f256 = _mm256_set1_ps(256.0f);
    #pragma clang loop unroll(full)
    for (int t = 0; t < NT; ++t) {
        int32_t ch, cm, cl; float e;
        memcpy(&e, a[t] + 96, 4); memcpy(&ch, a[t] + 100, 4); memcpy(&cm, a[t] + 104, 4); memcpy(&cl, a[t] + 108, 4);
        // hadd gives rows 0, 1, 4, 5 | 2, 3, 6, 7; the permute puts them in order.
        const __m256i sa = _mm256_permute4x64_epi64(_mm256_hadd_epi32(sa0[t], sa1[t]), 0xD8);
        const __m256i sl = _mm256_permute4x64_epi64(_mm256_hadd_epi32(sb0[t], sb1[t]), 0xD8);
        const __m256 f = _mm256_cvtepi32_ps(_mm256_add_epi32(sa, _mm256_set1_epi32(256 * ch + cm)));
        const __m256 l = _mm256_cvtepi32_ps(_mm256_add_epi32(sl, _mm256_set1_epi32(cl)));
        acc[t] = _mm256_fmadd_ps(_mm256_fmadd_ps(f, f256, l), _mm256_mul_ps(d, _mm256_set1_ps(e)), acc[t]);
    }
}

/// Rows 8h...8h+7 of one Q5_0, Q4_K (sub-block j) or Q6_K (sub-block j) panel block times NT
/// tokens' activation blocks, added into acc[t]. `sb`: the block (Q5_0) or super-block.
static inline __attribute__((always_inline))
void qk_panel8_nibbles(const uint8_t *sb, int j, int h, const uint8_t *const *a, __m256 *acc,
                       __m256 d, __m256 dmin, const int TYPE, const int NT) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const uint8_t *nib = TYPE == QK_PANEL_Q5_0 ? sb + 96 : TYPE == QK_PANEL_Q4_K ? sb + 320 + 256 * j : sb + 288 + 256 * j;
    // Chunks summed in i16 before widening (see the top of this file), and Q6_K's 16-column groups.
    const int group = TYPE == QK_PANEL_Q4_K ? 8 : TYPE == QK_PANEL_Q5_0 ? 4 : 2;
    __m256i hs[4], ls[4], s[4];
    #pragma clang loop unroll(full)
    for (int t = 0; t < NT; ++t) hs[t] = ls[t] = s[t] = _mm256_setzero_si256();
    __m256i hb = _mm256_setzero_si256();
    #pragma clang loop unroll(full)
    for (int c = 0; c < 8; ++c) {
        const __m256i v = qk_load256(nib + 64 * (c >> 1) + 32 * h);
        __m256i q = (c & 1) ? _mm256_and_si256(_mm256_srli_epi16(v, 4), low4) : _mm256_and_si256(v, low4);
        if (TYPE == QK_PANEL_Q5_0) {
            q = _mm256_or_si256(q, _mm256_and_si256(qk_bytes_from_bits32(sb + 32 + 8 * c + 4 * h), _mm256_set1_epi8(16)));
        } else if (TYPE == QK_PANEL_Q6_K) {
            if ((c & 3) == 0) hb = qk_load256(sb + 2336 + 128 * j + 64 * (c >> 2) + 32 * h);
            const int i = c & 3;
            const __m256i sh = i == 0 ? _mm256_slli_epi16(hb, 4) : i == 1 ? _mm256_slli_epi16(hb, 2)
                             : i == 2 ? hb : _mm256_srli_epi16(hb, 2);
            q = _mm256_or_si256(q, _mm256_and_si256(sh, _mm256_set1_epi8(0x30)));
        }
        #pragma clang loop unroll(full)
        for (int t = 0; t < NT; ++t) {
            hs[t] = _mm256_add_epi16(hs[t], _mm256_maddubs_epi16(q, qk_bcast32(a[t] + 4 * c)));
            ls[t] = _mm256_add_epi16(ls[t], _mm256_maddubs_epi16(q, qk_bcast32(a[t] + 32 + 4 * c)));
        }
        if ((c + 1) % group != 0) continue;
        #pragma clang loop unroll(full)
        for (int t = 0; t < NT; ++t) {
            const __m256i w = _mm256_add_epi32(_mm256_slli_epi32(_mm256_madd_epi16(hs[t], ones), 8), _mm256_madd_epi16(ls[t], ones));
            s[t] = _mm256_add_epi32(s[t], w);
            hs[t] = ls[t] = _mm256_setzero_si256();
        }
        if (TYPE == QK_PANEL_Q6_K && (c & 3) == 3) {
            // One 16-column group done: its own int8 scale.
            const int half = c >> 2;
            const __m256 sc = _mm256_mul_ps(qk_i8x8(sb + 32 + 16 * (2 * j + half) + 8 * h), d);
            #pragma clang loop unroll(full)
            for (int t = 0; t < NT; ++t) {
                int32_t cc, c0; float e;
                memcpy(&e, a[t] + 64, 4); memcpy(&cc, a[t] + 72, 4); memcpy(&c0, a[t] + 76, 4);
                const __m256i si = _mm256_add_epi32(s[t], _mm256_set1_epi32(half ? cc - c0 : c0));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_mul_ps(sc, _mm256_set1_ps(e)), acc[t]);
                s[t] = _mm256_setzero_si256();
            }
        }
    }
    if (TYPE == QK_PANEL_Q5_0) {
        #pragma clang loop unroll(full)
        for (int t = 0; t < NT; ++t) {
            int32_t cc; float e;
            memcpy(&e, a[t] + 64, 4); memcpy(&cc, a[t] + 72, 4);
            const __m256i si = _mm256_add_epi32(s[t], _mm256_set1_epi32(cc));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_mul_ps(d, _mm256_set1_ps(e)), acc[t]);
        }
    } else if (TYPE == QK_PANEL_Q4_K) {
        const __m256 sc = _mm256_mul_ps(qk_u8x8(sb + 64 + 16 * j + 8 * h), d);
        const __m256 mn = _mm256_mul_ps(qk_u8x8(sb + 192 + 16 * j + 8 * h), dmin);
        #pragma clang loop unroll(full)
        for (int t = 0; t < NT; ++t) {
            float e, es;
            memcpy(&e, a[t] + 64, 4); memcpy(&es, a[t] + 68, 4);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t]), _mm256_mul_ps(sc, _mm256_set1_ps(e)), acc[t]);
            acc[t] = _mm256_fnmadd_ps(mn, _mm256_set1_ps(es), acc[t]);
        }
    }
}

/// See level 2's qk_panel_gemm_impl: the same contract.
static inline __attribute__((always_inline))
void qk_panel_gemm_impl(const void *panel, int rows, const void *act, long aStride, int nt, int blocks,
                        float *out, long outStride, long prefetch, const int TYPE, const int NT) {
    const long actBytes = TYPE == QK_PANEL_Q8_0 ? QK_ACT3_BYTES : QK_ACT_BYTES;
    const uint8_t *at0[4];
    #pragma clang loop unroll(full)
    for (int t = 0; t < NT; ++t) at0[t] = (const uint8_t *)act + (t < nt ? t : nt - 1) * aStride;
    const int superBlock = TYPE == QK_PANEL_Q4_K || TYPE == QK_PANEL_Q6_K;
    const long blockBytes = TYPE == QK_PANEL_Q8_0 ? 544 : (TYPE == QK_PANEL_Q5_0 ? 352 : (TYPE == QK_PANEL_Q4_K ? 2368 : 3360));
    for (int h = 0; h < 2 && 8 * h < rows; ++h) {
        __m256 acc[4];
        #pragma clang loop unroll(full)
        for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
        __m256 d = _mm256_setzero_ps(), dmin = _mm256_setzero_ps();
        for (int b = 0; b < blocks; ++b) {
            const int j = superBlock ? (b & 7) : 0;
            const uint8_t *sb = (const uint8_t *)panel + (superBlock ? (long)(b >> 3) : (long)b) * blockBytes;
            // The second half reads what the first brought into the cache.
            if (h == 0 && prefetch > 0 && (!superBlock || j == 0))
                for (long i = 0; i < blockBytes; i += 64) _mm_prefetch((const char *)(sb + prefetch + i), _MM_HINT_T0);
            const uint8_t *a[4];
            #pragma clang loop unroll(full)
            for (int t = 0; t < NT; ++t) a[t] = at0[t] + (long)b * actBytes;
            if (TYPE == QK_PANEL_Q8_0) {
                qk_panel8_q8_0(sb, h, a, acc, NT);
                continue;
            }
            if (!superBlock || j == 0) d = qk_f16x8(sb + 16 * h);
            if (TYPE == QK_PANEL_Q4_K && j == 0) dmin = qk_f16x8(sb + 32 + 16 * h);
            qk_panel8_nibbles(sb, j, h, a, acc, d, dmin, TYPE, NT);
        }
        const int n = rows - 8 * h;
        const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int t = 0; t < nt; ++t) {
            if (n >= 8) _mm256_storeu_ps(out + t * outStride + 8 * h, acc[t]);
            else _mm256_maskstore_ps(out + t * outStride + 8 * h, keep, acc[t]);
        }
    }
}
