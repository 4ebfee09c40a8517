// Text that came from a registry or an image, made safe to print: no line breaks or other
// control characters, and nothing the runner would read as a workflow command.

/** Control characters and the Unicode line and paragraph separators. */
// eslint-disable-next-line no-control-regex -- matching them is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g

function escape(c: string): string {
  const code = c.charCodeAt(0)
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`
}

/**
 * `text` on one line that the runner reads as plain text: control characters are written as
 * `\xNN`, a leading `::` (a workflow command, after any white space) as `\x3a:`, and `##[` (the
 * legacy form, read anywhere in a line) as `#\x23[`.
 */
export function inert(text: string): string {
  // The runner trims white space (Unicode spaces too) before it looks for `::`.
  return text
    .replace(CONTROL, escape)
    .replace(/##\[/g, '#\\x23[')
    .replace(/^(\s*):(?=:)/u, '$1\\x3a')
}

const HTML: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;'
}

/** `text` for the job summary, which is Markdown that renders HTML. */
export function escapeHtml(text: string): string {
  return inert(text).replace(/[&<>"']/g, (c) => HTML[c])
}
