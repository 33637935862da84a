/**
 * The Node-only part of `@vlm/frozen-loaders`: reading Hugging Face model folders from disk and
 * decoding PNG/JPEG bytes without a browser. Everything else (the loaders, preprocessing,
 * tokenizers) comes from the main entry, which imports nothing from Node and bundles for the
 * browser.
 *
 * ```ts
 * import { loadClipVisionModel, preprocessImages } from '@vlm/frozen-loaders';
 * import { decodeImage, readHfCheckpointDir } from '@vlm/frozen-loaders/node';
 * ```
 *
 * @module node
 */
export { readHfCheckpointDir } from '../vision/checkpoint-dir';
export { decodeImage } from './image-decode';
