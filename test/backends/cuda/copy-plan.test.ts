/**
 * The host-side plans of tensor_ops.cuh's strided copy and concat (kernels/copy_plan.h: coalesced axes, 16-byte units,
 * 32/64-bit indices). No GPU here: the real plan functions are built with g++ (tests/copy_plan_dump.cc prints them),
 * and the kernels' index arithmetic is replayed in TypeScript on each plan — in uint32 arithmetic (wrapping, as the
 * kernel's unsigned indices do) when the plan says 32 bits — then compared, for every output element, with the
 * per-element formula the kernels used before planning. The GPU check of the kernels is tests/kernel_check.cu.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireTool } from '../../helpers/tools';

const CUDA = path.resolve(__dirname, '..', '..', '..', 'compiler', 'backends', 'cuda');
const HAVE_GXX = spawnSync('sh', ['-c', 'command -v g++'], { encoding: 'utf8' }).status === 0;

interface CopyCase {
  name: string;
  shape: number[];
  strides: number[];
  offset: number;
  bytes: number; // element size
  aligned?: boolean; // default true
  expect?: { rank?: number; vector?: number; wide?: boolean };
}

interface CopyPlan {
  rank: number;
  total: bigint;
  vector: number;
  wide: boolean;
  offset: bigint;
  shape: bigint[];
  strides: bigint[];
}

interface ConcatCase {
  name: string;
  sizes: number[];
  outer: number;
  inner: number;
  outputAxis?: number; // 0: the sum of sizes
  outputAxisOffset?: number;
  bytes: number;
  aligned?: boolean;
  expect?: { vector?: number; wide?: boolean };
}

interface ConcatPlan {
  total: bigint;
  vector: number;
  wide: boolean;
  row: bigint;
  outRow: bigint;
  outOffset: bigint;
  outer: bigint;
  sizes: bigint[];
}

let tool = '';

/** Runs the dump tool on `lines`; one output line per input line. */
function dump(lines: string[]): string[] {
  const r = spawnSync(tool, [], { input: lines.join('\n') + '\n', encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout.trim().split('\n');
  assert.equal(out.length, lines.length);
  return out;
}

function copyLine(c: CopyCase): string {
  return ['copy', c.shape.length, ...c.shape, ...c.strides, c.offset, c.bytes, c.aligned === false ? 0 : 1].join(' ');
}

function parseCopy(line: string): CopyPlan | undefined {
  if (line === 'invalid') return undefined;
  const f = line.split(' ');
  assert.equal(f[0], 'copy');
  const rank = Number(f[1]);
  const values = f.slice(6).map(BigInt);
  return {
    rank,
    total: BigInt(f[2]),
    vector: Number(f[3]),
    wide: f[4] === '1',
    offset: BigInt(f[5]),
    shape: values.slice(0, rank),
    strides: values.slice(rank, 2 * rank),
  };
}

function concatLine(c: ConcatCase): string {
  return [
    'concat',
    c.sizes.length,
    ...c.sizes,
    c.outer,
    c.inner,
    c.outputAxis ?? 0,
    c.outputAxisOffset ?? 0,
    c.bytes,
    c.aligned === false ? 0 : 1,
  ].join(' ');
}

function parseConcat(line: string): ConcatPlan | undefined {
  if (line === 'invalid') return undefined;
  const f = line.split(' ');
  assert.equal(f[0], 'concat');
  const n = Number(f[1]);
  return {
    total: BigInt(f[2]),
    vector: Number(f[3]),
    wide: f[4] === '1',
    row: BigInt(f[5]),
    outRow: BigInt(f[6]),
    outOffset: BigInt(f[7]),
    outer: BigInt(f[8]),
    sizes: f.slice(9, 9 + n).map(BigInt),
  };
}

/** The kernels' Index arithmetic: uint32 (wrapping) or 64-bit. */
function indexMath(wide: boolean): (v: bigint) => bigint {
  return wide ? (v) => BigInt.asUintN(64, v) : (v) => BigInt.asUintN(32, v);
}

/** Before planning: output element i reads in[offset + sum(c_d * strides[d])]. */
function copyReference(c: CopyCase): bigint[] {
  const total = c.shape.reduce((a, b) => a * b, 1);
  const out: bigint[] = [];
  for (let i = 0; i < total; ++i) {
    let rest = i;
    let source = BigInt(c.offset);
    for (let d = c.shape.length - 1; d >= 0; --d) {
      source += BigInt(rest % c.shape[d]) * BigInt(c.strides[d]);
      rest = Math.floor(rest / c.shape[d]);
    }
    out.push(source);
  }
  return out;
}

/** strided_copy_kernel on the plan (its loop, in its index width), then each unit's lanes as elements. */
function copyReplay(p: CopyPlan): bigint[] {
  const m = indexMath(p.wide);
  const v = BigInt(p.vector);
  const out: bigint[] = [];
  for (let i = 0n; i < p.total; ++i) {
    let rest = i;
    let source = m(p.offset);
    for (let d = p.rank - 1; d > 0; --d) {
      const size = m(p.shape[d]);
      const q = rest / size;
      source = m(source + m(m(rest - q * size) * m(p.strides[d])));
      rest = q;
    }
    source = m(source + m(rest * m(p.strides[0])));
    for (let lane = 0n; lane < v; ++lane) out.push(source * v + lane);
  }
  return out;
}

/** Before planning: output element (whole output) -> `input:index`, for a launch writing its slab. */
function concatReference(c: ConcatCase): Map<bigint, string> {
  const total = c.sizes.reduce((a, b) => a + b, 0);
  const outAxis = c.outputAxis || total;
  const map = new Map<bigint, string>();
  for (let o = 0; o < c.outer; ++o) {
    let axis = c.outputAxisOffset ?? 0;
    c.sizes.forEach((size, k) => {
      for (let a = 0; a < size; ++a, ++axis)
        for (let i = 0; i < c.inner; ++i) map.set(BigInt((o * outAxis + axis) * c.inner + i), `${k}:${(o * size + a) * c.inner + i}`);
    });
  }
  return map;
}

/** concat_kernel on the plan, each unit's lanes as elements. */
function concatReplay(p: ConcatPlan): Map<bigint, string> {
  const m = indexMath(p.wide);
  const v = BigInt(p.vector);
  const map = new Map<bigint, string>();
  for (let i = 0n; i < p.total; ++i) {
    const o = i / p.row;
    const r = m(i - o * p.row);
    let inside = r;
    let k = 0;
    while (k < p.sizes.length - 1 && inside >= p.sizes[k]) inside -= p.sizes[k++];
    const target = m(m(o * p.outRow) + p.outOffset + r);
    const source = m(o * p.sizes[k] + inside);
    for (let lane = 0n; lane < v; ++lane) {
      assert.ok(!map.has(target * v + lane), `output element ${target * v + lane} written twice`);
      map.set(target * v + lane, `${k}:${source * v + lane}`);
    }
  }
  return map;
}

/** Row-major strides of `dims`, permuted: the copy a Transpose lowers to. */
function transpose(name: string, dims: number[], perm: number[], bytes = 2, expect?: CopyCase['expect']): CopyCase {
  const row: number[] = dims.map(() => 1);
  for (let d = dims.length - 2; d >= 0; --d) row[d] = row[d + 1] * dims[d + 1];
  return { name, shape: perm.map((p) => dims[p]), strides: perm.map((p) => row[p]), offset: 0, bytes, expect };
}

/** A slice of row-major `dims`: per axis [start, step, count]. */
function slice(name: string, dims: number[], axes: [number, number, number][], bytes = 2, expect?: CopyCase['expect']): CopyCase {
  const row: number[] = dims.map(() => 1);
  for (let d = dims.length - 2; d >= 0; --d) row[d] = row[d + 1] * dims[d + 1];
  return {
    name,
    shape: axes.map((a) => a[2]),
    strides: axes.map((a, d) => a[1] * row[d]),
    offset: axes.reduce((s, a, d) => s + a[0] * row[d], 0),
    bytes,
    expect,
  };
}

const COPY_CASES: CopyCase[] = [
  // Swin's cyclic shift (Slice over H, then W, of NHWC) and window partition / reverse, patch merging
  slice(
    'swin shift, H 3:',
    [2, 8, 8, 96],
    [
      [0, 1, 2],
      [3, 1, 5],
      [0, 1, 8],
      [0, 1, 96],
    ],
    2,
    { rank: 2, vector: 8, wide: false },
  ),
  slice(
    'swin shift, W :3',
    [2, 8, 8, 96],
    [
      [0, 1, 2],
      [0, 1, 8],
      [0, 1, 3],
      [0, 1, 96],
    ],
    2,
    { rank: 2, vector: 8 },
  ),
  transpose('swin window partition [b,8,7,8,7,96] perm 0,1,3,2,4,5', [1, 8, 7, 8, 7, 96], [0, 1, 3, 2, 4, 5], 2, {
    rank: 4,
    vector: 8,
  }),
  transpose('swin window partition, batch 2, small', [2, 2, 3, 2, 3, 16], [0, 1, 3, 2, 4, 5], 2, { rank: 4, vector: 8 }),
  transpose('swin patch merge [b,28,2,28,2,96] perm 0,1,3,4,2,5', [1, 28, 2, 28, 2, 96], [0, 1, 3, 4, 2, 5], 2, {
    rank: 4,
    vector: 8,
  }),
  transpose('swin patch merge, fp32', [2, 4, 2, 4, 2, 12], [0, 1, 3, 4, 2, 5], 4, { rank: 4, vector: 4 }),
  transpose('nchw -> nhwc (no contiguous run: elements)', [2, 3, 4, 5], [0, 2, 3, 1], 2, { rank: 3, vector: 1 }),
  transpose('identity permutation: one run', [2, 3, 4, 8], [0, 1, 2, 3], 2, { rank: 1, vector: 8 }),
  transpose('rank 6 odd perm', [2, 3, 5, 1, 4, 7], [5, 3, 1, 0, 4, 2], 2, { vector: 1 }),
  transpose('int64 last two swapped', [3, 4, 6], [0, 2, 1], 8, { vector: 1 }),
  transpose('uint8 merge of 16-byte runs', [3, 4, 2, 16], [1, 0, 2, 3], 1, { rank: 3, vector: 16 }),
  // negative steps: reversing an outer axis keeps the vector path; reversing the innermost one does not
  slice(
    'H ::-1 of NHWC',
    [2, 5, 3, 16],
    [
      [0, 1, 2],
      [4, -1, 5],
      [0, 1, 3],
      [0, 1, 16],
    ],
    2,
    { vector: 8 },
  ),
  slice(
    'C ::-1 of NHWC',
    [2, 3, 4, 13],
    [
      [0, 1, 2],
      [0, 1, 3],
      [0, 1, 4],
      [12, -1, 13],
    ],
    2,
    { vector: 1 },
  ),
  slice(
    '10:2:-3 and ::2',
    [4, 30, 21],
    [
      [1, 1, 3],
      [10, -3, 3],
      [0, 2, 11],
    ],
    2,
    { vector: 1 },
  ),
  slice(
    'C ::2 of 32 (stride 2: elements)',
    [2, 32],
    [
      [0, 1, 2],
      [0, 2, 16],
    ],
    2,
    { vector: 1 },
  ),
  slice(
    'C 1::2 (stride 2: elements)',
    [2, 3, 16],
    [
      [0, 1, 2],
      [0, 1, 3],
      [1, 2, 8],
    ],
    2,
    { vector: 1 },
  ),
  // not a whole vector: odd run, odd offset, unaligned pointers
  slice(
    'run of 12 fp16 (not 8k)',
    [3, 5, 12],
    [
      [0, 1, 3],
      [1, 1, 4],
      [0, 1, 12],
    ],
    2,
    { vector: 1 },
  ),
  slice(
    'run of 12 in rows of 16',
    [3, 16],
    [
      [0, 1, 3],
      [0, 1, 12],
    ],
    2,
    { vector: 1 },
  ),
  slice(
    'offset not a vector',
    [3, 5, 16],
    [
      [0, 1, 3],
      [0, 1, 5],
      [1, 1, 8],
    ],
    2,
    { vector: 1 },
  ),
  {
    ...slice(
      'aligned but pointers not',
      [2, 4, 16],
      [
        [0, 1, 2],
        [1, 1, 3],
        [0, 1, 16],
      ],
      2,
    ),
    aligned: false,
    expect: { vector: 1 },
  },
  // size-1 axes, broadcast (zero strides, as Tile/Expand lower), a scalar, an empty copy
  { name: 'size-1 axes dropped', shape: [1, 3, 1, 8], strides: [999, 8, 5, 1], offset: 0, bytes: 2, expect: { rank: 1, vector: 8 } },
  { name: 'zero stride (repeat)', shape: [3, 2, 8], strides: [8, 0, 1], offset: 8, bytes: 2, expect: { vector: 8 } },
  { name: 'all zero strides', shape: [4, 5], strides: [0, 0], offset: 3, bytes: 2, expect: { rank: 1, vector: 1 } },
  { name: 'scalar (rank 0)', shape: [], strides: [], offset: 7, bytes: 4, expect: { rank: 1, vector: 1 } },
  // 64-bit indices: source indices at or past 2^31 (few elements, far apart), and just below it (32 bits)
  { name: 'source past 2^31', shape: [2, 3], strides: [2 ** 31, 1], offset: 5, bytes: 1, expect: { wide: true, vector: 1 } },
  { name: 'source past 2^32', shape: [3, 2], strides: [2 ** 32 + 1, 1], offset: 1, bytes: 4, expect: { wide: true } },
  {
    name: 'source past 2^31, negative step',
    shape: [3, 2],
    strides: [-(2 ** 30), 1],
    offset: 2 ** 31 + 4,
    bytes: 2,
    expect: { wide: true },
  },
  { name: 'max source 2^31 - 1', shape: [2, 3], strides: [2 ** 31 - 3, 1], offset: 0, bytes: 2, expect: { wide: false } },
  {
    name: 'vector units bring it below 2^31',
    shape: [2, 16],
    strides: [2 ** 31, 1],
    offset: 16,
    bytes: 1,
    expect: { wide: false, vector: 16 },
  },
  { name: 'vector units still past 2^31', shape: [2, 16], strides: [2 ** 35, 1], offset: 16, bytes: 1, expect: { wide: true, vector: 16 } },
  { name: 'negative stride wraps in uint32', shape: [4, 8], strides: [-64, 1], offset: 1000, bytes: 2, expect: { wide: false, vector: 8 } },
];

const CONCAT_CASES: ConcatCase[] = [
  { name: 'swin shift concat over H', sizes: [5, 3], outer: 2, inner: 8 * 96, bytes: 2, expect: { vector: 8, wide: false } },
  { name: 'NHWC channels, multiples of 8', sizes: [16, 8, 24], outer: 6, inner: 1, bytes: 2, expect: { vector: 8 } },
  { name: 'NHWC channels, fp32 multiples of 4', sizes: [4, 12], outer: 5, inner: 1, bytes: 4, expect: { vector: 4 } },
  { name: 'odd channels: elements', sizes: [3, 5, 1], outer: 4, inner: 1, bytes: 2, expect: { vector: 1 } },
  { name: 'odd sizes, whole output rows', sizes: [3, 5], outer: 4, inner: 1, bytes: 2, expect: { vector: 1 } },
  { name: 'odd sizes, inner makes whole vectors', sizes: [3, 5], outer: 3, inner: 8, bytes: 2, expect: { vector: 8 } },
  { name: 'inner 49 (NCHW 7x7)', sizes: [2, 3, 4], outer: 2, inner: 49, bytes: 2, expect: { vector: 1 } },
  { name: 'unaligned pointers', sizes: [8, 8], outer: 3, inner: 1, bytes: 2, aligned: false, expect: { vector: 1 } },
  {
    name: 'a later chunk at a vector offset',
    sizes: [8, 16],
    outer: 3,
    inner: 1,
    outputAxis: 40,
    outputAxisOffset: 16,
    bytes: 2,
    expect: { vector: 8 },
  },
  {
    name: 'a later chunk at an odd offset',
    sizes: [8, 16],
    outer: 3,
    inner: 1,
    outputAxis: 41,
    outputAxisOffset: 17,
    bytes: 2,
    expect: { vector: 1 },
  },
  { name: 'int64 pairs', sizes: [2, 4], outer: 3, inner: 1, bytes: 8, expect: { vector: 2 } },
  { name: 'one input, rank 1', sizes: [24], outer: 1, inner: 1, bytes: 2, expect: { vector: 8 } },
  { name: 'eight inputs, one of size 0', sizes: [1, 0, 2, 3, 1, 1, 2, 5], outer: 2, inner: 3, bytes: 4, expect: { vector: 1 } },
];

interface RollCase {
  name: string;
  shape: number[];
  shifts: number[];
  bytes: number;
  aligned?: boolean;
  expect?: { rank?: number; vector?: number; wide?: boolean };
}

interface RollPlan {
  rank: number;
  total: bigint;
  vector: number;
  wide: boolean;
  shape: bigint[];
  shift: bigint[];
  stride: bigint[];
}

function rollLine(c: RollCase): string {
  return ['roll', c.shape.length, ...c.shape, ...c.shifts, c.bytes, c.aligned === false ? 0 : 1].join(' ');
}

function parseRoll(line: string): RollPlan | undefined {
  if (line === 'invalid') return undefined;
  const f = line.split(' ');
  assert.equal(f[0], 'roll');
  const rank = Number(f[1]);
  const values = f.slice(5).map(BigInt);
  return {
    rank,
    total: BigInt(f[2]),
    vector: Number(f[3]),
    wide: f[4] === '1',
    shape: values.slice(0, rank),
    shift: values.slice(rank, 2 * rank),
    stride: values.slice(2 * rank, 3 * rank),
  };
}

/** torch.roll's definition: output element i reads x[(c_d − shift_d) mod n_d] on every axis. */
function rollReference(c: RollCase): bigint[] {
  const total = c.shape.reduce((a, b) => a * b, 1);
  const out: bigint[] = [];
  for (let i = 0; i < total; ++i) {
    let rest = i;
    let source = 0;
    let stride = 1;
    for (let d = c.shape.length - 1; d >= 0; --d) {
      const n = c.shape[d];
      const at = rest % n;
      rest = Math.floor(rest / n);
      source += ((((at - c.shifts[d]) % n) + n) % n) * stride;
      stride *= n;
    }
    out.push(BigInt(source));
  }
  return out;
}

/** roll_kernel on the plan (its loop, in its index width), each unit's lanes as elements. */
function rollReplay(p: RollPlan): bigint[] {
  const m = indexMath(p.wide);
  const v = BigInt(p.vector);
  const out: bigint[] = [];
  for (let i = 0n; i < p.total; ++i) {
    let rest = i;
    let source = 0n;
    for (let d = p.rank - 1; d >= 0; --d) {
      const size = m(p.shape[d]);
      const shift = m(p.shift[d]);
      const q = d > 0 ? rest / size : 0n; // the outermost coordinate is what is left
      const at = m(rest - q * size);
      source = m(source + m((at >= shift ? m(at - shift) : m(at + size - shift)) * m(p.stride[d])));
      rest = q;
    }
    for (let lane = 0n; lane < v; ++lane) out.push(source * v + lane);
  }
  return out;
}

const ROLL_CASES: RollCase[] = [
  // Swin's shifted windows: NHWC, H and W rolled, channels whole 16-byte units; the batch axis stays its own
  { name: 'swin H,W by -3', shape: [2, 8, 8, 96], shifts: [0, -3, -3, 0], bytes: 2, expect: { rank: 4, vector: 8, wide: false } },
  { name: 'swin H,W by +3, batch 1', shape: [1, 8, 8, 32], shifts: [0, 3, 3, 0], bytes: 2, expect: { rank: 3, vector: 8 } },
  { name: 'H only: W and C merge', shape: [2, 6, 5, 16], shifts: [0, 2, 0, 0], bytes: 2, expect: { rank: 3, vector: 8 } },
  { name: 'fp32: 4 per unit', shape: [3, 5, 12], shifts: [0, -1, 0], bytes: 4, expect: { rank: 3, vector: 4 } },
  // the innermost axis shifted: whole vectors (units), or not (elements)
  { name: 'C by 8 of 24', shape: [3, 24], shifts: [0, 8], bytes: 2, expect: { rank: 2, vector: 8 } },
  { name: 'C by 3 of 24', shape: [3, 24], shifts: [0, 3], bytes: 2, expect: { rank: 2, vector: 1 } },
  { name: 'run of 12 fp16 (not 8k)', shape: [4, 7, 12], shifts: [0, 2, 0], bytes: 2, expect: { vector: 1 } },
  { name: 'unaligned pointers', shape: [2, 4, 16], shifts: [0, 1, 0], bytes: 2, aligned: false, expect: { vector: 1 } },
  // shifts of any sign and size are taken mod n; a shift of n is none (the axis merges)
  { name: 'shift past the size', shape: [5, 7], shifts: [12, -15], bytes: 4, expect: { rank: 2 } },
  { name: 'shift n is none', shape: [4, 6, 8], shifts: [4, 0, 0], bytes: 2, expect: { rank: 1, vector: 8 } },
  { name: 'size-1 axes dropped', shape: [1, 5, 1, 8], shifts: [3, 2, 1, 0], bytes: 2, expect: { rank: 2, vector: 8 } },
  { name: 'rank 6, every axis', shape: [2, 3, 4, 5, 3, 2], shifts: [1, -1, 2, -2, 1, 1], bytes: 1, expect: { rank: 6, vector: 1 } },
  { name: 'uint8, 16 per unit', shape: [3, 5, 32], shifts: [1, 2, 16], bytes: 1, expect: { vector: 16 } },
  { name: 'int64 pairs', shape: [3, 4, 6], shifts: [0, 1, 2], bytes: 8, expect: { vector: 2 } },
  { name: 'scalar (rank 0)', shape: [], shifts: [], bytes: 4, expect: { rank: 1, vector: 1 } },
];

describe('cuda copy plans (copy_plan.h, built with g++): strided copy, concat and roll', function () {
  this.timeout(120_000);

  before(function () {
    requireTool(this, 'g++', HAVE_GXX, 'apt-get install g++');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-copy-plan-'));
    tool = path.join(dir, 'copy_plan_dump');
    const build = spawnSync(
      'g++',
      [
        '-std=c++17',
        '-O1',
        '-Wall',
        '-Werror',
        `-I${path.join(CUDA, 'kernels')}`,
        path.join(CUDA, 'tests', 'copy_plan_dump.cc'),
        '-o',
        tool,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(build.status, 0, build.stderr);
  });

  it('a planned strided copy reads, for every output element, what the per-element formula reads', function () {
    const plans = dump(COPY_CASES.map(copyLine)).map(parseCopy);
    COPY_CASES.forEach((c, n) => {
      const p = plans[n];
      assert.ok(p, `${c.name}: refused`);
      assert.deepEqual(copyReplay(p), copyReference(c), c.name);
      if (c.expect?.rank !== undefined) assert.equal(p.rank, c.expect.rank, `${c.name}: rank`);
      if (c.expect?.vector !== undefined) assert.equal(p.vector, c.expect.vector, `${c.name}: vector`);
      if (c.expect?.wide !== undefined) assert.equal(p.wide, c.expect.wide, `${c.name}: 64-bit`);
    });
  });

  it('the 32-bit replay goes wrong past 2^32 where the plan picks 64 bits (the width is needed)', function () {
    const far = COPY_CASES.filter((k) => k.name.includes('past 2^32'));
    assert.ok(far.length > 0);
    for (const c of far) {
      const p = parseCopy(dump([copyLine(c)])[0]);
      assert.ok(p);
      assert.notDeepEqual(copyReplay({ ...p, wide: false }), copyReference(c), c.name);
    }
  });

  it('at batch 8, Swin-S stage 1 tensors plan as few-axis 16-byte copies with 32-bit indices', function () {
    const big = [
      slice(
        'H 3:',
        [8, 56, 56, 96],
        [
          [0, 1, 8],
          [3, 1, 53],
          [0, 1, 56],
          [0, 1, 96],
        ],
      ),
      transpose('window partition', [8, 8, 7, 8, 7, 96], [0, 1, 3, 2, 4, 5]),
      transpose('patch merge', [8, 28, 2, 28, 2, 96], [0, 1, 3, 4, 2, 5]),
    ];
    const plans = dump(big.map(copyLine)).map(parseCopy);
    assert.deepEqual(
      plans.map((p) => p && [p.rank, p.vector, p.wide, p.total]),
      [
        [2, 8, false, BigInt((8 * 53 * 56 * 96) / 8)],
        [4, 8, false, BigInt((8 * 56 * 56 * 96) / 8)],
        [4, 8, false, BigInt((8 * 56 * 56 * 96) / 8)],
      ],
    );
  });

  it('empty copies plan nothing; a rank past 6 or a source index below 0 is refused', function () {
    const lines = dump([
      copyLine({ name: 'empty', shape: [3, 0, 2], strides: [2, 2, 1], offset: 0, bytes: 2 }),
      copyLine({ name: 'negative size', shape: [3, -1], strides: [1, 1], offset: 0, bytes: 2 }),
      copyLine({ name: 'rank 7', shape: [1, 1, 1, 1, 1, 1, 2], strides: [1, 1, 1, 1, 1, 1, 1], offset: 0, bytes: 2 }),
      copyLine({ name: 'below 0', shape: [3], strides: [-1], offset: 1, bytes: 2 }),
    ]);
    assert.deepEqual(
      lines.slice(0, 2).map((l) => parseCopy(l)?.total),
      [0n, 0n],
    );
    assert.deepEqual(lines.slice(2), ['invalid', 'invalid']);
  });

  it('a planned roll reads, for every output element, what torch.roll reads', function () {
    const plans = dump(ROLL_CASES.map(rollLine)).map(parseRoll);
    ROLL_CASES.forEach((c, n) => {
      const p = plans[n];
      assert.ok(p, `${c.name}: refused`);
      assert.deepEqual(rollReplay(p), rollReference(c), c.name);
      if (c.expect?.rank !== undefined) assert.equal(p.rank, c.expect.rank, `${c.name}: rank`);
      if (c.expect?.vector !== undefined) assert.equal(p.vector, c.expect.vector, `${c.name}: vector`);
      if (c.expect?.wide !== undefined) assert.equal(p.wide, c.expect.wide, `${c.name}: 64-bit`);
    });
  });

  it('roll: Swin-S stage 1 at batch 8 is 16-byte units with 32-bit indices; 64 bits from 2^31 units; empty, rank 7 refused', function () {
    const lines = dump([
      rollLine({ name: 'swin', shape: [8, 56, 56, 96], shifts: [0, -3, -3, 0], bytes: 2 }),
      rollLine({ name: '2^31 units', shape: [2 ** 16, 2 ** 15, 3], shifts: [0, 1, 1], bytes: 2 }),
      rollLine({ name: 'just below', shape: [2 ** 16, 2 ** 15 - 1], shifts: [0, 1], bytes: 1 }),
      rollLine({ name: 'empty', shape: [3, 0, 2], shifts: [1, 0, 0], bytes: 2 }),
      rollLine({ name: 'rank 7', shape: [1, 1, 1, 1, 1, 1, 2], shifts: [0, 0, 0, 0, 0, 0, 1], bytes: 2 }),
    ]);
    assert.deepEqual(
      lines.slice(0, 4).map((l) => {
        const p = parseRoll(l);
        return p && [p.rank, p.vector, p.wide, p.total];
      }),
      [
        [4, 8, false, BigInt((8 * 56 * 56 * 96) / 8)],
        [3, 1, true, BigInt(2 ** 31 * 3)],
        [2, 1, false, BigInt(2 ** 16 * (2 ** 15 - 1))],
        [0, 1, false, 0n],
      ],
    );
    assert.equal(lines[4], 'invalid');
  });

  it('a planned concat writes every output element from the input element the per-element formula names', function () {
    const plans = dump(CONCAT_CASES.map(concatLine)).map(parseConcat);
    CONCAT_CASES.forEach((c, n) => {
      const p = plans[n];
      assert.ok(p, `${c.name}: refused`);
      assert.deepEqual(concatReplay(p), concatReference(c), c.name);
      if (c.expect?.vector !== undefined) assert.equal(p.vector, c.expect.vector, `${c.name}: vector`);
      if (c.expect?.wide !== undefined) assert.equal(p.wide, c.expect.wide, `${c.name}: 64-bit`);
    });
  });

  it('concat: 64-bit indices once the output passes 2^31 units; bad input tables are refused', function () {
    const lines = dump([
      concatLine({ name: 'big', sizes: [2 ** 20, 2 ** 20], outer: 2 ** 10, inner: 1, bytes: 2 }), // 2^31 elements, 2^28 vectors
      concatLine({ name: 'big odd', sizes: [2 ** 20 + 1, 2 ** 20], outer: 2 ** 10, inner: 1, bytes: 2 }),
      concatLine({ name: 'chunk', sizes: [7], outer: 2 ** 16, inner: 1, outputAxis: 2 ** 15 + 7, outputAxisOffset: 2 ** 15, bytes: 4 }),
      concatLine({ name: 'nine', sizes: [1, 1, 1, 1, 1, 1, 1, 1, 1], outer: 1, inner: 1, bytes: 2 }),
      concatLine({ name: 'past the output', sizes: [4, 4], outer: 1, inner: 1, outputAxis: 10, outputAxisOffset: 3, bytes: 2 }),
      concatLine({ name: 'negative size', sizes: [4, -1], outer: 1, inner: 1, bytes: 2 }),
    ]);
    assert.deepEqual(
      lines.slice(0, 3).map((l) => {
        const p = parseConcat(l);
        return p && [p.vector, p.wide];
      }),
      [
        [8, false],
        [1, true],
        [1, true], // 7 elements written, but rows of 2^15 + 7 reach past 2^31
      ],
    );
    assert.deepEqual(lines.slice(3), ['invalid', 'invalid', 'invalid']);
  });
});
