// The panel kernels at the arm64 dot-product level (NEON with SDOT), included by KernelsImpl.h.
//
// Same panel and activation layouts as the x86 levels (CQwenKernels.h), same integer sums and
// the same float operations per row in the same order, so the results are bit for bit theirs and
// the scalar twins' (Panels.gemmReference). A 64-byte chunk of a panel (16 rows x 4 columns) is
// four q registers of 4 rows; `sdot` multiplies one of them by the chunk's 4 activation bytes,
// replicated, into 4 int32 lanes (one per row).
//
// `sdot` is signed x signed. The 4-, 5- and 6-bit weights (0...63) read the same as int8; the
// Q8_0 weights are stored + 128 and read back signed by flipping the top bit, which makes their
// sums exactly Σ w x without the activation's -128 Σ x seeds.
//
// Tiles: two tokens at a time share the unpacked weights (one for Q8_0, whose three activation
// parts fill the registers); a tile of 4 tokens runs as two of 2.

static inline __attribute__((always_inline)) float32x4_t qk_clamp_round4(float32x4_t v) {
    v = vrndnq_f32(v);   // to nearest, ties to even
    return vminq_f32(vmaxq_f32(v, vdupq_n_f32(-127.0f)), vdupq_n_f32(127.0f));
}

/// 16 int32 lanes (each in -127...127) stored as 16 bytes.
static inline __attribute__((always_inline)) void qk_store16_i8(uint8_t *o, int32x4_t a, int32x4_t b, int32x4_t c,
                                                               int32x4_t d) {
    const int16x8_t ab = vcombine_s16(vmovn_s32(a), vmovn_s32(b)), cd = vcombine_s16(vmovn_s32(c), vmovn_s32(d));
    vst1q_s8((int8_t *)o, vcombine_s8(vmovn_s16(ab), vmovn_s16(cd)));
}

static inline __attribute__((always_inline)) float qk_amax32_neon(const float *x) {
    float32x4_t m = vabsq_f32(vld1q_f32(x));
    for (int i = 4; i < 32; i += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + i)));
    return vmaxvq_f32(m);
}

static inline void quantize_act(const float *x, void *dst, int blocks, int offset) {
    uint8_t *o = (uint8_t *)dst;
    for (int b = 0; b < blocks; ++b, o += QK_ACT_BYTES, x += 32) {
        const float amax = qk_amax32_neon(x);
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        const float32x4_t vd = vdupq_n_f32(d), vid = vdupq_n_f32(id), vid256 = vdupq_n_f32(id * 256.0f);
        int32x4_t hi[8], lo[8];
        int32x4_t sum[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int i = 0; i < 8; ++i) {
            const float32x4_t xv = vld1q_f32(x + 4 * i);
            const float32x4_t h = qk_clamp_round4(vmulq_f32(xv, vid));
            const float32x4_t r = vsubq_f32(xv, vmulq_f32(h, vd));
            const float32x4_t l = qk_clamp_round4(vmulq_f32(r, vid256));
            hi[i] = vcvtnq_s32_f32(h);
            lo[i] = vcvtnq_s32_f32(l);
            sum[i >> 2] = vaddq_s32(sum[i >> 2], vaddq_s32(vshlq_n_s32(hi[i], 8), lo[i]));
        }
        qk_store16_i8(o, hi[0], hi[1], hi[2], hi[3]);
        qk_store16_i8(o + 16, hi[4], hi[5], hi[6], hi[7]);
        qk_store16_i8(o + 32, lo[0], lo[1], lo[2], lo[3]);
        qk_store16_i8(o + 48, lo[4], lo[5], lo[6], lo[7]);
        const int32_t s0 = vaddvq_s32(sum[0]), s1 = vaddvq_s32(sum[1]);
        qk_act_trailer(o, d, s0, s1, offset);
    }
}

static inline void quantize_act3(const float *x, void *dst, int blocks) {
    uint8_t *o = (uint8_t *)dst;
    for (int b = 0; b < blocks; ++b, o += QK_ACT3_BYTES, x += 32) {
        const float amax = qk_amax32_neon(x);
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        int32x4_t sums[3] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int half = 0; half < 2; ++half) {
            int32x4_t q[3][4];
            for (int i = 0; i < 4; ++i) {
                float32x4_t r = vld1q_f32(x + 16 * half + 4 * i);
                float step = d, inv = id;
                for (int part = 0; part < 3; ++part, step *= (1.0f / 256.0f), inv *= 256.0f) {
                    const float32x4_t v = qk_clamp_round4(vmulq_f32(r, vdupq_n_f32(inv)));
                    r = vsubq_f32(r, vmulq_f32(v, vdupq_n_f32(step)));
                    q[part][i] = vcvtnq_s32_f32(v);
                    sums[part] = vaddq_s32(sums[part], q[part][i]);
                }
            }
            for (int part = 0; part < 3; ++part)
                qk_store16_i8(o + 32 * part + 16 * half, q[part][0], q[part][1], q[part][2], q[part][3]);
        }
        const int32_t total[3] = {vaddvq_s32(sums[0]), vaddvq_s32(sums[1]), vaddvq_s32(sums[2])};
        qk_act3_trailer(o, d, total);
    }
}

/// The 4 bytes at p in every 32-bit lane.
static inline __attribute__((always_inline)) int8x16_t qk_rep4(const uint8_t *p) {
    int32_t v; memcpy(&v, p, 4); return vreinterpretq_s8_s32(vdupq_n_s32(v));
}
/// 4 halves at p as floats.
static inline __attribute__((always_inline)) float32x4_t qk_f16x4(const uint8_t *p) {
    uint16x4_t h; memcpy(&h, p, 8); return vcvt_f32_f16(vreinterpret_f16_u16(h));
}
static inline __attribute__((always_inline)) float32x4_t qk_u8x4f(const uint8_t *p) {
    return (float32x4_t){(float)p[0], (float)p[1], (float)p[2], (float)p[3]};
}
static inline __attribute__((always_inline)) float32x4_t qk_i8x4f(const uint8_t *p) {
    return (float32x4_t){(float)(int8_t)p[0], (float)(int8_t)p[1], (float)(int8_t)p[2], (float)(int8_t)p[3]};
}

/// Rows 4g...4g+3 of chunk c (0...7) of a Q5_0/Q4_K/Q6_K panel block, as int8.
static inline __attribute__((always_inline))
int8x16_t qk_panel_chunk_neon(const uint8_t *sb, const uint8_t *nib, int j, int c, int g, const int TYPE) {
    const uint8x16_t v = vld1q_u8(nib + 64 * (c >> 1) + 16 * g);
    uint8x16_t q = (c & 1) ? vshrq_n_u8(v, 4) : vandq_u8(v, vdupq_n_u8(0x0F));
    if (TYPE == QK_PANEL_Q5_0) {
        // Bits 16g...16g+15 of the chunk's 64-bit mask, one per byte.
        const uint8x8_t m = vld1_u8(sb + 32 + 8 * c);
        const uint8x16_t index = vcombine_u8(vdup_n_u8((uint8_t)(2 * g)), vdup_n_u8((uint8_t)(2 * g + 1)));
        const uint8x16_t spread = vqtbl1q_u8(vcombine_u8(m, m), index);
        const uint8x16_t bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ULL));
        q = vorrq_u8(q, vandq_u8(vtstq_u8(spread, bit), vdupq_n_u8(16)));
    } else if (TYPE == QK_PANEL_Q6_K) {
        const uint8x16_t hb = vld1q_u8(sb + 2336 + 128 * j + 64 * (c >> 2) + 16 * g);
        const int i = c & 3;
        const uint8x16_t s = i == 0 ? vshlq_n_u8(hb, 4) : i == 1 ? vshlq_n_u8(hb, 2) : i == 2 ? hb : vshrq_n_u8(hb, 2);
        q = vorrq_u8(q, vandq_u8(s, vdupq_n_u8(0x30)));
    }
    return vreinterpretq_s8_u8(q);
}

/// One Q8_0 panel block (544 bytes at sb) times one token's three-part activation block a,
/// added into acc[0...3] (rows 4g...4g+3 in acc[g]).
static inline __attribute__((always_inline)) void qk_panel_q8_0_neon(const uint8_t *sb, const uint8_t *a, float32x4_t *acc) {
    int32x4_t s[3][4];
    for (int p = 0; p < 3; ++p)
        for (int g = 0; g < 4; ++g) s[p][g] = vdupq_n_s32(0);
    for (int c = 0; c < 8; ++c) {
        const int8x16_t x0 = qk_rep4(a + 4 * c), x1 = qk_rep4(a + 32 + 4 * c), x2 = qk_rep4(a + 64 + 4 * c);
        for (int g = 0; g < 4; ++g) {
            const int8x16_t w = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(sb + 32 + 64 * c + 16 * g), vdupq_n_u8(0x80)));
            s[0][g] = vdotq_s32(s[0][g], w, x0);
            s[1][g] = vdotq_s32(s[1][g], w, x1);
            s[2][g] = vdotq_s32(s[2][g], w, x2);
        }
    }
    float e; memcpy(&e, a + 96, 4);
    for (int g = 0; g < 4; ++g) {
        const float32x4_t f = vfmaq_n_f32(vcvtq_f32_s32(s[1][g]), vcvtq_f32_s32(s[0][g]), 256.0f);
        const float32x4_t t = vfmaq_n_f32(vcvtq_f32_s32(s[2][g]), f, 256.0f);
        acc[g] = vfmaq_f32(acc[g], t, vmulq_n_f32(qk_f16x4(sb + 8 * g), e));
    }
}

/// One Q5_0 block or one sub-block j of a Q4_K/Q6_K super-block at sb, times NT (1 or 2) tokens'
/// activation blocks a[t], added into acc[t][0...3].
static inline __attribute__((always_inline))
void qk_panel_nibbles_neon(const uint8_t *sb, int j, const uint8_t *const *a, float32x4_t (*acc)[4],
                           const float32x4_t *d, const float32x4_t *dmin, const int TYPE, const int NT) {
    const uint8_t *nib = TYPE == QK_PANEL_Q5_0 ? sb + 96 : TYPE == QK_PANEL_Q4_K ? sb + 320 + 256 * j : sb + 288 + 256 * j;
    int32x4_t hs[2][4], ls[2][4];
    for (int t = 0; t < NT; ++t)
        for (int g = 0; g < 4; ++g) hs[t][g] = ls[t][g] = vdupq_n_s32(0);
    for (int c = 0; c < 8; ++c) {
        int8x16_t xh[2], xl[2];
        for (int t = 0; t < NT; ++t) { xh[t] = qk_rep4(a[t] + 4 * c); xl[t] = qk_rep4(a[t] + 32 + 4 * c); }
        for (int g = 0; g < 4; ++g) {
            const int8x16_t w = qk_panel_chunk_neon(sb, nib, j, c, g, TYPE);
            for (int t = 0; t < NT; ++t) {
                hs[t][g] = vdotq_s32(hs[t][g], w, xh[t]);
                ls[t][g] = vdotq_s32(ls[t][g], w, xl[t]);
            }
        }
        if (TYPE == QK_PANEL_Q6_K && (c & 3) == 3) {
            // One 16-column group done: its own int8 scale.
            const int half = c >> 2;
            for (int t = 0; t < NT; ++t) {
                int32_t cc, c0; float e;
                memcpy(&e, a[t] + 64, 4); memcpy(&cc, a[t] + 72, 4); memcpy(&c0, a[t] + 76, 4);
                for (int g = 0; g < 4; ++g) {
                    const float32x4_t sc = vmulq_f32(qk_i8x4f(sb + 32 + 16 * (2 * j + half) + 4 * g), d[g]);
                    const int32x4_t s = vaddq_s32(vaddq_s32(vshlq_n_s32(hs[t][g], 8), ls[t][g]), vdupq_n_s32(half ? cc - c0 : c0));
                    acc[t][g] = vfmaq_f32(acc[t][g], vcvtq_f32_s32(s), vmulq_n_f32(sc, e));
                    hs[t][g] = ls[t][g] = vdupq_n_s32(0);
                }
            }
        }
    }
    if (TYPE == QK_PANEL_Q5_0) {
        for (int t = 0; t < NT; ++t) {
            int32_t cc; float e;
            memcpy(&e, a[t] + 64, 4); memcpy(&cc, a[t] + 72, 4);
            for (int g = 0; g < 4; ++g) {
                const int32x4_t s = vaddq_s32(vaddq_s32(vshlq_n_s32(hs[t][g], 8), ls[t][g]), vdupq_n_s32(cc));
                acc[t][g] = vfmaq_f32(acc[t][g], vcvtq_f32_s32(s), vmulq_n_f32(d[g], e));
            }
        }
    } else if (TYPE == QK_PANEL_Q4_K) {
        for (int t = 0; t < NT; ++t) {
            float e, es;
            memcpy(&e, a[t] + 64, 4); memcpy(&es, a[t] + 68, 4);
            for (int g = 0; g < 4; ++g) {
                const float32x4_t sc = vmulq_f32(qk_u8x4f(sb + 64 + 16 * j + 4 * g), d[g]);
                const float32x4_t mn = vmulq_f32(qk_u8x4f(sb + 192 + 16 * j + 4 * g), dmin[g]);
                const int32x4_t s = vaddq_s32(vshlq_n_s32(hs[t][g], 8), ls[t][g]);
                acc[t][g] = vfmaq_f32(acc[t][g], vcvtq_f32_s32(s), vmulq_n_f32(sc, e));
                acc[t][g] = vfmsq_f32(acc[t][g], mn, vdupq_n_f32(es));
            }
        }
    }
}

/// Tokens t0...t0+NT-1 of the tile (NT 1 or 2; duplicates of the last real token past nt).
static inline __attribute__((always_inline))
void qk_panel_tile_neon(const void *panel, int rows, const void *act, long aStride, int nt, int t0, int blocks,
                        float *out, long outStride, long prefetch, const int TYPE, const int NT) {
    const long actBytes = TYPE == QK_PANEL_Q8_0 ? QK_ACT3_BYTES : QK_ACT_BYTES;
    const uint8_t *at0[2];
    for (int t = 0; t < NT; ++t) at0[t] = (const uint8_t *)act + (t0 + t < nt ? t0 + t : nt - 1) * aStride;
    const int superBlock = TYPE == QK_PANEL_Q4_K || TYPE == QK_PANEL_Q6_K;
    const long blockBytes = TYPE == QK_PANEL_Q8_0 ? 544 : (TYPE == QK_PANEL_Q5_0 ? 352 : (TYPE == QK_PANEL_Q4_K ? 2368 : 3360));
    float32x4_t acc[2][4];
    for (int t = 0; t < NT; ++t)
        for (int g = 0; g < 4; ++g) acc[t][g] = vdupq_n_f32(0);
    float32x4_t d[4], dmin[4];
    for (int g = 0; g < 4; ++g) d[g] = dmin[g] = vdupq_n_f32(0);
    for (int b = 0; b < blocks; ++b) {
        const int j = superBlock ? (b & 7) : 0;
        const uint8_t *sb = (const uint8_t *)panel + (superBlock ? (long)(b >> 3) : (long)b) * blockBytes;
        if (prefetch > 0 && (!superBlock || j == 0)) qk_prefetch(sb + prefetch, blockBytes);
        const uint8_t *a[2];
        for (int t = 0; t < NT; ++t) a[t] = at0[t] + (long)b * actBytes;
        if (TYPE == QK_PANEL_Q8_0) {
            qk_panel_q8_0_neon(sb, a[0], acc[0]);
            continue;
        }
        if (!superBlock || j == 0)
            for (int g = 0; g < 4; ++g) d[g] = qk_f16x4(sb + 8 * g);
        if (TYPE == QK_PANEL_Q4_K && j == 0)
            for (int g = 0; g < 4; ++g) dmin[g] = qk_f16x4(sb + 32 + 8 * g);
        qk_panel_nibbles_neon(sb, j, a, acc, d, dmin, TYPE, NT);
    }
    for (int t = 0; t < NT && t0 + t < nt; ++t) {
        float all[16];
        for (int g = 0; g < 4; ++g) vst1q_f32(all + 4 * g, acc[t][g]);
        memcpy(out + (t0 + t) * outStride, all, sizeof(float) * (size_t)rows);
    }
}

/// See the x86 levels' qk_panel_gemm_impl: the same contract.
static inline __attribute__((always_inline))
void qk_panel_gemm_impl(const void *panel, int rows, const void *act, long aStride, int nt, int blocks,
                        float *out, long outStride, long prefetch, const int TYPE, const int NT) {
    (void)NT;
    const int tile = TYPE == QK_PANEL_Q8_0 ? 1 : 2;
    for (int t0 = 0; t0 < nt; t0 += tile) {
        // The weights stream from memory once: later tiles find them in the cache.
        const long ahead = t0 == 0 ? prefetch : 0;
        if (tile == 1 || nt - t0 == 1)
            qk_panel_tile_neon(panel, rows, act, aStride, nt, t0, blocks, out, outStride, ahead, TYPE, 1);
        else
            qk_panel_tile_neon(panel, rows, act, aStride, nt, t0, blocks, out, outStride, ahead, TYPE, 2);
    }
}
