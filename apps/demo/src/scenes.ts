import { seededRandom } from '@vlm/core';
import type { RawImage } from '@vlm/frozen-loaders';

/** The demo's data: scenes drawn in code, one coloured shape on a light background. */
export const COLORS = { red: [220, 40, 40], green: [40, 170, 60], blue: [40, 70, 220] } as const;
export const SHAPES = ['circle', 'square', 'triangle'] as const;

export type Color = keyof typeof COLORS;
export type Shape = (typeof SHAPES)[number];

/** A scene and its caption words. */
export interface Scene {
  image: RawImage;
  color: Color;
  shape: Shape;
}

/** Draws `shape` in `color` at a jittered position and size (RGB, `size`×`size`). */
export function drawScene(color: Color, shape: Shape, variant: number, size = 224): Scene {
  const data = new Uint8Array(size * size * 3).fill(235);
  const rand = seededRandom(variant * 7919 + SHAPES.indexOf(shape) * 131 + Object.keys(COLORS).indexOf(color));
  const r = size * (0.18 + 0.1 * rand());
  const cx = size / 2 + (rand() - 0.5) * size * 0.3;
  const cy = size / 2 + (rand() - 0.5) * size * 0.3;
  const inside = (x: number, y: number) => {
    const dx = x - cx;
    const dy = y - cy;
    if (shape === 'circle') return dx * dx + dy * dy <= r * r;
    if (shape === 'square') return Math.abs(dx) <= r * 0.85 && Math.abs(dy) <= r * 0.85;
    // upward triangle: apex at top, base at the bottom
    const t = (dy + r) / (2 * r);
    return t >= 0 && t <= 1 && Math.abs(dx) <= t * r;
  };
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (!inside(x, y)) continue;
      data.set(COLORS[color], (y * size + x) * 3);
    }
  }
  return { image: { data, width: size, height: size, channels: 3 }, color, shape };
}

/** Every colour × shape, `variants` times with different positions and sizes. */
export function allScenes(variants: number, offset = 0): Scene[] {
  const out: Scene[] = [];
  for (let v = 0; v < variants; v++) {
    for (const color of Object.keys(COLORS) as Color[]) for (const shape of SHAPES) out.push(drawScene(color, shape, v + offset));
  }
  return out;
}
