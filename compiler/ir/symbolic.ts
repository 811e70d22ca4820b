/**
 * Symbolic dimensions.
 *
 * A dim is a concrete integer or a polynomial with integer coefficients over named symbols (`B`, `B*197`,
 * `3*B + 1`). Symbols have [min, max] bounds kept in a SymbolTable: model inputs' dynamic dims (the batch, 1..256)
 * and dims that only the data decides (NonZero's count, NMS's selected boxes). Polynomials are kept in a canonical
 * form, so two expressions for the same quantity compare equal (`B*197 == 197*B`). A floor division that does not
 * divide evenly becomes a new opaque symbol (`floor(B/2)`) with derived bounds.
 */

const SEP = '\u0000';

/** A symbolic dim: sum of coefficient × monomial; the empty monomial '' is the constant term. */
export class SymDim {
  /** monomial key (symbol names, sorted, joined by NUL; repeated for powers) → non-zero integer coefficient */
  readonly terms: ReadonlyMap<string, number>;
  private constructor(terms: Map<string, number>) {
    this.terms = terms;
  }
  static symbol(name: string): SymDim {
    return new SymDim(new Map([[name, 1]]));
  }
  /** Builds from terms; returns a plain number when no symbol remains. */
  static fromTerms(terms: Map<string, number>): Dim {
    for (const [k, v] of terms) if (v === 0) terms.delete(k);
    if (terms.size === 0) return 0;
    if (terms.size === 1 && terms.has('')) return terms.get('')!;
    return new SymDim(terms);
  }
  get symbols(): string[] {
    const out = new Set<string>();
    for (const k of this.terms.keys()) if (k) for (const s of k.split(SEP)) out.add(s);
    return [...out];
  }
  toString(): string {
    const keys = [...this.terms.keys()].sort((a, b) => (a === '' ? 1 : b === '' ? -1 : a < b ? -1 : a > b ? 1 : 0));
    let s = '';
    for (const k of keys) {
      const c = this.terms.get(k)!;
      const mono = k === '' ? '' : k.split(SEP).join('*');
      const mag = Math.abs(c);
      const body = mono === '' ? String(mag) : mag === 1 ? mono : `${mag}*${mono}`;
      s += s === '' ? (c < 0 ? `-${body}` : body) : c < 0 ? ` - ${body}` : ` + ${body}`;
    }
    return s;
  }
}

export type Dim = number | SymDim;

export function isConcrete(d: Dim): d is number {
  return typeof d === 'number';
}

export function allConcrete(dims: readonly Dim[]): dims is number[] {
  return dims.every((d) => typeof d === 'number');
}

function termsOf(d: Dim): Map<string, number> {
  if (typeof d === 'number') return new Map(d === 0 ? [] : [['', d]]);
  return new Map(d.terms);
}

export function dimAdd(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  const t = termsOf(a);
  for (const [k, v] of termsOf(b)) t.set(k, (t.get(k) ?? 0) + v);
  return SymDim.fromTerms(t);
}

export function dimNeg(a: Dim): Dim {
  if (typeof a === 'number') return -a;
  const t = new Map<string, number>();
  for (const [k, v] of a.terms) t.set(k, -v);
  return SymDim.fromTerms(t);
}

export function dimSub(a: Dim, b: Dim): Dim {
  return dimAdd(a, dimNeg(b));
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  const t = new Map<string, number>();
  for (const [ka, va] of termsOf(a))
    for (const [kb, vb] of termsOf(b)) {
      const key = [...(ka ? ka.split(SEP) : []), ...(kb ? kb.split(SEP) : [])].sort().join(SEP);
      t.set(key, (t.get(key) ?? 0) + va * vb);
    }
  return SymDim.fromTerms(t);
}

export function dimProduct(dims: readonly Dim[]): Dim {
  let p: Dim = 1;
  for (const d of dims) p = dimMul(p, d);
  return p;
}

/** Value of a dim with every symbol set to `value` (used to check rewrites on a small proxy). */
export function evaluateDim(d: Dim, value: (symbol: string) => number): number {
  if (typeof d === 'number') return d;
  let total = 0;
  for (const [mono, coeff] of d.terms) {
    let v = coeff;
    if (mono) for (const s of mono.split(SEP)) v *= value(s);
    total += v;
  }
  return total;
}

export function dimEquals(a: Dim, b: Dim): boolean {
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  if (a.terms.size !== b.terms.size) return false;
  for (const [k, v] of a.terms) if (b.terms.get(k) !== v) return false;
  return true;
}

export function shapeEquals(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => dimEquals(d, b[i]));
}

export function dimToString(d: Dim): string {
  return typeof d === 'number' ? String(d) : d.toString();
}

export function shapeToString(shape: readonly Dim[] | undefined): string {
  return shape ? `[${shape.map(dimToString).join(', ')}]` : '[?]';
}

/**
 * How a symbol's value is computed when a compiled model runs (code generation renders it on the host):
 * - `min` / `max` / `floorDiv` / `floorScale`: an expression of other dims (min(1000, nonzero_0), floor(B/2), …);
 * - `runtime`: known only when the node that makes it has run (NonZero's count, TopK's k read from a tensor): that
 *   node's lowering computes it (a device-to-host read) before any later op uses it.
 * Model input symbols (the batch) have none.
 */
export type SymbolDefinition =
  | { kind: 'min' | 'max'; args: Dim[] }
  | { kind: 'floorDiv'; args: [Dim, Dim] }
  | { kind: 'floorScale'; args: [Dim]; scale: number }
  | { kind: 'runtime'; node: string };

/** Bounds and origin of a symbol. */
export interface SymbolInfo {
  name: string;
  min: number;
  max: number;
  /** What the symbol stands for: 'model input input[0]', "NonZero node '/roi_heads/NonZero'", … */
  origin: string;
  definition?: SymbolDefinition;
}

/** The symbols of one model, shared by its graph and subgraphs. */
export class SymbolTable {
  private readonly table = new Map<string, SymbolInfo>();
  private counter = 0;
  private readonly byKey = new Map<string, string>();

  define(name: string, min: number, max: number, origin: string, definition?: SymbolDefinition): SymDim {
    const existing = this.table.get(name);
    if (existing) {
      existing.min = Math.max(existing.min, min);
      existing.max = Math.min(existing.max, max);
      existing.definition ??= definition;
    } else this.table.set(name, { name, min, max, origin, ...(definition ? { definition } : {}) });
    return SymDim.symbol(name);
  }

  /**
   * A fresh symbol for a data-dependent dim; the name starts with `prefix` and is unique in this table. `node`
   * (the node whose run decides it) makes it a `runtime` symbol.
   */
  fresh(prefix: string, min: number, max: number, origin: string, node?: string): SymDim {
    let name: string;
    do name = `${prefix}${this.counter++}`;
    while (this.table.has(name));
    return this.define(name, min, max, origin, node !== undefined ? { kind: 'runtime', node } : undefined);
  }

  /** fresh(), once per `key`: later calls with the same key return that symbol (its bounds narrowed to the new ones). */
  freshFor(key: string, prefix: string, min: number, max: number, origin: string, node?: string): SymDim {
    const known = this.byKey.get(key);
    if (known) return this.define(known, min, max, origin);
    const symbol = this.fresh(prefix, min, max, origin, node);
    this.byKey.set(key, symbol.symbols[0]);
    return symbol;
  }

  /** Whether a dim depends on a size only a node's run decides (a `runtime` symbol, or an expression of one). */
  dependsOnRuntime(d: Dim, seen = new Set<string>()): boolean {
    if (typeof d === 'number') return false;
    return d.symbols.some((s) => {
      if (seen.has(s)) return false;
      seen.add(s);
      const definition = this.table.get(s)?.definition;
      if (!definition) return false;
      return definition.kind === 'runtime' || definition.args.some((a) => this.dependsOnRuntime(a, seen));
    });
  }

  get(name: string): SymbolInfo | undefined {
    return this.table.get(name);
  }

  all(): SymbolInfo[] {
    return [...this.table.values()];
  }

  /** Interval bounds of a dim, from its symbols' bounds (symbols are non-negative). */
  bounds(d: Dim): { min: number; max: number } {
    if (typeof d === 'number') return { min: d, max: d };
    let min = 0;
    let max = 0;
    for (const [k, c] of d.terms) {
      let lo = 1;
      let hi = 1;
      if (k)
        for (const s of k.split(SEP)) {
          const info = this.table.get(s);
          lo *= info ? info.min : 0;
          hi *= info ? info.max : Number.POSITIVE_INFINITY;
        }
      if (c >= 0) {
        min += c * lo;
        max += c * hi;
      } else {
        min += c * hi;
        max += c * lo;
      }
    }
    return { min, max };
  }

  /** The largest value a dim can take (for buffer sizing). */
  maxOf(d: Dim): number {
    return this.bounds(d).max;
  }

  /**
   * floor(a / b). Exact when b divides every coefficient of a (B*197/197 = B); otherwise a new opaque symbol
   * named after the expression, with bounds derived from a's.
   */
  floorDiv(a: Dim, b: Dim): Dim {
    if (typeof a === 'number' && typeof b === 'number') return Math.floor(a / b);
    if (typeof b === 'number' && b !== 0 && typeof a !== 'number') {
      if ([...a.terms.values()].every((c) => c % b === 0)) {
        const t = new Map<string, number>();
        for (const [k, v] of a.terms) t.set(k, v / b);
        return SymDim.fromTerms(t);
      }
    }
    if (dimEquals(a, b)) return 1;
    // a = k*b exactly, for symbolic b (e.g. (B*197*768)/(B*197))
    if (typeof b !== 'number' && typeof a !== 'number' && b.terms.size === 1) {
      const [[bk, bc]] = [...b.terms];
      const bSyms = bk ? bk.split(SEP) : [];
      const t = new Map<string, number>();
      let ok = true;
      for (const [k, c] of a.terms) {
        const syms = k ? k.split(SEP) : [];
        for (const s of bSyms) {
          const i = syms.indexOf(s);
          if (i < 0) ok = false;
          else syms.splice(i, 1);
        }
        if (!ok || c % bc !== 0) {
          ok = false;
          break;
        }
        t.set(syms.join(SEP), c / bc);
      }
      if (ok) return SymDim.fromTerms(t);
    }
    const name = `floor((${dimToString(a)})/(${dimToString(b)}))`;
    const ba = this.bounds(a);
    const bb = this.bounds(b);
    const lo = bb.max > 0 ? Math.floor(ba.min / bb.max) : 0;
    const hi = bb.min > 0 ? Math.floor(ba.max / bb.min) : ba.max;
    return this.define(name, lo, hi, `floor division ${dimToString(a)} / ${dimToString(b)}`, { kind: 'floorDiv', args: [a, b] });
  }

  /** An opaque symbol for an expression the polynomial form cannot hold (min, max, ceil), and how to compute it. */
  opaque(expression: string, min: number, max: number, origin: string, definition?: SymbolDefinition): SymDim {
    return this.define(expression, min, max, origin, definition);
  }
}
