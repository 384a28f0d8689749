// The C kernels checked across instruction-set levels and architectures, outside Swift (so the
// arm64 kernels can be run under qemu-aarch64 from an x86-64 machine): scripts/test-kernels-cross.sh.
//
//   cross_check panels LEVEL   one line per random case: a hash of the activation bytes the level's
//                              quantizers write and of the panel products it computes. Every level
//                              with panels must print the same lines (the kernels promise identical
//                              integer sums and the same float operations per row as the scalar twins).
//   cross_check rows LEVEL     the quantized row dot products at LEVEL against level 0 (generic C)
//                              on the same machine; exits 1 on any difference. Holds bit for bit
//                              where LEVEL computes level 0's integer sums and float steps (arm64's
//                              dotprod level); x86 levels sum floats in another order, so the script
//                              runs this mode on arm64 only.
#include "CQwenKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 88172645463325252ull;
static uint64_t rnd(void) { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; }
static float frand(void) { return (float)((rnd() >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1; }
static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; ++i) { h ^= b[i]; h *= 1099511628211ull; }
    return h;
}
/// n finite halves in roughly 2^-7...2^5, random signs.
static void put_f16(uint8_t *p, int n) {
    for (int i = 0; i < n; ++i) {
        uint16_t h = (uint16_t)(0x2000 + rnd() % 0x2800);
        if (rnd() & 1) h |= 0x8000;
        memcpy(p + 2 * i, &h, 2);
    }
}

static int panels(void) {
    const long blockBytes[4] = {544, 352, 2368, 3360};
    const int columnsPerBlock[4] = {32, 32, 256, 256};
    for (int type = 0; type < 4; ++type) {
        for (int trial = 0; trial < 300; ++trial) {
            const int superBlocks = 1 + (int)(rnd() % 6), cols = superBlocks * columnsPerBlock[type], blocks = cols / 32;
            const long panelBytes = superBlocks * blockBytes[type];
            const int extreme = trial % 4 == 1;   // every weight at its maximum, activations all alike
            uint8_t *panel = malloc((size_t)panelBytes);
            for (long i = 0; i < panelBytes; ++i) panel[i] = extreme ? 0xFF : (uint8_t)rnd();
            for (int b = 0; b < superBlocks; ++b) {
                put_f16(panel + b * blockBytes[type], 16);
                if (type == QK_PANEL_Q4_K) put_f16(panel + b * blockBytes[type] + 32, 16);
            }
            const int nt = 1 + (int)(rnd() % 4), rows = 1 + (int)(rnd() % 16);
            float *x = malloc(sizeof(float) * (size_t)(cols * nt));
            for (int i = 0; i < cols * nt; ++i) x[i] = frand() * (rnd() % 3 == 0 ? 100 : 1);
            if (trial == 0) memset(x, 0, sizeof(float) * 32);   // an all-zero block
            if (extreme)
                for (int i = 0; i < cols * nt; ++i) x[i] = (trial & 8) ? -3.0f : 3.0f + 0.001f * (float)(i % 7);
            const long stride = blocks * (type == QK_PANEL_Q8_0 ? QK_ACT3_BYTES : QK_ACT_BYTES);
            const int offset = type == QK_PANEL_Q5_0 ? 16 : type == QK_PANEL_Q6_K ? 32 : 0;
            uint8_t *act = calloc((size_t)(stride * nt), 1);
            float out[4 * 16];
            for (int t = 0; t < nt; ++t) {
                if (type == QK_PANEL_Q8_0) qk_quantize_act3(x + t * cols, act + t * stride, blocks);
                else qk_quantize_act(x + t * cols, act + t * stride, blocks, offset);
            }
            for (int i = 0; i < 64; ++i) out[i] = -12345.0f;   // rows and tokens past the tile stay untouched
            qk_panel_gemm(type, panel, rows, act, stride, nt, blocks, out, 16, trial % 3 == 0 ? 256 : 0);
            printf("%d %d %016llx\n", type, trial,
                   (unsigned long long)fnv(out, sizeof out, fnv(act, (size_t)(stride * nt), 1469598103934665603ull)));
            free(panel); free(x); free(act);
        }
    }
    return 0;
}

static int rows(int level) {
    const int types[] = {2, 3, 6, 7, 8, 10, 11, 12, 13, 14};
    const int weightBytes[] = {18, 20, 22, 24, 34, 84, 110, 144, 176, 210};
    const int actBytes[] = {34, 36, 34, 36, 34, 292, 292, 292, 292, 292};
    int differ = 0, cases = 0;
    for (int i = 0; i < 10; ++i) {
        for (int trial = 0; trial < 200; ++trial, ++cases) {
            const int blocks = 1 + (int)(rnd() % 12), n = 1 + (int)(rnd() % 6);
            const long xStride = (long)blocks * actBytes[i];
            uint8_t *w = malloc((size_t)(blocks * weightBytes[i])), *x = malloc((size_t)(n * xStride));
            for (int k = 0; k < blocks * weightBytes[i]; ++k) w[k] = (uint8_t)rnd();
            for (long k = 0; k < n * xStride; ++k) { x[k] = (uint8_t)rnd(); if (x[k] == 0x80) x[k] = 0x7F; }
            float one[2][8], many[2][8];
            for (int l = 0; l < 2; ++l) {
                qk_isa_select(l ? level : QK_ISA_GENERIC);
                for (int k = 0; k < n; ++k) one[l][k] = qk_dot_row(types[i], blocks, w, x + k * xStride);
                qk_dot_rows(types[i], blocks, w, x, xStride, n, many[l], 1);
            }
            if (memcmp(one[0], one[1], sizeof(float) * (size_t)n) || memcmp(many[0], many[1], sizeof(float) * (size_t)n)) {
                if (differ++ < 5)
                    printf("type %d case %d: %s %.9g, generic %.9g\n", types[i], trial, qk_isa_name(level), one[1][0], one[0][0]);
            }
            free(w); free(x);
        }
    }
    printf("rows: %d cases, %d differ (%s vs generic)\n", cases, differ, qk_isa_name(level));
    return differ != 0;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: cross_check panels|rows LEVEL\n"); return 2; }
    const int level = atoi(argv[2]);
    if (!qk_isa_select(level)) { fprintf(stderr, "cross_check: level %d is not available here\n", level); return 2; }
    if (strcmp(argv[1], "panels") == 0) {
        if (!qk_panels_available()) { fprintf(stderr, "cross_check: no panels at %s\n", qk_isa_name(level)); return 2; }
        return panels();
    }
    return rows(level);
}
