import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, test } from 'vitest';
import { loadTokenizer } from '@vlm/frozen-loaders';
import {
  COLOURS,
  EPISODE_PROMPT,
  EPISODE_TASKS,
  HELD_OUT_BACKGROUND,
  HELD_OUT_EPISODE_TASKS,
  HELD_OUT_PAIRS,
  SHAPES,
  SPLITS,
  canonicalCaption,
  decodePng,
  encodePng,
  imageToFloat32,
  imagesToTensor,
  isHeldOutPair,
  isHeldOutPlacement,
  positionOf,
  renderScene,
  sampleEpisode,
  sampleScene,
  sceneCaptions,
  sceneQuestions,
  sceneSplit,
  shapeWorldTokenizerConfig,
  shapeWorldTokenizerJson,
  splitEpisodes,
  splitScenes,
  worldText,
} from '@vlm/shapeworld';
import { worldFingerprint } from './fingerprint';

describe('scenes', () => {
  test('same seed → same scene, pixels and texts; another seed → another scene', () => {
    const a = sampleScene(7);
    const b = sampleScene(7);
    expect(b).toEqual(a);
    expect(renderScene(b).data).toEqual(renderScene(a).data);
    expect(sceneCaptions(b)).toEqual(sceneCaptions(a));
    expect(sceneQuestions(b)).toEqual(sceneQuestions(a));
    expect(renderScene(sampleScene(8)).data).not.toEqual(renderScene(a).data);
    // Pinned: a change to the generator or the rasteriser changes this (and must be deliberate).
    expect(worldFingerprint()).toMatchInlineSnapshot(`"23ade0ce 6fa64113"`);
  });

  test('objects sit in distinct cells, pixels show their colour at their centre', () => {
    for (const scene of splitScenes('train', 40)) {
      const cells = new Set(scene.objects.map((o) => o.row * 3 + o.column));
      expect(cells.size).toBe(scene.objects.length);
      const image = renderScene(scene);
      for (const o of scene.objects) {
        // circle/square/star/cross/triangle all cover their centre
        const at = (Math.round(o.y) * 224 + Math.round(o.x)) * 3;
        expect(Array.from(image.data.subarray(at, at + 3))).toEqual(o.rgb);
      }
    }
  });

  test('1–3 objects, light backgrounds on request, bad options throw', () => {
    const counts = new Set(splitScenes('train', 60).map((s) => s.objects.length));
    expect([...counts].sort()).toEqual([1, 2, 3]);
    const light = sampleScene(3, { tone: 'light' });
    expect(Math.min(...light.background.rgb)).toBeGreaterThanOrEqual(142);
    expect(() => sampleScene(1, { objects: 4 })).toThrow(/1, 2 or 3/);
    expect(() => sampleScene(1, { accept: () => false })).toThrow(/accept/);
    expect(() => sampleScene(Number.NaN)).toThrow(/finite/);
  });

  test('captions and answers are true of the scene', () => {
    for (const scene of splitScenes('validation', 30)) {
      const caption = canonicalCaption(scene);
      for (const o of scene.objects) expect(caption).toContain(`${o.size} ${o.colour} ${o.shape}`);
      for (const qa of sceneQuestions(scene)) {
        if (qa.kind === 'colour') expect(COLOURS).toContain(qa.answer);
        if (qa.kind === 'position') expect(scene.objects.map(positionOf)).toContain(qa.answer);
        if (qa.kind === 'count' && qa.question === 'how many shapes are there?') expect(qa.answer).toBe(['zero', 'one', 'two', 'three'][scene.objects.length]);
      }
    }
    const one = sampleScene(11, { objects: 1 });
    const o = one.objects[0]!;
    expect(sceneQuestions(one)).toContainEqual({ kind: 'colour', question: `what colour is the ${o.shape}?`, answer: o.colour });
  });
});

describe('splits', () => {
  test('disjoint by content: each test split has exactly its held-out factor, train none', () => {
    for (const split of SPLITS) {
      const scenes = splitScenes(split, 60);
      for (const s of scenes) expect(sceneSplit(s)).toBe(split === 'validation' ? 'train' : split);
    }
    const train = splitScenes('train', 300);
    expect(train.some((s) => s.objects.some(isHeldOutPair) || s.objects.some(isHeldOutPlacement) || s.background.kind === HELD_OUT_BACKGROUND)).toBe(false);
    // every colour and every shape is still seen in training
    const seen = new Set(train.flatMap((s) => s.objects.flatMap((o) => [o.colour, o.shape])));
    for (const w of [...COLOURS, ...SHAPES]) expect(seen).toContain(w);
    expect(HELD_OUT_PAIRS.length).toBe(7);
  });

  test('train and validation share no scene', () => {
    const key = (s: ReturnType<typeof sampleScene>) => JSON.stringify({ ...s, seed: 0 });
    const train = new Set(splitScenes('train', 400).map(key));
    expect(splitScenes('validation', 400).filter((s) => train.has(key(s)))).toEqual([]);
  });

  test('episode splits: training tasks on train scenes, held-out task mixtures only in test-tasks', () => {
    const train = splitEpisodes('train', 40);
    expect(new Set(train.map((e) => e.task))).toEqual(new Set(EPISODE_TASKS));
    for (const e of train) for (const s of e.images) expect(sceneSplit(s)).toBe('train');
    const test = splitEpisodes('test-tasks', 20);
    expect(new Set(test.map((e) => e.task))).toEqual(new Set(HELD_OUT_EPISODE_TASKS));
    const trainText = worldText('train', 500).map((d) => d.text);
    // no held-out task's two-word answer is ever an episode answer in the training text
    for (const t of trainText) expect(t).not.toMatch(/answer: (small|large) (circle|square|triangle|star|cross) <\|endofchunk\|>/);
  });
});

describe('episodes', () => {
  test('interleaved format, one <image> per scene, same prompt for every task, task implied by the shots', () => {
    for (const task of [...EPISODE_TASKS, ...HELD_OUT_EPISODE_TASKS]) {
      const ep = sampleEpisode(5, { task, shots: 3 });
      expect(ep.images.length).toBe(4);
      expect(ep.prompt.split('<image>').length - 1).toBe(4);
      expect(ep.prompt.endsWith(`<image> ${EPISODE_PROMPT}`)).toBe(true);
      expect(ep.text).toBe(`${ep.prompt} ${ep.query.answer} <|endofchunk|>`);
      expect(new Set(ep.shots.map((s) => s.answer)).size).toBeGreaterThan(1);
      expect(ep.prompt).not.toContain(task.split('-')[0]);
    }
    expect(sampleEpisode(9)).toEqual(sampleEpisode(9));
  });
});

describe('text and tokenizer', () => {
  test('the world text is covered by the tokenizer (no <unk>), BOS first', () => {
    const tok = loadTokenizer(shapeWorldTokenizerJson(), { tokenizerConfig: shapeWorldTokenizerConfig() });
    const unk = tok.tokenToId('<unk>');
    for (const split of SPLITS) for (const d of worldText(split, 150)) expect(tok.encode(d.text)).not.toContain(unk);
    expect(tok.tokenize('<image> a small red')).toEqual(['<s>', '<image>', 'a', 'small', 'red']);
    expect(tok.configTokenId('eos_token')).toBe(3);
    expect(tok.configTokenId('pad_token')).toBe(0);
    expect(new Set(worldText('train', 100).map((d) => d.kind))).toEqual(new Set(['caption', 'qa', 'episode']));
  });
});

describe('images', () => {
  test('PNG round trip is exact; bad files say what is wrong', () => {
    const image = renderScene(sampleScene(2));
    const png = encodePng(image);
    expect(decodePng(png)).toEqual(image);
    expect(encodePng(image)).toEqual(png);
    const bad = png.slice();
    bad[40] = bad[40]! ^ 0xff;
    expect(() => decodePng(bad)).toThrow(/CRC|inflate/);
    expect(() => decodePng(png.subarray(0, 60))).toThrow(/truncated/);
    expect(() => decodePng(new Uint8Array([1, 2, 3]))).toThrow(/not a PNG/);
    expect(() => encodePng({ ...image, width: 10 })).toThrow(/width·height·3/);
  });

  test('tensor and float32 views are the pixels / 255; no tensor leaks', () => {
    const images = splitScenes('train', 2).map(renderScene);
    const before = tf.memory().numTensors;
    const t = imagesToTensor(images);
    expect(t.shape).toEqual([2, 224, 224, 3]);
    const v = t.dataSync();
    expect(v[224 * 224 * 3 + 5]).toBeCloseTo(images[1]!.data[5]! / 255, 6);
    expect(Array.from(imageToFloat32(images[0]!).subarray(0, 6))).toEqual(Array.from(v.subarray(0, 6)));
    t.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => imagesToTensor([])).toThrow(/at least one/);
  });
});
