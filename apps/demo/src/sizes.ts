/** How big a run is: `--quick` (within 2 minutes) or the default (within 10 minutes with the native matMul). */
export interface DemoSizes {
  trainScenes: number;
  trainEpisodes: number;
  heldOutScenes: number;
  fewShotEpisodes: number;
  fewShotVqa: number;
  probeScenes: number;
  batchSize: number;
  /**
   * Optimizer steps of each bridge on image–caption pairs first (Flamingo's image–text pairs,
   * BLIP-2's stage 2, LLaVA's feature alignment): with the gates at 0 the visual path only opens
   * where every target word depends on the image. 800 by default for every bridge: BLIP-2 with 800
   * instead of 400 names held-out colour and shape at 94% / 90% instead of 85% / 80% (seed 0, 300
   * fresh scenes), and Flamingo with 800 names held-out shapes more reliably across seeds (README).
   */
  pairSteps: number;
  /** Then optimizer steps on the whole mixture (captions, VQA, interleaved episodes; BLIP-2's stage 3). */
  steps: number;
  /**
   * Flamingo's context swap: in its training batches a colour word of the target text is read as
   * another colour at this rate (the loss still predicts the true words; see `swapContextWords`),
   * each batch unit drawn in {@link DemoSizes.swapViews} versions.
   */
  contextSwap: number;
  swapViews: number;
  /** BLIP-2 stage-1 steps. */
  stage1Steps: number;
  /** Record gates and losses every this many steps. */
  logEvery: number;
  /** Checkpoint every this many steps. */
  checkpointEvery: number;
}

/** The sizes that decide which images a run draws (what `buildWorldData` reads, and the key of the feature cache). */
export type WorldSizes = Pick<DemoSizes, 'trainScenes' | 'trainEpisodes' | 'heldOutScenes' | 'fewShotEpisodes' | 'fewShotVqa' | 'probeScenes'>;

/** Just the {@link WorldSizes} of `s` (the object literal is checked against the type both ways). */
export function worldSizes(s: WorldSizes): WorldSizes {
  return { trainScenes: s.trainScenes, trainEpisodes: s.trainEpisodes, heldOutScenes: s.heldOutScenes, fewShotEpisodes: s.fewShotEpisodes, fewShotVqa: s.fewShotVqa, probeScenes: s.probeScenes };
}

export function demoSizes(quick: boolean, steps: number | undefined): DemoSizes {
  const base: DemoSizes = quick
    ? { trainScenes: 48, trainEpisodes: 12, heldOutScenes: 16, fewShotEpisodes: 6, fewShotVqa: 8, probeScenes: 24, batchSize: 8, pairSteps: 48, steps: 16, contextSwap: 0.5, swapViews: 4, stage1Steps: 8, logEvery: 4, checkpointEvery: 12 }
    : { trainScenes: 480, trainEpisodes: 240, heldOutScenes: 96, fewShotEpisodes: 40, fewShotVqa: 36, probeScenes: 160, batchSize: 16, pairSteps: 800, steps: 300, contextSwap: 0.5, swapViews: 4, stage1Steps: 80, logEvery: 10, checkpointEvery: 60 };
  if (steps !== undefined) {
    // --steps N: N steps of each bridge in all, 8/11 on pairs and 3/11 on the mixture (as 800 + 300)
    base.pairSteps = Math.max(1, Math.round((steps * 8) / 11));
    base.steps = Math.max(1, steps - base.pairSteps);
    base.stage1Steps = Math.max(1, Math.round(steps / 10));
    base.checkpointEvery = Math.max(1, Math.round(steps / 8));
    base.logEvery = Math.max(1, Math.round(steps / 48));
  }
  return base;
}
