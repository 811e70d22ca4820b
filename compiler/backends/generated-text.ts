/**
 * The one way a string from a model (node, tensor, scope and model names, attribute strings) or any other text
 * that is not ours enters generated sources. A name from a model must never become code:
 * - in a comment (C++ `//`, Python and Makefile `#`), a CR, LF or other line break would end the comment and
 *   turn the rest of the name into code; a trailing backslash would splice the next line into the comment; `*∕`
 *   would end a block comment; bidirectional-override characters can make code read differently from how it
 *   compiles ("Trojan Source"). `commentText` therefore keeps letters, marks, digits, punctuation, symbols and the
 *   space, and escapes everything else (controls, format and bidirectional characters, separators, `\`).
 * - in a C/C++ string literal, `cString` escapes every byte of the UTF-8 encoding that is not printable ASCII as
 *   three-digit octal (so the program still sees the exact bytes of the name), and `"`, `\` and `?` (trigraphs).
 * - a Makefile word (the library name) is checked by `makefileWord`: anything but [A-Za-z0-9_.+-] is refused.
 * Shell command lines are built with remote-agent/client/shell-quote.ts, and identifiers with cppIdentifier.
 */

/** Visible characters and the space, except `\` (escaped, so no line ends in one). */
const PLAIN = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** `text` as one line of visible characters for a generated comment: others become `\xNN` / `\u{N}`. */
export function commentText(text: string): string {
  let out = '';
  for (const ch of text) {
    if (ch === '\\') out += '\\x5c';
    else if (PLAIN.test(ch)) out += ch;
    else {
      const cp = ch.codePointAt(0)!;
      out += cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
    }
  }
  // `*/` would end a block comment; `??/` is a backslash where trigraphs are still read.
  return out.replace(/\*\//g, '*\\x2f').replace(/\?\?/g, '?\\x3f');
}

/** A C/C++ string literal of `text` (UTF-8), in printable ASCII. */
export function cString(text: string): string {
  let out = '"';
  for (const byte of new TextEncoder().encode(text)) {
    const ch = String.fromCharCode(byte);
    if (ch === '"' || ch === '\\' || ch === '?') out += `\\${ch}`;
    else if (byte >= 0x20 && byte < 0x7f) out += ch;
    else out += `\\${byte.toString(8).padStart(3, '0')}`;
  }
  return out + '"';
}

/** A word for a generated Makefile (a library or target name); throws on anything but [A-Za-z0-9_.+-]. */
export function makefileWord(word: string): string {
  if (!/^[A-Za-z0-9_.+][A-Za-z0-9_.+-]*$/.test(word)) throw new Error(`'${commentText(word)}' cannot be a Makefile word`);
  return word;
}
