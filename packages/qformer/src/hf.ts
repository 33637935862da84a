import type { LoadStateDictOptions, LoadStateDictResult, StateDict } from '@vlm/core';
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
    let name: string | null = null;
    if (key === 'query_tokens' || key.startsWith('language_projection.') || TOP_LEVEL_TEXT_EMBEDDINGS.test(key)) name = key;
    else if (key.startsWith('qformer.')) name = key.slice('qformer.'.length);
    if (name === null || name.endsWith('position_ids')) ignoredKeys.push(key);
    else stateDict[name] = tensor;
  }
  return { stateDict, ignoredKeys };
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
  const { stateDict, ignoredKeys } = qformerStateDictFromHf(hf);
  const own = qformer.stateDictShapes();
  const toLoad: StateDict = {};
  for (const [name, tensor] of Object.entries(stateDict)) {
    if (!(name in own) && !qformer.args.useTextInput && TEXT_BRANCH.test(name)) ignoredKeys.push(hfName(name));
    else toLoad[name] = tensor;
  }
  if (options.strict ?? true) {
    const missing = Object.keys(own).filter((k) => !(k in toLoad)).map(hfName);
    const unexpected = Object.keys(toLoad).filter((k) => !(k in own)).map(hfName);
    const errors: string[] = [];
    if (missing.length) errors.push(`Missing key(s):\n${missing.map((k) => `  ${k}`).join('\n')}`);
    if (unexpected.length) errors.push(`Unexpected key(s):\n${unexpected.map((k) => `  ${k}`).join('\n')}`);
    if (errors.length) throw new Error(`Error(s) in loading Hugging Face BLIP-2 weights into QFormer:\n${errors.join('\n')}`);
  }
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

/**
 * Builds a {@link QFormer} from a Hugging Face BLIP-2 `config.json` object and checkpoint
 * tensors (e.g. from core's `readSafetensors`, which upcasts F16/BF16), loading strictly.
 *
 * @example
 * ```ts
 * const qformer = qformerFromHfBlip2(JSON.parse(readFileSync('config.json', 'utf8')), readSafetensors(readFileSync('model.safetensors')).tensors);
 * qformer.forward(visionLastHiddenState).shape; // [b, num_query_tokens, text_config.hidden_size]
 * ```
 */
export function qformerFromHfBlip2(config: Record<string, unknown>, hf: StateDict, options: LoadStateDictOptions = {}): QFormer {
  const qformer = new QFormer(qformerArgsFromHfBlip2Config(config));
  try {
    loadHfBlip2StateDict(qformer, hf, options);
  } catch (e) {
    qformer.dispose();
    throw e;
  }
  return qformer;
}
