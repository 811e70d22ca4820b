/** `import text from 'file?raw'`: the file's content as a string (scripts/build.mjs, raw-text plugin). */
declare module '*?raw' {
  const text: string;
  export default text;
}
