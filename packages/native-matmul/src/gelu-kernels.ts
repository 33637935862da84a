import * as tf from '@tensorflow/tfjs-core';
import type { NativeBinding } from './binding';
import { checkFloat32 } from './kernel-inputs';
import type { KernelImpl, Storage } from './matmul-kernels';

/** `VlmGelu` (`@vlm/core`'s `GELU_KERNEL`): `{ x } → GELU(x)`, exact, multi-threaded. */
export function geluKernel(native: NativeBinding, storage: (backend: unknown) => Storage): KernelImpl {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    checkFloat32('VlmGelu', { x });
    const s = storage(args.backend);
    const n = tf.util.sizeFromShape(x.shape);
    return s.output(x.shape, (y, yOffset) => {
      if (n === 0) return;
      const [xm, xOffset] = s.locate(x);
      native.gelu(xm, xOffset, y, yOffset, n);
    });
  };
}

/** `VlmGeluGrad` (`@vlm/core`'s `GELU_GRAD_KERNEL`): `{ dy, x } → dy·GELU'(x)`, multi-threaded. */
export function geluGradKernel(native: NativeBinding, storage: (backend: unknown) => Storage): KernelImpl {
  return (args) => {
    const { dy, x } = args.inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
    checkFloat32('VlmGeluGrad', { x, dy });
    if (!tf.util.arraysEqual(dy.shape, x.shape)) throw new Error(`VlmGeluGrad: expected dy of x's shape [${x.shape}], got [${dy.shape}]`);
    const s = storage(args.backend);
    const n = tf.util.sizeFromShape(x.shape);
    return s.output(x.shape, (dx, dxOffset) => {
      if (n === 0) return;
      const [xm, xOffset] = s.locate(x);
      const [dym, dyOffset] = s.locate(dy);
      native.geluGrad(xm, xOffset, dym, dyOffset, dx, dxOffset, n);
    });
  };
}
