/** The encoder cut of the demo's contract: nsfwjs' MobileNetV2 at `block_6_expand_relu` (28×28×192), 4×4 average-pooled → 49 tokens × 192. */
export const ENCODER_CUT = { layer: 'block_6_expand_relu', pool: 4 } as const;
