/**
 * Server-rendered pages of the sign-in flow: plain HTML forms, no scripts at all, one stylesheet served as a
 * file (so the Content-Security-Policy can forbid inline code), readable on a phone. Every interpolated value
 * is escaped.
 */
import { STYLESHEET_PATH } from './stylesheet';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** A template tag that escapes interpolations, except values already rendered with it (`Html`). */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  values.forEach((v, i) => {
    const rendered = Array.isArray(v) ? v.map((x) => (x instanceof Html ? x.value : escapeHtml(String(x)))).join('') : v instanceof Html ? v.value : v === undefined || v === null || v === false ? '' : escapeHtml(String(v));
    out += rendered + strings[i + 1];
  });
  return new Html(out);
}

export function layout(title: string, body: Html): string {
  return html`<!doctype html>
<html lang="pt-BR">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · Health&amp;Med</title>
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<main class="card">
<p class="brand">Health&amp;Med</p>
${body}
</main>
</body>
</html>
`.value;
}
