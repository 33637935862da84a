import { Tokenizer } from '@huggingface/tokenizers';
import { configObject } from './config-reader';

/** Options of {@link loadTokenizer}. */
export interface LoadTokenizerOptions {
  /** `tokenizer_config.json` (object, text or bytes): special-token settings. Default: `{}`. */
  tokenizerConfig?: unknown;
  /**
   * Special tokens to add when the vocabulary lacks them, e.g. `['<image>', '<|endofchunk|>']`
   * (Flamingo) or `['<image>']` (BLIP-2): each gets the next free id and is never split or
   * normalised. Tokens that already exist keep their id.
   */
  addSpecialTokens?: string[];
}

/** Options of {@link LMTokenizer.encode}. */
export interface EncodeOptions {
  /** Apply the tokenizer's post-processor (e.g. LLaMA's BOS). Default: `true`. */
  addSpecialTokens?: boolean;
}

/** Options of {@link LMTokenizer.encodeBatch}. */
export interface EncodeBatchOptions extends EncodeOptions {
  /** Id of the padding token. Default: the tokenizer config's `pad_token`, else 0. */
  padTokenId?: number;
  /** Pad on the left (for generation, the default) or the right. */
  paddingSide?: 'left' | 'right';
}

/** A padded batch, ready to become int32 tensors. */
export interface EncodedBatch {
  /** `[batch, longest]`. */
  inputIds: number[][];
  /** `[batch, longest]`, 1 = real token, 0 = padding. */
  attentionMask: number[][];
}

interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** What {@link HfTokenizer.encode} returns (the fields used of `@huggingface/tokenizers`' `Encoding`). */
export interface HfEncoding {
  /** The token ids. */
  ids: number[];
  /** The token strings. */
  tokens: string[];
}

/**
 * The part of the `@huggingface/tokenizers` `Tokenizer` that {@link LMTokenizer} uses, declared
 * here so that these types do not depend on that package's (whose declarations do not resolve
 * under `moduleResolution: node16`).
 */
export interface HfTokenizer {
  /** Token ids and tokens of `text`. */
  encode(text: string, options?: { add_special_tokens?: boolean }): HfEncoding;
  /** The text of `ids`. */
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
  /** The id of one token, or `undefined`. */
  token_to_id(token: string): number | undefined;
  /** The token of one id, or `undefined`. */
  id_to_token(id: number): string | undefined;
  /** Token → id, with the added tokens when `withAddedTokens`. */
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
}

/**
 * A Hugging Face `tokenizer.json` tokenizer (BPE, WordPiece, Unigram, with their normalizers,
 * pre-tokenizers, post-processors and decoders), run by `@huggingface/tokenizers` offline from
 * the JSON object, with added special tokens and left-padded batches for generation.
 *
 * @example
 * ```ts
 * const tok = loadTokenizer(JSON.parse(readFileSync('tokenizer.json', 'utf8')), { addSpecialTokens: ['<image>', '<|endofchunk|>'] });
 * const ids = tok.encode('<image>A photo of a cat<|endofchunk|>'); // [50257, 32, 4862, 286, 257, 3797, 50258]
 * tok.decode(ids, { skipSpecialTokens: true }); // 'A photo of a cat'
 * ```
 */
export class LMTokenizer {
  /** The underlying `@huggingface/tokenizers` instance. */
  readonly tokenizer: HfTokenizer;
  /** Id of each added special token requested in {@link LoadTokenizerOptions.addSpecialTokens}. */
  readonly addedTokenIds: Readonly<Record<string, number>>;
  private readonly config: Record<string, unknown>;

  constructor(tokenizerJson: unknown, options: LoadTokenizerOptions = {}) {
    const json = structuredClone(configObject(tokenizerJson));
    if (typeof json.model !== 'object' || json.model === null) throw new Error("tokenizer.json: field 'model' must be an object");
    this.config = options.tokenizerConfig === undefined ? {} : configObject(options.tokenizerConfig);
    const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []) as AddedTokenJson[];
    const vocab = ((json.model as Record<string, unknown>).vocab ?? {}) as Record<string, number> | Array<[string, number]>;
    const known = new Map<string, number>(Array.isArray(vocab) ? vocab.map(([t], i) => [t, i] as [string, number]) : Object.entries(vocab));
    for (const t of added) known.set(t.content, t.id);
    // a loop, not Math.max(...ids): a spread of 128k–151k ids (Llama 3, Qwen) overflows the call stack
    let next = largestId(known.values()) + 1;
    const ids: Record<string, number> = {};
    for (const content of options.addSpecialTokens ?? []) {
      const existing = known.get(content);
      if (existing !== undefined) {
        ids[content] = existing;
        if (!added.some((t) => t.content === content)) {
          added.push({ id: existing, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
        }
        continue;
      }
      added.push({ id: next, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
      known.set(content, next);
      ids[content] = next++;
    }
    json.added_tokens = added;
    this.tokenizer = new Tokenizer(json, this.config);
    this.addedTokenIds = ids;
    this.vocabSize = largestId(this.tokenizer.get_vocab(true).values()) + 1;
  }

  /** Number of ids (model vocabulary plus added tokens, largest id + 1); size the LM's embeddings to at least this. */
  readonly vocabSize: number;

  /** Text → ids. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new Error(`encode: expected a string, got ${describe(text)}`);
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /** Text → token strings. */
  tokenize(text: string, options: EncodeOptions = {}): string[] {
    if (typeof text !== 'string') throw new Error(`tokenize: expected a string, got ${describe(text)}`);
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).tokens;
  }

  /**
   * Ids → text. `decode([])` is `''`; an id that is not an integer in `[0, vocabSize)` with a
   * token is an error (it would otherwise decode to nothing, silently).
   */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    if (!Array.isArray(ids)) throw new Error(`decode: expected an array of token ids, got ${describe(ids)}`);
    if (ids.length === 0) return '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.tokenizer.id_to_token(id) === undefined) {
        throw new Error(`decode: expected token ids that are integers in [0, ${this.vocabSize}) with a token in the vocabulary, got ${describe(id)} at index ${i}`);
      }
    }
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** A token's id, or `undefined`. */
  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** An id's token string, or `undefined`. */
  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /**
   * Encodes several texts and pads them to the longest (on the left by default, as generation
   * wants), with the attention mask.
   *
   * @example
   * ```ts
   * const { inputIds, attentionMask } = tok.encodeBatch(['hello world', 'hello'], { padTokenId: 0 });
   * attentionMask; // [[1, 1], [0, 1]]
   * ```
   */
  encodeBatch(texts: readonly string[], options: EncodeBatchOptions = {}): EncodedBatch {
    const rows = texts.map((t) => this.encode(t, options));
    const longest = rows.reduce((m, r) => Math.max(m, r.length), 0);
    const pad = options.padTokenId ?? this.configTokenId('pad_token') ?? 0;
    const left = (options.paddingSide ?? 'left') === 'left';
    const fill = (r: number[], v: number) => Array<number>(longest - r.length).fill(v);
    return {
      inputIds: rows.map((r) => (left ? [...fill(r, pad), ...r] : [...r, ...fill(r, pad)])),
      attentionMask: rows.map((r) => {
        const ones = Array<number>(r.length).fill(1);
        return left ? [...fill(r, 0), ...ones] : [...ones, ...fill(r, 0)];
      }),
    };
  }

  /** Id of a special token named in `tokenizer_config.json` (`bos_token`, `eos_token`, `pad_token`, …). */
  configTokenId(name: string): number | undefined {
    const v = this.config[name];
    const content = typeof v === 'string' ? v : typeof v === 'object' && v !== null ? (v as { content?: unknown }).content : undefined;
    return typeof content === 'string' ? this.tokenToId(content) : undefined;
  }
}

function largestId(ids: Iterable<number>): number {
  let largest = -1;
  for (const id of ids) if (id > largest) largest = id;
  return largest;
}

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `the string ${JSON.stringify(v.slice(0, 40))}` : `a value of type ${typeof v}`;
}

/**
 * Loads a Hugging Face `tokenizer.json` (object, text or bytes) with `@huggingface/tokenizers`,
 * adding special tokens; see {@link LMTokenizer}.
 *
 * @example
 * ```ts
 * const tok = loadTokenizer(tokenizerJson, { addSpecialTokens: ['<image>'] });
 * tok.addedTokenIds['<image>']; // e.g. 50265
 * ```
 */
export function loadTokenizer(tokenizerJson: unknown, options: LoadTokenizerOptions = {}): LMTokenizer {
  return new LMTokenizer(tokenizerJson, options);
}
