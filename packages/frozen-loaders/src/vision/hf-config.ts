/**
 * Reads fields of a Hugging Face `config.json` (or an open_clip model config) with errors that
 * name the field, its value and what is supported.
 *
 * @example
 * ```ts
 * const r = new VisionConfigReader(JSON.parse(configJson), 'CLIPVisionConfig');
 * const width = r.int('hidden_size');              // throws "CLIPVisionConfig: field 'hidden_size' ..." if absent
 * const eps = r.number('layer_norm_eps', 1e-5);    // default when absent
 * r.oneOf('hidden_act', ['quick_gelu', 'gelu'], 'quick_gelu');
 * ```
 */
export class VisionConfigReader {
  constructor(
    /** The parsed JSON object. */
    readonly raw: Record<string, unknown>,
    /** How errors name the config, e.g. `'CLIPVisionConfig'` or `'open_clip vision_cfg'`. */
    readonly what: string,
  ) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new Error(`${what}: expected a JSON object, got ${describe(raw)}`);
    }
  }

  /** Whether the field is present and not `null`. */
  has(field: string): boolean {
    return this.raw[field] !== undefined && this.raw[field] !== null;
  }

  /** A finite number; `fallback` when absent (throws when absent and no fallback). */
  number(field: string, fallback?: number): number {
    const v = this.raw[field];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new Error(`${this.what}: required field '${field}' is missing`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${this.what}: field '${field}' must be a number, got ${describe(v)}`);
    return v;
  }

  /** A positive integer; `fallback` when absent. */
  int(field: string, fallback?: number): number {
    const v = this.number(field, fallback);
    if (!Number.isInteger(v) || v <= 0) throw new Error(`${this.what}: field '${field}' must be a positive integer, got ${describe(v)}`);
    return v;
  }

  /** A boolean; `fallback` when absent. */
  bool(field: string, fallback: boolean): boolean {
    const v = this.raw[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new Error(`${this.what}: field '${field}' must be true or false, got ${describe(v)}`);
    return v;
  }

  /** One of `supported`; `fallback` when absent. Any other value is an "unsupported value" error. */
  oneOf<T extends string>(field: string, supported: readonly T[], fallback?: T): T {
    const v = this.raw[field];
    if ((v === undefined || v === null) && fallback !== undefined) return fallback;
    if (!supported.includes(v as T)) throw unsupportedConfigValue(this.what, field, v, supported.map((s) => JSON.stringify(s)).join(', '));
    return v as T;
  }

  /**
   * Throws an "unsupported value" error when the field is present with a value other than one of
   * `allowed` (an absent or `null` field is fine). Used for features this port does not implement.
   */
  only(field: string, allowed: readonly unknown[], hint: string): void {
    const v = this.raw[field];
    if (v === undefined || v === null) return;
    if (!allowed.some((a) => a === v)) throw unsupportedConfigValue(this.what, field, v, hint);
  }

  /** A nested object (e.g. `vision_config`), or `undefined` when absent. */
  object(field: string): Record<string, unknown> | undefined {
    const v = this.raw[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${this.what}: field '${field}' must be an object, got ${describe(v)}`);
    return v as Record<string, unknown>;
  }
}

/** The error for a config field whose value this package does not support. */
export function unsupportedConfigValue(what: string, field: string, value: unknown, supported: string): Error {
  return new Error(`${what}: unsupported value ${describe(value)} for config field '${field}' (supported: ${supported})`);
}

/** Parses `config.json` text, or returns an already parsed object. */
export function parseConfigJson(config: string | Record<string, unknown>, what = 'config.json'): Record<string, unknown> {
  if (typeof config !== 'string') return config;
  try {
    return JSON.parse(config) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${what}: not valid JSON: ${(e as Error).message}`);
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
