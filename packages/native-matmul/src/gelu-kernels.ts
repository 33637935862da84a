import * as tf from '@tensorflow/tfjs-core';
import { GELU_GRAD_KERNEL, GELU_KERNEL, GELU_TANH_GRAD_KERNEL, GELU_TANH_KERNEL, type GeluApproximation } from '@vlm/core';
import type { NativeBinding } from './binding';
import { checkFloat32, checkShape } from './kernel-inputs';
import type { KernelImpl, Storage } from './matmul-kernels';

type Factory = (native: NativeBinding, storage: (backend: unknown) => Storage) => KernelImpl;

/** `{ x } → GELU(x)` of one form, multi-threaded. */
function forward(name: string, form: GeluApproximation): Factory {
  return (native, storage) => (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    checkFloat32(name, { x });
    const s = storage(args.backend);
    const n = tf.util.sizeFromShape(x.shape);
    return s.output(x.shape, (y, yOffset) => {
      if (n === 0) return;
      const [xm, xOffset] = s.locate(x);
      native.gelu(xm, xOffset, y, yOffset, n, form === 'tanh' ? 1 : 0);
    });
  };
}

/** `{ dy, x } → dy·GELU'(x)` of one form, multi-threaded. */
function gradient(name: string, form: GeluApproximation): Factory {
  return (native, storage) => (args) => {
    const { dy, x } = args.inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
    checkFloat32(name, { x, dy });
    checkShape(name, 'dy', dy, x.shape);
    const s = storage(args.backend);
    const n = tf.util.sizeFromShape(x.shape);
    return s.output(x.shape, (dx, dxOffset) => {
      if (n === 0) return;
      const [xm, xOffset] = s.locate(x);
      const [dym, dyOffset] = s.locate(dy);
      native.geluGrad(xm, xOffset, dym, dyOffset, dx, dxOffset, n, form === 'tanh' ? 1 : 0);
    });
  };
}

/** `VlmGelu` (`@vlm/core`'s `GELU_KERNEL`): `{ x } → GELU(x)`, exact. */
export const geluKernel = forward(GELU_KERNEL, 'none');
/** `VlmGeluGrad` (`@vlm/core`'s `GELU_GRAD_KERNEL`): `{ dy, x } → dy·GELU'(x)`, exact. */
export const geluGradKernel = gradient(GELU_GRAD_KERNEL, 'none');
/** `VlmGeluTanh` (`@vlm/core`'s `GELU_TANH_KERNEL`): `{ x } → GELU(x)`, the tanh form. */
export const geluTanhKernel = forward(GELU_TANH_KERNEL, 'tanh');
/** `VlmGeluTanhGrad` (`@vlm/core`'s `GELU_TANH_GRAD_KERNEL`): `{ dy, x } → dy·GELU'(x)`, the tanh form. */
export const geluTanhGradKernel = gradient(GELU_TANH_GRAD_KERNEL, 'tanh');
