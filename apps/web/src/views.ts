// Drawing: world images on canvases, a picked image fitted to the canvas, the loss curve.
import type { SceneImage } from '@vlm/shapeworld';

/** Draws an RGB image at its size. */
export function drawImage(canvas: HTMLCanvasElement, image: SceneImage): void {
  canvas.width = image.width;
  canvas.height = image.height;
  const rgba = new ImageData(image.width, image.height);
  for (let i = 0, j = 0; i < image.data.length; i += 3, j += 4) {
    rgba.data[j] = image.data[i]!;
    rgba.data[j + 1] = image.data[i + 1]!;
    rgba.data[j + 2] = image.data[i + 2]!;
    rgba.data[j + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(rgba, 0, 0);
}

/** Draws `bitmap` centre-cropped to fill a 224×224 canvas. */
export function fitToCanvas(canvas: HTMLCanvasElement, bitmap: ImageBitmap): void {
  canvas.width = 224;
  canvas.height = 224;
  const s = Math.min(bitmap.width, bitmap.height);
  canvas.getContext('2d')!.drawImage(bitmap, (bitmap.width - s) / 2, (bitmap.height - s) / 2, s, s, 0, 0, 224, 224);
}

/** The loss curve as an SVG polyline (x: step out of `total`). */
export function drawLossCurve(svg: SVGSVGElement, losses: number[], total: number): void {
  const w = 320;
  const h = 140;
  const pad = 24;
  if (losses.length === 0) {
    svg.innerHTML = '';
    return;
  }
  const max = Math.max(...losses);
  const min = Math.min(...losses, 0);
  const x = (i: number) => pad + ((w - pad - 4) * (i + 1)) / Math.max(1, total);
  const y = (v: number) => 4 + (h - pad - 4) * (1 - (v - min) / Math.max(1e-9, max - min));
  const pts = losses.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  svg.innerHTML =
    `<line x1="${pad}" y1="${h - pad}" x2="${w}" y2="${h - pad}" stroke="#999"/><line x1="${pad}" y1="0" x2="${pad}" y2="${h - pad}" stroke="#999"/>` +
    `<text x="2" y="12" font-size="10">${max.toFixed(2)}</text><text x="2" y="${h - pad}" font-size="10">${min.toFixed(2)}</text>` +
    `<text x="${w - 60}" y="${h - 8}" font-size="10">step ${losses.length}/${total}</text>` +
    `<polyline fill="none" stroke="#36c" stroke-width="2" points="${pts}"/>`;
}
