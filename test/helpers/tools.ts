/**
 * Tests that need an outside tool (chromium, sshd, nvcc) skip without it on a developer machine, saying so. Under CI
 * (CI=true, as .ci/run and CI services set it) a missing tool fails instead, naming the tool, so a green CI run
 * means the browser, SSH and nvcc tests ran. Opt-in tests (gated by their own variables) and tests that need the
 * shared models are not tools: they keep skipping.
 */

/** Whether missing tools fail instead of skipping (read at each call). */
export function strictTools(): boolean {
  return process.env.CI === 'true';
}

/** The message of a missing tool: what it is for and how to get it. */
export function missingToolMessage(tool: string, hint: string): string {
  return `${tool} is missing (${hint})`;
}

/**
 * In a hook or test: returns when `available`; otherwise skips (logging why) or, under CI=true, throws an Error
 * naming `tool`.
 */
export function requireTool(ctx: Mocha.Context, tool: string, available: boolean, hint: string): void {
  if (available) return;
  const message = missingToolMessage(tool, hint);
  if (strictTools()) throw new Error(`${message}; CI=true requires it: a skipped test would pass unseen`);
  console.log(`    (skipped: ${message})`);
  ctx.skip();
}

/** For a test that runs a tool's part only where the tool exists: false when it does not; under CI=true, throws. */
export function toolPresent(tool: string, available: boolean, hint: string): boolean {
  if (!available && strictTools()) throw new Error(`${missingToolMessage(tool, hint)}; CI=true requires it`);
  return available;
}
