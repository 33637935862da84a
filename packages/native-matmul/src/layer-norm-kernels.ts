import * as tf from '@tensorflow/tfjs-core';
import type { NativeBinding } from './binding';
import { checkFloat32, checkShape } from './kernel-inputs';
import type { KernelImpl, Storage } from './matmul-kernels';

/** `[rows, width]` of `x` (LayerNorm over the last axis), after checking `x` has an axis. */
function rowsWidth(kernel: string, x: tf.TensorInfo): [number, number] {
  if (x.shape.length === 0) throw new Error(`${kernel}: expected x with at least one axis (normalised over the last), got a scalar`);
  const width = x.shape[x.shape.length - 1]!;
  return [tf.util.sizeFromShape(x.shape.slice(0, -1)), width];
}

/**
 * `VlmLayerNorm` (`@vlm/core`'s `LAYER_NORM_KERNEL`): `{ x, gamma?, beta? }`, `{ eps }` →
 * `[y, mean, rstd]`, LayerNorm over the last axis, multi-threaded over the rows.
 */
export function layerNormKernel(native: NativeBinding, storage: (backend: unknown) => Storage): KernelImpl {
  return ((args: Parameters<KernelImpl>[0]) => {
    const { x, gamma, beta } = args.inputs as { x: tf.TensorInfo; gamma?: tf.TensorInfo; beta?: tf.TensorInfo };
    const { eps } = (args.attrs ?? {}) as { eps?: number };
    checkFloat32('VlmLayerNorm', { x, gamma, beta });
    const [rows, width] = rowsWidth('VlmLayerNorm', x);
    if (!gamma !== !beta) throw new Error(`VlmLayerNorm: expected gamma and beta both or neither, got ${gamma ? 'gamma' : 'beta'} alone`);
    if (gamma) checkShape('VlmLayerNorm', 'gamma', gamma, [width]);
    if (beta) checkShape('VlmLayerNorm', 'beta', beta, [width]);
    if (typeof eps !== 'number' || !(eps >= 0)) throw new Error(`VlmLayerNorm: expected attr eps ≥ 0, got ${eps}`);
    const s = storage(args.backend);
    const stats = x.shape.slice(0, -1);
    return s.outputs([x.shape, stats, stats], ([[y, yOffset], [mean, meanOffset], [rstd, rstdOffset]]) => {
      const [xm, xOffset] = s.locate(x);
      const [gm, gOffset] = gamma ? s.locate(gamma) : [null, 0];
      const [bm, bOffset] = beta ? s.locate(beta) : [null, 0];
      native.layerNorm(xm, xOffset, gm, gOffset, bm, bOffset, y!, yOffset!, mean!, meanOffset!, rstd!, rstdOffset!, rows, width, eps);
    });
  }) as unknown as KernelImpl;
}

/** The inputs every LayerNorm gradient kernel takes, checked against `x`'s shape. */
function gradInputs(kernel: string, inputs: tf.NamedTensorInfoMap) {
  const { dy, x, mean, rstd, gamma } = inputs as Record<string, tf.TensorInfo | undefined>;
  if (!dy || !x || !mean || !rstd) throw new Error(`${kernel}: expected inputs dy, x, mean and rstd`);
  checkFloat32(kernel, { dy, x, mean, rstd, gamma });
  const [rows, width] = rowsWidth(kernel, x);
  checkShape(kernel, 'dy', dy, x.shape);
  checkShape(kernel, 'mean', mean, x.shape.slice(0, -1));
  checkShape(kernel, 'rstd', rstd, x.shape.slice(0, -1));
  if (gamma) checkShape(kernel, 'gamma', gamma, [width]);
  return { dy, x, mean, rstd, gamma, rows, width };
}

/** `VlmLayerNormGrad` (`@vlm/core`'s `LAYER_NORM_GRAD_KERNEL`): `{ dy, x, mean, rstd, gamma? } → dx`. */
export function layerNormGradKernel(native: NativeBinding, storage: (backend: unknown) => Storage): KernelImpl {
  return (args) => {
    const { dy, x, mean, rstd, gamma, rows, width } = gradInputs('VlmLayerNormGrad', args.inputs);
    const s = storage(args.backend);
    return s.output(x.shape, (dx, dxOffset) => {
      const [dym, dyOffset] = s.locate(dy);
      const [xm, xOffset] = s.locate(x);
      const [gm, gOffset] = gamma ? s.locate(gamma) : [null, 0];
      const [mm, mOffset] = s.locate(mean);
      const [rm, rOffset] = s.locate(rstd);
      native.layerNormGrad(dym, dyOffset, xm, xOffset, gm, gOffset, mm, mOffset, rm, rOffset, dx, dxOffset, rows, width);
    });
  };
}

/**
 * `VlmLayerNormParamGrad` (`@vlm/core`'s `LAYER_NORM_PARAM_GRAD_KERNEL`):
 * `{ dy, x, mean, rstd } → [dgamma, dbeta]`, multi-threaded over the columns.
 */
export function layerNormParamGradKernel(native: NativeBinding, storage: (backend: unknown) => Storage): KernelImpl {
  return ((args: Parameters<KernelImpl>[0]) => {
    const { dy, x, mean, rstd, rows, width } = gradInputs('VlmLayerNormParamGrad', args.inputs);
    if (args.inputs['gamma']) throw new Error('VlmLayerNormParamGrad: expected inputs dy, x, mean and rstd, got gamma too');
    const s = storage(args.backend);
    return s.outputs([[width], [width]], ([[dg, dgOffset], [db, dbOffset]]) => {
      const [dym, dyOffset] = s.locate(dy);
      const [xm, xOffset] = s.locate(x);
      const [mm, mOffset] = s.locate(mean);
      const [rm, rOffset] = s.locate(rstd);
      native.layerNormParamGrad(dym, dyOffset, xm, xOffset, mm, mOffset, rm, rOffset, dg!, dgOffset!, db!, dbOffset!, rows, width);
    });
  }) as unknown as KernelImpl;
}
