/**
 * The `ait` command line: inspect, compile and graph. Thin: parses arguments with commander and calls the
 * compiler's APIs; errors are printed as diagnostics with their place, never as stack traces.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CompileError, error, fail, formatDiagnostic } from '../diagnostics';
import { DEFAULT_TARGET, TARGET_LIST } from '../targets';
import { runProfiledCompile, type ProfileFlags } from './profile-command';
import { MAX_BATCH, type DimBounds, parseDimBound, parseMaxBatch } from '../options';
import { runInspect } from './inspect-command';
import { GRAPH_THEMES, type GraphTheme, runGraph } from './graph-command';
import { type ModulesCommandOptions, runModules } from './modules-command';
import {
  DEFAULT_VERIFY_TOLERANCE,
  parseBatchSizes,
  parseReference,
  parseTolerance,
  runAgentCommand,
  runRemoteBuild,
  runRemoteCheck,
  type RemoteBuildFlags,
} from './remote-command';
import { runVerify } from './verify-command';
import { modelNameOf } from '../compile';
import { parseDays, runCacheList, runCachePrune, type CacheListOptions, type CachePruneOptions } from './cache-command';
import * as fs from 'node:fs';
import * as path from 'node:path';

function parseDimBounds(value: string, previous: DimBounds = {}): DimBounds {
  const [name, bounds] = wrapped(parseDimBound)(value);
  return { ...previous, [name]: bounds };
}

function batchSizesOption(value: string): number[] {
  try {
    return parseBatchSizes(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function positiveInteger(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} takes a positive integer, got '${v}'`);
    return n;
  };
}

function nonNegativeInteger(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} takes a non-negative integer, got '${v}'`);
    return n;
  };
}

function positiveNumber(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} takes a positive number, got '${v}'`);
    return n;
  };
}

function wrapped<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** Options of verify (remote verify, compile --verify). */
function withVerifyOptions(c: Command): Command {
  return c
    .option(
      '--seed <n>',
      'seed of the random inputs (default 0)',
      wrapped((v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new Error(`--seed takes a non-negative integer, got '${v}'`);
        return n;
      }),
    )
    .option(
      '--tolerance <rel L2>',
      `largest relative L2 error of a passing output (default ${DEFAULT_VERIFY_TOLERANCE})`,
      wrapped(parseTolerance),
    )
    .option(
      '--reference <kind>',
      'python-onnxruntime, onnxruntime-node or interpreter (default: the first the host has)',
      wrapped(parseReference),
    )
    .option(
      '--per-node',
      "also compare every fused node (the library's debug run) with its ONNX tensor at the first batch size; names the first " +
        'node whose error jumps or that overflows fp16; DIR/verify-per-node.json and DIR/profile-verify.json (error heatmap)',
    )
    .option(
      '--threshold <rel L2>',
      'with --per-node: relative L2 error above which a node counts as wrong (default 1e-2)',
      wrapped(parseTolerance),
    )
    .option(
      '--torch-model <F.py:fn>',
      'with --per-node: time every module in PyTorch eager too (fp16, CUDA, forward hooks) where the host has torch; ' +
        'fn() returns the nn.Module or (module, example_inputs); the module table gets ours/torch times',
    );
}

/** Options of commands that reach a remote host. */
/** The bench's throughput mode: N instances × M threads for a duration (ait_bench --instances/--threads/--duration). */
function withThroughputOptions(c: Command): Command {
  return c
    .option(
      '--instances <n>',
      'throughput bench: this many model instances, each with its own stream',
      wrapped(positiveInteger('--instances')),
    )
    .option('--threads <n>', 'throughput bench: host threads driving the instances (1..instances)', wrapped(positiveInteger('--threads')))
    .option('--duration <seconds>', 'throughput bench: seconds per batch size (default 10)', wrapped(positiveNumber('--duration')));
}

function withRemoteOptions(c: Command): Command {
  return c
    .option('--accept-host-key', "accept and record the host's key when it is not in known_hosts (check its fingerprint first)")
    .option('--node <path>', 'node on the host (default: node on PATH, then one uploaded earlier)')
    .option('--upload-node <file>', 'a Node.js binary (or .xz) on this machine to upload when the host has no node >= 18')
    .option('--work-dir <dir>', "the agent's work directory on the host, relative to its home (default .ait-studio/agent)")
    .option('--ssh-config <file>', 'ssh config file (default ~/.ssh/config)')
    .option('--verbose', 'print the agent log and every bench line');
}

export function buildProgram(
  out: (s: string) => void = (s) => process.stdout.write(s + '\n'),
  err: (s: string) => void = (s) => process.stderr.write(s + '\n'),
): Command {
  const program = new Command();
  program.enablePositionalOptions();
  program.name('ait').description('AIT Studio: compile ONNX models to fast GPU inference libraries').version('0.1.0');
  // Usage errors are thrown (not process.exit) and printed by main() as one diagnostic line.
  program.exitOverride();
  program.configureOutput({ outputError: () => {} });

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
    .description('compile a model: optimize it and write DIR/graph.json, the CUDA sources, Makefile, ait_model.py and weights')
    .argument('<model>', 'an .onnx file')
    .option('-o, --out <dir>', 'output directory (default: build/<model name>); an existing one is replaced only with --force')
    .option('--force', 'replace the earlier build in the output directory (only a directory an earlier compile wrote)')
    .option('--target <target>', `target: ${TARGET_LIST}`, DEFAULT_TARGET)
    .option(
      '--max-batch <n>',
      `largest batch the build serves, at most ${MAX_BATCH} (default: the batch dim's upper bound)`,
      wrapped(parseMaxBatch),
    )
    .option('--dim <name=min..max>', 'bounds of a symbolic input dim (repeatable)', parseDimBounds)
    .option('--batch <n>', 'batch size for the cost and memory reports (default 1)', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`--batch takes a positive integer, got '${v}'`);
      return n;
    })
    .option(
      '--dump-after <pass>',
      'write the graph after this pass to DIR/dump-<pass>.json (repeatable; "all" for every pass)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option(
      '--fp32 <names>',
      "store these tensors (or nodes' outputs), comma-separated, in fp32 on the GPU besides the coordinates the compiler keeps in fp32 (repeatable)",
      (v: string, p: string[] = []) => [...p, ...v.split(',').filter(Boolean)],
    )
    .option(
      '--partition',
      'when some nodes cannot run on the target: compile the rest as segments (DIR/segments/<k>) and run those nodes in ' +
        'onnxruntime (DIR/fallback/<k>.onnx); DIR/partition.json and DIR/ait_partitioned.py run them in order',
    )
    .option(
      '--module <paths>',
      'compile only these modules of the PyTorch model (module paths from the ONNX scopes, e.g. backbone,rpn.head; repeatable): ' +
        'each a build of its own in DIR/<module>/ taking and returning the tensors crossing its border (module.json), with ' +
        'ait_inject.py to put it into the PyTorch model in place of the module',
      (v: string, p: string[] = []) => [...p, ...v.split(',').filter(Boolean)],
    )
    .option('--json', 'print the result as JSON')
    .option('--remote <host>', "build (and bench) on this host: an ssh target or 'local'")
    .option('--build', 'with --remote: build DIR there')
    .option(
      '--bench <batch sizes>',
      'with --remote: build, then benchmark these batch sizes on every GPU there (e.g. 1,8,64); results in DIR/bench.json',
      batchSizesOption,
    )
    .option('--instances <n>', 'with --bench: throughput bench with this many model instances', wrapped(positiveInteger('--instances')))
    .option('--threads <n>', 'with --bench: throughput bench, host threads driving the instances', wrapped(positiveInteger('--threads')))
    .option(
      '--duration <seconds>',
      'with --bench: throughput bench seconds per batch size (default 10)',
      wrapped(positiveNumber('--duration')),
    )
    .option(
      '--verify [batch sizes]',
      'with --remote: build, then compare the outputs with MODEL run by onnxruntime (or the interpreter) at these batch sizes (default 1,8); DIR/verify.json',
      batchSizesOption,
    )
    .option(
      '--profile <host>',
      "choose GEMM/conv kernels by profiling their candidates on this host (ssh target or 'local'); measurements kept in the profile cache",
    )
    .option(
      '--profiled-on <gpu>',
      "choose GEMM/conv kernels from the profile cache's measurements of this GPU (name part), profiling nothing",
    )
    .option('--measurements <file>', 'choose GEMM/conv kernels from ait_profiler output (repeatable)', (v: string, p: string[] = []) => [
      ...p,
      v,
    ])
    .option('--profile-sources', 'also write the kernel profiler into DIR/profile (make profiler; ./profile/ait_profiler)')
    .option('--profile-cache <file>', 'the profile cache file (default: $AIT_PROFILE_CACHE, else ~/.cache/ait-studio/profiles.sqlite)')
    .option(
      '--profile-iterations <n>',
      'timed launches per candidate and batch (default 10)',
      wrapped(positiveInteger('--profile-iterations')),
    )
    .action(
      async (
        model: string,
        opts: {
          out?: string;
          force?: boolean;
          target: string;
          maxBatch?: number;
          dim?: Record<string, [number, number]>;
          dumpAfter?: string[];
          fp32?: string[];
          batch?: number;
          json?: boolean;
          remote?: string;
          verify?: number[] | true;
          partition?: boolean;
          module?: string[];
        } & RemoteBuildFlags &
          ProfileFlags,
      ) => {
        if (opts.perNode && !opts.verify) opts.verify = true; // --per-node is a kind of --verify
        if ((opts.build || opts.bench || opts.verify) && !opts.remote)
          fail(
            'cli.bad-option',
            `${opts.verify ? '--verify' : opts.bench ? '--bench' : '--build'} needs --remote HOST (a GPU host, or 'local')`,
          );
        if ([opts.profile, opts.profiledOn, opts.measurements].filter(Boolean).length > 1)
          fail('cli.bad-option', '--profile, --profiled-on and --measurements are alternatives: give one');
        const outDir = path.resolve(opts.out ?? path.join('build', modelNameOf(model)));
        if (opts.module && (opts.partition || opts.remote || opts.profile || opts.profiledOn || opts.measurements || opts.dumpAfter))
          fail(
            'cli.bad-option',
            '--module makes one build per module: build each with make -C DIR/<module> (--partition, --remote, --dump-after and measured kernel choice do not combine with it yet)',
          );
        if (opts.partition && (opts.profile || opts.profiledOn || opts.measurements))
          fail(
            'cli.bad-option',
            '--partition with measured kernel choice is not supported yet: profile the compiled segments (DIR/segments/<k>) instead',
          );
        process.exitCode = await runProfiledCompile(model, opts, outDir, out, err);
        if (process.exitCode !== 0 || !opts.remote) return;
        if (opts.partition && fs.existsSync(path.join(outDir, 'partition.json')))
          fail(
            'cli.bad-option',
            '--remote builds one library; a partitioned build has one per compiled segment (make -C DIR/segments/<k>, then ' +
              'python3 DIR/ait_partitioned.py on the GPU host)',
          );
        const verify = opts.verify ? { verifyModel: model, verifyBatch: opts.verify === true ? undefined : opts.verify } : {};
        process.exitCode = await runRemoteBuild(opts.remote, outDir, { ...opts, ...verify }, out, err);
      },
    );
  withVerifyOptions(withRemoteOptions(program.commands.find((c) => c.name() === 'compile')!));

  program
    .command('verify')
    .description(
      "per-node numerical check on this machine: onnxruntime-node on MODEL (every fused node's ONNX tensor exposed) against the " +
        'optimized graph run by the interpreter with fp16 storage, as the GPU build stores activations; names the first node ' +
        'whose error jumps or whose values leave the fp16 range, and prints the per-module table',
    )
    .argument('<model>', 'an .onnx file (graph-only: absent weights are filled with seeded random data on both sides)')
    .option('--per-node', 'compare every fused node (the default; the only mode of the local check)')
    .option('--batch <n>', 'batch size (default 1)', wrapped(positiveInteger('--batch')))
    .option('--seed <n>', 'seed of the random inputs and weights (default 0)', wrapped(nonNegativeInteger('--seed')))
    .option('--threshold <rel L2>', 'relative L2 error above which a node counts as wrong (default 1e-2)', wrapped(parseTolerance))
    .option(
      '--weight-std <std>',
      'std of randomized conv/linear weights (default 1/sqrt(fan_in); e.g. 0.1 as some frameworks init)',
      wrapped(positiveNumber('--weight-std')),
    )
    .addOption(
      new Option('--storage <dtype>', 'activation storage of the candidate (default float16, as the GPU build)').choices([
        'float16',
        'float32',
      ]),
    )
    .option('--modules <depth>', 'depth of the per-module table (default 2)', wrapped(positiveInteger('--modules')))
    .option('--all', 'print every compared node (default: the first 40 and every one above the threshold)')
    .option(
      '-o, --out <dir>',
      'write verify-per-node.json, profile-verify.json (errors for `ait graph --profile`) and graph.json (when absent) there',
    )
    .option('--dim <name=min..max>', 'bounds of a symbolic input dim (repeatable)', parseDimBounds)
    .option('--json', 'print the report as JSON')
    .action(
      async (
        model: string,
        opts: {
          batch?: number;
          seed?: number;
          threshold?: number;
          weightStd?: number;
          storage?: 'float16' | 'float32';
          modules?: number;
          all?: boolean;
          out?: string;
          dim?: Record<string, [number, number]>;
          json?: boolean;
        },
      ) => {
        process.exitCode = await runVerify(model, { ...opts, moduleDepth: opts.modules }, out);
      },
    );

  const remote = program.command('remote').description('GPU hosts: check them, build and benchmark there');
  withRemoteOptions(
    remote
      .command('check')
      .description("connect to HOST (an ssh target or 'local'), start the agent, and print what the host offers")
      .argument('<host>', "ssh config alias, user@host[:port], or 'local'")
      .option('--json', 'print the hello result as JSON'),
  ).action(async (host: string, opts: RemoteBuildFlags) => {
    process.exitCode = await runRemoteCheck(host, opts, out, err);
  });
  withRemoteOptions(
    withThroughputOptions(
      remote
        .command('build')
        .description('sync a build directory (with a Makefile) to HOST, make there, optionally benchmark; results in DIR/bench.json')
        .argument('<host>', "ssh config alias, user@host[:port], or 'local'")
        .argument('<dir>', 'build directory')
        .option('--bench <batch sizes>', 'benchmark these batch sizes on every GPU (e.g. 1,8,64)', batchSizesOption)
        .option('--iterations <n>', 'timed iterations per batch size', (v) => Number(v))
        .option('--json', 'print the bench report as JSON'),
    ),
  ).action(async (host: string, dir: string, opts: RemoteBuildFlags) => {
    process.exitCode = await runRemoteBuild(host, path.resolve(dir), { ...opts, build: true }, out, err);
  });
  withRemoteOptions(
    withThroughputOptions(
      remote
        .command('bench')
        .description(
          'sync a build directory to HOST, make there, and benchmark on every GPU: latency, or with --instances/--threads ' +
            'throughput (images/s, P50/P95/P99); results in DIR/bench.json',
        )
        .argument('<host>', "ssh config alias, user@host[:port], or 'local'")
        .argument('<dir>', 'build directory')
        .option('--batch-sizes <batch sizes>', 'batch sizes to benchmark (default 1,8,64)', batchSizesOption)
        .option('--iterations <n>', 'latency: timed iterations per batch size', (v) => Number(v))
        .option('--json', 'print the bench report as JSON'),
    ),
  ).action(async (host: string, dir: string, opts: RemoteBuildFlags & { batchSizes?: number[] }) => {
    const flags = { ...opts, build: true, bench: opts.batchSizes ?? [1, 8, 64] };
    process.exitCode = await runRemoteBuild(host, path.resolve(dir), flags, out, err);
  });

  withVerifyOptions(
    withRemoteOptions(
      remote
        .command('verify')
        .description(
          'sync a build directory and the ONNX model to HOST, make there, run the compiled model and the model through onnxruntime ' +
            '(python3, else onnxruntime-node, else the interpreter) on the same random inputs, and compare every output; DIR/verify.json',
        )
        .argument('<host>', "ssh config alias, user@host[:port], or 'local'")
        .argument('<dir>', 'build directory (with weights.safetensors)')
        .requiredOption('--model <model.onnx>', 'the ONNX model the build was compiled from, with its weights')
        .option('--batch <batch sizes>', 'batch sizes to compare (default 1,8)', batchSizesOption)
        .option('--json', 'print the verify report as JSON'),
    ),
  ).action(async (host: string, dir: string, opts: RemoteBuildFlags & { model: string; batch?: number[] }) => {
    process.exitCode = await runRemoteBuild(
      host,
      path.resolve(dir),
      { ...opts, build: true, verifyModel: opts.model, verifyBatch: opts.batch },
      out,
      err,
    );
  });

  program
    .command('agent')
    .description('run the remote agent here: JSON-RPC on stdin/stdout (--stdio); what `--remote` starts on a host')
    .helpOption(false)
    .passThroughOptions()
    .allowUnknownOption()
    .argument('[args...]', '--stdio [--work-dir DIR] | --version')
    .action((args: string[]) => runAgentCommand(args));

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
    .addOption(
      new Option('--theme <theme>', "initial theme of the page: light, dark or high-contrast (default: the browser's)").choices(
        GRAPH_THEMES,
      ),
    )
    .action((dir: string, opts: { profile?: string[]; html: string; theme?: GraphTheme }) => {
      process.exitCode = runGraph(dir, opts, out, err);
    });

  program
    .command('modules')
    .description(
      "per-module time table from saved files: ours (a per-op profile summed over graph.json's module scopes) against " +
        "PyTorch eager's (module_times.py), with the errors of DIR/verify-per-node.json when present",
    )
    .argument('<dir>', 'a compile output directory (holding graph.json) or a graph.json file')
    .option('--profile <profile.json>', 'our per-op profile of this compile (ait-profile: bench, ait_model.py profile(), timed verify)')
    .option('--torch-times <times.json>', "PyTorch's module times (scripts/gpu/module_times.py, DIR/torch-module-times.json)")
    .option('--depth <n>', 'depth of the table (default 2)', wrapped(positiveInteger('--depth')))
    .option('--json', 'print the rows as JSON')
    .action((dir: string, opts: ModulesCommandOptions) => {
      process.exitCode = runModules(dir, opts, out, err);
    });

  const cache = program
    .command('cache')
    .description('the profile cache of kernel measurements (default: $AIT_PROFILE_CACHE, else ~/.cache/ait-studio/profiles.sqlite)');
  cache
    .command('list')
    .description('per device (GPU, SMs, driver, CUDA, CUTLASS): op signatures, measurements, last update')
    .option('--json', 'print the list as JSON')
    .option('--cache <file>', 'the cache file')
    .action(async (opts: CacheListOptions) => {
      process.exitCode = await runCacheList(opts, out);
    });
  cache
    .command('prune')
    .description('remove measurements: those of matching devices, older ones, or all (the filters given must all hold)')
    .option('--device <gpu>', 'only devices whose GPU name holds this (case-insensitive), e.g. H100')
    .option('--older-than <days>', 'only measurements stored more than this many days ago', wrapped(parseDays))
    .option('--all', 'every measurement (needed when neither --device nor --older-than is given)')
    .option('--cache <file>', 'the cache file')
    .option('--json', 'print the result as JSON')
    .action(async (opts: CachePruneOptions) => {
      process.exitCode = await runCachePrune(opts, out);
    });

  return program;
}

/**
 * One line for any error that reaches the top: a CompileError's diagnostics as they are; a usage error of commander
 * as `cli.bad-option`; anything else (a defect) as `error [internal]` with its message, never a stack trace.
 * Returns the exit code.
 */
export function reportError(e: unknown, err: (s: string) => void): number {
  if (e instanceof CompileError) {
    for (const d of e.diagnostics) err(formatDiagnostic(d));
    return 1;
  }
  if (e instanceof CommanderError) {
    // --help and --version end the parse with exit code 0; their text is already written
    if (e.exitCode === 0) return 0;
    err(
      formatDiagnostic(
        error(
          'cli.bad-option',
          `${e.message
            .replace(/^error: /, '')
            .replace(/\s+/g, ' ')
            .trim()} (see ait --help)`,
        ),
      ),
    );
    return e.exitCode || 1;
  }
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  err(`error [internal] an unexpected failure (a defect of ait; please report it): ${message.replace(/\s+/g, ' ').trim()}`);
  return 1;
}

export async function main(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(s + '\n'),
  err: (s: string) => void = (s) => process.stderr.write(s + '\n'),
): Promise<void> {
  try {
    await buildProgram(out, err).parseAsync(argv);
  } catch (e) {
    process.exitCode = reportError(e, err);
  }
}

if (require.main === module) void main(process.argv);
