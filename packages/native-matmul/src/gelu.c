// GELU and its gradient for TF.js's wasm and cpu backends, both forms: the exact one in the order
// of operations of @vlm/core's composed `gelu` (`(0.5·x)·(1 + erf(x·√½))`), the tanh form in that
// of its `(0.5·x)·(1 + tanh(√(2/π)·(x + 0.044715·x·(x·x))))`, so only erf or tanh itself differs
// from the stock kernels. erf, tanh and exp are written as branch-free polynomials the compiler
// vectorises (AVX-512, AVX2 or SSE2 clones picked at load); contraction into FMAs is off so that
// the vector body and the scalar tail round alike, whatever the split.
#include "gelu.h"
#include "vectorize.h"
#include <math.h>

// erf(x) as a rational function on [-4, 4] (Eigen's / XLA's float erf; |error| ≤ 5e-7 against
// the double erf), ±1 beyond, where float erf rounds to ±1 anyway.
static inline float erf_approx(float x) {
  x = x < -4.0f ? -4.0f : x > 4.0f ? 4.0f : x;
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * x2 + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return x * p / q;
}

// exp(x) for x ≤ 0: x = n·ln2 + r, |r| ≤ ln2/2, e^r by its Taylor series to r⁷ (relative error
// < 2e-7), 2^n put in the exponent bits. Below -87 it returns e^-87 (≈ 2e-38: the gradient's x·e^(-x²/2) is 0 to float precision there).
static inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float shifter = 12582912.0f; // 1.5·2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  union { int i; float f; } scale = {.i = ((int)n + 127) << 23};
  return p * scale.f;
}

// tanh(z): below |z| = 0.55 its Taylor series to z¹⁷ (the next term is under 3e-9 there), above
// it (1 − e^(−2|z|)) / (1 + e^(−2|z|)) with the sign of z, where the exp's error stays small
// against a result ≥ 0.5. Within 2 ulp of the double tanh, as libm's tanhf is.
static inline float tanh_approx(float z) {
  const float s = z * z;
  float p = 6404582.0f / 10854718875.0f;
  p = p * s + -929569.0f / 638512875.0f;
  p = p * s + 21844.0f / 6081075.0f;
  p = p * s + -1382.0f / 155925.0f;
  p = p * s + 62.0f / 2835.0f;
  p = p * s + -17.0f / 315.0f;
  p = p * s + 2.0f / 15.0f;
  p = p * s + -1.0f / 3.0f;
  const float series = z + z * (s * p);
  const float t = exp_nonpositive(-2.0f * fabsf(z));
  const float ratio = copysignf((1.0f - t) / (1.0f + t), z);
  return fabsf(z) < 0.55f ? series : ratio;
}

static const float SQRT_2_OVER_PI = 0.79788456080286536f, KAPPA = 0.044715f;

static void share(size_t n, int part, int parts, size_t *begin, size_t *end) {
  // Whole 64-float blocks per part (cache lines never shared between threads).
  const size_t blocks = (n + 63) / 64;
  *begin = blocks * part / parts * 64;
  *end = blocks * (part + 1) / parts * 64;
  if (*begin > n) *begin = n;
  if (*end > n) *end = n;
}

VLM_CLONES
static void gelu_range(const float *restrict x, float *restrict y, size_t begin, size_t end) {
  for (size_t i = begin; i < end; i++) {
    const float v = x[i];
    y[i] = (0.5f * v) * (1.0f + erf_approx(v * 0.70710678118654752f));
  }
}

VLM_CLONES
static void gelu_grad_range(const float *restrict x, const float *restrict dy, float *restrict dx, size_t begin, size_t end) {
  for (size_t i = begin; i < end; i++) {
    const float v = x[i];
    const float cdf = 0.5f * (1.0f + erf_approx(v * 0.70710678118654752f));
    const float pdf = exp_nonpositive(-0.5f * (v * v)) * 0.39894228040143268f; // e^(-x²/2)/√(2π)
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

VLM_CLONES
static void gelu_tanh_range(const float *restrict x, float *restrict y, size_t begin, size_t end) {
  for (size_t i = begin; i < end; i++) {
    const float v = x[i];
    const float inner = SQRT_2_OVER_PI * (v + KAPPA * (v * (v * v)));
    y[i] = (0.5f * v) * (1.0f + tanh_approx(inner));
  }
}

// d/dx of (0.5·x)·(1 + tanh(u)), u = √(2/π)·(x + κx³): 0.5·(1 + tanh u) + 0.5·x·(1 − tanh²u)·√(2/π)·(1 + 3κx²),
// in the order of PyTorch's GeluBackward (approximate='tanh').
VLM_CLONES
static void gelu_tanh_grad_range(const float *restrict x, const float *restrict dy, float *restrict dx, size_t begin, size_t end) {
  for (size_t i = begin; i < end; i++) {
    const float v = x[i];
    const float v2 = v * v;
    const float t = tanh_approx(SQRT_2_OVER_PI * (v + KAPPA * (v * v2)));
    const float left = 0.5f * v, right = 1.0f + t;
    const float inner_derivative = SQRT_2_OVER_PI * (1.0f + (3.0f * KAPPA) * v2);
    dx[i] = dy[i] * (0.5f * right + left * (1.0f - t * t) * inner_derivative);
  }
}

void vlm_gelu_part(const vlm_gelu_args *g, int part, int parts) {
  size_t begin, end;
  share(g->n, part, parts, &begin, &end);
  (g->tanh_form ? gelu_tanh_range : gelu_range)(g->x, g->out, begin, end);
}

void vlm_gelu_grad_part(const vlm_gelu_args *g, int part, int parts) {
  size_t begin, end;
  share(g->n, part, parts, &begin, &end);
  (g->tanh_form ? gelu_tanh_grad_range : gelu_grad_range)(g->x, g->dy, g->out, begin, end);
}
