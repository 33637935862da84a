import type { GoldenAdapter } from '../golden-case';
import { qformerAdapters } from './qformer';
import { seedAdapters } from './seed';
import { flamingoAdapters } from './flamingo';
import { visionAdapters } from './vision';
import { lmAdapters } from './lm';

/**
 * Which adapter runs a case, by the module name in its sidecar (`module`, or `case.hf_class`
 * for backbone cases). A case whose module is not listed here FAILS by name.
 */
export const adapters: Record<string, GoldenAdapter> = {
  ...qformerAdapters,
  ...seedAdapters,
  ...flamingoAdapters,
  ...visionAdapters,
  ...lmAdapters,
};
