/**
 * Strict FHIR JSON parsing: https://hl7.org/fhir/R4/json.html
 * RFC 8259 JSON only (no comments, trailing commas or unquoted names), and no duplicate property names
 * ("a given property SHALL NOT appear more than once" — JSON.parse silently keeps the last one).
 * A leading UTF-8 byte order mark is tolerated, as the reference validator does.
 */
import { OperationOutcomeError, outcome } from '../outcomes';

/** Objects nested deeper than this are refused rather than risking the stack in later processing. */
const MAX_DEPTH = 256;

/** Parses a request body as FHIR JSON. Throws OperationOutcomeError 400 (code 'structure') for malformed JSON. */
export function parseFhirJson(text: string): unknown {
  if (text.charCodeAt(0) === 0xfeff) {
    text = text.slice(1);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // JSON.parse says little about where and why; the scanner explains the first problem it finds.
    const problem = scanJson(text, false) ?? { message: (err as Error).message, offset: undefined };
    throw malformed(text, problem);
  }
  const problem = scanJson(text, true);
  if (problem) {
    throw malformed(text, problem);
  }
  return value;
}

interface JsonProblem {
  message: string;
  offset: number | undefined;
}

function malformed(text: string, problem: JsonProblem): OperationOutcomeError {
  let where = '';
  if (problem.offset !== undefined) {
    const { line, column } = lineAndColumn(text, problem.offset);
    where = ` at line ${line}, column ${column}`;
  }
  return new OperationOutcomeError(400, outcome('error', 'structure', `Malformed JSON: ${problem.message}${where}`));
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const enum Ch {
  Tab = 9,
  Lf = 10,
  Cr = 13,
  Space = 32,
  Quote = 34,
  Plus = 43,
  Comma = 44,
  Minus = 45,
  Dot = 46,
  Slash = 47,
  Zero = 48,
  Nine = 57,
  Colon = 58,
  OpenBracket = 91,
  Backslash = 92,
  CloseBracket = 93,
  LowerE = 101,
  UpperE = 69,
  OpenBrace = 123,
  CloseBrace = 125,
  Hash = 35,
}

/**
 * Walks the JSON text once without building values. Returns the first problem (syntax with a readable
 * explanation, duplicate property names, excessive nesting), or undefined when the text is strict JSON.
 * `parsed`: JSON.parse already accepted the text, so string contents and numbers need no second look.
 */
function scanJson(text: string, parsed: boolean): JsonProblem | undefined {
  return new JsonScanner(text, parsed).scan();
}

interface Frame {
  object: boolean;
  keys?: Set<string>;
  count: number;
}

class JsonScanner {
  private pos = 0;
  private readonly stack: Frame[] = [];

  constructor(
    private readonly text: string,
    private readonly parsed: boolean,
  ) {}

  scan(): JsonProblem | undefined {
    try {
      this.skipSpace();
      this.value();
      this.skipSpace();
      if (this.pos < this.text.length) {
        return this.unexpected('after the end of the JSON value');
      }
      return undefined;
    } catch (err) {
      if (err instanceof ScanError) {
        return { message: err.message, offset: err.offset };
      }
      throw err;
    }
  }

  /** Parses one value; containers are handled iteratively so deep input cannot overflow the stack. */
  private value(): void {
    this.scalarOrOpen();
    while (this.stack.length > 0) {
      const frame = this.stack[this.stack.length - 1];
      this.skipSpace();
      const c = this.text.charCodeAt(this.pos);
      const close = frame.object ? Ch.CloseBrace : Ch.CloseBracket;
      if (c === close) {
        this.pos++;
        this.stack.pop();
        continue;
      }
      if (frame.count > 0) {
        if (c !== Ch.Comma) {
          if (Number.isNaN(c)) {
            this.fail(`unexpected end of input, '${frame.object ? '}' : ']'}' expected`);
          }
          if (c === Ch.CloseBrace || c === Ch.CloseBracket) {
            this.fail(`unexpected '${String.fromCharCode(c)}', '${frame.object ? '}' : ']'}' expected`);
          }
          this.fail(`a comma is missing before ${this.describe(c)}`);
        }
        this.pos++;
        this.skipSpace();
        const next = this.text.charCodeAt(this.pos);
        if (next === close) {
          this.fail(`there is an extra comma at the end of the ${frame.object ? 'object' : 'array'}`);
        }
      }
      frame.count++;
      if (frame.object) {
        this.property(frame);
      }
      this.skipSpace();
      this.scalarOrOpen();
    }
  }

  private property(frame: Frame): void {
    this.skipSpace();
    const c = this.text.charCodeAt(this.pos);
    if (c !== Ch.Quote) {
      if (Number.isNaN(c)) {
        this.fail(`unexpected end of input, '}' expected`);
      }
      if (isNameStart(c)) {
        this.fail(`the property name '${this.bareWord()}' has no quotes around it`);
      }
      this.fail(`a quoted property name was expected, found ${this.describe(c)}`);
    }
    const start = this.pos;
    const name = this.string();
    const keys = (frame.keys ??= new Set());
    if (keys.has(name)) {
      this.pos = start;
      this.fail(`duplicate property name '${name}'`);
    }
    keys.add(name);
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) !== Ch.Colon) {
      this.fail(`':' expected after the property name '${name}'`);
    }
    this.pos++;
  }

  private scalarOrOpen(): void {
    this.skipSpace();
    const c = this.text.charCodeAt(this.pos);
    if (c === Ch.OpenBrace || c === Ch.OpenBracket) {
      if (this.stack.length >= MAX_DEPTH) {
        this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
      }
      this.pos++;
      this.stack.push({ object: c === Ch.OpenBrace, count: 0 });
    } else if (c === Ch.Quote) {
      this.string();
    } else if (c === Ch.Minus || (c >= Ch.Zero && c <= Ch.Nine)) {
      this.number();
    } else if (this.text.startsWith('true', this.pos)) {
      this.pos += 4;
    } else if (this.text.startsWith('false', this.pos)) {
      this.pos += 5;
    } else if (this.text.startsWith('null', this.pos)) {
      this.pos += 4;
    } else if (Number.isNaN(c)) {
      this.fail('unexpected end of input, a value expected');
    } else if (isNameStart(c)) {
      this.fail(`the value '${this.bareWord()}' has no quotes around it`);
    } else {
      this.fail(`a value expected, found ${this.describe(c)}`);
    }
  }

  private string(): string {
    const text = this.text;
    const start = ++this.pos;
    let escaped = false;
    for (;;) {
      const end = text.indexOf('"', this.pos);
      if (end < 0) {
        this.pos = start - 1;
        this.fail('unterminated string');
      }
      let backslashes = 0;
      for (let i = end - 1; i >= start && text.charCodeAt(i) === Ch.Backslash; i--) {
        backslashes++;
      }
      this.pos = end + 1;
      if (backslashes % 2 === 0) {
        const raw = text.slice(start, end);
        if (this.parsed) {
          return raw.includes('\\') ? (JSON.parse(text.slice(start - 1, end + 1)) as string) : raw;
        }
        for (let i = 0; i < raw.length; i++) {
          const ch = raw.charCodeAt(i);
          if (ch < Ch.Space) {
            this.pos = start + i;
            this.fail('control character in a string (it must be escaped)');
          }
          if (ch === Ch.Backslash) {
            escaped = true;
          }
        }
        if (!escaped) {
          return raw;
        }
        try {
          return JSON.parse(text.slice(start - 1, end + 1)) as string;
        } catch {
          this.pos = start - 1;
          this.fail('invalid escape sequence in a string');
        }
      }
    }
  }

  private number(): void {
    if (this.parsed) {
      NUMBER_CHARS.lastIndex = this.pos;
      this.pos += NUMBER_CHARS.exec(this.text)?.[0].length ?? 0;
      return;
    }
    const match = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
    match.lastIndex = this.pos;
    const m = match.exec(this.text);
    if (!m || m[0] === '-' || m[0].length === 0) {
      this.fail('invalid number');
    }
    this.pos += m[0].length;
    const next = this.text.charCodeAt(this.pos);
    if (next === Ch.Dot || (next >= Ch.Zero && next <= Ch.Nine) || isNameStart(next)) {
      this.fail('invalid number');
    }
  }

  private skipSpace(): void {
    const text = this.text;
    for (;;) {
      const c = text.charCodeAt(this.pos);
      if (c === Ch.Space || c === Ch.Lf || c === Ch.Cr || c === Ch.Tab) {
        this.pos++;
      } else if (c === Ch.Slash && (text.charCodeAt(this.pos + 1) === Ch.Slash || text.charCodeAt(this.pos + 1) === 42)) {
        this.fail('comments are not allowed in JSON');
      } else if (c === Ch.Hash) {
        this.fail('comments are not allowed in JSON');
      } else {
        return;
      }
    }
  }

  private bareWord(): string {
    const m = /[A-Za-z_$][\w$-]*/y;
    m.lastIndex = this.pos;
    return m.exec(this.text)?.[0] ?? '';
  }

  private describe(c: number): string {
    return Number.isNaN(c) ? 'the end of input' : `'${String.fromCharCode(c)}'`;
  }

  private unexpected(where: string): never {
    this.fail(`unexpected ${this.describe(this.text.charCodeAt(this.pos))} ${where}`);
  }

  private fail(message: string): never {
    throw new ScanError(message, this.pos);
  }
}

const NUMBER_CHARS = /[-+0-9.eE]*/y;

class ScanError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

function isNameStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36;
}
