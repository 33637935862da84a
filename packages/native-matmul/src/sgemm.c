// Single-precision GEMM for the TF.js matMul kernels: C[b] = op(A[b]) · op(B[b]) (+ bias),
// op = optional transpose, row-major, any batch broadcasting given as batch strides.
//
// BLIS-style: B is packed into NR-wide column panels of KC rows, A into MR-tall row panels,
// and an MR×NR micro-kernel keeps the whole C tile in registers (AVX-512: 12×32 = 24 zmm
// accumulators; AVX2: 6×16 = 12 ymm; portable C elsewhere). Packing is where the transposes
// are absorbed, so every combination of flags runs at the same speed.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "sgemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VLM_X86 1
#endif

// Block sizes (floats): KC·NC·4 B ≈ 0.7 MB of packed B stays in L2, MC·KC of packed A in L3.
#ifndef VLM_KC
#define VLM_KC 384
#define VLM_MC 3072
#define VLM_NC 480
#endif
enum { KC = VLM_KC, MC = VLM_MC, NC = VLM_NC, MR_MAX = 12, NR_MAX = 32 };

typedef void (*kernel_fn)(int kc, const float *a, const float *b, float *c, int ldc, int accumulate);

#ifdef VLM_X86
__attribute__((target("avx512f")))
static void kernel_avx512(int kc, const float *a, const float *b, float *c, int ldc, int accumulate) {
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00,
         c90 = c00, c91 = c00, ca0 = c00, ca1 = c00, cb0 = c00, cb1 = c00;
  for (int p = 0; p < kc; p++, a += 12, b += 32) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    __m512 x;
#define ROW(i, r0, r1) x = _mm512_set1_ps(a[i]); r0 = _mm512_fmadd_ps(x, b0, r0); r1 = _mm512_fmadd_ps(x, b1, r1);
    ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
    ROW(6, c60, c61) ROW(7, c70, c71) ROW(8, c80, c81) ROW(9, c90, c91) ROW(10, ca0, ca1) ROW(11, cb0, cb1)
#undef ROW
  }
#define STORE(i, r0, r1)                                                              \
  if (accumulate) {                                                                  \
    r0 = _mm512_add_ps(r0, _mm512_loadu_ps(c + (i) * ldc));                          \
    r1 = _mm512_add_ps(r1, _mm512_loadu_ps(c + (i) * ldc + 16));                     \
  }                                                                                  \
  _mm512_storeu_ps(c + (i) * ldc, r0);                                               \
  _mm512_storeu_ps(c + (i) * ldc + 16, r1);
  STORE(0, c00, c01) STORE(1, c10, c11) STORE(2, c20, c21) STORE(3, c30, c31) STORE(4, c40, c41) STORE(5, c50, c51)
  STORE(6, c60, c61) STORE(7, c70, c71) STORE(8, c80, c81) STORE(9, c90, c91) STORE(10, ca0, ca1) STORE(11, cb0, cb1)
#undef STORE
}

__attribute__((target("avx2,fma")))
static void kernel_avx2(int kc, const float *a, const float *b, float *c, int ldc, int accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int p = 0; p < kc; p++, a += 6, b += 16) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 x;
#define ROW(i, r0, r1) x = _mm256_broadcast_ss(a + i); r0 = _mm256_fmadd_ps(x, b0, r0); r1 = _mm256_fmadd_ps(x, b1, r1);
    ROW(0, c00, c01) ROW(1, c10, c11) ROW(2, c20, c21) ROW(3, c30, c31) ROW(4, c40, c41) ROW(5, c50, c51)
#undef ROW
  }
#define STORE(i, r0, r1)                                                              \
  if (accumulate) {                                                                  \
    r0 = _mm256_add_ps(r0, _mm256_loadu_ps(c + (i) * ldc));                          \
    r1 = _mm256_add_ps(r1, _mm256_loadu_ps(c + (i) * ldc + 8));                      \
  }                                                                                  \
  _mm256_storeu_ps(c + (i) * ldc, r0);                                               \
  _mm256_storeu_ps(c + (i) * ldc + 8, r1);
  STORE(0, c00, c01) STORE(1, c10, c11) STORE(2, c20, c21) STORE(3, c30, c31) STORE(4, c40, c41) STORE(5, c50, c51)
#undef STORE
}
#endif

// Portable 4×16 tile; compilers vectorise the inner loop (NEON on arm64).
static void kernel_generic(int kc, const float *a, const float *b, float *c, int ldc, int accumulate) {
  float t[4][16] = {{0}};
  for (int p = 0; p < kc; p++, a += 4, b += 16)
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 16; j++) t[i][j] += a[i] * b[j];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 16; j++) c[i * ldc + j] = accumulate ? c[i * ldc + j] + t[i][j] : t[i][j];
}

static kernel_fn kernel;
static int MR, NR;

const char *vlm_sgemm_init(void) {
#ifdef VLM_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) { kernel = kernel_avx512; MR = 12; NR = 32; return "avx512"; }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { kernel = kernel_avx2; MR = 6; NR = 16; return "avx2"; }
#endif
  kernel = kernel_generic; MR = 4; NR = 16;
  return "generic";
}

// op(A)[i][p] of a row-major A: [M,K] (lda = K) or, transposed, [K,M] (lda = M).
static inline float at(const float *a, int lda, int trans, int i, int p) { return trans ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]; }

// A block (mc × kc) into MR-tall panels: panel r holds rows r·MR…, column-interleaved; zero-padded.
static void pack_a(const float *a, int lda, int trans, int i0, int p0, int mc, int kc, float *dst) {
  for (int r = 0; r < mc; r += MR) {
    const int m = mc - r < MR ? mc - r : MR;
    if (!trans) {
      for (int i = 0; i < m; i++) {
        const float *src = a + (size_t)(i0 + r + i) * lda + p0;
        for (int p = 0; p < kc; p++) dst[p * MR + i] = src[p];
      }
    } else {
      for (int p = 0; p < kc; p++) memcpy(dst + p * MR, a + (size_t)(p0 + p) * lda + i0 + r, m * sizeof(float));
    }
    if (m < MR) for (int p = 0; p < kc; p++) memset(dst + p * MR + m, 0, (MR - m) * sizeof(float));
    dst += (size_t)MR * kc;
  }
}

// B block (kc × nc) into NR-wide panels, row-interleaved; zero-padded. B is [K,N] (ldb = N) or,
// transposed, [N,K] (ldb = K).
static void pack_b(const float *b, int ldb, int trans, int p0, int j0, int kc, int nc, float *dst) {
  for (int s = 0; s < nc; s += NR) {
    const int n = nc - s < NR ? nc - s : NR;
    if (!trans) {
      for (int p = 0; p < kc; p++) {
        memcpy(dst + p * NR, b + (size_t)(p0 + p) * ldb + j0 + s, n * sizeof(float));
        if (n < NR) memset(dst + p * NR + n, 0, (NR - n) * sizeof(float));
      }
    } else {
      for (int j = 0; j < n; j++) {
        const float *src = b + (size_t)(j0 + s + j) * ldb + p0;
        for (int p = 0; p < kc; p++) dst[p * NR + j] = src[p];
      }
      if (n < NR) for (int p = 0; p < kc; p++) memset(dst + p * NR + n, 0, (NR - n) * sizeof(float));
    }
    dst += (size_t)NR * kc;
  }
}

// One thread's share: rows [m0, m1) × columns [n0, n1) of one batch entry. As in BLIS with the
// roles of A and B swapped (the micro-kernel's vector dimension is N): a packed A block (MC×KC)
// sits in L3, a packed B block (KC×NC) in L2, one A micro-panel (MR×KC) in L1 while the B
// micro-panels stream past it.
static void gemm_block(const vlm_sgemm_args *g, const float *a, const float *b, float *c, int m0, int m1, int n0, int n1,
                       float *ap, float *bp) {
  const int lda = g->trans_a ? g->m : g->k, ldb = g->trans_b ? g->k : g->n, ldc = g->n;
  float tile[MR_MAX * NR_MAX];
  for (int ic = m0; ic < m1; ic += MC) {
    const int mc = m1 - ic < MC ? m1 - ic : MC;
    for (int pc = 0; pc < g->k || pc == 0; pc += KC) {
      const int kc = g->k - pc < KC ? g->k - pc : KC;
      pack_a(a, lda, g->trans_a, ic, pc, mc, kc, ap);
      for (int jc = n0; jc < n1; jc += NC) {
        const int nc = n1 - jc < NC ? n1 - jc : NC;
        pack_b(b, ldb, g->trans_b, pc, jc, kc, nc, bp);
        for (int ir = 0; ir < mc; ir += MR) {
          const int m = mc - ir < MR ? mc - ir : MR;
          for (int jr = 0; jr < nc; jr += NR) {
            const int n = nc - jr < NR ? nc - jr : NR;
            float *cij = c + (size_t)(ic + ir) * ldc + jc + jr;
            const float *apan = ap + (size_t)ir * kc, *bpan = bp + (size_t)jr * kc;
            if (m == MR && n == NR) {
              kernel(kc, apan, bpan, cij, ldc, pc > 0);
            } else {
              kernel(kc, apan, bpan, tile, NR, 0);
              for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) cij[(size_t)i * ldc + j] = pc > 0 ? cij[(size_t)i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
            }
          }
        }
      }
      if (g->k == 0) break;
    }
    if (g->bias)
      for (int i = ic; i < ic + mc; i++) {
        float *row = c + (size_t)i * ldc;
        for (int j = n0; j < n1; j++) row[j] += g->bias[j];
      }
  }
}

// Products with few rows of op(A), as in a decode step (m = 1: one token against every weight):
// packing would copy all of B per call for one row of output, and the micro-kernel would compute
// MR - m rows of padding, so a decode step ran at a fraction of the memory bandwidth. Here B is
// streamed once, straight from where it is: rows of C accumulate rows of B ([K,N]), or each
// entry of C is a dot product with a row of B (transposed, [N,K]). op(A)'s rows are first copied
// contiguous into the workspace (at most SMALL_M·k floats).
enum { SMALL_M = 4, NB = 512 };
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));

static inline float dot(const float *x, const float *y, int k) {
  v8 s0 = {0}, s1 = {0};
  int p = 0;
  for (; p + 16 <= k; p += 16) {
    s0 += *(const v8u *)(x + p) * *(const v8u *)(y + p);
    s1 += *(const v8u *)(x + p + 8) * *(const v8u *)(y + p + 8);
  }
  for (; p + 8 <= k; p += 8) s0 += *(const v8u *)(x + p) * *(const v8u *)(y + p);
  s0 += s1;
  float s = ((s0[0] + s0[4]) + (s0[1] + s0[5])) + ((s0[2] + s0[6]) + (s0[3] + s0[7]));
  for (; p < k; p++) s += x[p] * y[p];
  return s;
}

// Columns [n0, n1) of one batch entry with m <= SMALL_M; `rows` holds op(A) as m contiguous rows.
// No multiply-add contraction here: the vectorised loop and its scalar peel/tail would otherwise
// round differently (fused vs not), and which columns fall in the peel depends on the address of
// C, so the same product gave results differing in the last bit from call to call.
#if defined(VLM_X86) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "arch=haswell", "default"), optimize("fp-contract=off")))
#elif defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("fp-contract=off")))
#endif
static void small_m_block(const vlm_sgemm_args *g, const float *rows, const float *b, float *c, int n0, int n1) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  const int m = g->m, k = g->k, n = g->n;
  if (g->trans_b) {
    for (int j = n0; j < n1; j++) {
      const float *bj = b + (size_t)j * k;
      for (int i = 0; i < m; i++) c[(size_t)i * n + j] = dot(rows + (size_t)i * k, bj, k) + (g->bias ? g->bias[j] : 0.0f);
    }
    return;
  }
  for (int j0 = n0; j0 < n1; j0 += NB) {
    const int nb = n1 - j0 < NB ? n1 - j0 : NB;
    for (int i = 0; i < m; i++) {
      float *ci = c + (size_t)i * n + j0;
      if (g->bias) memcpy(ci, g->bias + j0, nb * sizeof(float));
      else memset(ci, 0, nb * sizeof(float));
    }
    for (int p = 0; p < k; p++) {
      const float *bp = b + (size_t)p * n + j0;
      for (int i = 0; i < m; i++) {
        const float s = rows[(size_t)i * k + p];
        float *restrict ci = c + (size_t)i * n + j0;
        for (int j = 0; j < nb; j++) ci[j] += s * bp[j];
      }
    }
  }
}

// Whether a product takes small_m_block: few rows, and op(A)'s rows fit the workspace.
static int small_m(const vlm_sgemm_args *g) { return g->m <= SMALL_M && (size_t)g->m * g->k <= (size_t)(MC + MR_MAX) * KC; }

// op(A)'s m rows, contiguous, into `rows`.
static void copy_rows(const vlm_sgemm_args *g, const float *a, float *rows) {
  for (int i = 0; i < g->m; i++)
    for (int p = 0; p < g->k; p++) rows[(size_t)i * g->k + p] = at(a, g->trans_a ? g->m : g->k, g->trans_a, i, p);
}

size_t vlm_sgemm_workspace_floats(void) { return (size_t)(MC + MR_MAX) * KC + (size_t)KC * (NC + NR_MAX) + 64; }

void vlm_sgemm_part(const vlm_sgemm_args *g, int part, int parts, float *workspace) {
  float *ap = workspace, *bp = workspace + (size_t)(MC + MR_MAX) * KC;
  const int batch = g->batch;
  // Many small products (attention heads): split the batch. Otherwise split the longer of M, N
  // in whole tiles, so no thread packs the other thread's panels.
  const int few = small_m(g);
  if (batch >= 2 * parts || parts == 1) {
    const int b0 = (int)((long)batch * part / parts), b1 = (int)((long)batch * (part + 1) / parts);
    for (int i = b0; i < b1; i++) {
      const float *a = g->a + (size_t)i * g->stride_a, *b = g->b + (size_t)i * g->stride_b;
      float *c = g->c + (size_t)i * g->m * g->n;
      if (few) {
        copy_rows(g, a, ap);
        small_m_block(g, ap, b, c, 0, g->n);
      } else {
        gemm_block(g, a, b, c, 0, g->m, 0, g->n, ap, bp);
      }
    }
    return;
  }
  const int split_n = few || g->n >= g->m;
  const int len = split_n ? g->n : g->m, unit = split_n ? NR : MR;
  const int tiles = (len + unit - 1) / unit;
  const int t0 = (int)((long)tiles * part / parts) * unit, t1 = (int)((long)tiles * (part + 1) / parts) * unit;
  const int lo = t0, hi = t1 < len ? t1 : len;
  if (lo >= hi) return;
  for (int i = 0; i < batch; i++) {
    const float *a = g->a + (size_t)i * g->stride_a, *b = g->b + (size_t)i * g->stride_b;
    float *c = g->c + (size_t)i * g->m * g->n;
    if (few) {
      copy_rows(g, a, ap);
      small_m_block(g, ap, b, c, lo, hi);
    } else if (split_n) gemm_block(g, a, b, c, 0, g->m, lo, hi, ap, bp);
    else gemm_block(g, a, b, c, lo, hi, 0, g->n, ap, bp);
  }
}
