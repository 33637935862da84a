/**
 * `@vlm/shapeworld`: a seeded procedural image world for vision-language bridges — 224×224
 * scenes of coloured shapes drawn by a pure-TypeScript rasteriser, with captions,
 * question/answer pairs, interleaved few-shot episodes, generalisation splits, PNG bytes and
 * the world's text for pretraining a small frozen LM. Browser-safe; file I/O and the committed
 * LM's files are in `@vlm/shapeworld/node`.
 *
 * @module
 */
export * from './vocabulary';
export * from './random';
export * from './scene';
export * from './rasterise';
export * from './captions';
export * from './questions';
export * from './splits';
export * from './episodes';
export * from './text-corpus';
export * from './tokenizer-json';
export * from './image-tensor';
export * from './png';
