import type { GoldenAdapter } from '../golden-case';
import { qformerAdapters } from './qformer';
import { seedAdapters } from './seed';
import { flamingoAdapters } from './flamingo';
import { visionAdapters } from './vision';
import { lmAdapters } from './lm';
import { flamingoE2eAdapters } from './flamingo-e2e';
import { blip2E2eAdapters } from './blip2-e2e';
import { trainAdapters } from './train';

/**
 * Which adapter runs a case, by the module name in its sidecar (`module`, or `case.hf_class`
 * for backbone and whole-model cases, or `flamingo.class` for the OpenFlamingo end-to-end
 * cases). A case whose module is not listed here FAILS by name.
 */
export const adapters: Record<string, GoldenAdapter> = {
  ...qformerAdapters,
  ...seedAdapters,
  ...flamingoAdapters,
  ...visionAdapters,
  ...lmAdapters,
  ...flamingoE2eAdapters,
  ...blip2E2eAdapters,
  ...trainAdapters,
};
