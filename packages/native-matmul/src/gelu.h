#pragma once
#include <stddef.h>

// The exact GELU, y = 0.5·x·(1 + erf(x/√2)), and its gradient dx = dy·GELU'(x), elementwise
// over n floats; part `part` of `parts` takes one contiguous share.
typedef struct {
  const float *x, *dy; // dy: gradient only
  float *out;          // y, or dx
  size_t n;
} vlm_gelu_args;

void vlm_gelu_part(const vlm_gelu_args *g, int part, int parts);
void vlm_gelu_grad_part(const vlm_gelu_args *g, int part, int parts);
