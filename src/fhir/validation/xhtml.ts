/**
 * Narrative XHTML rules: https://hl7.org/fhir/R4/narrative.html#xhtml
 * The div is well-formed XML in the XHTML namespace, uses only the basic HTML elements listed there, has
 * no scripts, forms or event attributes (txt-1), and has some non-whitespace content (txt-2).
 * Only the five XML entities and character references exist: there is no DTD, so `&nbsp;` or `&reg;` are errors.
 */

const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** https://hl7.org/fhir/R4/narrative.html#xhtml: "the XHTML content SHALL NOT contain ... other elements". */
const ALLOWED_ELEMENTS = new Set([
  'a', 'abbr', 'acronym', 'b', 'big', 'blockquote', 'br', 'caption', 'cite', 'code', 'col', 'colgroup', 'dd', 'dfn',
  'div', 'dl', 'dt', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i', 'img', 'li', 'ol', 'p', 'pre', 'q', 'samp',
  'small', 'span', 'strong', 'sub', 'sup', 'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'tt', 'ul', 'var',
]);

const XML_ENTITIES = new Set(['lt', 'gt', 'amp', 'quot', 'apos']);

/** Returns the first problem with a Narrative.div value, or undefined when it is acceptable. */
export function checkNarrativeDiv(div: string): string | undefined {
  try {
    new XhtmlChecker(div).check();
    return undefined;
  } catch (err) {
    if (err instanceof XhtmlProblem) {
      return err.message;
    }
    throw err;
  }
}

class XhtmlProblem extends Error {}

const NAME = /[A-Za-z_:][A-Za-z0-9_:.-]*/y;
const SPACE = /[ \t\r\n]*/y;

class XhtmlChecker {
  private pos = 0;
  private readonly open: string[] = [];
  private hasContent = false;
  private roots = 0;
  private lastRootNamespace: string | undefined;

  constructor(private readonly text: string) {}

  check(): void {
    const text = this.text;
    while (this.pos < text.length) {
      const lt = text.indexOf('<', this.pos);
      const end = lt < 0 ? text.length : lt;
      this.characters(this.pos, end);
      this.pos = end;
      if (lt < 0) {
        break;
      }
      if (text.startsWith('<!--', lt)) {
        this.skipPast('-->', 'unterminated comment');
      } else if (text.startsWith('<![CDATA[', lt)) {
        this.requireOpen('CDATA section');
        const close = text.indexOf(']]>', lt);
        if (close < 0) {
          this.fail('unterminated CDATA section');
        }
        if (text.slice(lt + 9, close).trim()) {
          this.hasContent = true;
        }
        this.pos = close + 3;
      } else if (text.startsWith('<?', lt)) {
        this.skipPast('?>', 'unterminated processing instruction');
      } else if (text.startsWith('<!', lt)) {
        this.fail('a DOCTYPE or other declaration is not allowed');
      } else if (text.startsWith('</', lt)) {
        this.endTag();
      } else {
        this.startTag();
      }
    }
    if (this.open.length > 0) {
      this.fail(`the element <${this.open[this.open.length - 1]}> is not closed`);
    }
    if (this.roots === 0) {
      this.fail('the narrative must be a <div> element');
    }
    if (!this.hasContent) {
      this.fail('the narrative SHALL have some non-whitespace content (txt-2)');
    }
  }

  private characters(start: number, end: number): void {
    const chunk = this.text.slice(start, end);
    if (this.open.length === 0) {
      if (chunk.trim()) {
        this.fail('text outside the root <div> element');
      }
      return;
    }
    if (!this.hasContent && chunk.trim()) {
      this.hasContent = true;
    }
    this.entities(chunk);
    if (chunk.includes(']]>')) {
      this.fail("the sequence ']]>' is not allowed in text");
    }
  }

  private entities(chunk: string): void {
    let amp = chunk.indexOf('&');
    while (amp >= 0) {
      const semi = chunk.indexOf(';', amp);
      const ref = semi < 0 ? '' : chunk.slice(amp + 1, semi);
      if (!(XML_ENTITIES.has(ref) || /^#[0-9]{1,7}$/.test(ref) || /^#x[0-9a-fA-F]{1,6}$/.test(ref))) {
        const shown = semi < 0 || semi - amp > 12 ? '&' : `&${ref};`;
        this.fail(`invalid entity '${shown}' (XHTML allows only &lt; &gt; &amp; &quot; &apos; and character references)`);
      }
      amp = chunk.indexOf('&', semi);
    }
  }

  private startTag(): void {
    this.pos++;
    const name = this.name('element name');
    const local = name.includes(':') ? name.slice(name.indexOf(':') + 1) : name;
    if (!ALLOWED_ELEMENTS.has(local)) {
      this.fail(`the element <${name}> is not allowed in a narrative (txt-1)`);
    }
    if (local === 'img') {
      this.hasContent = true;
    }
    const isRoot = this.open.length === 0;
    if (isRoot) {
      if (this.roots > 0) {
        this.fail('the narrative must have a single root <div> element');
      }
      if (name !== 'div') {
        this.fail(`the narrative root element must be <div>, not <${name}>`);
      }
      this.roots++;
    }
    const attributes = new Set<string>();
    for (;;) {
      const hadSpace = this.space();
      const c = this.text.charAt(this.pos);
      if (c === '>') {
        this.pos++;
        this.open.push(name);
        break;
      }
      if (c === '/' && this.text.charAt(this.pos + 1) === '>') {
        this.pos += 2;
        break;
      }
      if (!c) {
        this.fail(`unterminated start tag <${name}>`);
      }
      if (!hadSpace) {
        this.fail(`malformed start tag <${name}>`);
      }
      const attr = this.name('attribute name');
      if (attributes.has(attr)) {
        this.fail(`duplicate attribute '${attr}' on <${name}>`);
      }
      attributes.add(attr);
      this.space();
      if (this.text.charAt(this.pos) !== '=') {
        this.fail(`the attribute '${attr}' on <${name}> has no value`);
      }
      this.pos++;
      this.space();
      const value = this.attributeValue(attr);
      this.checkAttribute(name, attr, value, isRoot);
    }
    if (isRoot) {
      const ns = this.lastRootNamespace;
      if (ns !== XHTML_NS) {
        this.fail(`the narrative <div> must be in the XHTML namespace (xmlns="${XHTML_NS}")`);
      }
    }
  }

  private checkAttribute(element: string, attr: string, value: string, isRoot: boolean): void {
    const lower = attr.toLowerCase();
    if (lower.startsWith('on')) {
      this.fail(`the event attribute '${attr}' is not allowed in a narrative (txt-1)`);
    }
    if ((lower === 'href' || lower === 'src') && /^\s*(javascript|vbscript):/i.test(value)) {
      this.fail(`script URLs are not allowed in a narrative (txt-1)`);
    }
    if (attr === 'xmlns' && isRoot) {
      this.lastRootNamespace = value;
    } else if (attr === 'xmlns' && value !== XHTML_NS) {
      this.fail(`the element <${element}> is not in the XHTML namespace`);
    }
  }

  private attributeValue(attr: string): string {
    const quote = this.text.charAt(this.pos);
    if (quote !== '"' && quote !== "'") {
      this.fail(`the value of the attribute '${attr}' must be quoted`);
    }
    const close = this.text.indexOf(quote, this.pos + 1);
    if (close < 0) {
      this.fail(`unterminated value of the attribute '${attr}'`);
    }
    const raw = this.text.slice(this.pos + 1, close);
    if (raw.includes('<')) {
      this.fail(`'<' is not allowed in the value of the attribute '${attr}'`);
    }
    this.entities(raw);
    this.pos = close + 1;
    return raw.replace(/&(lt|gt|amp|quot|apos);/g, (_, e: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[e] ?? '');
  }

  private endTag(): void {
    this.pos += 2;
    const name = this.name('element name');
    this.space();
    if (this.text.charAt(this.pos) !== '>') {
      this.fail(`malformed end tag </${name}>`);
    }
    this.pos++;
    const expected = this.open.pop();
    if (expected !== name) {
      this.fail(expected ? `</${name}> found where </${expected}> was expected` : `unexpected end tag </${name}>`);
    }
  }

  private name(what: string): string {
    NAME.lastIndex = this.pos;
    const m = NAME.exec(this.text);
    if (!m) {
      this.fail(`an ${what} was expected`);
    }
    this.pos += m[0].length;
    return m[0];
  }

  private space(): boolean {
    SPACE.lastIndex = this.pos;
    const m = SPACE.exec(this.text);
    const length = m ? m[0].length : 0;
    this.pos += length;
    return length > 0;
  }

  private skipPast(terminator: string, problem: string): void {
    const close = this.text.indexOf(terminator, this.pos + 2);
    if (close < 0) {
      this.fail(problem);
    }
    this.pos = close + terminator.length;
  }

  private requireOpen(what: string): void {
    if (this.open.length === 0) {
      this.fail(`${what} outside the root <div> element`);
    }
  }

  private fail(message: string): never {
    throw new XhtmlProblem(message);
  }
}
