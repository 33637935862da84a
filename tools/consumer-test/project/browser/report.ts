// Shared by the browser programs: publishes the outcome for the test driver to read.
export function report(run: () => Promise<string>): void {
  (globalThis as { vlmResult?: Promise<{ ok: boolean; detail: string }> }).vlmResult = run().then(
    (detail) => ({ ok: true, detail }),
    (e: unknown) => ({ ok: false, detail: e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e) }),
  );
}
