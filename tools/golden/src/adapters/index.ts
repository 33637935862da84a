import type { GoldenAdapter } from '../golden-case';

/**
 * Which adapter runs a case, by the module name in its sidecar (`module`, or `case.hf_class`
 * for backbone cases). A case whose module is not listed here FAILS by name.
 */
export const adapters: Record<string, GoldenAdapter> = {};
