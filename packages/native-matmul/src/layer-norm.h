#pragma once
#include <stddef.h>

// LayerNorm over the last axis of a [rows, width] float matrix, as @vlm/core's LayerNorm
// (torch.nn.LayerNorm: biased variance), forward and backward. Rows are independent: part
// `part` of `parts` takes a contiguous share of rows (forward, dx) or of columns (dgamma,
// dbeta), so the result does not depend on the number of parts.
typedef struct {
  const float *x, *dy;        // dy: backward only
  const float *gamma, *beta;  // both or neither (no affine); beta: forward only
  float *y;                   // forward: the output; backward: dx
  float *mean, *rstd;         // [rows]: written by the forward, read by the backward
  float *dgamma, *dbeta;      // parameter gradients ([width] each)
  size_t rows, width;
  double eps;
} vlm_layer_norm_args;

void vlm_layer_norm_part(const vlm_layer_norm_args *g, int part, int parts);
void vlm_layer_norm_grad_part(const vlm_layer_norm_args *g, int part, int parts);       // dx
void vlm_layer_norm_param_grad_part(const vlm_layer_norm_args *g, int part, int parts); // dgamma, dbeta
