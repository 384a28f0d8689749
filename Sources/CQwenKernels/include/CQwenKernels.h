// The C kernels: quantized dot products (row by row) and, with AVX2, AVX-512 VNNI or arm64's
// dot products, panel micro-kernels. See docs/PERFORMANCE.md for the measurements behind them.
//
// Chosen at run time, not at build time: the kernels are compiled once per instruction-set level
// (`__attribute__((target(...)))`, see KernelsImpl.h), and the first call picks the best level the
// CPU and the operating system support (x86-64: cpuid + xgetbv; arm64: AT_HWCAP on Linux,
// sysctl on Darwin), or a lower one named by the environment variable QWENKIT_ISA (generic,
// avx2, avx512, dotprod). The package carries no architecture flags, so one binary runs on
// every CPU of its architecture.
//
// Panels: Q8_0, Q5_0, Q4_K and Q6_K weights repacked at load time into panels of 16 rows,
// multiplied against split (~16-bit) activations.
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
#ifndef CQWENKERNELS_H
#define CQWENKERNELS_H
#include <stdint.h>

#define QK_PANEL_ROWS 16
#define QK_ACT_BYTES 80
#define QK_ACT3_BYTES 112

enum { QK_PANEL_Q8_0 = 0, QK_PANEL_Q5_0 = 1, QK_PANEL_Q4_K = 2, QK_PANEL_Q6_K = 3 };

/// Instruction-set levels. x86-64: generic (SSE2), AVX2 (+FMA, F16C), AVX-512 (F, BW, VL, DQ, VNNI).
/// arm64: generic (plain C), dotprod (NEON with SDOT: FEAT_DotProd).
enum { QK_ISA_GENERIC = 0, QK_ISA_AVX2 = 1, QK_ISA_AVX512 = 2, QK_ISA_DOTPROD = 3 };

/// One level's kernels. Entries a level lacks are NULL (the panels exist at AVX2 and above).
typedef struct {
    float (*dot_row)(int type, int blocks, const void *w, const void *x);
    void (*dot_rows)(int type, int blocks, const void *w, const void *x, long xStride, int n,
                     float *out, long outStride);
    float (*dot_f32)(const float *a, const float *b, long n);
    float (*dot_float_row)(int type, long count, const void *w, const float *x);
    void (*gate)(int kind, float *v, const float *g, long n);
    void (*axpy)(float a, const float *x, float *y, long n);
    void (*mul_add)(const float *w, const float *x, float *y, long n);
    void (*attend)(float *score, int length, const float *values, long stride, int d, float *out);
    void (*small_product)(int rows, int inner, int triangular, const float *a, long aStride, const float *b,
                          long bStride, float *y, long yStride, int cols, float sign, int accumulate);
    void (*quantize_act)(const float *x, void *dst, int blocks, int offset);
    void (*quantize_act3)(const float *x, void *dst, int blocks);
    void (*panel_gemm)(int type, const void *panel, int rows, const void *act, long aStride, int nt,
                       int blocks, float *out, long outStride, long prefetch);
} qk_kernel_table;

/// The best level this CPU (and its operating system) supports.
int qk_isa_supported(void);
/// 1 when this CPU can run `level` (generic always; on x86-64 every level up to the supported one).
int qk_isa_available(int level);
/// The level in use: the supported one, lowered by QWENKIT_ISA if set.
int qk_isa_active(void);
/// Switches to `level` (for tests and benchmarks); returns 0 if the CPU does not support it.
/// Weights packed into panels under one level must not be multiplied under a lower one.
int qk_isa_select(int level);
/// The name of a level ("generic", "avx2", "avx512", "dotprod").
const char *qk_isa_name(int level);

/// Σ over `blocks` blocks: weight row `w` (ggml type code `type`: Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7,
/// Q8_0 8, Q2_K 10, Q3_K 11, Q4_K 12, Q5_K 13, Q6_K 14) · activations `x` quantized in the
/// matching Q8 format (Q8_0, Q8_1 or Q8_K).
float qk_dot_row(int type, int blocks, const void *w, const void *x);
/// out[r * outStride] = qk_dot_row(type, blocks, w, x + r * xStride) for r < n, reading each weight
/// block once for up to 4 activation rows (up to float summation order).
void qk_dot_rows(int type, int blocks, const void *w, const void *x, long xStride, int n,
                 float *out, long outStride);

// MARK: Float kernels (16-lane vectors; fused multiply-adds where the level has FMA)

/// Σ a[i] b[i] for i < n.
float qk_dot_f32(const float *a, const float *b, long n);

/// Weight row · float activations for F16 (type 1), BF16 (30) and Q8_0 (8; `count` a multiple
/// of 32): the weights decoded in registers, the activations exact.
float qk_dot_float_row(int type, long count, const void *w, const float *x);

/// The gates, with e^x as a vector polynomial within ~2 ulp of expf (silu(x) = x / (1 + e^-x)).
enum {
    QK_GATE_SWIGLU = 0,        ///< v[i] = silu(v[i]) · g[i]
    QK_GATE_SILU = 1,          ///< v[i] = silu(v[i]) (g unused)
    QK_GATE_SILU_OF_GATE = 2,  ///< v[i] *= silu(g[i])
    QK_GATE_SIGMOID = 3,       ///< v[i] *= sigmoid(g[i])
};
void qk_gate(int kind, float *v, const float *g, long n);

/// y[i] += a · x[i].
void qk_axpy(float a, const float *x, float *y, long n);
/// y[i] += w[i] · x[i].
void qk_mul_add(const float *w, const float *x, float *y, long n);

/// Softmax-weighted sum for one query head: score[0..<length] holds the raw scores on entry
/// (overwritten by e^(s - max)), and out[0..<d] = Σ_p softmax(score)[p] · values[p * stride ..< + d].
void qk_attend(float *score, int length, const float *values, long stride, int d, float *out);

/// y[i, :] (+)= sign · Σ_k a[i, k] · b[k, :] for i < rows and `cols` columns, row-major with strides:
/// k < inner, or k <= i when `triangular`; `accumulate` 0 overwrites y.
void qk_small_product(int rows, int inner, int triangular, const float *a, long aStride, const float *b,
                      long bStride, float *y, long yStride, int cols, float sign, int accumulate);

// MARK: Panels

/// 1 when the active level has the panel kernels (else callers use the row-by-row paths).
int qk_panels_available(void);
/// Quantizes `blocks` blocks of 32 floats at `x` into the activation layout at `dst`
/// (`blocks * QK_ACT_BYTES` bytes), seeding for weights whose unsigned values carry `offset`.
/// Rounding: to nearest, ties to even. Non-finite values are not expected. Panels only.
void qk_quantize_act(const float *x, void *dst, int blocks, int offset);
/// Quantizes `blocks` blocks of 32 floats at `x` into the three-part (Q8_0) activation layout at
/// `dst` (`blocks * QK_ACT3_BYTES` bytes). Rounding: to nearest, ties to even. Panels only.
void qk_quantize_act3(const float *x, void *dst, int blocks);
/// out[t * outStride + r] = panel row r · token t, for r < rows (1...16) and t < nt (1...4:
/// tiles of 6 and 8 tokens measured no faster on one thread and 5% slower on two, from spills).
/// `panel`: one panel's blocks (`blocks` blocks of 32 columns) in `type`'s layout (QK_PANEL_*);
/// token t's activations at `act + t * aStride`. `prefetch` > 0: prefetch the weights that many
/// bytes ahead (decode streams them from memory). Panels only.
void qk_panel_gemm(int type, const void *panel, int rows, const void *act, long aStride, int nt,
                   int blocks, float *out, long outStride, long prefetch);

/// out[i] = x[i] - (what activation blocks `q` of `type` hold for x[i]): 0 = Q8_0, 1 = Q8_1,
/// 2 = Q8_K, with the scale exactly as the integer dot products read it (f16 or f32). Quantizing
/// this residual again and adding its dot product gives ~16-bit activations.
void qk_q8_residual(const float *x, const void *q, int type, int count, float *out);

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
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
