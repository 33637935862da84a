// Imports every Node-side package entry, so that their published types are checked with
// skipLibCheck: false and without the DOM lib, and prints what it finds.
import { nativeMatMulAvailable } from '@vlm/native-matmul';
import { DataParallel } from '@vlm/data-parallel';
import { GatedCrossAttentionBlock } from '@vlm/gated-xattn';
import { QFormer } from '@vlm/qformer';
import { createDecoderLM, loadTokenizer } from '@vlm/frozen-loaders';
import { readHfCheckpointDir } from '@vlm/frozen-loaders/node';
import { Flamingo } from '@vlm/pipelines';
import { loadOpenFlamingo } from '@vlm/pipelines/node';
import { sampleScene } from '@vlm/shapeworld';

const found = [nativeMatMulAvailable(), typeof DataParallel.start, typeof GatedCrossAttentionBlock, typeof QFormer, typeof createDecoderLM, typeof loadTokenizer, typeof readHfCheckpointDir, typeof Flamingo, typeof loadOpenFlamingo, typeof sampleScene];
console.log(`every package imports: native matMul available: ${found[0]}; ${found.slice(1).join(', ')}`);
