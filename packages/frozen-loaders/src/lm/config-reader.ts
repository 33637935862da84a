/**
 * Reads fields of a Hugging Face `config.json` object with type checks, so that every
 * problem is an `Error` that names the model type and the offending field.
 *
 * @example
 * ```ts
 * const r = new ConfigReader({ n_embd: 32, n_inner: null }, 'gpt2');
 * r.int('n_embd'); // 32
 * r.optionalInt('n_inner'); // undefined
 * r.int('n_head'); // throws: gpt2 config: field 'n_head' is required (an integer)
 * ```
 */
export class ConfigReader {
  constructor(
    /** The parsed `config.json` object whose fields are read. */
    readonly json: Record<string, unknown>,
    /** Model type named at the start of every error message (e.g. `gpt2`, `llama rope_scaling`). */
    readonly modelType: string,
  ) {}

  /** True when the field is present and not `null`. */
  has(field: string): boolean {
    return this.json[field] !== undefined && this.json[field] !== null;
  }

  /** A required positive integer (or non-negative with `min: 0`). */
  int(field: string, fallback?: number, min = 1): number {
    const v = this.has(field) ? this.json[field] : fallback;
    if (v === undefined) this.fail(field, 'is required (an integer)');
    if (!Number.isSafeInteger(v) || (v as number) < min) this.fail(field, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v as number;
  }

  /** An integer that may be absent or `null`. */
  optionalInt(field: string, min = 0): number | undefined {
    return this.has(field) ? this.int(field, undefined, min) : undefined;
  }

  /** A token id or list of token ids (`eos_token_id` may be either); `[]` when absent. */
  tokenIds(field: string): number[] {
    if (!this.has(field)) return [];
    const v = this.json[field];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) {
      this.fail(field, `must be a token id or a list of token ids, got ${JSON.stringify(v)}`);
    }
    return list as number[];
  }

  /** A required finite positive number. */
  num(field: string, fallback?: number): number {
    const v = this.has(field) ? this.json[field] : fallback;
    if (v === undefined) this.fail(field, 'is required (a number)');
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(field, `must be a positive number, got ${JSON.stringify(v)}`);
    return v as number;
  }

  /** A boolean with a default. */
  bool(field: string, fallback: boolean): boolean {
    const v = this.has(field) ? this.json[field] : fallback;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }

  /** A string that must be one of `allowed` (the error lists them). */
  oneOf<T extends string>(field: string, allowed: readonly T[], fallback?: T): T {
    const v = this.has(field) ? this.json[field] : fallback;
    if (v === undefined) this.fail(field, `is required (one of ${allowed.join(', ')})`);
    if (!allowed.includes(v as T)) this.fail(field, `has unsupported value ${JSON.stringify(v)} (supported: ${allowed.join(', ')})`);
    return v as T;
  }

  /** Throws unless the field is absent, `null` or equal to one of `accepted`. */
  onlyAllow(field: string, accepted: readonly unknown[], why: string): void {
    if (!this.has(field)) return;
    const v = this.json[field];
    if (!accepted.some((a) => a === v)) this.fail(field, `has unsupported value ${JSON.stringify(v)}: ${why}`);
  }

  /** Throws `Error("<modelType> config: field '<field>' <message>")`. */
  fail(field: string, message: string): never {
    throw new Error(`${this.modelType} config: field '${field}' ${message}`);
  }
}

/**
 * Parses `config.json` given as text, bytes or an already parsed object, and checks that it
 * is a JSON object.
 *
 * @example
 * ```ts
 * configObject('{"model_type": "gpt2"}'); // { model_type: 'gpt2' }
 * ```
 */
export function configObject(config: unknown): Record<string, unknown> {
  let v = config;
  if (v instanceof Uint8Array) v = new TextDecoder().decode(v);
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch (e) {
      throw new Error(`config.json is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('config.json must be a JSON object');
  return v as Record<string, unknown>;
}
