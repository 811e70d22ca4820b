/**
 * The `ait` command line: inspect, compile and graph. Thin: parses arguments with commander and calls the
 * compiler's APIs; errors are printed as diagnostics with their place, never as stack traces.
 */
import { Command, InvalidArgumentError } from 'commander';
import { CompileError, formatDiagnostic } from '../diagnostics';
import { runInspect } from './inspect-command';
import { runCompile } from './compile-command';
import { runGraph } from './graph-command';

function parseDimBounds(value: string, previous: Record<string, [number, number]> = {}): Record<string, [number, number]> {
  const m = /^([^=]+)=(\d+)(?:\.\.(\d+))?$/.exec(value);
  if (!m) throw new InvalidArgumentError(`expected NAME=MIN..MAX (e.g. batch=1..256), got '${value}'`);
  const min = Number(m[2]);
  const max = m[3] !== undefined ? Number(m[3]) : min;
  if (max < min) throw new InvalidArgumentError(`bounds of '${m[1]}': max ${max} is below min ${min}`);
  return { ...previous, [m[1]]: [min, max] };
}

export function buildProgram(out: (s: string) => void = (s) => process.stdout.write(s + '\n')): Command {
  const program = new Command();
  program.name('ait').description('AIT Studio: compile ONNX models to fast GPU inference libraries').version('0.1.0');
  program.showHelpAfterError();

  program
    .command('inspect')
    .description('print a model summary: inputs/outputs, op histogram, parameters, weights, unknown ops')
    .argument('<model>', 'an .onnx file')
    .option('--json', 'print the summary as JSON')
    .option('--dim <name=min..max>', 'bounds of a symbolic input dim (repeatable)', parseDimBounds)
    .action((model: string, opts: { json?: boolean; dim?: Record<string, [number, number]> }) => {
      process.exitCode = runInspect(model, { json: opts.json, dimBounds: opts.dim }, out);
    });

  program
    .command('compile')
    .description('compile a model: import, infer shapes, optimize, and write DIR/graph.json (later stages: code and build)')
    .argument('<model>', 'an .onnx file')
    .option('-o, --out <dir>', 'output directory (default: build/<model name>)')
    .option('--target <target>', 'target: cuda:sm90, cuda:sm80 (code generation arrives with the CUDA backend)', 'cuda:sm90')
    .option('--dim <name=min..max>', 'bounds of a symbolic input dim (repeatable)', parseDimBounds)
    .option(
      '--dump-after <pass>',
      'write the graph after this pass to DIR/dump-<pass>.json (repeatable; "all" for every pass)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option('--json', 'print the result as JSON')
    .action(
      (
        model: string,
        opts: { out?: string; target: string; dim?: Record<string, [number, number]>; dumpAfter?: string[]; json?: boolean },
      ) => {
        process.exitCode = runCompile(model, opts, out);
      },
    );

  program
    .command('graph')
    .description('write the graph view (with profile heatmaps) as a self-contained HTML page')
    .argument('<dir>', 'a compile output directory (holding graph.json) or a graph.json file')
    .option(
      '--profile <profile.json>',
      'a per-op profile to colour the graph by (repeatable; two or more can be compared)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .requiredOption('--html <out.html>', 'the page to write')
    .option('--theme <theme>', "initial theme of the page: light, dark or high-contrast (default: the browser's)")
    .action((dir: string, opts: { profile?: string[]; html: string; theme?: 'light' | 'dark' | 'high-contrast' }) => {
      process.exitCode = runGraph(dir, opts, out);
    });

  return program;
}

export function main(argv: string[]): void {
  try {
    buildProgram().parse(argv);
  } catch (e) {
    if (e instanceof CompileError) {
      for (const d of e.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}

if (require.main === module) main(process.argv);
