/** How big a run is: `--quick` (within 2 minutes) or the default (within 10 minutes with the native matMul). */
export interface DemoSizes {
  trainScenes: number;
  trainEpisodes: number;
  heldOutScenes: number;
  fewShotEpisodes: number;
  fewShotVqa: number;
  probeScenes: number;
  batchSize: number;
  /** Optimizer steps of each bridge's main training. */
  steps: number;
  /** BLIP-2 stage-1 steps. */
  stage1Steps: number;
  /** Record gates and losses every this many steps. */
  logEvery: number;
  /** Checkpoint every this many steps. */
  checkpointEvery: number;
}

export function demoSizes(quick: boolean, steps: number | undefined): DemoSizes {
  const base: DemoSizes = quick
    ? { trainScenes: 48, trainEpisodes: 12, heldOutScenes: 16, fewShotEpisodes: 6, fewShotVqa: 8, probeScenes: 24, batchSize: 8, steps: 24, stage1Steps: 8, logEvery: 4, checkpointEvery: 12 }
    : { trainScenes: 480, trainEpisodes: 240, heldOutScenes: 96, fewShotEpisodes: 40, fewShotVqa: 36, probeScenes: 160, batchSize: 16, steps: 240, stage1Steps: 80, logEvery: 10, checkpointEvery: 60 };
  if (steps !== undefined) {
    base.steps = steps;
    base.stage1Steps = Math.max(1, Math.round(steps / 3));
    base.checkpointEvery = Math.max(1, Math.round(steps / 4));
    base.logEvery = Math.max(1, Math.round(steps / 24));
  }
  return base;
}
