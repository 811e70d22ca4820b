/**
 * A small C++ source writer: lines with indentation, blocks, and the line number of what was written (for the
 * `kernel.source` of graph.json). Generated text stays readable because structure comes from calls, not from
 * concatenated templates.
 */
import { commentText, cString } from '../../generated-text';

export class CppWriter {
  private readonly lines: string[] = [];
  private depth = 0;

  /** The 1-based line number the next line will have. */
  get nextLine(): number {
    return this.lines.length + 1;
  }

  line(text = ''): this {
    this.lines.push(text === '' ? '' : '  '.repeat(this.depth) + text);
    return this;
  }

  /** Several lines (a multi-line string is split), each at the current indentation. */
  lines_(text: string): this {
    for (const l of text.split('\n')) this.line(l);
    return this;
  }

  /** `//` lines; text from a model is safe here (generated-text.ts: printable ASCII, one line each). */
  comment(text: string): this {
    for (const l of text.split('\n')) this.line(l ? `// ${commentText(l)}` : '//');
    return this;
  }

  /** `head {` … `}` (with `tail` after the closing brace, e.g. ';'). */
  block(head: string, body: () => void, tail = ''): this {
    this.line(`${head} {`);
    this.depth++;
    body();
    this.depth--;
    this.line(`}${tail}`);
    return this;
  }

  include(header: string, system = false): this {
    return this.line(system ? `#include <${header}>` : `#include "${header}"`);
  }

  toString(): string {
    return this.lines.join('\n') + '\n';
  }
}

/** A C++ string literal (generated-text.ts). */
export function cppString(text: string): string {
  return cString(text);
}

/** A float literal that round-trips (and is a float, not a double). */
export function cppFloat(value: number): string {
  if (value === Infinity) return 'INFINITY';
  if (value === -Infinity) return '-INFINITY';
  if (Number.isNaN(value)) return 'NAN';
  const text = Number.isInteger(value) ? `${value}.0` : `${value}`;
  return `${text.includes('e') ? text : text}f`;
}

/** An int64 literal (values at or beyond int64's range, as JS numbers hold them, are its limits). */
export function cppInt(value: number): string {
  if (value >= 2 ** 63) return 'INT64_MAX';
  if (value <= -(2 ** 63)) return 'INT64_MIN';
  return `int64_t{${Math.trunc(value)}}`;
}

/** A C++ identifier derived from a name (graph ids, tensor names). */
export function cppIdentifier(name: string): string {
  const id = name.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[0-9]/.test(id) ? `_${id}` : id;
}

/**
 * The tail of a CUTLASS-free instance header (ait_gemm.h, ait_conv.h): the failure macro the launch functions use
 * (guarded, since model.cu includes both headers) and one declaration per instance entry point.
 */
export function instanceDeclarations<I extends { instance: { name: string }; file: string; symbol: string }>(
  w: CppWriter,
  instances: readonly I[],
  argsType: string | ((instance: I) => string),
): void {
  w.comment('Returns the failure message of the enclosing launch function.');
  w.line('#ifndef AIT_RETURN_IF_FAILED');
  w.line('#define AIT_RETURN_IF_FAILED(expr)                  \\');
  w.line('  do {                                            \\');
  w.line('    if (const char* ait_failure_ = (expr)) return ait_failure_; \\');
  w.line('  } while (0)');
  w.line('#endif');
  w.line();
  for (const i of instances) {
    w.comment(`${i.instance.name}: ${i.file}`);
    w.line(
      `const char* ${i.symbol}(const ${typeof argsType === 'string' ? argsType : argsType(i)}& args, void* workspace, size_t workspace_bytes, cudaStream_t stream);`,
    );
  }
}
