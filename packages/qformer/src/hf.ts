import * as tf from '@tensorflow/tfjs-core';
import {
  checkBackendMemory,
  reserveBackendMemory,
  SafetensorsFile,
  safetensorsTfDtype,
  skipInit,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  type SafetensorsByteSource,
  type SafetensorsInput,
  type StateDict,
} from '@vlm/core';
import { QFormer } from './qformer';
import { qformerArgsFromHfBlip2Config } from './config';

/** Result of {@link qformerStateDictFromHf}. */
export interface HfQFormerStateDict {
  /** The Q-Former's tensors under {@link QFormer} names (the same tensor objects, not copies). */
  stateDict: StateDict;
  /** Keys of the checkpoint that are not Q-Former weights (`vision_model.*`, `language_model.*`, buffers, …). */
  ignoredKeys: string[];
}

const TOP_LEVEL_TEXT_EMBEDDINGS = /^embeddings\.(word_embeddings|position_embeddings)\.weight$/;

/**
 * Renames the Q-Former part of a Hugging Face BLIP-2 checkpoint (`Blip2ForConditionalGeneration`,
 * `Blip2Model`, `Blip2ForImageTextRetrieval`) to {@link QFormer} keys:
 *
 * | Hugging Face | QFormer |
 * |---|---|
 * | `query_tokens` | `query_tokens` |
 * | `qformer.<key>` | `<key>` |
 * | `embeddings.{word,position}_embeddings.weight` (retrieval model) | same |
 * | `language_projection.{weight,bias}` | same |
 * | anything else (`vision_model.*`, `language_model.*`, `*.position_ids`, …) | ignored |
 *
 * @example
 * ```ts
 * const { tensors } = readSafetensors(readFileSync('model.safetensors')); // F16/BF16 are upcast to float32
 * const { stateDict, ignoredKeys } = qformerStateDictFromHf(tensors);
 * Object.keys(stateDict)[0]; // 'query_tokens'
 * ```
 */
export function qformerStateDictFromHf(hf: StateDict): HfQFormerStateDict {
  const stateDict: StateDict = {};
  const ignoredKeys: string[] = [];
  for (const [key, tensor] of Object.entries(hf)) {
    const name = qformerName(key);
    if (name === null) ignoredKeys.push(key);
    else stateDict[name] = tensor;
  }
  return { stateDict, ignoredKeys };
}

/** The {@link QFormer} name of a Hugging Face BLIP-2 key, or `null` for keys that are not Q-Former weights. */
function qformerName(key: string): string | null {
  let name: string | null = null;
  if (key === 'query_tokens' || key.startsWith('language_projection.') || TOP_LEVEL_TEXT_EMBEDDINGS.test(key)) name = key;
  else if (key.startsWith('qformer.')) name = key.slice('qformer.'.length);
  return name === null || name.endsWith('position_ids') ? null : name;
}

/**
 * Which checkpoint tensors go where: the Q-Former names to load (by shape and dtype) and the
 * ignored Hugging Face keys; in strict mode, one Error lists every missing and unexpected key.
 */
function planHfBlip2Load<T extends { shape: readonly number[]; dtype: tf.DataType }>(
  qformer: QFormer,
  hf: Record<string, T>,
  options: LoadStateDictOptions,
): { toLoad: Record<string, T>; ignoredKeys: string[]; hfKeys: Map<string, string> } {
  const own = qformer.stateDictShapes();
  const toLoad: Record<string, T> = {};
  const hfKeys = new Map<string, string>();
  const ignoredKeys: string[] = [];
  for (const [key, value] of Object.entries(hf)) {
    const name = qformerName(key);
    if (name === null) ignoredKeys.push(key);
    else if (!(name in own) && !qformer.args.useTextInput && TEXT_BRANCH.test(name)) ignoredKeys.push(hfName(name));
    else {
      toLoad[name] = value;
      hfKeys.set(name, key);
    }
  }
  if (options.strict ?? true) {
    const missing = Object.keys(own).filter((k) => !(k in toLoad)).map(hfName);
    const unexpected = Object.keys(toLoad).filter((k) => !(k in own)).map(hfName);
    const errors: string[] = [];
    if (missing.length) errors.push(`Missing key(s):\n${missing.map((k) => `  ${k}`).join('\n')}`);
    if (unexpected.length) errors.push(`Unexpected key(s):\n${unexpected.map((k) => `  ${k}`).join('\n')}`);
    if (errors.length) throw new Error(`Error(s) in loading Hugging Face BLIP-2 weights into QFormer:\n${errors.join('\n')}`);
  }
  return { toLoad, ignoredKeys, hfKeys };
}

// Keys of the Q-Former text branch (text embeddings, text feed-forward blocks).
const TEXT_BRANCH = /^(embeddings\.|encoder\.layer\.\d+\.(intermediate|output)\.)/;

/**
 * Loads the Q-Former, query tokens and language projection of a Hugging Face BLIP-2 state dict
 * into `qformer` (see {@link qformerStateDictFromHf} for the names). Text-branch weights
 * (`qformer.encoder.layer.{i}.intermediate/output.*`, text embeddings) that older Salesforce
 * checkpoints carry are ignored when `qformer` has no text branch. Every other key is loaded
 * with core's `loadStateDict` (strict by default: one Error lists every missing, unexpected or
 * mis-shaped key). The caller keeps ownership of `hf`.
 *
 * @example
 * ```ts
 * const qformer = new QFormer(qformerArgsFromHfBlip2Config(config));
 * const { ignoredKeys } = loadHfBlip2StateDict(qformer, readSafetensors(bytes).tensors);
 * ignoredKeys.filter((k) => k.startsWith('vision_model.')).length > 0; // true
 * ```
 */
export function loadHfBlip2StateDict(
  qformer: QFormer,
  hf: StateDict,
  options: LoadStateDictOptions = {},
): LoadStateDictResult & {
  /** Hugging Face keys that were not loaded: non-Q-Former keys (`vision_model.*`, `language_model.*`, buffers) and, when `qformer` has no text branch, text-branch weights. */
  ignoredKeys: string[];
} {
  const { toLoad, ignoredKeys } = planHfBlip2Load(qformer, hf, options);
  const result = qformer.loadStateDict(toLoad, options);
  return { missingKeys: result.missingKeys.map(hfName), unexpectedKeys: result.unexpectedKeys.map(hfName), ignoredKeys };
}

/**
 * The weights of `qformer` under Hugging Face BLIP-2 names (the inverse of
 * {@link qformerStateDictFromHf}): `query_tokens`, `qformer.*`, `language_projection.*`, and
 * text embeddings as `embeddings.*` (the `Blip2ForImageTextRetrieval` place). New tensors, owned
 * by the caller; write them with core's `writeSafetensors`.
 *
 * @example
 * ```ts
 * const hf = qformerStateDictToHf(qformer);
 * Object.keys(hf).includes('qformer.encoder.layer.0.crossattention.attention.key.weight'); // true
 * writeFileSync('qformer.safetensors', writeSafetensors(hf, { format: 'pt' }));
 * ```
 */
export function qformerStateDictToHf(qformer: QFormer): StateDict {
  const out: StateDict = {};
  for (const [name, tensor] of Object.entries(qformer.stateDict())) out[hfName(name)] = tensor;
  return out;
}

function hfName(name: string): string {
  if (name === 'query_tokens' || name.startsWith('language_projection.') || name.startsWith('embeddings.')) return name;
  return `qformer.${name}`;
}

/** BLIP-2 checkpoint files for {@link qformerFromHfBlip2}: one safetensors file (bytes or byte source) or every shard. */
export type HfBlip2Files = SafetensorsInput | readonly SafetensorsInput[];

const isFile = (v: unknown): v is SafetensorsInput =>
  v instanceof Uint8Array || v instanceof ArrayBuffer || (typeof v === 'object' && v !== null && typeof (v as SafetensorsByteSource).readInto === 'function');

/**
 * Builds a {@link QFormer} from a Hugging Face BLIP-2 `config.json` object and its weights,
 * loading strictly: checkpoint tensors (e.g. from core's `readSafetensors`, which upcasts
 * F16/BF16), or the checkpoint's safetensors file(s) themselves — bytes, byte sources or the
 * list of shards. From files, only the headers and the Q-Former's own tensors are read (the
 * vision tower and the LM, most of a BLIP-2 checkpoint, are never decoded), each straight into
 * the Q-Former, which is built without random initialisation.
 *
 * @example
 * ```ts
 * const qformer = qformerFromHfBlip2(JSON.parse(readFileSync('config.json', 'utf8')), [readFileSync('model-00001-of-00002.safetensors'), readFileSync('model-00002-of-00002.safetensors')]);
 * qformer.forward(visionLastHiddenState).shape; // [b, num_query_tokens, text_config.hidden_size]
 * ```
 */
export function qformerFromHfBlip2(config: Record<string, unknown>, hf: StateDict | HfBlip2Files, options: LoadStateDictOptions = {}): QFormer {
  const args = qformerArgsFromHfBlip2Config(config);
  if (!isFile(hf) && !Array.isArray(hf)) {
    const qformer = skipInit(() => new QFormer(args));
    try {
      loadHfBlip2StateDict(qformer, hf as StateDict, options);
    } catch (e) {
      qformer.dispose();
      throw e;
    }
    return qformer;
  }
  const files = (Array.isArray(hf) ? hf : [hf]).map((f: SafetensorsInput, i: number, all: unknown[]) =>
    SafetensorsFile.open(f, { source: all.length === 1 ? 'model.safetensors' : `BLIP-2 shard ${i}` }),
  );
  const where = new Map<string, SafetensorsFile>();
  const shapes: Record<string, { shape: number[]; dtype: tf.DataType }> = {};
  for (const file of files) {
    for (const key of file.names()) {
      if (where.has(key)) throw new Error(`qformerFromHfBlip2: tensor '${key}' is in both ${where.get(key)!.source} and ${file.source}`);
      where.set(key, file);
      const e = file.entry(key);
      shapes[key] = { shape: e.shape, dtype: safetensorsTfDtype(e.dtype) };
    }
  }
  const qformer = skipInit(() => new QFormer(args));
  try {
    const { toLoad, hfKeys } = planHfBlip2Load(qformer, shapes, options);
    const params = Object.values(toLoad).reduce((n, e) => n + e.shape.reduce((a, d) => a * d, 1), 0);
    checkBackendMemory(4 * params, `qformerFromHfBlip2 (${(params / 1e6).toFixed(1)}M parameters as float32)`);
    reserveBackendMemory(4 * params);
    const read = (name: string, transpose: boolean) => where.get(hfKeys.get(name)!)!.readTensor(hfKeys.get(name)!, { transpose });
    qformer.loadStateDictFrom({ shapes: toLoad, read: (name) => read(name, false), readTransposed: (name) => read(name, true) }, options);
  } catch (e) {
    qformer.dispose();
    throw e;
  }
  return qformer;
}
