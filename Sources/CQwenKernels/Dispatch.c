// Picks one level's kernel table at start-up from what the CPU reports (see CQwenKernels.h).
#include "CQwenKernels.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif


extern const qk_kernel_table qk_table_generic;
#if defined(__x86_64__)
extern const qk_kernel_table qk_table_avx2;
extern const qk_kernel_table qk_table_avx512;
#elif defined(__aarch64__)
extern const qk_kernel_table qk_table_dotprod;
#endif

static const qk_kernel_table *table_for(int level) {
#if defined(__x86_64__)
    if (level == QK_ISA_AVX512) return &qk_table_avx512;
    if (level == QK_ISA_AVX2) return &qk_table_avx2;
#elif defined(__aarch64__)
    if (level == QK_ISA_DOTPROD) return &qk_table_dotprod;
#endif
    (void)level;
    return &qk_table_generic;
}

#if defined(__x86_64__)
/// XCR0: which register states the operating system saves (AVX needs bits 1-2, AVX-512 5-7).
static uint64_t xgetbv0(void) {
    uint32_t eax, edx;
    __asm__ __volatile__("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}
#endif

static int detect(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return QK_ISA_GENERIC;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c)) return QK_ISA_GENERIC;
    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return QK_ISA_GENERIC;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return QK_ISA_GENERIC;
    const int avx2 = (b >> 5) & 1;
    if (!avx2) return QK_ISA_GENERIC;
    const int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    const int vnni = (c >> 11) & 1;
    if (f && dq && bw && vl && vnni && (xcr0 & 0xE0) == 0xE0) return QK_ISA_AVX512;
    return QK_ISA_AVX2;
#elif defined(__aarch64__) && defined(__linux__)
    return (getauxval(AT_HWCAP) & (1UL << 20)) ? QK_ISA_DOTPROD : QK_ISA_GENERIC;   // HWCAP_ASIMDDP
#elif defined(__aarch64__) && defined(__APPLE__)
    int dot = 0;
    size_t size = sizeof dot;
    if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &dot, &size, NULL, 0) != 0) dot = 0;
    return dot ? QK_ISA_DOTPROD : QK_ISA_GENERIC;
#else
    return QK_ISA_GENERIC;
#endif
}

static const char *const names[] = {"generic", "avx2", "avx512", "dotprod"};

const char *qk_isa_name(int level) {
    return level >= 0 && level <= QK_ISA_DOTPROD ? names[level] : "unknown";
}

static _Atomic int supported = -1;
static _Atomic(const qk_kernel_table *) active_table = NULL;
static _Atomic int active_level = -1;

int qk_isa_supported(void) {
    int s = atomic_load_explicit(&supported, memory_order_relaxed);
    if (s < 0) {
        s = detect();
        atomic_store_explicit(&supported, s, memory_order_relaxed);
    }
    return s;
}

int qk_isa_available(int level) {
    const int best = qk_isa_supported();
    if (level == QK_ISA_GENERIC) return 1;
#if defined(__x86_64__)
    return level <= QK_ISA_AVX512 && level <= best;
#else
    return level == best;
#endif
}

int qk_isa_select(int level) {
    if (!qk_isa_available(level)) return 0;
    atomic_store(&active_level, level);
    atomic_store(&active_table, table_for(level));
    return 1;
}

/// The active table; on first use, the supported level lowered by QWENKIT_ISA.
static const qk_kernel_table *table(void) {
    const qk_kernel_table *t = atomic_load_explicit(&active_table, memory_order_acquire);
    if (t) return t;
    int level = qk_isa_supported();
    const char *env = getenv("QWENKIT_ISA");
    if (env) {
        // Only lower: a named level that this CPU has and that is below the best one.
        for (int l = QK_ISA_GENERIC; l <= QK_ISA_DOTPROD; ++l)
            if (strcmp(env, names[l]) == 0 && qk_isa_available(l) && l < level) level = l;
    }
    qk_isa_select(level);
    return atomic_load(&active_table);
}

int qk_isa_active(void) {
    (void)table();
    return atomic_load(&active_level);
}

float qk_dot_row(int type, int blocks, const void *w, const void *x) {
    return table()->dot_row(type, blocks, w, x);
}

void qk_dot_rows(int type, int blocks, const void *w, const void *x, long xStride, int n, float *out,
                 long outStride) {
    table()->dot_rows(type, blocks, w, x, xStride, n, out, outStride);
}

float qk_dot_f32(const float *a, const float *b, long n) { return table()->dot_f32(a, b, n); }

float qk_dot_float_row(int type, long count, const void *w, const float *x) {
    return table()->dot_float_row(type, count, w, x);
}

void qk_gate(int kind, float *v, const float *g, long n) { table()->gate(kind, v, g, n); }

void qk_axpy(float a, const float *x, float *y, long n) { table()->axpy(a, x, y, n); }

void qk_mul_add(const float *w, const float *x, float *y, long n) { table()->mul_add(w, x, y, n); }

void qk_attend(float *score, int length, const float *values, long stride, int d, float *out) {
    table()->attend(score, length, values, stride, d, out);
}

void qk_small_product(int rows, int inner, int triangular, const float *a, long aStride, const float *b,
                      long bStride, float *y, long yStride, int cols, float sign, int accumulate) {
    table()->small_product(rows, inner, triangular, a, aStride, b, bStride, y, yStride, cols, sign, accumulate);
}

int qk_panels_available(void) { return table()->panel_gemm != NULL; }

void qk_quantize_act(const float *x, void *dst, int blocks, int offset) {
    const qk_kernel_table *t = table();
    if (t->quantize_act) t->quantize_act(x, dst, blocks, offset);
}

void qk_quantize_act3(const float *x, void *dst, int blocks) {
    const qk_kernel_table *t = table();
    if (t->quantize_act3) t->quantize_act3(x, dst, blocks);
}

void qk_panel_gemm(int type, const void *panel, int rows, const void *act, long aStride, int nt, int blocks,
                   float *out, long outStride, long prefetch) {
    const qk_kernel_table *t = table();
    if (t->panel_gemm) t->panel_gemm(type, panel, rows, act, aStride, nt, blocks, out, outStride, prefetch);
}

/// IEEE half -> float, exactly (what F16C's vcvtph2ps gives).
static float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        const float v = (float)mant * (1.0f / 16777216.0f);   // subnormal or zero: mant * 2^-24
        return sign ? -v : v;
    }
    const uint32_t bits = exp == 31 ? (sign | 0x7f800000u | (mant << 13)) : (sign | ((exp + 112) << 23) | (mant << 13));
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void qk_q8_residual(const float *x, const void *q, int type, int count, float *out) {
    const uint8_t *b = (const uint8_t *)q;
    const int per = type == 2 ? 256 : 32;
    const int bytes = type == 0 ? 34 : (type == 1 ? 36 : 292);
    const int off = type == 0 ? 2 : 4;
    for (int i = 0; i < count; i += per, b += bytes) {
        float d;
        if (type == 2) {
            memcpy(&d, b, 4);
        } else {
            uint16_t h;
            memcpy(&h, b, 2);
            d = half_to_float(h);
        }
        const int8_t *qs = (const int8_t *)(b + off);
        for (int j = 0; j < per; ++j) out[i + j] = x[i + j] - d * (float)qs[j];
    }
}
