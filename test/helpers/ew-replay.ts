/**
 * A CPU replay of the elementwise functors the code generator emits (codegen/elementwise.ts → kernels/elementwise.cuh):
 * parses the C++ functor expression (`ew::make_chain(…)` or `ew::make_dag<N>(…)`) and evaluates it per output
 * element, mirroring each functor's definition in elementwise.cuh, on inputs broadcast as the kernels read them. Tests
 * compare it with the interpreter, so a wrong slot, operand order or functor in the generated text fails on the CPU.
 * The functor semantics here are a hand copy of the header's; the GPU check (kernel_check.cu) covers the header.
 */
import { TensorValue, numeric, stridesOf } from '../../compiler/ir/tensor';

/** A value of an initializer: a number, or a braced list. */
type Init = number | Init[];

interface TypeNode {
  name: string;
  args: (TypeNode | number)[];
}

/** An evaluable functor: (running value, slots) → value. */
type Fn = (x: number, slots: number[]) => number;

function tokenize(text: string): string[] {
  const source = text.replace(/\/\*[\s\S]*?\*\//g, ' ');
  const tokens: string[] = [];
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*|\d+(?:\.\d*)?(?:e[-+]?\d+)?f?|[<>{}(),-])/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while (at < source.length && (m = re.exec(source))) {
    tokens.push(m[1]);
    at = re.lastIndex;
  }
  if (source.slice(at).trim() !== '') throw new Error(`cannot read functor text at '${source.slice(at, at + 40)}'`);
  return tokens;
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: string[]) {}

  private peek(): string | undefined {
    return this.tokens[this.i];
  }
  private next(expected?: string): string {
    const t = this.tokens[this.i++];
    if (t === undefined || (expected !== undefined && t !== expected))
      throw new Error(`functor text: expected '${expected ?? 'a token'}', got '${t}' at token ${this.i - 1}`);
    return t;
  }

  done(): boolean {
    return this.i === this.tokens.length;
  }

  /** A functor expression: make_chain / make_dag calls, or a type with its initializer. */
  functor(): Fn {
    const t = this.peek();
    if (t === 'ew::make_chain') {
      this.next();
      const fns = this.list('(', ')', () => this.functor());
      return (x, slots) => fns.reduce((v, f) => f(v, slots), x);
    }
    if (t === 'ew::make_dag') {
      this.next();
      this.next('<');
      const inputs = Number(this.next());
      this.next('>');
      const steps = this.list('(', ')', () => this.functor());
      return (_x, slots) => {
        const values = slots.slice(0, inputs);
        if (values.length !== inputs) throw new Error(`make_dag<${inputs}> over ${slots.length} inputs`);
        let v = 0;
        for (const step of steps) values.push((v = step(v, values)));
        return v;
      };
    }
    const type = this.type();
    const init = this.init();
    return instantiate(type, init);
  }

  private list<T>(open: string, close: string, item: () => T): T[] {
    this.next(open);
    const items: T[] = [];
    while (this.peek() !== close) {
      items.push(item());
      if (this.peek() === ',') this.next();
    }
    this.next(close);
    return items;
  }

  private type(): TypeNode {
    const name = this.next();
    if (!/^[A-Za-z_]/.test(name)) throw new Error(`functor text: expected a type, got '${name}'`);
    const args = this.peek() === '<' ? this.list('<', '>', () => (/^\d/.test(this.peek()!) ? Number(this.next()) : this.type())) : [];
    return { name, args };
  }

  private init(): Init[] {
    return this.list('{', '}', () => this.initItem());
  }

  private initItem(): Init {
    const t = this.peek()!;
    if (t === '{') return this.init();
    let sign = 1;
    if (t === '-') {
      this.next();
      sign = -1;
    }
    const v = this.next();
    if (v === 'INFINITY') return sign * Infinity;
    if (v === 'NAN') return NaN;
    if (v === 'true') return 1;
    if (v === 'false') return 0;
    if (v === 'INT64_MAX') return sign * 2 ** 63;
    if (v === 'INT64_MIN') return -(2 ** 63);
    if (v === 'int64_t') {
      const [inner] = this.init();
      return sign * (inner as number);
    }
    const n = Number(v.replace(/f$/, ''));
    if (Number.isNaN(n)) throw new Error(`functor text: bad value '${v}'`);
    return sign * n;
  }
}

const f32 = Math.fround;
const fmax = (a: number, b: number) => (Number.isNaN(a) ? b : Number.isNaN(b) ? a : Math.max(a, b));
const fmin = (a: number, b: number) => (Number.isNaN(a) ? b : Number.isNaN(b) ? a : Math.min(a, b));
const truthy = (v: number) => (v !== 0 ? 1 : 0);

/** ew::op::* of elementwise.cuh (integer behaviour where the header has an int64_t overload). */
function binaryOp(name: string): (a: number, b: number, integer: boolean) => number {
  switch (name) {
    case 'ew::op::Add':
      return (a, b) => a + b;
    case 'ew::op::Sub':
      return (a, b) => a - b;
    case 'ew::op::Mul':
      return (a, b) => a * b;
    case 'ew::op::Div':
      return (a, b, integer) => (integer ? (b === 0 ? 0 : Math.trunc(a / b)) : a / b);
    case 'ew::op::Mod':
      return (a, b) => {
        if (b === 0) return 0;
        const r = a % b;
        return r !== 0 && r < 0 !== b < 0 ? r + b : r;
      };
    case 'ew::op::FMod':
      return (a, b, integer) => (integer && b === 0 ? 0 : a % b);
    case 'ew::op::Max':
      return fmax;
    case 'ew::op::Min':
      return fmin;
    case 'ew::op::Equal':
      return (a, b) => (a === b ? 1 : 0);
    case 'ew::op::Less':
      return (a, b) => (a < b ? 1 : 0);
    case 'ew::op::LessOrEqual':
      return (a, b) => (a <= b ? 1 : 0);
    case 'ew::op::Greater':
      return (a, b) => (a > b ? 1 : 0);
    case 'ew::op::GreaterOrEqual':
      return (a, b) => (a >= b ? 1 : 0);
    case 'ew::op::And':
      return (a, b) => truthy(a) & truthy(b);
    case 'ew::op::Or':
      return (a, b) => truthy(a) | truthy(b);
    case 'ew::op::Xor':
      return (a, b) => truthy(a) ^ truthy(b);
    case 'ew::op::PRelu':
      return (x, slope) => (x < 0 ? slope * x : x);
    case 'ew::op::Pow':
      return (a, b) => a ** b;
    default:
      throw new Error(`replay: no ${name}`);
  }
}

let integerMath = false;

function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is enough for a replay compared with a tolerance
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

/** A functor of elementwise.cuh from its type and brace initializer. */
function instantiate(type: TypeNode, init: Init[]): Fn {
  const k = typeof type.args[0] === 'number' ? type.args[0] : -1;
  const p = init.map((v) => (typeof v === 'number' ? v : NaN));
  const sub = (i: number): Fn => {
    const t = type.args[i];
    if (typeof t === 'number') throw new Error(`replay: ${type.name} argument ${i} is not a type`);
    const operandInit = init[i - (type.name === 'ew::Select' ? 0 : 1)];
    return instantiate(t, Array.isArray(operandInit) ? operandInit : [operandInit]);
  };
  switch (type.name) {
    case 'ew::Input':
    case 'ew::In':
      return (_x, s) => s[k];
    case 'ew::Running':
      return (x) => x;
    case 'ew::Const':
      return () => p[0];
    case 'ew::AddInput':
      return (x, s) => x + s[k];
    case 'ew::SubInput':
      return (x, s) => x - s[k];
    case 'ew::InputSub':
      return (x, s) => s[k] - x;
    case 'ew::MulInput':
      return (x, s) => x * s[k];
    case 'ew::DivInput':
      return (x, s) => x / s[k];
    case 'ew::MaxInput':
      return (x, s) => fmax(x, s[k]);
    case 'ew::MinInput':
      return (x, s) => fmin(x, s[k]);
    case 'ew::AddConst':
      return (x) => x + p[0];
    case 'ew::MulConst':
      return (x) => x * p[0];
    case 'ew::PowConst':
      return (x) => (p[0] === 2 ? x * x : x ** p[0]);
    case 'ew::Clip':
    case 'ew::Clamp':
      return (x) => fmin(fmax(x, p[0]), p[1]);
    case 'ew::Relu':
      return (x) => fmax(x, 0);
    case 'ew::LeakyRelu':
      return (x) => (x >= 0 ? x : p[0] * x);
    case 'ew::Sigmoid':
      return (x) => 1 / (1 + Math.exp(-x));
    case 'ew::Silu':
      return (x) => x / (1 + Math.exp(-x));
    case 'ew::Tanh':
      return Math.tanh;
    case 'ew::Gelu':
      return (x) => 0.5 * x * (1 + erf(x * Math.SQRT1_2));
    case 'ew::GeluTanh':
      return (x) => 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case 'ew::HardSigmoid':
      return (x) => fmin(fmax(p[0] * x + p[1], 0), 1);
    case 'ew::HardSwish':
      return (x) => x * fmin(fmax(x / 6 + 0.5, 0), 1);
    case 'ew::Exp':
      return Math.exp;
    case 'ew::Sqrt':
      return Math.sqrt;
    case 'ew::Rsqrt':
      return (x) => 1 / Math.sqrt(x);
    case 'ew::Reciprocal':
      return (x) => 1 / x;
    case 'ew::Neg':
      return (x) => -x;
    case 'ew::Abs':
      return Math.abs;
    case 'ew::Erf':
      return erf;
    case 'ew::Not':
      return (x) => (x === 0 ? 1 : 0);
    case 'ew::ToBool':
      return truthy;
    case 'ew::Trunc':
      return Math.trunc;
    case 'ew::ToInt32':
      return (x) => x | 0;
    case 'ew::IsNaN':
      return (x) => (Number.isNaN(x) ? 1 : 0);
    case 'ew::IsInf':
      return (x) => ((p[0] && x === Infinity) || (p[1] && x === -Infinity) ? 1 : 0);
    case 'ew::Floor':
      return Math.floor;
    case 'ew::Ceil':
      return Math.ceil;
    case 'ew::Round':
      return (x) => {
        const r = Math.round(x);
        return Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
      };
    case 'ew::Log':
      return Math.log;
    case 'ew::Sin':
      return Math.sin;
    case 'ew::Cos':
      return Math.cos;
    case 'ew::Softplus':
      return (x) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
    case 'ew::Mish':
      return (x) => x * Math.tanh(x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
    case 'ew::Shrink':
      return (x) => (x < -p[0] ? x + p[1] : x > p[0] ? x - p[1] : 0);
    case 'ew::Tan':
      return Math.tan;
    case 'ew::Asin':
      return Math.asin;
    case 'ew::Acos':
      return Math.acos;
    case 'ew::Atan':
      return Math.atan;
    case 'ew::Sinh':
      return Math.sinh;
    case 'ew::Cosh':
      return Math.cosh;
    case 'ew::Asinh':
      return Math.asinh;
    case 'ew::Acosh':
      return Math.acosh;
    case 'ew::Atanh':
      return Math.atanh;
    case 'ew::Softsign':
      return (x) => x / (1 + Math.abs(x));
    case 'ew::Celu':
      return (x) => Math.max(0, x) + Math.min(0, p[0] * Math.expm1(x / p[0]));
    case 'ew::ThresholdedRelu':
      return (x) => (x > p[0] ? x : 0);
    case 'ew::Elu':
      return (x) => (x >= 0 ? x : p[0] * Math.expm1(x));
    case 'ew::Selu':
      return (x) => (x > 0 ? p[1] * x : p[1] * p[0] * Math.expm1(x));
    case 'ew::Sign':
      return (x) => (x > 0 ? 1 : x < 0 ? -1 : x);
    case 'ew::Binary': {
      const op = binaryOp((type.args[0] as TypeNode).name);
      const [a, b] = [sub(1), sub(2)];
      return (x, s) => op(a(x, s), b(x, s), integerMath);
    }
    case 'ew::Select': {
      const [c, a, b] = [sub(0), sub(1), sub(2)];
      return (x, s) => (c(x, s) !== 0 ? a(x, s) : b(x, s));
    }
    default:
      throw new Error(`replay: no functor ${type.name}`);
  }
}

/** Parses a functor expression as lower.ts emits it (functorOf of a chain or DAG). */
export function parseFunctor(text: string): Fn {
  const parser = new Parser(tokenize(text));
  const fn = parser.functor();
  if (!parser.done()) throw new Error('functor text: trailing tokens');
  return fn;
}

/**
 * The functor applied to every element of `outShape`, each input read as the kernels read it (right-aligned
 * broadcasting; the fp16 kernel's fixed kinds and kStrided all index this way). `integer`: int64 math (Div truncates).
 * Float math runs in double and the result is rounded to float32 (the GPU computes in float32: compare with a tolerance).
 */
export function replayElementwise(text: string, inputs: readonly TensorValue[], outShape: readonly number[], integer: boolean): number[] {
  const fn = parseFunctor(text);
  const count = outShape.reduce((a, b) => a * b, 1);
  const outStrides = stridesOf(outShape);
  const reads = inputs.map((t) => {
    const pad = outShape.length - t.shape.length;
    const strides = stridesOf(t.shape);
    // stride per output axis: 0 where the input broadcasts
    const perAxis = outShape.map((_, d) => (d < pad || t.shape[d - pad] === 1 ? 0 : strides[d - pad]));
    return { data: numeric(t), perAxis };
  });
  const out: number[] = [];
  integerMath = integer;
  for (let i = 0; i < count; i++) {
    const slots = reads.map(({ data, perAxis }) => {
      let offset = 0;
      let rest = i;
      outStrides.forEach((s, d) => {
        const c = Math.floor(rest / s);
        rest -= c * s;
        offset += c * perAxis[d];
      });
      return Number(data[offset]);
    });
    const v = fn(0, slots);
    out.push(integer ? v : f32(v));
  }
  return out;
}

/**
 * The kConcat load of kernels/elementwise.cuh (concat_piece, concat_source), for pieces of `extents` along the axis,
 * `inner` elements per coordinate of that axis and `span` (the axis's whole extent × inner) per outer index: the
 * piece element i of the concatenation is read from, and its index there. A hand copy of the header's arithmetic
 * (binary search over the pieces' starts included); the GPU check (kernel_check.cu) covers the header.
 */
export function concatLoadIndex(extents: readonly number[], inner: number, span: number, i: number): { piece: number; index: number } {
  const starts: number[] = [];
  extents.reduce((at, e) => (starts.push(at), at + e), 0);
  const outer = Math.floor(i / span);
  const within = i - outer * span;
  const c = Math.floor(within / inner);
  let lo = 0;
  let hi = extents.length - 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi + 1) / 2);
    if (starts[mid] <= c) lo = mid;
    else hi = mid - 1;
  }
  return { piece: lo, index: outer * extents[lo] * inner + within - starts[lo] * inner };
}
