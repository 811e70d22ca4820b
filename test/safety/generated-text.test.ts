/**
 * Names from a model never become code (compiler/backends/generated-text.ts): comments stay comments, string
 * literals hold the exact bytes of the name, and a model whose node and tensor names carry CR, LF, `*∕`, quotes,
 * backslashes, NUL, non-ASCII and bidirectional-override characters compiles to sources nvcc accepts.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { commentText, cString, makefileWord } from '../../compiler/backends/generated-text';
import { compileModel, modelNameOf } from '../../compiler/compile';
import { buildModel } from '../helpers/onnx-builder';
import { haveNvcc, nvccCompileGenerated } from '../helpers/nvcc';

const HOSTILE = [
  'a\r#error INJECTED_BY_CR',
  'b\n#error INJECTED_BY_LF',
  'c\r\n#error INJECTED_BY_CRLF',
  'd */ #error INJECTED_BY_BLOCK_END /*',
  'e "quoted" \'single\'',
  'f trailing backslash \\',
  'g \\\n#error INJECTED_BY_SPLICE',
  'h nul \0 byte',
  'i ünïcödé 名前 🙂',
  'j bidi \u202e gnirts \u2066 \u2028 line sep',
  'k trigraph ??/',
  'l \t tab \v vt \f ff \x7f del',
];

/** Decodes a C string literal the way a compiler does (the escapes cString writes). */
function decodeCString(literal: string): Uint8Array {
  assert.ok(literal.startsWith('"') && literal.endsWith('"'));
  const body = literal.slice(1, -1);
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    if (body[i] !== '\\') {
      bytes.push(body.charCodeAt(i));
      continue;
    }
    const next = body[i + 1];
    if (/[0-7]/.test(next)) {
      bytes.push(parseInt(body.slice(i + 1, i + 4), 8));
      i += 3;
    } else {
      bytes.push(next.charCodeAt(0));
      i += 1;
    }
  }
  return new Uint8Array(bytes);
}

describe('generated text: names from a model never become code', () => {
  it('commentText: one line of visible characters, no block-comment end, never a trailing backslash', () => {
    for (const name of HOSTILE) {
      const t = commentText(name);
      assert.match(t, /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]*$/u, JSON.stringify(t));
      assert.ok(!/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(t), JSON.stringify(t));
      assert.ok(!t.includes('*/'), t);
      assert.ok(!t.endsWith('\\'), t);
      assert.ok(!t.includes('??'), t);
    }
    assert.equal(commentText('plain name/with:punctuation_1'), 'plain name/with:punctuation_1');
    assert.equal(commentText('a\rb'), 'a\\x0db');
    assert.equal(commentText('\u202e'), '\\u{202e}');
    assert.equal(commentText('ünïcödé 名前 → 3×3'), 'ünïcödé 名前 → 3×3');
  });

  it('cString: printable ASCII whose decoding is the exact UTF-8 bytes of the name', () => {
    for (const name of HOSTILE) {
      const lit = cString(name);
      assert.match(lit, /^"[\x20-\x7e]*"$/, lit);
      assert.deepEqual(decodeCString(lit), new TextEncoder().encode(name));
    }
  });

  it('cString literals compiled by g++ give back the same bytes', function () {
    if (spawnSync('g++', ['--version']).status !== 0) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-cstring-'));
    const src = [
      '#include <cstdio>',
      `static const char* names[] = {${HOSTILE.map(cString).join(', ')}};`,
      `static const unsigned long sizes[] = {${HOSTILE.map((n) => `sizeof(${cString(n)}) - 1`).join(', ')}};`,
      'int main() { for (int i = 0; i < ' + HOSTILE.length + '; i++) { fwrite(names[i], 1, sizes[i], stdout); fputc(0xff, stdout); } }',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'names.cc'), src);
    const built = spawnSync('g++', ['-std=c++17', '-Werror', '-o', 'names', 'names.cc'], { cwd: dir, encoding: 'utf8' });
    assert.equal(built.status, 0, built.stderr);
    const out = spawnSync(path.join(dir, 'names'), { cwd: dir });
    const expected = Buffer.concat(HOSTILE.map((n) => Buffer.concat([Buffer.from(n, 'utf8'), Buffer.from([0xff])])));
    assert.deepEqual(out.stdout, expected);
  });

  it('makefileWord and modelNameOf: library names are plain words', () => {
    assert.equal(makefileWord('resnet50-v1.5'), 'resnet50-v1.5');
    for (const bad of ['a b', '$(shell rm -rf x)', 'a\nb', '-rf', '', 'x;y']) assert.throws(() => makefileWord(bad), /Makefile word/);
    assert.equal(modelNameOf('/m/$(shell id) x.onnx'), '__shell_id__x');
    assert.equal(modelNameOf('/m/..onnx'), '_');
    assert.equal(modelNameOf('/m/-rf.onnx'), '_rf');
    assert.equal(modelNameOf('/m/.onnx'), 'model');
  });

  it('a model with hostile node and tensor names compiles to sources where they stay comments and strings', function () {
    this.timeout(300_000);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ait-hostile-names-'));
    const input = `in ${HOSTILE[0]}`;
    const output = `out ${HOSTILE[1]} ${HOSTILE[3]}`;
    const model = path.join(tmp, 'names.onnx');
    fs.writeFileSync(
      model,
      buildModel({
        inputs: [{ name: input, dtype: 'float32', dims: ['batch', 64] }],
        nodes: HOSTILE.map((name, i) => ({
          op: i % 2 ? 'Relu' : 'Sigmoid',
          name,
          inputs: [i === 0 ? input : `t${i - 1} ${HOSTILE[i]}`],
          outputs: [i === HOSTILE.length - 1 ? output : `t${i} ${HOSTILE[i + 1]}`],
        })),
        outputs: [output],
      }),
    );
    const out = path.join(tmp, 'out');
    const r = compileModel(model, { out, target: 'cuda:sm80', maxBatch: 8 });
    assert.ok(r.ok, JSON.stringify(r.diagnostics));
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true }))
        if (e.isDirectory()) walk(path.join(d, e.name));
        else files.push(path.join(d, e.name));
    };
    walk(out);
    const sources = files.filter((f) => /\.(cu|cuh|h|cc|py)$|Makefile$/.test(f));
    assert.ok(sources.some((f) => f.endsWith('model.cu')));
    for (const f of sources) {
      const text = fs.readFileSync(f, 'utf8');
      assert.ok(!/[\r\0\u202e\u2066]/.test(text), `${f} holds a raw CR, NUL or bidi character`);
      text.split('\n').forEach((line, i) => {
        if (!line.includes('INJECTED')) return;
        const code = line.replace(/"(?:[^"\\]|\\.)*"/g, '""'); // string literals out
        const at = code.indexOf('//');
        const bare = at >= 0 ? code.slice(0, at) : code;
        assert.ok(!bare.includes('INJECTED'), `${f}:${i + 1} has a name outside a comment or string: ${line}`);
        assert.ok(!code.trimStart().startsWith('#'), `${f}:${i + 1}: ${line}`);
      });
    }
    if (haveNvcc()) nvccCompileGenerated(out, ['src/model.cu'], 'arch=compute_80,code=sm_80');
  });
});
