import { COLOURS, NUMBER_WORDS, POSITIONS, SHAPES, SIZES } from './vocabulary';

/** The special tokens of the world's tokenizer, in id order from 0. */
export const SPECIAL_TOKENS = {
  /** Padding (id 0). */
  pad: '<pad>',
  /** Unknown word (id 1). */
  unk: '<unk>',
  /** Beginning of a document (id 2); the tokenizer's post-processor puts it first. */
  bos: '<s>',
  /** End of a document (id 3). */
  eos: '</s>',
  /** An image's place in the text (id 4). */
  image: '<image>',
  /** End of an image's chunk of text (id 5). */
  endOfChunk: '<|endofchunk|>',
} as const;

/** Every word (and punctuation token) the world's text uses, after the special tokens, in id order. */
export const WORDS: readonly string[] = [
  ...new Set([
    ...COLOURS,
    ...SHAPES,
    ...SIZES,
    ...POSITIONS.flatMap((p) => p.split(' ')),
    'middle',
    ...NUMBER_WORDS,
    'a', 'an', 'the', 'on', 'at', 'in', 'corner', 'there', 'is', 'are', 'shapes', 'shape', 'one', 'above', 'below', 'to', 'of',
    'and', 'picture', 'shows', 'image', 'with', 'what', 'colour', 'size', 'where', 'how', 'many', 'yes', 'no', 'question',
    'answer', ':', ',', '?',
  ]),
];

/**
 * The world's Hugging Face `tokenizer.json` (as an object): a word-level vocabulary (the
 * WordPiece model with whole words only, which `@huggingface/tokenizers` runs; unknown words
 * become `<unk>`), lowercase, whitespace/punctuation pre-tokenizer, the special tokens as added
 * tokens, and a post-processor that puts `<s>` (BOS) first. Load it with `@vlm/frozen-loaders`'
 * `loadTokenizer`.
 *
 * @example
 * ```ts
 * const tok = loadTokenizer(shapeWorldTokenizerJson());
 * tok.tokenize('<image> a small red'); // ['<s>', '<image>', 'a', 'small', 'red']
 * ```
 */
export function shapeWorldTokenizerJson(): Record<string, unknown> {
  const specials = Object.values(SPECIAL_TOKENS);
  const vocab = Object.fromEntries([...specials, ...WORDS].map((w, i) => [w, i]));
  const bosId = vocab[SPECIAL_TOKENS.bos]!;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: SPECIAL_TOKENS.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: SPECIAL_TOKENS.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [SPECIAL_TOKENS.bos]: { id: SPECIAL_TOKENS.bos, ids: [bosId], tokens: [SPECIAL_TOKENS.bos] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: SPECIAL_TOKENS.unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

/** The world's `tokenizer_config.json` (as an object): names BOS, EOS, PAD and UNK for `loadTokenizer`. */
export function shapeWorldTokenizerConfig(): Record<string, unknown> {
  return {
    bos_token: SPECIAL_TOKENS.bos,
    eos_token: SPECIAL_TOKENS.eos,
    pad_token: SPECIAL_TOKENS.pad,
    unk_token: SPECIAL_TOKENS.unk,
    additional_special_tokens: [SPECIAL_TOKENS.image, SPECIAL_TOKENS.endOfChunk],
    model_max_length: 256,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
}
