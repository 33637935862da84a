/** The demo's command line (names are a contract: tests and users script against them). */
export type Command = 'run' | 'caption' | 'ask' | 'openflamingo' | 'blip2' | 'probe';

export interface DemoArgs {
  command: Command;
  quick: boolean;
  out: string;
  seed: number;
  backend: 'wasm' | 'cpu';
  native: boolean;
  steps: number | undefined;
  resume: boolean;
  bridge: 'flamingo' | 'blip2';
  from: string | undefined;
  question: string | undefined;
  image: string | undefined;
  prompt: string | undefined;
  positional: string[];
}

const COMMANDS: readonly Command[] = ['caption', 'ask', 'openflamingo', 'blip2', 'probe'];
const VALUE_FLAGS = ['out', 'seed', 'backend', 'steps', 'bridge', 'from', 'question', 'image', 'prompt'];

export const USAGE = `usage:
  npm run demo                                   every pipeline and experiment → demo-out/
  npm run demo -- --quick                        small sizes, the same outputs (within 2 minutes)
  npm run demo -- --out DIR --seed N --backend wasm|cpu --no-native --steps N --resume
  npm run demo -- caption --bridge flamingo|blip2 [--from DIR] IMAGE.png...
  npm run demo -- ask --bridge flamingo|blip2 [--from DIR] --question "what colour is the shape?" IMAGE.png...
  npm run demo -- openflamingo CHECKPOINT_DIR --image IMAGE.png --prompt "<image>A photo of"
  npm run demo -- blip2 HF_DIR --image IMAGE.png [--prompt "Question: ... Answer:"]
  npm run demo -- probe HF_DIR|--from DIR IMAGE...`;

/** Parses `process.argv.slice(2)`; unknown flags and bad values are errors that name them. */
export function parseArgs(argv: readonly string[]): DemoArgs {
  const values: Record<string, string> = {};
  const flags = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      if (VALUE_FLAGS.includes(name)) {
        const v = inline ?? argv[++i];
        if (v === undefined) throw new Error(`--${name} needs a value`);
        values[name] = v;
      } else if (['quick', 'no-native', 'resume', 'help'].includes(name)) flags.add(name);
      else throw new Error(`unknown option --${name}\n${USAGE}`);
    } else positional.push(a);
  }
  if (flags.has('help')) throw Object.assign(new Error(USAGE), { usage: true });
  let command: Command = 'run';
  if (positional.length && COMMANDS.includes(positional[0] as Command)) command = positional.shift() as Command;
  else if (positional.length) throw new Error(`unknown command '${positional[0]}' (expected ${COMMANDS.join(', ')} or none)\n${USAGE}`);
  const int = (name: string, fallback: number | undefined) => {
    if (values[name] === undefined) return fallback;
    const v = Number(values[name]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer, got '${values[name]}'`);
    return v;
  };
  const backend = values.backend ?? 'wasm';
  if (backend !== 'wasm' && backend !== 'cpu') throw new Error(`--backend must be wasm or cpu, got '${backend}'`);
  const bridge = values.bridge ?? 'flamingo';
  if (bridge !== 'flamingo' && bridge !== 'blip2') throw new Error(`--bridge must be flamingo or blip2, got '${bridge}'`);
  return {
    command,
    quick: flags.has('quick'),
    out: values.out ?? 'demo-out',
    seed: int('seed', 0)!,
    backend,
    native: !flags.has('no-native'),
    steps: int('steps', undefined),
    resume: flags.has('resume'),
    bridge,
    from: values.from,
    question: values.question,
    image: values.image,
    prompt: values.prompt,
    positional,
  };
}
