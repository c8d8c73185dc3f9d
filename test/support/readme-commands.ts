/**
 * The commands a README shows, as a reader would copy them: every `sluice …`, `npx sluice …` and
 * `npm run sluice -- …` line of its fenced blocks, and every curl command to 127.0.0.1 or
 * localhost in its "Quick start" section (fenced or inline code). In `console` blocks a command
 * is a line after a `$ ` prompt (the other lines are its output); in other blocks every line is
 * one; a trailing `\` continues it on the next line.
 */

export interface ReadmeCommand {
  /** 1-based line of the README where the command starts. */
  readonly line: number;
  readonly text: string;
  /** 1 when the README says so on the command's line (`# exits 1`), else 0. */
  readonly expectedCode: number;
}

const QUICK_START = 'Quick start';
const SLUICE = /^(?:sluice|npx(?:\s+-\S+)*\s+sluice|npm run sluice --)(?:\s|$)/;
const LOOPBACK_CURL = /\bcurl\b.*\b(?:127\.0\.0\.1|localhost)\b/;
const FENCE = /^\s*(```|~~~)\s*(\S*)/;

function command(line: number, text: string): ReadmeCommand {
  return { line, text, expectedCode: /#.*\bexits 1\b/.test(text) ? 1 : 0 };
}

export function readmeCommands(markdown: string): ReadmeCommand[] {
  const lines = markdown.split('\n');
  const found: ReadmeCommand[] = [];
  let section = '';
  let fence: { marker: string; lang: string } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const f = FENCE.exec(line);
    if (f) {
      if (fence === null) fence = { marker: f[1]!, lang: f[2]! };
      else if (f[1] === fence.marker) fence = null;
      continue;
    }
    if (fence === null) {
      const heading = /^#{1,2}\s+(.*)$/.exec(line);
      if (heading) section = heading[1]!.trim();
      if (section === QUICK_START)
        for (const m of line.matchAll(/`(curl [^`]+)`/g))
          if (LOOPBACK_CURL.test(m[1]!)) found.push(command(i + 1, m[1]!));
      continue;
    }
    const start = i;
    let text = line;
    while (text.endsWith('\\') && i + 1 < lines.length)
      text = `${text.slice(0, -1).trimEnd()} ${lines[++i]!.trim()}`;
    if (fence.lang === 'console') {
      if (!text.startsWith('$ ')) continue;
      text = text.slice(2);
    }
    text = text.trim();
    if (SLUICE.test(text) || (section === QUICK_START && LOOPBACK_CURL.test(text)))
      found.push(command(start + 1, text));
  }
  return found;
}

/** Why a README command cannot be run as shown, or null. */
export function unrunnable(c: ReadmeCommand): string | null {
  return /^npx\b/.test(c.text)
    ? "npx does not link a project's own bin: inside the repository write `npm run sluice -- …`"
    : null;
}
