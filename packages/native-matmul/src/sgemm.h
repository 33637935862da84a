#pragma once
#include <stddef.h>

// C[i] = op(A[i]) · op(B[i]) (+ bias) for i < batch; A[i] starts at a + i·stride_a (0 broadcasts).
typedef struct {
  const float *a, *b, *bias; // bias: [n] or NULL
  float *c;
  int batch, m, n, k, trans_a, trans_b;
  size_t stride_a, stride_b;
} vlm_sgemm_args;

const char *vlm_sgemm_init(void);            // picks the micro-kernel for this CPU; returns its name
size_t vlm_sgemm_workspace_floats(void);     // packing buffer one thread needs
void vlm_sgemm_part(const vlm_sgemm_args *g, int part, int parts, float *workspace);
