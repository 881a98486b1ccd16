// Regular expressions as Espruino's matcher runs them: parsed with @eslint-community/regexpp, then
// every construct outside the measured subset is named (PROFILE.md "RegExp" and the regex probes).
import { parseRegExpLiteral, visitRegExpAST, type AST } from '@eslint-community/regexpp';

/** Flags Espruino honours; `m`, `s`, `u`, `y`, `d`, `v` are ignored or unknown there. */
const supportedFlags = new Set(['g', 'i']);

/**
 * Lists what Espruino's RegExp cannot do in `/pattern/flags`. Measured: single-atom `*` and `+`,
 * classes, `\d \w \s`, `^ $`, alternation and unquantified groups (also `(?:...)`, probe
 * `regex-alternation`) work; `?`, `{n,m}`, lazy quantifiers, quantified groups, lookaround, `\b`,
 * backreferences, named groups, `\u` escapes and the flags m/s/u/y do not.
 */
export function regExpProblems(pattern: string, flags: string): string[] {
  const problems: string[] = [];
  for (const flag of flags) {
    if (!supportedFlags.has(flag)) problems.push(`RegExp flag '${flag}' (Espruino supports only g and i)`);
  }
  let literal: AST.RegExpLiteral;
  try {
    // Parse without the u/v flags' stricter grammar unless the code asked for them: the flag itself
    // is refused above, and the pattern should still be read the way the author wrote it.
    literal = parseRegExpLiteral(`/${pattern}/${flags.replace(/[^dgimsuvy]/g, '')}`, { ecmaVersion: 2025 });
  } catch (error) {
    return [...problems, `RegExp that does not parse: ${(error as Error).message}`];
  }
  visitRegExpAST(literal.pattern, {
    onQuantifierEnter(node) {
      const raw = node.raw.slice(node.element.raw.length);
      if (!node.greedy) problems.push(`non-greedy quantifier '${raw}' in RegExp`);
      else if (raw === '?') problems.push(`'?' quantifier in RegExp (write both alternatives out)`);
      else if (raw.startsWith('{')) problems.push(`'${raw}' quantifier in RegExp (repeat the atom)`);
      if (node.element.type === 'Group' || node.element.type === 'CapturingGroup') {
        problems.push(`quantifier on a group in RegExp (only a single character or class may repeat)`);
      } else if (node.element.type === 'Backreference') {
        problems.push('quantified backreference in RegExp');
      }
    },
    onAssertionEnter(node) {
      if (node.kind === 'lookahead' || node.kind === 'lookbehind') {
        problems.push(`${node.kind} assertion '${node.raw.slice(0, 3)}' in RegExp`);
      } else if (node.kind === 'word') {
        problems.push(`word boundary '${node.raw}' in RegExp`);
      }
      // '^' and '$' work; only the m flag (reported above) changes them.
    },
    onBackreferenceEnter(node) {
      problems.push(`backreference '${node.raw}' in RegExp`);
    },
    onCapturingGroupEnter(node) {
      if (node.name !== null) problems.push(`named group '(?<${node.name}>' in RegExp`);
    },
    onCharacterEnter(node) {
      if (node.raw.startsWith('\\u')) problems.push(`'\\u' escape '${node.raw}' in RegExp (write the byte or '\\x..')`);
      if (node.raw.startsWith('\\c')) problems.push(`control escape '${node.raw}' in RegExp`);
    },
    onCharacterSetEnter(node) {
      if (node.kind === 'property') problems.push(`Unicode property escape '${node.raw}' in RegExp`);
    },
    onModifiersEnter(node) {
      problems.push(`modifier group '${node.raw}' in RegExp`);
    },
  });
  return problems;
}
