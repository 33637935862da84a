// LayerNorm forward and backward for TF.js's wasm and cpu backends, in the order of operations
// of @vlm/core's composed LayerNorm, so that only the row statistics differ from the stock
// kernels (summed here in double, in 8 lanes and a fixed tree, whatever the row's address):
//   forward   x̂ = (x − mean)·rstd, rstd = 1/√(var + eps);  y = x̂·γ + β
//   backward  g = dy·γ;  dx = rstd·((g − mean(g)) − x̂·mean(g·x̂));  dγ = Σ_rows dy·x̂;  dβ = Σ_rows dy
// The forward also writes each row's mean and rstd (float32, what x̂ is computed from), which
// the backward reads instead of recomputing the statistics.
#include <math.h>
#include "layer-norm.h"
#include "vectorize.h"

static void share(size_t n, size_t unit, int part, int parts, size_t *begin, size_t *end) {
  const size_t blocks = (n + unit - 1) / unit;
  *begin = blocks * part / parts * unit;
  *end = blocks * (part + 1) / parts * unit;
  if (*begin > n) *begin = n;
  if (*end > n) *end = n;
}

static inline double tree(const double s[8]) { return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])); }

VLM_CLONES
static void forward_rows(const vlm_layer_norm_args *g, size_t r0, size_t r1) {
  const size_t w = g->width;
  for (size_t r = r0; r < r1; r++) {
    const float *restrict x = g->x + r * w;
    float *restrict y = g->y + r * w;
    double s[8] = {0};
    size_t j = 0;
    for (; j + 8 <= w; j += 8)
      for (int l = 0; l < 8; l++) s[l] += x[j + l];
    double sum = tree(s);
    for (; j < w; j++) sum += x[j];
    const double mean = sum / (double)w;
    double q[8] = {0};
    for (j = 0; j + 8 <= w; j += 8)
      for (int l = 0; l < 8; l++) {
        const double d = x[j + l] - mean;
        q[l] += d * d;
      }
    double sq = tree(q);
    for (; j < w; j++) sq += (x[j] - mean) * (x[j] - mean);
    const float mf = (float)mean, rf = (float)(1.0 / sqrt(sq / (double)w + g->eps));
    g->mean[r] = mf;
    g->rstd[r] = rf;
    if (g->gamma) {
      const float *restrict gamma = g->gamma, *restrict beta = g->beta;
      for (j = 0; j < w; j++) y[j] = ((x[j] - mf) * rf) * gamma[j] + beta[j];
    } else {
      for (j = 0; j < w; j++) y[j] = (x[j] - mf) * rf;
    }
  }
}

VLM_CLONES
static void grad_rows(const vlm_layer_norm_args *g, size_t r0, size_t r1) {
  const size_t w = g->width;
  const float *restrict gamma = g->gamma;
  for (size_t r = r0; r < r1; r++) {
    const float *restrict x = g->x + r * w, *restrict dy = g->dy + r * w;
    float *restrict dx = g->y + r * w;
    const float mf = g->mean[r], rf = g->rstd[r];
    double s1[8] = {0}, s2[8] = {0};
    size_t j = 0;
    for (; j + 8 <= w; j += 8)
      for (int l = 0; l < 8; l++) {
        const float gj = gamma ? dy[j + l] * gamma[j + l] : dy[j + l];
        const float xh = (x[j + l] - mf) * rf;
        s1[l] += gj;
        s2[l] += gj * xh;
      }
    double sum1 = tree(s1), sum2 = tree(s2);
    for (; j < w; j++) {
      const float gj = gamma ? dy[j] * gamma[j] : dy[j];
      const float xh = (x[j] - mf) * rf;
      sum1 += gj;
      sum2 += gj * xh;
    }
    const float a = (float)(sum1 / (double)w), b = (float)(sum2 / (double)w);
    for (j = 0; j < w; j++) {
      const float gj = gamma ? dy[j] * gamma[j] : dy[j];
      const float xh = (x[j] - mf) * rf;
      dx[j] = rf * ((gj - a) - xh * b);
    }
  }
}

enum { TILE = 256 };

VLM_CLONES
static void param_grad_columns(const vlm_layer_norm_args *g, size_t c0, size_t c1) {
  const size_t w = g->width;
  for (size_t t = c0; t < c1; t += TILE) {
    const size_t n = c1 - t < TILE ? c1 - t : TILE;
    double ag[TILE] = {0}, ab[TILE] = {0};
    for (size_t r = 0; r < g->rows; r++) {
      const float *restrict x = g->x + r * w + t, *restrict dy = g->dy + r * w + t;
      const float mf = g->mean[r], rf = g->rstd[r];
      for (size_t j = 0; j < n; j++) {
        ag[j] += dy[j] * ((x[j] - mf) * rf);
        ab[j] += dy[j];
      }
    }
    for (size_t j = 0; j < n; j++) {
      g->dgamma[t + j] = (float)ag[j];
      g->dbeta[t + j] = (float)ab[j];
    }
  }
}

void vlm_layer_norm_part(const vlm_layer_norm_args *g, int part, int parts) {
  size_t begin, end;
  share(g->rows, 1, part, parts, &begin, &end);
  forward_rows(g, begin, end);
}

void vlm_layer_norm_grad_part(const vlm_layer_norm_args *g, int part, int parts) {
  size_t begin, end;
  share(g->rows, 1, part, parts, &begin, &end);
  grad_rows(g, begin, end);
}

void vlm_layer_norm_param_grad_part(const vlm_layer_norm_args *g, int part, int parts) {
  size_t begin, end;
  share(g->width, 64, part, parts, &begin, &end); // whole cache lines of dγ, dβ per part
  param_grad_columns(g, begin, end);
}
