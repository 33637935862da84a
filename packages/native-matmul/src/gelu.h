#pragma once
#include <stddef.h>

// GELU, exact y = 0.5·x·(1 + erf(x/√2)) or the tanh form y = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))),
// and its gradient dx = dy·GELU'(x), elementwise over n floats; part `part` of `parts` takes one
// contiguous share.
typedef struct {
  const float *x, *dy; // dy: gradient only
  float *out;          // y, or dx
  size_t n;
  int tanh_form;       // 0: exact (erf), 1: the tanh approximation
} vlm_gelu_args;

void vlm_gelu_part(const vlm_gelu_args *g, int part, int parts);
void vlm_gelu_grad_part(const vlm_gelu_args *g, int part, int parts);
