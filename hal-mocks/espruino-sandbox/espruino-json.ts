// Espruino's JSON dialects around Storage, checked against the Linux build (2v29):
// - Storage.writeJSON writes compact JS, not JSON: keys that are identifiers or integers lose
//   their quotes, strings keep bytes 32..126 and escape the rest as \xXX (or \0..\7), so a file
//   written with writeJSON cannot be read back with JSON.parse, only with readJSON.
// - Storage.write(name, object) and JSON.stringify write standard JSON with \u00XX escapes.
// - Storage.readJSON parses liberally: unquoted keys, single quotes, \x and octal escapes,
//   trailing commas, and anything after the first value is ignored.
// Known gap: V8 orders integer-like keys first where Espruino keeps insertion order.

function isArrayBuffer(value: unknown): value is ArrayBuffer {
  return Object.prototype.toString.call(value) === '[object ArrayBuffer]';
}

function hex2(code: number): string {
  return code.toString(16).toUpperCase().padStart(2, '0');
}

/** One character as Espruino's %q (compact) or %Q / JSON (unicode) formats escape it. */
function escapeChar(code: number, next: number, unicodeStyle: boolean): string {
  if (code === 10) return '\\n';
  if (code === 9) return '\\t';
  if (code === 8) return '\\b';
  if (code === 11 && !unicodeStyle) return '\\v';
  if (code === 12) return '\\f';
  if (code === 13) return '\\r';
  if (code === 92) return '\\\\';
  if (code === 34) return '\\"';
  // Espruino checks only for a following octal digit ("\x01" + "9" becomes "\19").
  if (code < 8 && !unicodeStyle && !(next >= 48 && next <= 55)) return `\\${code}`;
  if (code < 32 || code >= 127) return unicodeStyle || code > 255 ? `\\u${code.toString(16).toUpperCase().padStart(4, '0')}` : `\\x${hex2(code)}`;
  return String.fromCharCode(code);
}

function quote(text: string, unicodeStyle: boolean): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) out += escapeChar(text.charCodeAt(i), i + 1 < text.length ? text.charCodeAt(i + 1) : -1, unicodeStyle);
  return `${out}"`;
}

/** Numbers as Espruino prints them: about 12 significant digits. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'null';
  if (Number.isInteger(value) && Math.abs(value) < 1e21) return String(value);
  return String(Number(value.toPrecision(12)));
}

function isIdentifier(key: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) && key.length < 63;
}

function isIntegerKey(key: string): boolean {
  return /^-?(0|[1-9][0-9]*)$/.test(key);
}

/**
 * Espruino's JSON writer. `compact` is Storage.writeJSON's form (quotes dropped where possible,
 * \x escapes); otherwise standard JSON as Espruino's JSON.stringify writes it.
 */
export function espruinoStringify(value: unknown, compact: boolean): string | undefined {
  const unicodeStyle = !compact;
  const write = (item: unknown, inArray: boolean): string | undefined => {
    if (item !== null && typeof item === 'object' && typeof (item as { toJSON?: unknown }).toJSON === 'function') {
      item = (item as { toJSON: () => unknown }).toJSON();
    }
    if (item === undefined || typeof item === 'function') return inArray ? 'null' : undefined;
    if (item === null) return 'null';
    if (typeof item === 'boolean') return String(item);
    if (typeof item === 'number') return formatNumber(item);
    if (typeof item === 'string') return quote(item, unicodeStyle);
    if (ArrayBuffer.isView(item) || isArrayBuffer(item)) {
      const bytes = ArrayBuffer.isView(item) ? (item as unknown as ArrayLike<number>) : new Uint8Array(item);
      const parts: string[] = [];
      for (let i = 0; i < bytes.length; i++) parts.push(formatNumber(Number(bytes[i])));
      return `[${parts.join(',')}]`;
    }
    if (Array.isArray(item)) return `[${item.map((element) => write(element, true) ?? 'null').join(',')}]`;
    const parts: string[] = [];
    for (const [key, child] of Object.entries(item as Record<string, unknown>)) {
      const text = write(child, false);
      if (text === undefined) continue;
      const name = compact && (isIdentifier(key) || isIntegerKey(key)) ? key : quote(key, unicodeStyle);
      parts.push(`${name}:${text}`);
    }
    return `{${parts.join(',')}}`;
  };
  return write(value, false);
}

/** Thrown by liberalJsonToStandard on text it cannot parse. */
export class EspruinoJsonError extends Error {}

/**
 * Reads Espruino's liberal JSON (what readJSON accepts) and returns the same value as standard
 * JSON text, so the caller can parse it in whichever realm it needs.
 */
export function liberalJsonToStandard(text: string): string {
  let at = 0;
  const fail = (what: string): never => {
    throw new EspruinoJsonError(`Got ${at < text.length ? JSON.stringify(text[at]) : 'EOF'} expected ${what}`);
  };
  const skipSpace = (): void => {
    while (at < text.length && ' \t\n\r\v\f'.includes(text[at]!)) at++;
  };
  const readString = (): string => {
    const quoteChar = text[at++]!;
    let out = '';
    while (at < text.length && text[at] !== quoteChar) {
      let char = text[at++]!;
      if (char === '\\') {
        const escape = text[at++] ?? fail('escape');
        if (escape === 'n') char = '\n';
        else if (escape === 't') char = '\t';
        else if (escape === 'r') char = '\r';
        else if (escape === 'b') char = '\b';
        else if (escape === 'f') char = '\f';
        else if (escape === 'v') char = '\v';
        else if (escape === 'x') {
          char = String.fromCharCode(parseInt(text.slice(at, at + 2), 16));
          at += 2;
        } else if (escape === 'u') {
          char = String.fromCharCode(parseInt(text.slice(at, at + 4), 16));
          at += 4;
        } else if (escape >= '0' && escape <= '7') {
          let digits = escape;
          while (digits.length < 3 && at < text.length && text[at]! >= '0' && text[at]! <= '7') digits += text[at++];
          char = String.fromCharCode(parseInt(digits, 8) & 0xff);
        } else char = escape;
      }
      out += char;
    }
    if (at >= text.length) fail(`closing ${quoteChar}`);
    at++;
    return JSON.stringify(out);
  };
  const readWord = (): string => {
    const start = at;
    while (at < text.length && /[A-Za-z0-9_$.+\-]/.test(text[at]!)) at++;
    return text.slice(start, at);
  };
  const readValue = (): string => {
    skipSpace();
    const char = text[at];
    if (char === undefined) return fail('a value');
    if (char === '"' || char === "'") return readString();
    if (char === '{') {
      at++;
      const parts: string[] = [];
      for (;;) {
        skipSpace();
        if (text[at] === '}') break;
        const key = text[at] === '"' || text[at] === "'" ? readString() : JSON.stringify(readWord() || fail('a key'));
        skipSpace();
        if (text[at] !== ':') fail("':'");
        at++;
        parts.push(`${key}:${readValue()}`);
        skipSpace();
        if (text[at] === ',') at++;
        else if (text[at] !== '}') fail("',' or '}'");
      }
      at++;
      return `{${parts.join(',')}}`;
    }
    if (char === '[') {
      at++;
      const parts: string[] = [];
      for (;;) {
        skipSpace();
        if (text[at] === ']') break;
        parts.push(readValue());
        skipSpace();
        if (text[at] === ',') at++;
        else if (text[at] !== ']') fail("',' or ']'");
      }
      at++;
      return `[${parts.join(',')}]`;
    }
    const word = readWord();
    if (word === 'true' || word === 'false' || word === 'null') return word;
    if (word === 'undefined' || word === 'NaN' || word === 'Infinity' || word === '-Infinity') return 'null';
    const number = Number(word);
    if (word === '' || Number.isNaN(number)) return fail('a value');
    return Number.isFinite(number) ? JSON.stringify(number) : 'null';
  };
  // Anything after the first value is ignored, as Espruino does.
  return readValue();
}
